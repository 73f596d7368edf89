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
from repayplan.plans.horizon import default_term, monthly_incomes
from repayplan.plans.model import build_program
from repayplan.plans.strategies.registry import get_strategy, strategies_for
from repayplan.plans.templates import TEMPLATES, get_template, templates_for

from .support import EXAMPLE_IN_ARREARS, LP_TEMPLATES, cases_and_templates, loan_cases

CASE = EXAMPLE_IN_ARREARS
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
    drawn=cases_and_templates(
        principal=st.integers(100_000, 5_000_000),
        income=st.integers(150_000, 1_500_000),
        term=st.integers(6, 72),
    )
)
def test_random_borrowers_agree_across_lp_strategies(drawn):
    case, template = drawn
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
    from repayplan.plans.horizon import plan_calendar

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
    drawn=cases_and_templates(
        ["balanced", "lowest_cost", "reamortise", "holiday", "graduated"],
        principal=st.integers(100_000, 8_000_000),
        income=st.integers(100_000, 1_000_000),
        expense_share=st.floats(0.1, 0.7),
        term=st.integers(3, 72),
        hardship=st.just("job_loss"),
        penalty_fees=st.just(5_000),
    )
)
def test_refutation_never_contradicts_the_solver(drawn):
    """The bounds that answer "infeasible" without a solve are necessary conditions."""
    from dataclasses import replace

    from repayplan.plans.relax import refuted

    case, template = drawn
    case = replace(case, arrears=case.outstanding_principal // 20)
    prog = build_program(case, Policy(), template)
    if refuted(prog) is not None:
        assert get_strategy("pulp-highs").solve(prog.lp).status == "infeasible"


# --- refutation without a solve, and the program builder's pieces ------------------------

ALL_TEMPLATES = list(TEMPLATES)
LIFTED = ("affordability", "no negative amortisation", "yield floor", "minimum payment", None)


plan_args = st.fixed_dictionaries(
    {},
    optional={
        "term": st.sampled_from([2, 12, 36, 120]),
        "annual_rate": st.just(Decimal("0.02")),
        "concession_limit": st.just(Decimal("0.1")),
    },
)
random_borrowers = loan_cases(
    principal=st.integers(100_000, 6_000_000),
    income=st.integers(80_000, 900_000),
    expense_share=st.floats(0.1, 0.7),
    term=st.integers(0, 72),
    hardship=st.sampled_from([None, "job_loss"]),
    arrears=st.sampled_from([0, 150_000, 600_000]),
    penalty_fees=st.sampled_from([0, 20_000]),
    income_seasonality=st.just((0.6, 0.7, 1, 1, 1.3, 1.4, 1.4, 1, 1, 1, 0.8, 0.8)),
)


@settings(max_examples=20, deadline=None)
@given(
    case=random_borrowers,
    template=st.sampled_from(ALL_TEMPLATES),
    args=plan_args,
    hurdle=st.sampled_from(["0.05", "0.12"]),
    lifted=st.sampled_from(LIFTED),
)
def test_refutation_is_sound_on_every_template_relaxation_and_lifted_family(
    case, template, args, hurdle, lifted
):
    """A necessary condition on the program as it stands: also where :func:`diagnose` has
    lifted a family (its rows are then not assumed), on graduated and seasonal shapes, on
    chosen holidays, and at the relaxations' terms and rates."""
    from repayplan.plans.relax import FAMILIES, _without, refuted

    if TEMPLATES[template].is_mip and "term" not in args:
        args = {**args, "term": 12}
    prog = build_program(case, Policy(hurdle_rate=Decimal(hurdle)), template, **args)
    if lifted is not None:
        prog = _without(prog, lifted, dict(FAMILIES)[lifted])
    if refuted(prog) is not None:
        status = get_strategy("highs-direct").solve(prog.lp).status
        if status == "error":
            status = get_strategy("pulp-cbc").solve(prog.lp).status
        assert status == "infeasible", (template, args, lifted, refuted(prog))


@settings(max_examples=40, deadline=None)
@given(
    case=random_borrowers,
    template=st.sampled_from(ALL_TEMPLATES),
    args=plan_args,
    ceiling=st.none() | st.floats(0.05, 0.5),
    soft=st.booleans(),
)
def test_the_outline_is_refuted_exactly_when_its_program_is(case, template, args, ceiling, soft):
    from repayplan.plans.model import plan_outline
    from repayplan.plans.relax import refuted, refuted_outline

    policy = Policy(affordability_penalty=Decimal("3") if soft else None)
    if ceiling is not None and TEMPLATES[template].objective == "min_max_pti":
        args = {**args, "pti_ceiling": ceiling}
    outline = plan_outline(case, policy, template, **args)
    assert refuted_outline(outline) == refuted(build_program(case, policy, template, **args))


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    h=st.integers(2, 40),
    rate=st.floats(0.0, 0.03),
    hurdle=st.floats(0.0, 0.03),
    share=st.floats(0.05, 1.0),
)
def test_best_graduated_npv_is_the_lp_maximum(seed, h, rate, hurdle, share):
    """max Σ disc·p over non-decreasing 0 ≤ p ≤ room with Σ p / G = owed, against HiGHS."""
    import scipy.sparse as sp

    from repayplan.plans.lp import LinearProgram
    from repayplan.plans.relax import _best_graduated_npv

    rng = np.random.default_rng(seed)
    growth = (1 + rate) ** np.arange(1, h + 1)
    disc = (1 + hurdle) ** -np.arange(1, h + 1.0)
    room = np.minimum.accumulate(rng.uniform(0, 1000, h)[::-1])[::-1]
    owed = share * float(room @ (1 / growth))
    rows = [t for t in range(h - 1) for _ in (0, 1)] + [h - 1] * h
    cols = [c for t in range(1, h) for c in (t, t - 1)] + list(range(h))
    vals = [v for _ in range(1, h) for v in (1.0, -1.0)] + list(1 / growth)
    lp = LinearProgram(
        c=-disc,
        A=sp.csr_matrix((vals, (rows, cols)), shape=(h, h)),
        row_lower=np.r_[np.zeros(h - 1), owed],
        row_upper=np.r_[np.full(h - 1, np.inf), owed],
        lower=np.zeros(h),
        upper=room,
    )
    sol = get_strategy("highs-direct").solve(lp)
    assert sol.ok
    best = _best_graduated_npv(room, growth, disc, owed)
    assert best == pytest.approx(-sol.objective, rel=1e-7, abs=1e-6)  # HiGHS's tolerances


