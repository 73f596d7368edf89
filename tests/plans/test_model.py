"""The per-loan model: structure, rows, and the same optimum on every exact LP strategy."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repayplan.errors import InputError
from repayplan.plans.case import LoanCase, Policy
from repayplan.plans.model import build_program, default_term, monthly_incomes
from repayplan.plans.strategies.registry import get_strategy, strategies_for
from repayplan.plans.templates import TEMPLATES, get_template, templates_for

CASE = LoanCase(
    outstanding_principal=1_500_000,
    annual_rate=Decimal("0.12"),
    remaining_term=36,
    monthly_income=500_000,
    essential_expenses=200_000,
    other_debt=20_000,
    arrears=60_000,
    penalty_fees=5_000,
    accrued_interest=3_000,
    start=date(2025, 1, 31),
    income_seasonality=(0.8, 0.8, 1, 1, 1.2, 1.2, 1.2, 1, 1, 1, 0.9, 0.9),
)
LP_TEMPLATES = [n for n, t in TEMPLATES.items() if not t.is_mip]
EXACT_LP = ["ortools-glop", "pulp-highs", "pulp-cbc", "fast"]


def test_balance_recursion_and_terminal_balance():
    prog = build_program(CASE, Policy(), "balanced")
    sol = get_strategy("ortools-glop").solve(prog.lp)
    assert sol.ok
    p, b = prog.interest_bearing(sol.x), prog.value(sol.x, "b")
    r = np.array([float(f) for f in prog.rate_factors])
    prev = np.concatenate(([CASE.exposure - prog.waiver(sol.x)], b[:-1]))
    np.testing.assert_allclose(b, (1 + r) * prev - p, atol=1e-5)
    assert abs(b[-1]) < 1e-6
    assert np.all(prog.payments(sol.x) <= prog.cap + 1e-6)


def test_rows_are_named_for_explanations():
    prog = build_program(CASE, Policy(), "graduated")
    names = set(n.split("[")[0] for n in prog.lp.row_names)
    assert {"balance", "afford", "negam", "yield_floor", "hazard", "graduated"} <= names
    assert prog.lp.num_rows == len(prog.lp.row_names)


def test_income_forecast_has_seasonality_and_hardship():
    case = LoanCase(
        outstanding_principal=100_000,
        annual_rate=Decimal("0.1"),
        remaining_term=12,
        monthly_income=100_000,
        essential_expenses=0,
        start=date(2025, 1, 15),
        income_seasonality=(2.0,) + (1.0,) * 11,
        hardship="job_loss",
        recovery_months=2,
        hardship_income_factor=0.5,
    )
    y = monthly_incomes(case, 13)
    # Month 1 is February (hardship), month 2 March (hardship), month 12 January (season 2).
    assert y[0] == 50_000 and y[1] == 50_000 and y[2] == 100_000 and y[11] == 200_000


def test_quarterly_template_sums_months_and_shortens_term():
    prog = build_program(CASE, Policy(), "quarterly")
    assert prog.frequency.periods_per_year == 4
    assert prog.periods == default_term(CASE, Policy(), get_template("quarterly")) == 12
    assert prog.incomes[0] == pytest.approx(500_000 * (0.8 + 1 + 1))


def test_spread_arrears_are_not_interest_bearing():
    prog = build_program(CASE, Policy(), "spread_arrears")
    assert prog.extra.sum() == CASE.arrears + CASE.accrued_interest
    assert prog.opening_balance == CASE.exposure - prog.extra.sum()


def test_holiday_periods_pay_nothing():
    case = LoanCase(**{**CASE.__dict__, "hardship": "job_loss", "recovery_months": 2})
    prog = build_program(case, Policy(), "holiday")
    assert prog.holiday[:2].all() and not prog.holiday[2:].any()
    assert np.all(prog.lp.upper[prog.cols["p"]][:2] == 0)


def test_unknown_template_names_the_choices():
    with pytest.raises(InputError, match="balanced"):
        build_program(CASE, Policy(), "nope")


def test_hardship_steers_templates():
    assert templates_for("job_loss", "consumer", False)[:2] == ("holiday", "graduated")
    assert templates_for("seasonal", "consumer", False)[0] == "seasonal"
    assert "quarterly" in templates_for(None, "agri_loan", False)
    assert "spread_arrears" in templates_for(None, "consumer", True)


@pytest.mark.parametrize("template", LP_TEMPLATES)
def test_same_optimum_on_every_exact_lp_strategy(template):
    prog = build_program(CASE, Policy(), template)
    objs = {}
    for name in EXACT_LP:
        sol = get_strategy(name).solve(prog.lp)
        assert sol.ok, (name, sol.status, sol.message)
        objs[name] = sol.objective
    ref = objs["pulp-cbc"]
    for name, obj in objs.items():
        assert abs(obj - ref) <= 1e-6 * max(1.0, abs(ref)), (name, obj, ref)


@pytest.mark.parametrize("template", ["stepped", "chosen_holiday"])
def test_milp_templates_agree_across_milp_solvers(template):
    case = LoanCase(**{**CASE.__dict__, "remaining_term": 12})
    prog = build_program(case, Policy(), template)
    assert prog.lp.is_mip
    objs = [s.solve(prog.lp).objective for s in strategies_for(prog.lp, exact=True)]
    assert len(objs) >= 2
    assert max(objs) - min(objs) <= 1e-5 * max(1.0, abs(min(objs)))


@settings(max_examples=12, deadline=None)
@given(
    principal=st.integers(100_000, 5_000_000),
    rate=st.decimals("0.0", "0.3", places=4),
    income=st.integers(150_000, 1_500_000),
    expense_share=st.floats(0.1, 0.6),
    term=st.integers(6, 72),
    template=st.sampled_from(LP_TEMPLATES),
)
def test_random_borrowers_agree_across_lp_strategies(
    principal, rate, income, expense_share, term, template
):
    case = LoanCase(
        outstanding_principal=principal,
        annual_rate=rate,
        remaining_term=term,
        monthly_income=income,
        essential_expenses=int(income * expense_share),
        start=date(2025, 3, 31),
    )
    prog = build_program(case, Policy(), template)
    sols = [get_strategy(n).solve(prog.lp) for n in ("ortools-glop", "pulp-highs", "fast")]
    statuses = {s.status for s in sols}
    assert len(statuses) == 1, statuses
    if sols[0].ok:
        ref = sols[1].objective
        for s in sols:
            assert abs(s.objective - ref) <= 1e-6 * max(1.0, abs(ref))


@pytest.mark.parametrize("start", [date(2025, 1, 31), date(2024, 2, 29), date(2025, 3, 15)])
@pytest.mark.parametrize("frequency", ["monthly", "quarterly", "yearly"])
def test_cached_calendar_matches_the_finance_rules(start, frequency):
    from repayplan.finance import Frequency, due_dates, period_rate_factors
    from repayplan.plans.model import plan_calendar

    freq = Frequency.parse(frequency)
    dates, factors, r = plan_calendar(start, 130, freq, Decimal("0.0725"))
    expected = due_dates(start, 130, freq)
    assert list(dates) == expected
    exact = period_rate_factors(Decimal("0.0725"), start, expected, "30/360", freq)
    assert [f.exact for f in factors] == [f.exact for f in exact]
    np.testing.assert_allclose(r, [float(f) for f in exact])


def test_burden_cost_is_the_curve_exactly():
    """The increments formulation prices each period's hazard at g(payment / income)."""
    from repayplan.risk.burden import DEFAULT_BURDEN_CURVE

    prog = build_program(CASE, Policy(), "balanced")
    sol = get_strategy("fast").solve(prog.lp)
    y = np.maximum(prog.incomes, 1.0)
    d = prog.value(sol.x, "d").reshape(prog.periods, -1)
    ratio = prog.payments(sol.x) / y
    np.testing.assert_allclose(d.sum(axis=1), ratio, atol=1e-9)
    g = DEFAULT_BURDEN_CURVE(ratio)
    paid = prog.payments(sol.x).sum() * float(Policy().cost_weight)
    hazard = sol.objective - paid
    weights = (
        prog.lp.c[prog.cols["d"]].reshape(prog.periods, -1)[:, 0]
        / (DEFAULT_BURDEN_CURVE.pieces()[0][0])
    )
    assert hazard == pytest.approx(float(weights @ g), rel=1e-7)


