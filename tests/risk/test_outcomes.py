"""Invariants of the expected-outcome chain (``plan_outcomes``) over random plans."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from repayplan.risk.miss_model import DEFAULT_MISS_MODEL
from repayplan.risk.outcomes import pad_batch, plan_outcomes

LGD, HURDLE = 0.45, 0.08


@st.composite
def plans(draw):
    """One level monthly plan: its payment, term, the borrower's income and arrears."""
    term = draw(st.integers(1, 60))
    payment = draw(st.integers(1_000, 500_000))
    income = draw(st.integers(50_000, 2_000_000))
    unpaid = draw(st.integers(0, 4))
    return term, payment, income, unpaid, draw(st.integers(0, 2))


def _batch(rows):
    pays, owed, due, incomes, unpaid, arrears, segments = [], [], [], [], [], [], []
    for term, payment, income, k, segment in rows:
        pays.append(np.full(term, payment, dtype=float))
        owed.append(payment * np.arange(term, 0, -1, dtype=float))
        due.append(np.arange(1, term + 1))
        incomes.append(np.full(term, income, dtype=float))
        unpaid.append(k)
        arrears.append(k * payment)
        segments.append(segment)
    return pad_batch(pays, owed, due, incomes, [1] * len(rows), segments, unpaid, arrears)


@settings(max_examples=60, deadline=None)
@given(st.lists(plans(), min_size=1, max_size=6))
def test_probabilities_nest_and_value_is_bounded(rows):
    out = plan_outcomes(_batch(rows), DEFAULT_MISS_MODEL, lgd=LGD, hurdle_rate=HURDLE)
    eps = 1e-12
    assert np.all(out.charge_off_12 >= -eps)
    assert np.all(out.charge_off_12 <= out.charge_off_24 + eps)
    assert np.all(out.charge_off_24 <= out.charge_off + eps)
    assert np.all(out.charge_off <= 1 + eps)
    for i, (term, payment, _, k, _) in enumerate(rows):
        # Never more than every payment (arrears included) on time, undiscounted.
        assert out.expected_npv[i] <= payment * (term + k) + 1e-6
        assert out.expected_npv[i] >= 0
        assert np.all(out.collections[i] >= 0)
        assert np.all(out.collections[i] <= payment * (1 + k) + 1e-6)


@settings(max_examples=40, deadline=None)
@given(plans())
def test_more_arrears_or_a_heavier_burden_never_lowers_the_risk(plan):
    term, payment, income, k, segment = plan
    worse_arrears = (term, payment, income, min(k + 1, 5), segment)
    lower_income = (term, payment, max(income // 2, 1), k, segment)
    out = plan_outcomes(
        _batch([plan, worse_arrears, lower_income]), DEFAULT_MISS_MODEL, lgd=LGD,
        hurdle_rate=HURDLE,
    )  # fmt: skip
    assert out.charge_off[1] >= out.charge_off[0] - 1e-9
    assert out.charge_off[2] >= out.charge_off[0] - 1e-9
