"""The fast paths (array times, Newton, closed-form annuity, integer recursion) against the
straightforward exact / reference computations they replace, over random inputs."""

import warnings
from datetime import date, timedelta
from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import brentq

from repayplan.errors import InputError
from repayplan.finance import (
    DayCount,
    add_months,
    annuity_installment,
    apr_actuarial,
    build_schedule,
    due_dates,
    irr,
    irr_annualised,
    months_between,
    npv,
    period_rate_factors,
    period_rate_fractions,
    rates,
    schedule_from_payments,
    xirr,
)
from repayplan.finance.calendar import count_back
from repayplan.finance.money import div_round_half_even, round_fraction

# --- references: the pre-optimisation computations, kept small ---------------------------


def reference_root(gap) -> float:
    """Bracket from −0.999999 and ×4 upwards, then Brent (the original solver)."""
    lo, hi = -0.999999, 1.0
    with np.errstate(all="ignore"):
        while gap(hi) * gap(lo) > 0:
            hi *= 4
        return brentq(gap, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500)


def reference_apr(flows) -> tuple[float, str]:
    """Unit-period rate and unit by the date-by-date Appendix J times and Brent."""
    start = min(d for d, v in flows if v < 0)
    pays = sorted({d for d, v in flows if v > 0})
    advs = sorted({d for d, v in flows if v < 0})
    unit, times = rates._dated_times(start, pays, advs)
    rows = [(v, *times[d]) for d, v in flows if v]

    v, t, f = (np.array([float(x) for x in col]) for col in zip(*rows, strict=True))

    def gap(i):
        return float(np.sum(v / ((1 + f * i) * (1 + i) ** t)))

    return reference_root(gap), unit.label


def reference_irr(amounts) -> float:
    k = np.arange(len(amounts))
    a = np.asarray(amounts, dtype=float)
    return reference_root(lambda i: float(np.sum(a[a != 0] * (1 + i) ** -k[a != 0])))


def reference_annuity(principal, factors, balloon=0, multiple=1) -> int:
    discount, annuity = Fraction(1), Fraction(0)
    for r in factors:
        discount /= 1 + Fraction(r)
        annuity += discount
    return multiple * round_fraction((principal - balloon * discount) / annuity / multiple)


def reference_schedule(principal, factors, payments, settle_last=True) -> list[tuple]:
    balance, rows = principal, []
    for k, (f, planned) in enumerate(zip(factors, payments, strict=True)):
        f = Fraction(f.exact) if hasattr(f, "exact") else Fraction(f)
        interest = div_round_half_even(balance * f.numerator, f.denominator)
        due = balance + interest
        pay = due if settle_last and k == len(payments) - 1 else min(planned, due)
        balance = due - pay
        rows.append((pay, pay - interest, interest, balance))
    return rows


# --- strategies --------------------------------------------------------------------------

starts = st.dates(date(1990, 1, 1), date(2060, 12, 31))