@pytest.mark.parametrize("template", ["reamortise", "spread_arrears", "lowest_installment"])
def test_level_shape_has_one_payment_and_implied_balances(template):
    prog = build_program(CASE, Policy(), template)
    assert "b" not in prog.cols and prog.cols["p"].stop - prog.cols["p"].start == 1
    sol = get_strategy("ortools-glop").solve(prog.lp)
    assert sol.ok
    pay, b = prog.interest_bearing(sol.x), prog.balances(sol.x)
    assert np.ptp(pay) == 0
    prev = np.concatenate(([prog.opening_balance - prog.waiver(sol.x)], b[:-1]))
    np.testing.assert_allclose(b, (1 + prog.period_rates) * prev - pay, atol=1e-5)
    assert abs(b[-1]) < 1e-4 and b.min() > -1e-4


@settings(max_examples=25, deadline=None)
@given(
    principal=st.integers(100_000, 8_000_000),
    rate=st.decimals("0.0", "0.3", places=4),
    income=st.integers(100_000, 1_000_000),
    expense_share=st.floats(0.1, 0.7),
    term=st.integers(3, 72),
    template=st.sampled_from(["balanced", "lowest_cost", "reamortise", "holiday", "graduated"]),
)
def test_refutation_never_contradicts_the_solver(
    principal, rate, income, expense_share, term, template
):
    """The bounds that answer "infeasible" without a solve are necessary conditions."""
    from repayplan.plans.relax import refuted

    case = LoanCase(
        outstanding_principal=principal,
        annual_rate=rate,
        remaining_term=term,
        monthly_income=income,
        essential_expenses=int(income * expense_share),
        arrears=principal // 20,
        penalty_fees=5_000,
        hardship="job_loss",
        recovery_months=3,
        hardship_income_factor=0.7,
        start=date(2025, 3, 31),
    )
    prog = build_program(case, Policy(), template)
    if refuted(prog) is not None:
        assert get_strategy("pulp-highs").solve(prog.lp).status == "infeasible"
