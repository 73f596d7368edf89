"""plan_metrics: exact cost, APR / IRR, NPV, default risk and burden of a cent-exact plan."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repayplan.errors import InputError
from repayplan.finance import build_schedule, due_dates, period_rate_factors, schedule_from_payments
from repayplan.risk.burden import DEFAULT_BURDEN_CURVE, BurdenCurve
from repayplan.risk.metrics import (
    DEFAULT_BASE_MONTHLY_HAZARD,
    period_hazards,
    periodic_hurdle,
    plan_metrics,
)

START = date(2025, 1, 15)
FLAT = BurdenCurve((0.0, 1.0), (1.0, 1.0), source="test: no burden effect")


def metrics(schedule, incomes=None, **kw):
    n = len(schedule.installments)
    params = dict(
        exposure=schedule.principal,
        incomes=incomes if incomes is not None else [400_000] * n,
        base_monthly_hazard=0.004,
        lgd=Decimal("0.45"),
        hurdle_rate=Decimal("0.05"),
        periods_per_year=12,
        start=START,
    )
    params.update(kw)
    return plan_metrics(schedule, **params)


def annuity(principal=1_000_000, rate="0.0725", periods=36, frequency="monthly"):
    return build_schedule(principal, Decimal(rate), periods, frequency, START, "30/360")


def test_cost_apr_and_irr_of_a_plain_annuity():
    s = annuity()
    m = metrics(s)
    assert Decimal(m["total_paid"]) * 100 == s.total_paid
    assert Decimal(m["total_interest"]) * 100 == s.total_interest
    # a level annuity at 7.25 % nominal: the APR (Reg Z, unit period a month) and the IRR
    # nominal rate are the note rate; the effective rate is (1 + 0.0725/12)^12 − 1 = 7.4958 %
    assert abs(Decimal(m["apr_percent"]) - Decimal("7.25")) < Decimal("0.005")
    assert m["apr_unit_period"] == "month"
    assert abs(Decimal(m["irr_nominal_annual_percent"]) - Decimal("7.25")) < Decimal("0.005")
    effective = ((1 + 0.0725 / 12) ** 12 - 1) * 100
    assert float(m["irr_effective_annual_percent"]) == pytest.approx(effective, abs=0.005)


def test_fees_raise_the_apr():
    s = annuity()
    assert Decimal(metrics(s, fees=20_000)["apr_percent"]) > Decimal(metrics(s)["apr_percent"])


def test_npv_at_the_note_rate_is_the_principal():
    # the hurdle is discounted per period as annual / periods, like a 30/360 note rate: an
    # annuity discounted at its own rate is worth its principal, up to the half cent each
    # installment was rounded by
    s = annuity()
    m = metrics(s, hurdle_rate=Decimal("0.0725"))
    assert abs(Decimal(m["lender_npv"]) * 100 - s.principal) <= Decimal(len(s.installments)) / 2
    assert abs(m["concession"]) < 1e-5
    assert periodic_hurdle(Decimal("0.06"), 12) == pytest.approx(0.005)


def test_zero_hurdle_npv_is_total_paid_and_waived_exposure_is_concession():
    s = annuity()
    m = metrics(s, hurdle_rate=Decimal(0), exposure=s.principal + 10_000)
    assert m["lender_npv"] == m["total_paid"]
    expected = (s.principal + 10_000 - s.total_paid) / (s.principal + 10_000)
    assert m["concession"] == pytest.approx(expected)
    assert Decimal(m["concession_amount"]) * 100 == s.principal + 10_000 - s.total_paid


def test_hazard_pd_and_expected_loss_by_hand():
    # payment-to-income exactly 0.30 → g = 1 → monthly hazard = base in every period
    s = schedule_from_payments(
        90_000,
        period_rate_factors(Decimal(0), START, due_dates(START, 3, "monthly")),
        due_dates(START, 3, "monthly"),
        [30_000, 30_000, 30_000],
    )
    base = 0.01
    m = metrics(s, incomes=[100_000] * 3, base_monthly_hazard=base, curve=DEFAULT_BURDEN_CURVE)
    survival = [(1 - base) ** k for k in (1, 2, 3)]
    assert m["survival"] == pytest.approx(survival)
    assert m["pd"] == pytest.approx(1 - (1 - base) ** 3)
    # owed at default: 900.00, 600.00, 300.00; LGD 45 %
    el = 0.45 * base * (90_000 + (1 - base) * 60_000 + (1 - base) ** 2 * 30_000)
    assert Decimal(m["expected_loss"]) == Decimal(round(el)) / 100
    npv = sum(30_000 * (1 + 0.05 / 12) ** -k for k in (1, 2, 3))
    assert float(m["lender_npv"]) == pytest.approx(npv / 100, abs=0.006)
    expected = sum(
        (1 - base) ** (k - 1) * (1 - base) * 30_000 * (1 + 0.05 / 12) ** -k for k in (1, 2, 3)
    )
    assert float(m["expected_lender_npv"]) == pytest.approx(expected / 100, abs=0.006)
    assert m["max_payment_to_income"] == pytest.approx(0.30)


def test_period_hazard_scales_with_the_period_length():
    pay, inc = np.array([90_000]), np.array([300_000])
    monthly = period_hazards(pay, inc, 0.01, 12)[0]
    quarterly = period_hazards(pay, inc, 0.01, 4)[0]
    assert monthly == pytest.approx(0.01)
    assert quarterly == pytest.approx(1 - 0.99**3)
    # a heavier burden raises the hazard through g
    assert period_hazards(np.array([200_000]), inc, 0.01, 12)[0] > monthly


def test_quarterly_plan_metrics():
    s = annuity(periods=8, frequency="quarterly")
    m = metrics(s, incomes=[1_200_000] * 8, periods_per_year=4)
    assert len(m["survival"]) == 8
    assert abs(Decimal(m["irr_nominal_annual_percent"]) - Decimal("7.25")) < Decimal("0.005")


def test_payment_in_a_period_without_income():
    s = annuity(periods=3)
    m = metrics(s, incomes=[400_000, 0, 400_000])
    assert m["max_payment_to_income"] is None and m["max_payment_to_income_period"] == 2
    assert m["survival"][1] == 0.0 and m["pd"] == 1.0


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"incomes": [1, 2]}, "incomes"),
        ({"incomes": [-1] * 36}, "incomes"),
        ({"lgd": Decimal("1.2")}, "lgd"),
        ({"base_monthly_hazard": 1.5}, "base_monthly_hazard"),
        ({"periods_per_year": 5}, "periods_per_year"),
        ({"exposure": 0}, "exposure"),
        ({"fees": -1}, "fees"),
    ],
)
def test_bad_input_names_the_field(change, field):
    with pytest.raises(InputError) as err:
        metrics(annuity(), **change)
    assert err.value.field == field


def test_default_hazard_is_a_monthly_probability():
    assert 0 < DEFAULT_BASE_MONTHLY_HAZARD < 0.05


@settings(max_examples=60, deadline=None)
@given(
    data=st.lists(
        st.tuples(st.integers(0, 300_000), st.integers(1, 900_000)), min_size=1, max_size=60
    ),
    principal=st.integers(10_000, 5_000_000),
    rate_bp=st.integers(0, 3000),
    base=st.floats(0.0, 0.2),
    hurdle_bp=st.integers(0, 2000),
)
def test_invariants_over_random_plans(data, principal, rate_bp, base, hurdle_bp):
    payments = [p for p, _ in data]
    incomes = [y for _, y in data]
    dates = due_dates(START, len(data), "monthly")
    factors = period_rate_factors(Decimal(rate_bp) / 10_000, START, dates)
    s = schedule_from_payments(principal, factors, dates, payments)
    m = metrics(
        s, incomes=incomes, base_monthly_hazard=base, hurdle_rate=Decimal(hurdle_bp) / 10_000
    )
    survival = np.array(m["survival"])
    assert np.all(np.diff(survival) <= 1e-12) and survival[0] <= 1.0 and survival[-1] >= 0.0
    assert 0.0 <= m["pd"] <= 1.0
    assert m["pd"] == pytest.approx(1.0 - survival[-1], abs=1e-9)
    owed = max(r.balance + r.payment for r in s.installments)
    assert 0 <= Decimal(m["expected_loss"]) * 100 <= Decimal(0.45 * owed * m["pd"]) + 1
    assert Decimal(m["expected_lender_npv"]) <= Decimal(m["lender_npv"]) + Decimal("0.01")
    assert Decimal(m["lender_npv"]) <= Decimal(m["total_paid"]) + Decimal("0.01")
    ratios = [r.payment / y for r, y in zip(s.installments, incomes, strict=True)]
    assert m["max_payment_to_income"] == pytest.approx(max(ratios))
    if base == 0.0:
        assert m["pd"] == 0.0 and m["expected_loss"] == "0.00"
    # more base hazard never lowers the default probability
    worse = metrics(s, incomes=incomes, base_monthly_hazard=min(1.0, base * 2 + 0.001))
    assert worse["pd"] >= m["pd"] - 1e-12
    assert math.isfinite(m["concession"])
