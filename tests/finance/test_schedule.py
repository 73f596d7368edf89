"""Schedules: known values, the lenders' rounding conventions, and invariants over random loans."""

from datetime import date
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repayplan.errors import InputError
from repayplan.finance import (
    DayCount,
    Frequency,
    Method,
    amortise_batch,
    build_schedule,
    due_dates,
    factors_as_ratio,
    period_rate_factors,
    schedule_from_payments,
)

START = date(2024, 1, 1)


def _check_reconciles(s):
    """Every schedule invariant the issue asks for."""
    rows = s.installments
    assert sum(r.principal for r in rows) == s.principal
    assert rows[-1].balance == 0
    assert all(r.balance >= 0 for r in rows)
    assert all(r.payment == r.principal + r.interest for r in rows)
    assert all(r.interest >= 0 and r.payment >= 0 for r in rows)
    assert s.total_paid == s.principal + s.total_interest
    previous = s.principal
    for r in rows:
        assert r.balance == previous - r.principal
        previous = r.balance


@pytest.mark.parametrize(
    ("principal", "rate", "periods", "payment"),
    [
        # Wikipedia "Mortgage calculator", worked example: $200,000 at 6.5 % for 30 years,
        # r = 0.065/12, N = 360 → fixed monthly payment $1,264.14.
        (20_000_000, "0.065", 360, 126_414),
        # The textbook $100,000 at 6 % for 30 years → $599.55 a month (P·r/(1−(1+r)^−N)).
        (10_000_000, "0.06", 360, 59_955),
        # 10,000 at 12 % over 12 months, r = 1 %: 10000·0.01/(1−1.01^−12) = 888.4879 → 888.49.
        (1_000_000, "0.12", 12, 88_849),
    ],
)
def test_annuity_installment_known_values(principal, rate, periods, payment):
    s = build_schedule(principal, Decimal(rate), periods, start=START)
    assert {r.payment for r in s.installments[:-1]} == {payment}
    _check_reconciles(s)


def test_issue_example_100_at_9_4822_over_6_months():
    # r = 0.094822/12 = 0.0079018333…; A = 100·r/(1−(1+r)^−6) = 17.1253… → 17.13.
    # Interest each month = balance × r rounded half-even: 0.79, 0.66, 0.53, 0.40, 0.27, 0.13.
    s = build_schedule(10_000, Decimal("0.094822"), 6, "monthly", START, "30/360", "annuity")
    assert [r.payment for r in s.installments] == [1713] * 6
    assert [r.interest for r in s.installments] == [79, 66, 53, 40, 27, 13]
    assert [r.balance for r in s.installments] == [8366, 6719, 5059, 3386, 1700, 0]
    assert s.total_interest == 278 and s.total_paid == 10_278
    assert s.to_dict()["installments"][0] == {
        "number": 1,
        "due_date": "2024-02-01",
        "payment": "17.13",
        "principal": "16.34",
        "interest": "0.79",
        "balance": "83.66",
    }
    assert s.to_dict()["total_interest"] == "2.78"


def test_equal_principal_pays_round_p_over_n_and_the_residual_last():
    s = build_schedule(10_000, Decimal("0.094822"), 6, method="equal-principal", start=START)
    assert [r.principal for r in s.installments] == [1667] * 5 + [1665]
    assert [r.interest for r in s.installments] == [79, 66, 53, 40, 26, 13]
    _check_reconciles(s)


def test_flat_interest_is_charged_on_the_original_principal():
    s = build_schedule(10_000, Decimal("0.094822"), 6, method=Method.FLAT, start=START)
    # round(100 × 0.094822 / 12) = round(0.790183…) = 0.79 every period.
    assert [r.interest for r in s.installments] == [79] * 6
    assert [r.payment for r in s.installments] == [1746] * 5 + [1744]
    _check_reconciles(s)


def test_whole_unit_installment_and_grace_periods():
    s = build_schedule(
        10_000, Decimal("0.094822"), 6, start=START, installment_multiple=100, grace_periods=2
    )
    pays = [r.payment for r in s.installments]
    assert pays[:2] == [79, 79]  # interest only, balance unchanged
    assert [r.balance for r in s.installments[:2]] == [10_000, 10_000]
    # Level over the remaining 4 periods: 25.48… → whole unit 25.00; the last settles.
    assert pays[2:5] == [2500] * 3
    _check_reconciles(s)


def test_balloon_is_left_for_the_last_installment():
    s = build_schedule(1_000_000, Decimal("0.12"), 12, start=START, balloon=500_000)
    level = s.installments[0].payment
    # Level A = (P − B·1.01^−12)·0.01/(1−1.01^−12) = 494.24; the last pays A + B up to rounding.
    assert level == 49_424
    assert s.installments[-1].payment == pytest.approx(level + 500_000, abs=12)
    _check_reconciles(s)


def test_half_cent_ties_round_to_even_exactly():
    # 120 cents × 5 %/12 = 0.5 cent exactly: half-even gives 0, not 1 (a 28-digit decimal
    # of 0.05/12 would give 0.50000…04 and round up).
    s = schedule_from_payments(
        120, period_rate_factors("0.05", START, [date(2024, 2, 1)]), [date(2024, 2, 1)], [0]
    )
    assert s.installments[0].interest == 0
    s = schedule_from_payments(360, [Fraction(5, 1200)], [date(2024, 2, 1)], [0])
    assert s.installments[0].interest == 2  # 1.5 cents → 2


