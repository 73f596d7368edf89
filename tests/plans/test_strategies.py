"""Solver strategies: same optimum on every exact LP strategy, MILPs, statuses, duals."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repayplan.errors import InputError
from repayplan.plans.lp import LinearProgram
from repayplan.plans.strategies import get_strategy, strategies_for, strategy_names

from .support import (
    REL_TOL,
    amortisation_lp,
    assert_kkt,
    infeasible_lp,
    late_payer_lp,
    plan_case,
    random_lp,
    rel_diff,
    unbounded_lp,
)

EXACT_LP = [n for n in strategy_names() if get_strategy(n).capabilities.exact]
MILP = [n for n in strategy_names() if get_strategy(n).capabilities.milp]
WITH_DUALS = [
    n for n in EXACT_LP if get_strategy(n).capabilities.duals and get_strategy(n).capabilities.lp
]


def test_registry_names_and_unknown_name():
    names = strategy_names()
    for required in (
        "pulp-cbc",
        "pulp-highs",
        "ortools-glop",
        "ortools-pdlp",
        "ortools-cpsat",
        "ortools-scip",
        "fast",
    ):
        assert required in names
    with pytest.raises(InputError) as err:
        get_strategy("gurobi")
    assert err.value.field == "solver"
    assert "pulp-cbc" in str(err.value) and "fast" in str(err.value)


def test_capabilities_declared_and_filtering():
    assert get_strategy("fast").capabilities.exact
    assert not get_strategy("ortools-glop").capabilities.milp
    assert get_strategy("ortools-cpsat").capabilities.integer_only
    mip = random_lp(1, integer=True)
    assert {s.name for s in strategies_for(mip)} == set(MILP)
    assert all(s.capabilities.duals for s in strategies_for(random_lp(1), duals=True))


def test_lp_only_strategy_refuses_milp_naming_alternatives():
    with pytest.raises(InputError, match="ortools-scip"):
        get_strategy("fast").solve(random_lp(2, integer=True))


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_every_exact_lp_strategy_reaches_the_same_optimum(seed):
    lp = random_lp(seed)
    reference = get_strategy("pulp-cbc").solve(lp)
    assert reference.status == "optimal"
    for name in EXACT_LP:
        sol = get_strategy(name).solve(lp)
        assert sol.status == "optimal", (name, sol.message)
        assert rel_diff(sol.objective, reference.objective) <= REL_TOL, name
        # The answer is feasible and its objective is what c·x says.
        assert np.all(lp.A @ sol.x >= lp.row_lower - 1e-6)
        assert np.all(lp.A @ sol.x <= lp.row_upper + 1e-6)
        assert sol.objective == pytest.approx(lp.c @ sol.x + lp.objective_offset, abs=1e-6)


@pytest.mark.parametrize("periods", [12, 60])
def test_amortisation_lp_same_optimum_on_every_exact_strategy(periods):
    lp = amortisation_lp(1_000_000.0, 0.09, periods, cap=1.6e6 / periods)
    objectives = {n: get_strategy(n).solve(lp).objective for n in EXACT_LP}
    ref = objectives["pulp-cbc"]
    assert all(rel_diff(v, ref) <= REL_TOL for v in objectives.values()), objectives


@settings(max_examples=6, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_milp_strategies_agree(seed):
    lp = random_lp(seed, n=6, m=4, integer=True)
    answers = {n: get_strategy(n).solve(lp, time_limit=20) for n in MILP}
    ref = answers["pulp-cbc"]
    assert ref.status == "optimal"
    for name, sol in answers.items():
        assert sol.status == "optimal", name
        assert rel_diff(sol.objective, ref.objective) <= REL_TOL, name
        assert np.allclose(sol.x, np.round(sol.x), atol=1e-6), name


def test_infeasible_is_reported_on_every_strategy():
    lp = infeasible_lp()
    for name in strategy_names():
        if name == "ortools-pdlp":
            continue  # a first-order method needs its time limit to give up; see below
        assert get_strategy(name).solve(lp).status == "infeasible", name


def test_unbounded_is_reported_on_exact_strategies():
    lp = unbounded_lp()
    for name in EXACT_LP:
        assert get_strategy(name).solve(lp).status == "unbounded", name


def test_pdlp_answers_within_its_time_limit():
    lp = random_lp(3)
    sol = get_strategy("ortools-pdlp").solve(lp, time_limit=5)
    ref = get_strategy("fast").solve(lp)
    assert sol.status in ("optimal", "time_limit", "error")
    if sol.status == "optimal":
        assert rel_diff(sol.objective, ref.objective) <= 1e-4


def test_cpsat_solves_the_integer_cents_restriction():
    lp = amortisation_lp(100_000.0, 0.06, 6, cap=30_000.0)
    lp = LinearProgram(**{**lp.__dict__, "c": np.concatenate([np.ones(6), np.zeros(12)])})
    sol = get_strategy("ortools-cpsat").solve(lp, time_limit=20)
    ref = get_strategy("fast").solve(lp)
    assert sol.status == "optimal"
    assert np.allclose(sol.x, np.round(sol.x))
    # Integer cents with half-cent interest rounding: within a few cents of the LP optimum.
    assert abs(sol.objective - ref.objective) <= 6 * 1.0


@pytest.mark.parametrize("name", WITH_DUALS)
def test_duals_are_d_objective_d_bound(name):
    """Our convention: row_duals[i] = d(optimum)/d(binding bound of row i)."""
    lp = late_payer_lp()
    base = get_strategy(name).solve(lp)
    yield_row = lp.num_rows - 12 * 3 - 1
    assert base.row_duals is not None and base.row_duals.shape == (lp.num_rows,)
    step = 100.0
    moved = LinearProgram(
        **{**lp.__dict__, "row_lower": lp.row_lower + step * (np.arange(lp.num_rows) == yield_row)}
    )
    after = get_strategy(name).solve(moved)
    finite_difference = (after.objective - base.objective) / step
    assert base.row_duals[yield_row] == pytest.approx(finite_difference, rel=1e-4, abs=1e-7)
    # The opening-balance row (an equality).
    first = np.zeros(lp.num_rows)
    first[0] = step
    grown = LinearProgram(
        **{**lp.__dict__, "row_lower": lp.row_lower + first, "row_upper": lp.row_upper + first}
    )
    shrunk = LinearProgram(
        **{**lp.__dict__, "row_lower": lp.row_lower - first, "row_upper": lp.row_upper - first}
    )
    right = (get_strategy(name).solve(grown).objective - base.objective) / step
    left = (base.objective - get_strategy(name).solve(shrunk).objective) / step
    # At a vertex the dual is a subgradient: between the one-sided slopes.
    slack = 1e-4 * max(abs(left), abs(right))
    assert left - slack <= base.row_duals[0] <= right + slack


def test_yield_floor_binds_with_a_positive_dual():
    lp = late_payer_lp()
    sol = get_strategy("fast").solve(lp)
    yield_row = lp.num_rows - 12 * 3 - 1
    activity = lp.A @ sol.x
    assert activity[yield_row] == pytest.approx(lp.row_lower[yield_row], rel=1e-9)
    assert sol.row_duals[yield_row] > 0


@pytest.mark.parametrize("name", ["fast", "highs-direct", "pulp-cbc"])
def test_solve_batch_threads_match_one_by_one(name):
    lps = [random_lp(seed) for seed in range(8)]
    strategy = get_strategy(name)
    single = [s.objective for s in strategy.solve_batch(lps)]
    threaded = [s.objective for s in strategy.solve_batch(lps, threads=4)]
    assert threaded == pytest.approx(single, rel=1e-12)


def test_solution_reports_time_and_solver_name():
    sol = get_strategy("fast").solve(random_lp(5))
    assert sol.solver == "fast" and sol.seconds > 0 and sol.ok


def test_plan_program_agrees_across_strategies():
    """The model engineer's real plan LP, when present: same optimum on every exact strategy."""
    model = pytest.importorskip("repayplan.plans.model")
    from datetime import date
    from decimal import Decimal

    from repayplan.plans.case import LoanCase, Policy

    case = LoanCase(
        outstanding_principal=2_000_000,
        annual_rate=Decimal("0.08"),
        remaining_term=48,
        monthly_income=400_000,
        essential_expenses=150_000,
        start=date(2025, 1, 15),
    )
    lp = model.build_program(case, Policy(), "balanced").lp
    objectives = {n: get_strategy(n).solve(lp).objective for n in EXACT_LP}
    ref = objectives["pulp-cbc"]
    assert all(rel_diff(v, ref) <= REL_TOL for v in objectives.values()), objectives


