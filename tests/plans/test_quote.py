"""quote(): cent-exact, affordable, lawful alternatives for random borrowers; reasons when none."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repayplan.errors import InputError
from repayplan.finance import Frequency, npv
from repayplan.plans.case import LoanCase, Policy
from repayplan.plans.quote import case_from_record, plan, quote, quote_many
from repayplan.risk.metrics import periodic_hurdle

from .support import EXAMPLE, loan_cases, rates

POLICY = Policy()


def incomes(case: LoanCase, alt) -> np.ndarray:
    """The borrower's income in each installment's period, computed independently."""
    months = Frequency(alt.frequency).months
    out = []
    for inst in alt.schedule.installments:
        total = 0.0
        for back in range(months):
            m = inst.number * months - back  # month index after start, 1-based
            cal = (case.start.month - 1 + m) % 12
            shock = (
                case.hardship_income_factor
                if (case.recovery_months is None or m <= case.recovery_months)
                else 1.0
            )
            total += case.monthly_income * case.income_seasonality[cal] * shock
        out.append(total)
    return np.array(out)


def check_alternative(case: LoanCase, policy: Policy, alt) -> None:
    inst = alt.schedule.installments
    # Reconciles to the cent: principal parts sum to the amount financed, balance ends at 0.
    assert sum(i.principal for i in inst) == alt.schedule.principal
    assert inst[-1].balance == 0
    assert all(i.payment == i.principal + i.interest for i in inst)
    assert all(i.payment >= 0 and i.interest >= 0 for i in inst)
    waived = int(Decimal(alt.metrics["penalty_waived"]) * 100)
    forgiven = int(Decimal(alt.metrics.get("principal_forgiven", "0")) * 100)
    assert alt.schedule.principal == case.exposure - waived - forgiven
    assert 0 <= waived <= case.penalty_fees * policy.max_penalty_waiver
    # Only a settlement forgives principal, and gives up at most its discount.
    settlement = alt.name == "settlement"
    kappa = max(policy.settlement_discount, policy.max_concession) if settlement else None
    kappa = policy.max_concession if kappa is None else kappa
    assert forgiven == 0 or settlement
    assert waived + forgiven <= max(
        case.penalty_fees * policy.max_penalty_waiver, case.exposure * kappa
    )
    # Affordable in every period.
    months = Frequency(alt.frequency).months
    y = incomes(case, alt)
    cap = np.minimum(
        float(policy.pti_cap) * y, y - (case.essential_expenses + case.other_debt) * months
    )
    pay = np.array([i.payment for i in inst])
    assert np.all(pay <= np.floor(np.maximum(cap, 0) + 1e-6)), (alt.name, pay - cap)
    # Yield floor and rate cap on the exact schedule.
    h = periodic_hurdle(policy.hurdle_rate, Frequency(alt.frequency).periods_per_year)
    assert npv(h, pay.tolist()) >= float(1 - kappa) * case.exposure - 1e-6
    assert alt.metrics["concession"] <= float(kappa) + 1e-12
    irr = Decimal(alt.metrics["irr_nominal_annual_percent"])
    assert irr <= policy.rate_cap * 100 + Decimal("0.005")
    assert policy.rate_floor <= alt.annual_rate or alt.annual_rate == case.annual_rate
    assert len(inst) <= policy.max_term_months // months
    assert alt.explanation
    # A plan ends when it is repaid: at most one minimum payment right before the last.
    assert minimum_run_before_last(alt, policy) <= 1, (alt.name, pay.tolist())


def minimum_run_before_last(alt, policy: Policy) -> int:
    """How many installments at (or a cent above) the minimum come right before the last,
    after higher ones (a plan whose regular level *is* the minimum has no such run)."""
    for run, i in enumerate(reversed(alt.schedule.installments[:-1])):
        if i.payment > policy.min_payment + 1 or i.payment == 0:
            return run
    return 0


borrowers = loan_cases(
    principal=st.integers(50_000, 4_000_000),
    rate=rates("0.35"),
    income=st.integers(200_000, 1_200_000),
    expense_share=st.floats(0.1, 0.5),
    term=st.integers(3, 84),
    hardship=st.sampled_from([None, "job_loss", "illness", "business_downturn", "seasonal"]),
    recovery_months=st.integers(1, 6),
    start=date(2025, 1, 31),
    other_debt=st.integers(0, 30_000),
    income_seasonality=st.lists(st.floats(0.6, 1.4), min_size=12, max_size=12),
    arrears=st.integers(0, 80_000),
    penalty_fees=st.integers(0, 10_000),
).map(lambda c: replace(c, product="agri" if c.hardship == "seasonal" else "consumer_instalment"))


@settings(max_examples=15, deadline=None)
@given(case=borrowers)
def test_every_alternative_is_exact_affordable_and_lawful(case):
    result = quote(case, POLICY)
    assert result.status in ("ok", "relaxed", "manual_review")
    if result.status != "ok":
        assert result.reasons
    if result.status == "manual_review":
        assert not result.alternatives
    for alt in result.alternatives:
        check_alternative(case, POLICY, alt)


@settings(max_examples=6, deadline=None)
@given(case=borrowers)
def test_soft_affordability_reports_the_priced_shortfall(case):
    policy = Policy(affordability_penalty=Decimal("5"))
    for alt in quote(case, policy, templates=("balanced",)).alternatives:
        y = incomes(case, alt)
        cap = np.floor(
            np.maximum(0, np.minimum(0.4 * y, y - case.essential_expenses - case.other_debt)) + 1e-6
        )
        pay = np.array([i.payment for i in alt.schedule.installments])
        shortfall = int(np.maximum(pay - cap, 0).sum())
        assert int(Decimal(alt.metrics["affordability_shortfall"]) * 100) == shortfall
        if shortfall:
            assert "priced shortfall" in alt.explanation


CASE = EXAMPLE


def test_default_offer_and_json_shape():
    result = quote(CASE)
    assert result.status == "ok" and result.solver == "fast"
    assert [a.name for a in result.alternatives] == [
        "lowest_installment",
        "balanced",
        "lowest_cost",
    ]
    data = result.to_dict()
    alt = data["alternatives"][0]
    assert set(alt) >= {
        "name",
        "installments",
        "metrics",
        "objective",
        "explanation",
        "annual_rate_percent",
        "term_periods",
        "forborne_principal",
    }
    assert set(alt["installments"][0]) == {
        "number",
        "due_date",
        "payment",
        "principal",
        "interest",
        "balance",
    }
    for a in result.alternatives:
        check_alternative(CASE, POLICY, a)


def test_lowest_installment_has_the_smallest_largest_ratio():
    alts = {a.name: a for a in quote(CASE).alternatives}
    ratios = {n: a.metrics["max_payment_to_income"] for n, a in alts.items()}
    assert ratios["lowest_installment"] <= min(ratios.values()) + 1e-4
    total = {n: Decimal(a.metrics["total_paid"]) for n, a in alts.items()}
    assert total["lowest_cost"] <= min(total.values())


def test_same_plans_on_every_lp_solver():
    ref = quote(CASE, solver="pulp-cbc")
    for solver in ("ortools-glop", "pulp-highs", "fast"):
        got = quote(CASE, solver=solver)
        for a, b in zip(ref.alternatives, got.alternatives, strict=True):
            assert abs(a.objective - b.objective) <= 1e-6 * max(1.0, abs(a.objective))


def test_infeasible_borrower_gets_reasons_not_a_crash():
    poor = LoanCase(
        outstanding_principal=5_000_000,
        annual_rate=Decimal("0.2"),
        remaining_term=12,
        monthly_income=100_000,
        essential_expenses=95_000,
        start=date(2025, 1, 31),
    )
    result = quote(poor, Policy(max_term_months=24))
    assert result.status == "manual_review"
    assert not result.alternatives
    assert any("affordability" in r for r in result.reasons)


def test_relaxation_extends_the_term_and_says_so():
    tight = LoanCase(**{**CASE.__dict__, "remaining_term": 6})
    result = quote(tight, templates=("balanced",))
    assert result.status == "relaxed"
    assert "longer term" in result.reasons[0] and "affordability" in result.reasons[0]
    assert result.alternatives[0].term_periods > 6


def test_rate_above_cap_is_cut_to_the_cap():
    usury = LoanCase(**{**CASE.__dict__, "annual_rate": Decimal("0.45")})
    result = quote(usury, templates=("balanced",))
    assert result.alternatives[0].annual_rate == POLICY.rate_cap
    assert any("cap" in r for r in result.reasons)


def test_milp_template_falls_back_to_a_milp_solver():
    short = LoanCase(**{**CASE.__dict__, "remaining_term": 12})
    alt = quote(short, templates=("stepped",)).alternatives[0]
    assert alt.metrics["solver"] != "fast"
    assert len({i.payment for i in alt.schedule.installments[:-1]}) <= 3
    check_alternative(short, POLICY, alt)


def test_unknown_strategy_and_solver_are_input_errors():
    with pytest.raises(InputError, match="strategy"):
        quote(CASE, strategy="magic")
    with pytest.raises(InputError, match="pulp-cbc"):
        quote(CASE, solver="magic")


def test_baseline_strategies():
    assert quote(CASE, strategy="contract").alternatives[0].name == "contract"
    assert quote(CASE, strategy="waterfall", preset="hamp").alternatives[0].name == "waterfall"


def test_case_from_record_and_plan():
    record = {
        "outstanding_principal": 1_200_000,
        "accrued_interest": 4_000,
        "arrears_amount": 30_000,
        "penalty_fees": 2_500,
        "annual_rate": Decimal("0.11"),
        "remaining_term": 30,
        "frequency": "monthly",
        "product": "consumer_instalment",
        "segment": "prime",
        "monthly_income": 450_000,
        "essential_expenses": 180_000,
        "other_debt_payments": 10_000,
        "income_seasonality": [1.0] * 12,
        "hardship": "illness",
        "expected_recovery_date": date(2025, 5, 31),
        "days_past_due": 45,
        "next_due_date": date(2025, 2, 28),
        "base_monthly_hazard": 0.006,
        "regular_payment": 45_000,
    }
    case = case_from_record(record, loan_id="L1")
    assert case.start == date(2025, 1, 28) and case.recovery_months == 4
    assert case.arrears == 30_000 and case.other_debt == 10_000 and case.hardship == "illness"
    result = plan(record, loan_id="L1")
    assert result.alternatives and result.alternatives[0].name == "holiday"
    assert result.alternatives[0].schedule.installments[0].due_date == date(2025, 2, 28)
    with pytest.raises(InputError, match="monthly_income"):
        case_from_record({**record, "monthly_income": None}, loan_id="L2")


README_CASE = replace(
    EXAMPLE,
    arrears=60_000,
    penalty_fees=5_000,
    hardship="job_loss",
    recovery_months=3,
    hardship_income_factor=0.6,
)


def test_no_plan_keeps_a_balance_to_collect_minimum_payments():
    """The README's worked example: balanced and holiday used to run 19–29 months at the
    minimum after paying off in substance; now the term ends where the loan is repaid."""
    alts = {a.name: a for a in quote(README_CASE).alternatives}
    for name in ("balanced", "holiday"):
        alt = alts[name]
        pays = [i.payment for i in alt.schedule.installments]
        assert minimum_run_before_last(alt, POLICY) == 0, pays
        regular = float(np.median(pays))
        assert sum(p < 0.5 * regular for p in pays[-3:]) <= 2, pays
        assert alt.term_periods < 24
        check_alternative(README_CASE, POLICY, alt)


def test_quote_many_keeps_order_and_isolates_bad_loans():
    record = {
        "outstanding_principal": 900_000,
        "annual_rate": Decimal("0.1"),
        "remaining_term": 24,
        "monthly_income": 400_000,
        "essential_expenses": 150_000,
        "loan_id": "R1",
    }
    bad = {**record, "loan_id": "R2", "monthly_income": None}
    broken = {**record, "loan_id": "R3", "income_seasonality": [1.0] * 5}
    results = quote_many([CASE, record, bad, broken], templates=("balanced",))
    assert [q.status for q in results[:2]] == ["ok", "ok"]
    assert results[2].status == "manual_review" and "loan R2" in results[2].reasons[0]
    assert "monthly_income" in results[2].reasons[0]
    assert results[3].status == "manual_review" and "loan R3" in results[3].reasons[0]
    for q in results[2:]:
        assert not q.alternatives and q.solver == "fast"
    single = quote(CASE, templates=("balanced",)).alternatives[0]
    assert results[0].alternatives[0].objective == pytest.approx(single.objective)
    with pytest.raises(InputError, match="solver"):
        quote_many([CASE], solver="nope")


def test_a_relaxed_plan_ends_when_repaid_even_past_refuted_shorter_terms():
    """Found by the property test: relaxed to 480 months, lowest cost paid the cap for 31
    months, then 447 minimum payments. Cutting the term to where that run starts (32, 33
    months) is refuted by the bounds — those used to count as the two tries — so the plan
    kept its run; now the refuted terms are passed over and the plan ends at 34 months."""
    case = LoanCase(
        outstanding_principal=2_161_751,
        annual_rate=Decimal("0.0755"),
        remaining_term=3,
        monthly_income=205_381,
        essential_expenses=102_690,
        other_debt=29_981,
        start=date(2025, 1, 31),
    )
    result = quote(case, POLICY, templates=("lowest_cost",))
    assert result.status == "relaxed"
    alt = result.alternatives[0]
    assert alt.term_periods == 34
    check_alternative(case, POLICY, alt)
