"""The two baselines: the contract as it stands, and the HAMP-style waterfall.

The waterfall's rules are those of US Treasury HAMP Supplemental Directive 09-01 (2009),
"Standard Modification Waterfall" (restated in the MHA Handbook for Servicers of Non-GSE
Mortgages, Ch. II §6.3, and e.g. https://studylib.net/doc/18854355/hamp-supplemental-directive-09-01,
https://experts123.com/q/what-if-reducing-the-interest-rate-is-not-enough-to-get-the-borrowers-front-end-dti-down-to-31-percent.html):

1. capitalise arrears (late fees are waived, not capitalised);
2. reduce the rate in 0.125 % increments to get as close as possible to the 31 % target
   payment ratio without going below it; floor 2 %;
3. if still above, extend the term (re-amortise) up to 480 months;
4. if still above, forbear principal (non-interest-bearing, a balloon at maturity), up to
   30 % of the post-capitalisation balance.

Hand-checked figures below come from the textbook annuity formula
P·r / (1 − (1 + r)^−n), r = annual / 12, rounded to the cent (e.g. 200,000.00 over 360
months: 1,364.35 at 7.25 %, 739.24 at 2 % — the published payment tables' figures).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repayplan.errors import InputError
from repayplan.finance import build_schedule
from repayplan.plans.baselines import (
    HAMP,
    WaterfallPreset,
    contract_plan,
    level_payment,
    resolve_preset,
    waterfall_plan,
    waterfall_terms,
)
from repayplan.plans.case import LoanCase, Policy

from .support import rates

START = date(2025, 1, 31)


def mortgage(**overrides) -> LoanCase:
    """200,000.00 at 7.25 % with 360 months left, 400.00 of taxes and insurance a month."""
    fields = dict(
        outstanding_principal=20_000_000,
        annual_rate=Decimal("0.0725"),
        remaining_term=360,
        monthly_income=500_000,
        essential_expenses=150_000,
        fixed_costs=40_000,
        start=START,
        loan_id="L1",
    )
    fields.update(overrides)
    return LoanCase(**fields)


def reconciles(schedule) -> None:
    rows = schedule.installments
    assert sum(r.principal for r in rows) == schedule.principal
    assert rows[-1].balance == 0
    for r in rows:
        assert r.payment == r.principal + r.interest
    assert schedule.total_paid == schedule.principal + schedule.total_interest


# --- the building blocks -------------------------------------------------------------------


def test_level_payment_matches_published_tables():
    assert level_payment(20_000_000, Decimal("0.0725"), 360) == 136_435
    assert level_payment(20_000_000, Decimal("0.02"), 360) == 73_924
    assert level_payment(1_200, Decimal("0"), 12) == 100


@settings(max_examples=40, deadline=None)
@given(
    balance=st.integers(100_000, 100_000_000),
    rate=rates("0.36"),
    months=st.integers(1, 480),
)
def test_level_payment_is_build_schedules_installment(balance, rate, months):
    schedule = build_schedule(balance, rate, months, "monthly", START, "30/360")
    assert level_payment(balance, rate, months) == schedule.installments[0].payment


def test_unknown_preset_and_bad_target_are_input_errors():
    with pytest.raises(InputError, match="hamp") as err:
        resolve_preset("fha")
    assert err.value.field == "preset"
    with pytest.raises(InputError) as err:
        waterfall_terms(mortgage(), target_ratio=Decimal("1.5"))
    assert err.value.field == "target_ratio"
    assert resolve_preset("HAMP") is HAMP


# --- the contract ---------------------------------------------------------------------------


def test_contract_continues_the_regular_installment_with_arrears_due_first():
    case = mortgage(accrued_interest=12_000, arrears=273_000, penalty_fees=15_000)
    alt = contract_plan(case, Policy())
    rows = alt.schedule.installments
    reconciles(alt.schedule)
    assert alt.name == "contract" and alt.annual_rate == Decimal("0.0725")
    assert alt.term_periods == 360
    assert alt.schedule.principal == case.exposure
    assert rows[0].payment == 136_435 + 12_000 + 273_000 + 15_000
    assert rows[0].interest == 120_833  # 200,000.00 × 7.25 % / 12, half-even
    assert {r.payment for r in rows[1:-1]} == {136_435}
    assert "arrears 2,730.00" in alt.explanation and "penalty fees 150.00" in alt.explanation
    assert Decimal(alt.metrics["total_paid"]) * 100 == alt.schedule.total_paid
    assert alt.forborne_principal == 0 and alt.objective is None


def test_contract_uses_the_stored_regular_payment_and_settles_the_last():
    case = mortgage(outstanding_principal=1_000_000, remaining_term=12, regular_payment=80_000)
    alt = contract_plan(case)
    reconciles(alt.schedule)
    rows = alt.schedule.installments
    assert all(r.payment == 80_000 for r in rows[:-1])
    assert rows[-1].payment > 80_000  # the installment was too small: the last settles it


def test_contract_on_a_quarterly_loan_uses_quarterly_income():
    case = mortgage(frequency="quarterly", remaining_term=40)
    alt = contract_plan(case)
    reconciles(alt.schedule)
    assert alt.frequency == "quarterly" and alt.term_periods == 40
    largest = max(r.payment for r in alt.schedule.installments)
    assert alt.metrics["max_payment_to_income"] == pytest.approx(largest / (3 * 500_000))


# --- the waterfall, one step at a time ------------------------------------------------------


def test_rate_candidates_step_from_the_unrounded_rate_down_to_the_floor():
    from repayplan.plans.baselines import _rate_candidates

    rates = _rate_candidates(Decimal("0.073"), Decimal("0.00125"), Decimal("0.02"))
    assert rates[:3] == [Decimal("0.073"), Decimal("0.07175"), Decimal("0.0705")]
    assert rates[-2:] == [Decimal("0.0205"), Decimal("0.02")]
    assert _rate_candidates(Decimal("0.015"), Decimal("0.00125"), Decimal("0.02")) == [
        Decimal("0.015")
    ]


def test_target_met_by_the_rate_cut_alone():
    # 5,000.00 income: target P&I = 31 % × 5,000 − 400 = 1,150.00. At 5.625 % the payment is
    # 1,151.31 (ratio 31.03 %); one more step, 5.50 %, gives 1,135.58 (30.71 %): stop at 5.625.
    t = waterfall_terms(mortgage())
    assert t.steps == ("rate",)
    assert t.annual_rate == Decimal("0.05625")
    assert (t.term_months, t.forborne, t.payment) == (360, 0, 115_131)
    assert t.ratio == Fraction(115_131 + 40_000, 500_000)
    assert t.ratio_before == Fraction(136_435 + 40_000, 500_000)
    assert t.target_met


def test_target_needs_the_term_extension():
    # 3,500.00 income: target P&I 685.00; 2 % over 360 months is still 739.24. At 400 months
    # the payment is 685.45 (31.01 %), at 401 months 684.25 (30.98 %): stop at 400.
    t = waterfall_terms(mortgage(monthly_income=350_000))
    assert t.steps == ("rate", "term")
    assert (t.annual_rate, t.term_months, t.forborne, t.payment) == (
        Decimal("0.02"),
        400,
        0,
        68_545,
    )
    assert t.target_met


def test_target_needs_principal_forbearance():
    # 3,000.00 income: target P&I 530.00; 2 % over 480 months is 605.65. Forbearing 24,983.44
    # leaves 175,016.56 whose payment is exactly 530.00 (31.00 %); one cent more goes below.
    alt = waterfall_plan(mortgage(monthly_income=300_000))
    t = waterfall_terms(mortgage(monthly_income=300_000))
    assert t.steps == ("rate", "term", "forbear")
    assert (t.annual_rate, t.term_months, t.forborne, t.payment) == (
        Decimal("0.02"),
        480,
        2_498_344,
        53_000,
    )
    assert t.ratio == Fraction(31, 100) and t.target_met
    assert level_payment(20_000_000 - 2_498_345, Decimal("0.02"), 480) < 53_000

    rows = alt.schedule.installments
    reconciles(alt.schedule)
    assert alt.forborne_principal == 2_498_344
    assert alt.term_periods == 480 and alt.annual_rate == Decimal("0.02")
    # the forborne principal bears no interest and is the balloon of the last installment
    assert rows[0].interest == 29_169  # (200,000 − 24,983.44) × 2 % / 12 = 291.694
    assert all(r.balance >= 2_498_344 for r in rows[:-1])
    assert rows[-1].principal > 2_498_344
    assert "24,983.44 forborne" in alt.explanation
    assert "rate cut from 7.25 % to 2.00 %" in alt.explanation
    assert "term extended from 360 to 480 months" in alt.explanation


def test_target_out_of_reach_is_reported():
    # 2,000.00 income: target P&I 220.00; even 30 % forborne (60,000.00) leaves 423.96.
    alt = waterfall_plan(mortgage(monthly_income=200_000))
    wf = alt.metrics["waterfall"]
    assert wf["steps"] == ["rate", "term", "forbear"]
    assert wf["forborne"] == "60000.00" and alt.forborne_principal == 6_000_000
    assert wf["target_met"] is False
    assert wf["ratio_percent"] == "41.1980"  # (423.96 + 400) / 2,000
    assert "cannot be reached" in alt.explanation
    reconciles(alt.schedule)


def test_arrears_are_capitalised_and_late_fees_waived():
    case = mortgage(accrued_interest=50_000, arrears=450_000, penalty_fees=30_000)
    alt = waterfall_plan(case)
    t = waterfall_terms(case)
    assert t.capitalised == 20_500_000 and t.waived_fees == 30_000
    assert alt.schedule.principal == 20_500_000  # fees are not in the balance
    assert t.steps[0] == "capitalise"
    assert "capitalised 5,000.00 of arrears and accrued interest" in alt.explanation
    assert "waived 300.00 of late fees" in alt.explanation
    # the waived fees are part of the lender's concession
    without_fees = waterfall_plan(mortgage(accrued_interest=50_000, arrears=450_000))
    assert without_fees.schedule == alt.schedule
    gap = Decimal(alt.metrics["concession_amount"]) - Decimal(
        without_fees.metrics["concession_amount"]
    )
    assert gap == Decimal("300.00")


def test_already_below_target_changes_nothing_but_capitalisation():
    t = waterfall_terms(mortgage(monthly_income=900_000, arrears=100_000))
    assert t.steps == ("capitalise",)
    assert (t.annual_rate, t.term_months, t.forborne) == (Decimal("0.0725"), 360, 0)
    assert t.ratio < Fraction(31, 100) and t.target_met


def test_hardship_income_and_custom_target():
    case = mortgage(hardship="job_loss", hardship_income_factor=0.7, recovery_months=6)
    t = waterfall_terms(case)
    assert t.income == 350_000  # the ratio uses today's (hardship) gross income
    looser = waterfall_terms(case, target_ratio=Decimal("0.38"))
    assert looser.annual_rate > t.annual_rate or looser.term_months < t.term_months
    preset = WaterfallPreset(
        "strict", Decimal("0.31"), Decimal("0.0025"), Decimal("0.03"), 360, Decimal("0")
    )
    strict = waterfall_terms(case, preset=preset)
    assert strict.annual_rate == Decimal("0.03") and strict.term_months == 360
    assert not strict.target_met


# --- properties over random borrowers -------------------------------------------------------


def _linear_scan(case: LoanCase) -> tuple[Decimal, int, int]:
    """The waterfall stepped one increment at a time, as the directive words it."""
    income = round(case.monthly_income * case.hardship_income_factor)
    target = Fraction(31, 100)
    balance = case.outstanding_principal + case.accrued_interest + case.arrears

    def above(payment: int) -> bool:
        return Fraction(payment + case.fixed_costs, income) >= target

    rate, term = case.annual_rate, case.remaining_term
    if not above(level_payment(balance, rate, term)):
        return rate, term, 0
    while rate > Decimal("0.02"):
        nxt = max(rate - Decimal("0.00125"), Decimal("0.02"))
        if not above(level_payment(balance, nxt, term)):
            return rate, term, 0
        rate = nxt
    if not Fraction(level_payment(balance, rate, term) + case.fixed_costs, income) > target:
        return rate, term, 0
    while term < 480:
        if not above(level_payment(balance, rate, term + 1)):
            return rate, term, 0
        term += 1
    if not Fraction(level_payment(balance, rate, term) + case.fixed_costs, income) > target:
        return rate, term, 0
    cap = balance * 3 // 10
    lo, hi = 0, cap  # the forborne cents: bisection is fine here, checked by hand above
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if above(level_payment(balance - mid, rate, term)):
            lo = mid
        else:
            hi = mid - 1
    return rate, term, lo


borrowers = st.builds(
    mortgage,
    outstanding_principal=st.integers(500_000, 60_000_000),
    annual_rate=rates("0.18"),
    remaining_term=st.integers(12, 480),
    monthly_income=st.integers(100_000, 2_000_000),
    fixed_costs=st.integers(0, 100_000),
    arrears=st.integers(0, 1_000_000),
    penalty_fees=st.integers(0, 50_000),
)


@settings(max_examples=30, deadline=None)
@given(case=borrowers)
def test_waterfall_matches_stepping_one_increment_at_a_time(case):
    t = waterfall_terms(case)
    assert (t.annual_rate, t.term_months, t.forborne) == _linear_scan(case)


@settings(max_examples=25, deadline=None)
@given(case=borrowers)
def test_waterfall_plans_reconcile_and_respect_the_limits(case):
    alt = waterfall_plan(case)
    t = waterfall_terms(case)
    reconciles(alt.schedule)
    rows = alt.schedule.installments
    assert alt.schedule.principal == case.outstanding_principal + case.arrears
    assert Decimal("0.02") <= alt.annual_rate <= case.annual_rate or (
        alt.annual_rate == case.annual_rate
    )
    assert case.remaining_term <= alt.term_periods <= max(480, case.remaining_term)
    assert 0 <= alt.forborne_principal <= alt.schedule.principal * 3 // 10
    assert all(r.payment == t.payment for r in rows[:-1])
    # never below the target unless it was already below before any cut
    if set(t.steps) - {"capitalise"}:
        assert t.ratio >= Fraction(31, 100)
    assert alt.metrics["waterfall"]["target_met"] == t.target_met
    assert 0.0 <= alt.metrics["pd"] <= 1.0


@settings(max_examples=25, deadline=None)
@given(
    case=borrowers,
    frequency=st.sampled_from(["monthly", "quarterly", "yearly"]),
    accrued=st.integers(0, 100_000),
)
def test_contract_plans_reconcile_to_the_exposure(case, frequency, accrued):
    from dataclasses import replace

    case = replace(case, frequency=frequency, remaining_term=min(case.remaining_term, 60))
    case = replace(case, accrued_interest=accrued)
    alt = contract_plan(case)
    reconciles(alt.schedule)
    assert alt.schedule.principal == case.exposure
    assert alt.term_periods == case.remaining_term
    first = alt.schedule.installments[0]
    assert first.payment >= case.accrued_interest + case.arrears + case.penalty_fees
    assert alt.metrics["max_payment_to_income"] > 0