@st.composite
def installment_plans(draw):
    """Monthly / bimonthly / quarterly / semiannual plans, regular or with an odd first
    period, sometimes with holiday months (zero payments) and varying amounts."""
    start = draw(starts)
    step = draw(st.sampled_from([1, 1, 1, 2, 3, 6]))
    n = draw(st.integers(3, 240 // step))
    first = add_months(start, step)
    if draw(st.booleans()):  # odd first period
        first = draw(st.dates(start + timedelta(days=10), start + timedelta(days=75)))
    dates = [add_months(first, step * k) for k in range(n)]
    principal = draw(st.integers(50_000, 50_000_000))
    rate = draw(st.integers(0, 3_000)) / 10_000
    level = principal * (rate / 12 * step + 1 / n) * draw(st.floats(0.9, 1.3))
    wiggle = draw(st.lists(st.floats(0.7, 1.3), min_size=n, max_size=n))
    pays = [max(1, int(level * w)) for w in wiggle]
    for k in draw(st.lists(st.integers(0, n - 2), max_size=3)):
        pays[k] = 0  # a holiday month
    return [(start, -principal), *zip(dates, pays, strict=True)]


# --- APR ---------------------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(installment_plans())
def test_apr_fast_path_equals_reference(flows):
    assume(sum(v > 0 for _, v in flows) >= 2)  # one payment: the term is the unit-period
    result = apr_actuarial(flows)
    rate, unit = reference_apr(flows)
    assert result.unit_period == unit
    assert float(result.unit_period_rate) == pytest.approx(rate, abs=1e-10)


@settings(max_examples=60, deadline=None)
@given(starts, st.sampled_from([1, 2, 3, 6]), st.integers(3, 160), st.integers(0, 3_600))
def test_regular_plans_take_the_array_path(start, step, n, rate_bp):
    """A build_schedule plan (any start day, month-end roll included) gets array times that
    equal the date-by-date ones."""
    freq = {1: "monthly", 2: "bimonthly", 3: "quarterly", 6: "semiannual"}[step]
    s = build_schedule(1_000_000, Decimal(rate_bp) / 10_000, n, freq, start)
    pays = sorted({i.due_date for i in s.installments if i.payment})
    assume(len(pays) >= 3)
    regular = rates._regular_times(start, np.array([d.toordinal() for d in pays]))
    assert regular is not None
    unit, t, f = regular
    dated_unit, times = rates._dated_times(start, pays, [start])
    assert unit == dated_unit
    assert [(int(a), float(b)) for a, b in zip(t, f, strict=True)] == [
        (times[d][0], float(times[d][1])) for d in pays
    ]


def test_apr_of_480_months_is_exact_and_fast_enough_to_matter():
    s = build_schedule(25_000_000, Decimal("0.0725"), 480, start=date(2024, 1, 31))
    flows = s.cash_flows(date(2024, 1, 31))
    rate, _ = reference_apr(flows)
    assert float(apr_actuarial(flows).unit_period_rate) == pytest.approx(rate, abs=1e-12)


def test_irregular_flows_still_use_the_date_by_date_rules():
    # Two advances, weekly payments: not a monthly series, Brent decides.
    start = date(2024, 3, 4)
    flows = [(start, -50_000), (start + timedelta(days=7), -10_000)]
    flows += [(start + timedelta(days=7 * k), 2_300) for k in range(2, 32)]
    assert rates._regular_times(start, np.array([d.toordinal() for d, _ in flows[2:]])) is None
    rate, unit = reference_apr(flows)
    result = apr_actuarial(flows)
    assert result.unit_period == unit == "week"
    assert float(result.unit_period_rate) == pytest.approx(rate, abs=1e-10)


# --- IRR / XIRR / NPV --------------------------------------------------------------------


@settings(max_examples=150, deadline=None)
@given(
    st.integers(10_000, 10_000_000),
    st.lists(st.integers(0, 2_000_000), min_size=1, max_size=480),
    st.integers(0, 300),
)
def test_irr_equals_brent_reference(advance, payments, trailing_zeros):
    assume(sum(payments) > 0)
    amounts = [-advance, *payments] + [0] * trailing_zeros
    fast = irr(amounts)
    assert fast == pytest.approx(reference_irr(amounts), abs=1e-10)
    if fast > -0.5:  # nearer −100 % the discounted sum is too steep to check in floats
        assert abs(npv(fast, amounts, start_period=0)) <= 1e-6 * advance


@settings(max_examples=60, deadline=None)
@given(installment_plans())
def test_dated_irr_places_flows_as_the_scalar_rule(flows):
    """The vectorised cycle positions equal months_between / count_back date by date."""
    first = min(d for d, _ in flows)
    days = np.array([d.toordinal() for d, _ in flows])
    for n in (12, 6, 4, 3):
        positions = rates._cycle_positions(days, n)
        scalar = [
            (
                months_between(first, d)
                + (count_back(d, months_between(first, d)) - first).days / (365 / 12)
            )
            / (12 // n)
            for d, _ in flows
        ]
        assert positions.tolist() == scalar


def test_single_sign_change_negative_rate_and_fees_on_day_zero():
    # Payments below the advance: a negative rate, found on (−1, 0).
    amounts = [-100_000] + [700] * 120
    assert irr(amounts) == pytest.approx(reference_irr(amounts), abs=1e-12)
    assert irr(amounts) < 0
    # Two sign changes, roots 10 % and 20 %: the bracket search finds no sign change at its
    # ends and refuses, as it always did.
    with pytest.raises(InputError, match="no rate of return"):
        irr([-100, 230, -132])
    # A fee on the advance's date: not separated in time, Brent on the bracket.
    fee_first = [(date(2024, 1, 1), -1000), (date(2024, 1, 1), 10), (date(2025, 1, 1), 1100)]
    assert xirr(fee_first) == pytest.approx((1100 / 990) ** (365 / 366) - 1, abs=1e-12)


def test_long_flows_with_zeros_no_overflow_warnings_and_no_nan():
    """480 periods at a high rate with trailing zero payments: the powers at x ≈ −1 used to
    overflow (RuntimeWarning) and give inf − inf = nan at the bracket end (ValueError)."""
    s = build_schedule(10_000_000, Decimal("0.30"), 480, start=date(2024, 1, 31))
    assert s.payments[-1] == 0
    flows = s.cash_flows(date(2024, 1, 31))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        a = apr_actuarial(flows)
        b = irr_annualised(flows)
        c = irr_annualised([-s.principal, *s.payments], 12)
        irr([-10_000] + [300] * 100 + [0] * 400)
        npv(-1, [1, 2, 3])
        xirr(flows)
    assert a.unit_period_rate == b.periodic_rate == c.periodic_rate


# --- annuity and schedule ----------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(
    st.integers(1_000, 100_000_000),
    st.integers(0, 4_000),
    st.integers(1, 480),
    starts,
    st.sampled_from(list(DayCount)),
    st.sampled_from(["monthly", "quarterly", "weekly", "semimonthly"]),
    st.integers(0, 100),
    st.sampled_from([1, 5, 100]),
)
def test_annuity_installment_equals_the_fraction_loop(
    principal, rate_bp, n, start, day_count, freq, balloon_pct, multiple
):
    dates = due_dates(start, n, freq)
    factors = period_rate_fractions(Decimal(rate_bp) / 10_000, start, dates, day_count, freq)
    balloon = principal * balloon_pct // 100
    expected = reference_annuity(principal, factors, balloon, multiple)
    assert annuity_installment(principal, factors, balloon, multiple) == expected
    decimals = period_rate_factors(Decimal(rate_bp) / 10_000, start, dates, day_count, freq)
    assert annuity_installment(principal, decimals, balloon, multiple) == expected


@settings(max_examples=100, deadline=None)
@given(
    st.integers(0, 100_000_000),
    st.integers(0, 4_000),
    st.integers(1, 240),
    starts,
    st.sampled_from(list(DayCount)),
    st.data(),
)
def test_schedule_from_payments_equals_the_plain_recursion(
    principal, rate_bp, n, start, day_count, data
):
    dates = due_dates(start, n, "monthly")
    factors = period_rate_factors(Decimal(rate_bp) / 10_000, start, dates, day_count)
    level = principal // n + 1
    payments = data.draw(st.lists(st.integers(0, 3 * level), min_size=n, max_size=n))
    settle = data.draw(st.booleans())
    s = schedule_from_payments(principal, factors, dates, payments, settle_last=settle)
    got = [(i.payment, i.principal, i.interest, i.balance) for i in s.installments]
    assert got == reference_schedule(principal, factors, payments, settle)
    assert [i.due_date for i in s.installments] == dates


def test_schedule_errors_name_the_first_bad_period():
    dates = due_dates(date(2024, 1, 1), 3, "monthly")
    with pytest.raises(Exception, match="must be >= 0") as err:
        schedule_from_payments(
            100, [Fraction(1, 100), Fraction(-1, 100), Fraction(0)], dates, [10, 10, -1]
        )
    assert err.value.field == "rate_factor" and err.value.record == "period 2"
    with pytest.raises(Exception, match="must be >= 0") as err:
        schedule_from_payments(100, [Fraction(1, 100)] * 3, dates, [10, -5, -1])
    assert err.value.field == "payment" and err.value.record == "period 2"