def test_schedule_from_payments_caps_overpayment_and_settles():
    dates = due_dates(START, 3, "monthly")
    factors = period_rate_factors(Decimal("0.12"), START, dates)
    s = schedule_from_payments(10_000, factors, dates, [20_000, 0, 0])
    assert [r.payment for r in s.installments] == [10_100, 0, 0]
    _check_reconciles(s)
    open_end = schedule_from_payments(10_000, factors, dates, [100, 100, 100], settle_last=False)
    assert open_end.final_balance == 10_000


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"principal": -100}, "principal"),
        ({"principal": 0}, "principal"),
        ({"periods": 0}, "periods"),
        ({"annual_rate": Decimal("-0.01")}, "annual_rate"),
        ({"day_count": "30/365"}, "day_count"),
        ({"frequency": "daily"}, "frequency"),
        ({"method": "balloonish"}, "method"),
        ({"grace_periods": 6}, "grace_periods"),
        ({"installment_multiple": 0}, "installment_multiple"),
        ({"balloon": 20_000}, "balloon"),
    ],
)
def test_bad_input_names_the_field(kwargs, field):
    args = {"principal": 10_000, "annual_rate": Decimal("0.1"), "periods": 6, "start": START}
    args.update(kwargs)
    with pytest.raises(InputError) as err:
        build_schedule(**args)
    assert err.value.field == field


def test_mismatched_lengths_are_rejected():
    with pytest.raises(InputError, match="same length"):
        schedule_from_payments(100, [Fraction(0)], [START], [1, 2])


loans = st.fixed_dictionaries(
    {
        "principal": st.integers(100, 100_000_000),
        "annual_rate": st.decimals("0", "0.60", places=4),
        "periods": st.integers(1, 120),
        "frequency": st.sampled_from(list(Frequency)),
        "start": st.dates(date(2000, 1, 1), date(2040, 12, 31)),
        "day_count": st.sampled_from(list(DayCount)),
        "method": st.sampled_from(list(Method)),
        "installment_multiple": st.sampled_from([1, 1, 5, 100]),
    }
)


@settings(max_examples=250, deadline=None)
@given(loans, st.data())
def test_every_schedule_reconciles_to_the_cent(loan, data):
    loan["grace_periods"] = data.draw(st.integers(0, loan["periods"] - 1))
    try:
        s = build_schedule(**loan)
    except InputError as exc:  # only a too-coarse multiple on a tiny loan may be refused
        assert exc.field == "installment_multiple"
        return
    assert len(s.installments) == loan["periods"]
    _check_reconciles(s)
    assert [r.due_date for r in s.installments] == due_dates(
        loan["start"], loan["periods"], loan["frequency"]
    )


@settings(max_examples=100, deadline=None)
@given(loans)
def test_replaying_a_schedule_reproduces_it(loan):
    """schedule_from_payments on build_schedule's own payments gives the same schedule."""
    if loan["method"] is Method.FLAT:
        loan["method"] = Method.ANNUITY
    loan["installment_multiple"] = 1
    s = build_schedule(**loan)
    dates = [r.due_date for r in s.installments]
    factors = period_rate_factors(
        loan["annual_rate"], loan["start"], dates, loan["day_count"], loan["frequency"]
    )
    assert schedule_from_payments(s.principal, factors, dates, s.payments) == s


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 10**9),
            st.lists(st.integers(0, 5_000), min_size=12, max_size=12),  # ≤ 5 % a period
            st.lists(st.integers(0, 2 * 10**7), min_size=12, max_size=12),
        ),
        min_size=1,
        max_size=20,
    ),
    st.integers(100_000, 10**7),
)
def test_amortise_batch_equals_schedule_from_payments(loans_, den):
    balances = np.array([b for b, _, _ in loans_], dtype=np.int64)
    nums = np.array([n for _, n, _ in loans_], dtype=np.int64)
    pays = np.array([p for _, _, p in loans_], dtype=np.int64)
    interest, balance, paid = amortise_batch(balances, nums, den, pays)
    dates = due_dates(START, 12, "monthly")
    for i, (b, n, p) in enumerate(loans_):
        s = schedule_from_payments(b, [Fraction(x, den) for x in n], dates, p)
        assert interest[i].tolist() == [r.interest for r in s.installments]
        assert balance[i].tolist() == [r.balance for r in s.installments]
        assert paid[i].tolist() == [r.payment for r in s.installments]


def test_amortise_batch_with_real_factors_and_overflow_guard():
    dates = due_dates(START, 24, "monthly")
    factors = period_rate_factors(Decimal("0.094822"), START, dates, "actual/365")
    num, den = factors_as_ratio(factors)
    s = build_schedule(10_000_000, Decimal("0.094822"), 24, start=START, day_count="actual/365")
    _, balance, paid = amortise_batch(
        np.array([10_000_000]), num[None, :], den, np.array([s.payments])
    )
    assert paid[0].tolist() == s.payments and balance[0, -1] == 0
    with pytest.raises(OverflowError):
        amortise_batch(np.array([2**62]), np.array([[3]]), 10, np.array([[0]]))