# --- `fast`'s crash basis on real plan LPs --------------------------------------------------

PLAN_TEMPLATES = [
    "balanced",
    "lowest_cost",
    "seasonal",
    "graduated",
    "holiday",
    "quarterly",
    "reamortise",
    "spread_arrears",
    "lowest_installment",
]


@settings(max_examples=15, deadline=None)
@given(
    seed=st.integers(0, 100_000),
    template=st.sampled_from(PLAN_TEMPLATES),
    hardship=st.booleans(),
    arrears=st.sampled_from([0, 150_000]),
    fees=st.sampled_from([0, 20_000]),
)
def test_fast_matches_reference_on_random_plan_lps(seed, template, hardship, arrears, fees):
    from repayplan.plans.case import Policy
    from repayplan.plans.model import build_program

    case = plan_case(seed, hardship, arrears, fees)
    lp = build_program(case, Policy(), template).lp
    fast = get_strategy("fast").solve(lp)
    ref = get_strategy("highs-direct").solve(lp)
    assert fast.status == ref.status
    if ref.ok:
        assert rel_diff(fast.objective, ref.objective) <= REL_TOL
        assert_kkt(lp, fast)
        assert_kkt(lp, ref)


def test_fast_crash_starts_balanced_plans_near_the_optimum():
    """On balanced plans the crash basis is taken and the simplex has little left to do,
    with the same optimum (and valid duals) as PuLP + CBC."""
    from repayplan.plans.case import Policy
    from repayplan.plans.model import build_program

    iterations = []
    for seed in range(12):
        lp = build_program(plan_case(seed), Policy(), "balanced").lp
        sol = get_strategy("fast").solve(lp)
        ref = get_strategy("pulp-cbc").solve(lp)
        assert sol.status == ref.status
        if not sol.ok:
            continue
        assert sol.stats["crash_basis"] == 1.0
        iterations.append(sol.stats["simplex_iterations"])
        assert rel_diff(sol.objective, ref.objective) <= REL_TOL
        assert_kkt(lp, sol)
    assert len(iterations) >= 6
    assert np.mean(iterations) < 40