@settings(max_examples=30, deadline=None)
@given(
    m=st.integers(1, 8),
    n=st.integers(1, 8),
    entries=st.lists(
        st.tuples(st.integers(0, 7), st.integers(0, 7), st.floats(-5, 5, allow_nan=False)),
        max_size=60,
    ),
    seed=st.integers(0, 1000),
)
def test_csr_assembly_is_scipys_canonical_form(m, n, entries, seed):
    """Bit for bit: rows given out of column order (distinct entries, as the plan model's
    are), and duplicates given in column order (the level plan's yield row), summed left to
    right as scipy sums them."""
    import scipy.sparse as sp

    from repayplan.plans.lp_builder import _csr

    kept = [(r, c, v) for r, c, v in entries if r < m and c < n]
    distinct = list({(r, c): v for r, c, v in kept}.items())
    np.random.default_rng(seed).shuffle(distinct)
    shuffled = [(r, c, v) for (r, c), v in distinct]
    for case in (shuffled, sorted(kept, key=lambda e: (e[0], e[1]))):
        r = np.array([e[0] for e in case], dtype=np.int64)
        c = np.array([e[1] for e in case], dtype=np.int64)
        v = np.array([e[2] for e in case], dtype=float)
        got, want = _csr(r, c, v, m, n), sp.csr_matrix((v, (r, c)), shape=(m, n))
        assert np.array_equal(got.indptr, want.indptr)
        assert np.array_equal(got.indices, want.indices)
        assert np.array_equal(got.data, want.data)


def test_numbered_labels_grow_and_slice():
    from repayplan.plans.lp_builder import _numbered

    assert _numbered("zz_test", 3) == ("zz_test[1]", "zz_test[2]", "zz_test[3]")
    long = _numbered("zz_test", 700)
    assert len(long) == 700 and long[-1] == "zz_test[700]"
    assert _numbered("zz_test", 2) == ("zz_test[1]", "zz_test[2]")