def test_fast_crash_flags_unpayable_plans_and_they_come_back_infeasible():
    from dataclasses import replace

    from repayplan.plans.case import Policy
    from repayplan.plans.model import build_program
    from repayplan.plans.strategies.plan_crash import plan_crash

    # Income far too small for the balance: every payment at its cap cannot repay it.
    case = replace(plan_case(7), monthly_income=20_000, essential_expenses=5_000, other_debt=0)
    lp = build_program(case, Policy(), "balanced").lp
    assert plan_crash(lp).likely_infeasible
    for name in ("fast", "highs-direct", "pulp-cbc"):
        assert get_strategy(name).solve(lp).status == "infeasible", name


def test_fast_without_plan_structure_starts_from_highs_own_basis():
    sol = get_strategy("fast").solve(amortisation_lp(1_000_000.0, 0.09, 24, cap=80_000.0))
    assert sol.ok and sol.stats["crash_basis"] == 0.0


def test_fast_duals_match_finite_differences_on_a_plan():
    """The yield-floor dual of a plan where the floor binds is d(optimum)/d(floor)."""
    from dataclasses import replace
    from decimal import Decimal

    from repayplan.plans.case import Policy
    from repayplan.plans.model import build_program

    # A 3 % loan under an 8 % hurdle: the lender's floor holds the plan up.
    policy = Policy(hurdle_rate=Decimal("0.08"))
    for seed in range(20):
        case = replace(plan_case(seed), annual_rate=Decimal("0.03"))
        prog = build_program(case, policy, "balanced")
        lp = prog.lp
        sol = get_strategy("fast").solve(lp)
        row = int(prog.rows["yield_floor"][0])
        if sol.ok and sol.row_duals[row] > 1e-6:
            break
    else:
        pytest.skip("no generated plan with a binding yield floor")
    step = 1e-4 * abs(lp.row_lower[row])
    lower = lp.row_lower.copy()
    lower[row] += step
    moved = LinearProgram(**{**lp.__dict__, "row_lower": lower})
    after = get_strategy("fast").solve(moved)
    assert after.ok
    assert sol.row_duals[row] == pytest.approx((after.objective - sol.objective) / step, rel=1e-3)
    assert_kkt(lp, sol)


@pytest.mark.parametrize("seed", [1, 9])
def test_nearly_infeasible_plans_are_infeasible_not_errors(seed):
    """Plans just past the yield floor's reach, where HiGHS's dual simplex without presolve
    stops at "unknown": ``fast`` and ``highs-direct`` still answer "infeasible", as CBC does."""
    from dataclasses import replace
    from decimal import Decimal

    from repayplan.plans.case import Policy
    from repayplan.plans.model import build_program

    case = replace(plan_case(seed), annual_rate=Decimal("0.03"))
    lp = build_program(case, Policy(hurdle_rate=Decimal("0.10")), "balanced").lp
    for name in ("fast", "highs-direct", "pulp-cbc"):
        assert get_strategy(name).solve(lp).status == "infeasible", name


@pytest.mark.parametrize(
    ("template", "kwargs"),
    [
        ("reamortise", {}),
        ("spread_arrears", {}),
        ("lowest_installment", {"pti_ceiling": 0.3}),  # its second stage: level, balanced
        ("lowest_cost", {}),
        ("holiday", {}),
    ],
)
def test_fast_crash_covers_level_total_paid_and_holiday_plans(template, kwargs):
    """Level plans (one payment column) get their exact optimum as the crash, plans that
    minimise total paid a one-piece knapsack, payment holidays the balanced knapsack (their
    pieces were miscounted before): a handful of pivots, the reference's optimum, valid
    duals."""
    from repayplan.plans.case import Policy
    from repayplan.plans.model import build_program

    taken, iterations = 0, []
    for seed in range(12):
        case = plan_case(seed, hardship=seed % 3 == 0, arrears=150_000, fees=20_000 * (seed % 2))
        lp = build_program(case, Policy(), template, **kwargs).lp
        sol = get_strategy("fast").solve(lp)
        ref = get_strategy("highs-direct").solve(lp)  # HiGHS from its own start
        assert sol.status == ref.status
        if not sol.ok:
            continue
        taken += int(sol.stats["crash_basis"])
        iterations.append(sol.stats["simplex_iterations"])
        assert rel_diff(sol.objective, ref.objective) <= REL_TOL
        assert_kkt(lp, sol)
    assert len(iterations) >= 4 and taken == len(iterations)
    assert np.mean(iterations) < 25, iterations
