"""CP-SAT on integer cents and PDLP on the plan programs: declared units, the integer
restatement, the templates each declares, and how close they land to the exact LP optimum."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import scipy.sparse as sp
from hypothesis import given, settings
from hypothesis import strategies as st

from repayplan.errors import InputError
from repayplan.plans.case import Policy
from repayplan.plans.lp import LinearProgram
from repayplan.plans.model import build_program
from repayplan.plans.quote import _strategy_for, quote
from repayplan.plans.strategies import get_strategy, strategies_for
from repayplan.plans.strategies.cpsat import MILP_RELATIVE_GAP, RELATIVE_GAP

from .support import (
    EXAMPLE_IN_ARREARS,
    LP_TEMPLATES,
    assert_integer_cents,
    banded,
    cases_and_templates,
    resolution,
)
from .support import rel_diff as rel

CASE = replace(EXAMPLE_IN_ARREARS, remaining_term=12)


# --- declared column units --------------------------------------------------------------


def test_col_unit_is_checked():
    lp = build_program(CASE, Policy(), "balanced").lp
    with pytest.raises(ValueError, match="col_unit"):
        replace(lp, col_unit=np.ones(lp.num_vars - 1))
    with pytest.raises(ValueError, match="col_unit"):
        replace(lp, col_unit=np.zeros(lp.num_vars))


def test_plan_model_declares_cents_and_ratio_units():
    prog = build_program(CASE, Policy(), "balanced")
    unit = prog.lp.units
    assert np.all(unit[prog.cols["p"]] == 1.0) and np.all(unit[prog.cols["b"]] == 1.0)
    k = (prog.cols["d"].stop - prog.cols["d"].start) // prog.periods
    expected = np.repeat(1.0 / np.maximum(prog.incomes, 1.0), k)
    np.testing.assert_allclose(unit[prog.cols["d"]], expected)
    # A model without ratio columns declares none.
    assert build_program(CASE, Policy(), "lowest_cost").lp.col_unit is None


@settings(max_examples=10, deadline=None)
@given(seed=st.integers(0, 10_000))
def test_a_program_in_its_units_has_the_same_optimum(seed):
    rng = np.random.default_rng(seed)
    n, m = 6, 5
    dense = rng.normal(size=(m, n)) * (rng.random((m, n)) < 0.7)
    x0 = rng.uniform(1, 5, n)
    act = dense @ x0
    lp = LinearProgram(
        c=rng.normal(size=n),
        A=sp.csr_matrix(dense),
        row_lower=act - rng.uniform(0.5, 2, m),
        row_upper=act + rng.uniform(0.5, 2, m),
        lower=np.zeros(n),
        upper=np.full(n, 10.0),
        objective_offset=1.5,
        col_unit=10.0 ** rng.integers(-4, 3, n),
    )
    scaled = lp.in_units()
    a, b = get_strategy("fast").solve(lp), get_strategy("fast").solve(scaled)
    assert a.ok and b.ok
    assert rel(b.objective, a.objective) <= 1e-9
    np.testing.assert_allclose(lp.units * b.x, a.x, rtol=1e-6, atol=1e-6)
    # Row duals do not change with column units.
    np.testing.assert_allclose(b.row_duals, a.row_duals, rtol=1e-6, atol=1e-9)


# --- CP-SAT ---------------------------------------------------------------------------------


@pytest.mark.parametrize("template", LP_TEMPLATES)
def test_cpsat_lands_near_the_lp_optimum_on_every_lp_template(template):
    """Once infeasible on every free-shape template (its ratio pieces were integers of 1)."""
    lp = build_program(CASE, Policy(), template).lp
    exact = get_strategy("highs-direct").solve(lp)
    sol = get_strategy("ortools-cpsat").solve(lp, time_limit=20)
    assert exact.ok
    assert sol.status == "optimal", sol.message
    assert sol.mip_gap <= RELATIVE_GAP
    assert rel(sol.objective, exact.objective) <= 1e-4
    assert sol.objective == pytest.approx(lp.c @ sol.x + lp.objective_offset, rel=1e-12)
    assert_integer_cents(lp, sol.x)


@pytest.mark.parametrize("template", ["stepped", "chosen_holiday"])
def test_cpsat_solves_the_milp_templates_it_declares(template):
    case = replace(CASE, remaining_term=6, monthly_income=700_000)
    lp = build_program(case, Policy(), template).lp
    assert lp.is_mip and get_strategy("ortools-cpsat").supports(lp)
    ref = get_strategy("ortools-scip").solve(lp)
    sol = get_strategy("ortools-cpsat").solve(lp, time_limit=20)
    assert ref.ok and sol.status == "optimal", sol.message
    # Within its gap of its bound; the cent bands let it land a little below SCIP as well.
    assert rel(sol.objective, ref.objective) <= 2 * MILP_RELATIVE_GAP
    assert_integer_cents(lp, sol.x)


def test_cpsat_refuses_milps_larger_than_it_declares():
    case = replace(CASE, remaining_term=60)
    lp = build_program(case, Policy(), "stepped").lp
    cpsat = get_strategy("ortools-cpsat")
    assert not cpsat.supports(lp)
    assert "ortools-cpsat" not in {s.name for s in strategies_for(lp)}
    with pytest.raises(InputError, match="ortools-scip") as err:
        cpsat.solve(lp)
    assert "integer" in str(err.value) and err.value.field == "solver"
    # The quote hands such a program to the first MILP solver that takes it.
    program = build_program(case, Policy(), "stepped")
    assert _strategy_for(program, cpsat).name == "ortools-scip"


def test_cpsat_says_infeasible_where_the_plan_is():
    poor = replace(CASE, monthly_income=60_000, essential_expenses=30_000, other_debt=0)
    lp = build_program(poor, Policy(), "balanced").lp
    assert get_strategy("highs-direct").solve(lp).status == "infeasible"
    assert get_strategy("ortools-cpsat").solve(lp, time_limit=10).status == "infeasible"


@settings(max_examples=8, deadline=None)
@given(
    drawn=cases_and_templates(
        arrears=st.sampled_from([0, 50_000]), penalty_fees=st.sampled_from([0, 5_000])
    )
)
def test_cpsat_agrees_with_the_exact_lp_on_random_borrowers(drawn):
    case, template = drawn
    lp = build_program(case, Policy(), template).lp
    exact = get_strategy("highs-direct").solve(lp)
    sol = get_strategy("ortools-cpsat").solve(lp, time_limit=20)
    if exact.status == "infeasible" and sol.ok:
        # Infeasible by less than the cent bands: the integer-cents model is feasible and
        # so is the LP with its equalities relaxed to the same bands.
        rows, band = banded(lp)
        relaxed = replace(
            lp,
            row_lower=np.where(rows, lp.row_lower - 1.01 * band, lp.row_lower),
            row_upper=np.where(rows, lp.row_upper + 1.01 * band, lp.row_upper),
        )
        assert get_strategy("highs-direct").solve(relaxed).ok, template
        return
    assert sol.status == exact.status, (template, sol.message)
    if exact.ok:
        # ~1e-5 on ordinary loans; a small loan's objective is a few cents per banded row.
        gap = abs(sol.objective - exact.objective)
        assert gap <= 1e-4 * max(1.0, abs(exact.objective)) + 2 * resolution(lp), template
        assert_integer_cents(lp, sol.x)


def test_quote_on_cpsat_offers_the_same_plans():
    case = replace(CASE, remaining_term=6, monthly_income=700_000)
    names = ("balanced", "lowest_cost", "stepped", "chosen_holiday")
    ref = quote(case, Policy(), solver="fast", templates=names)
    got = quote(case, Policy(), solver="ortools-cpsat", templates=names)
    assert got.status == ref.status == "ok"
    assert [a.name for a in got.alternatives] == list(names)
    for a, b in zip(got.alternatives, ref.alternatives, strict=True):
        assert a.metrics["solver"] == "ortools-cpsat"
        assert rel(a.objective, b.objective) <= 1e-3, a.name
        assert a.schedule.installments[-1].balance == 0


# --- PDLP -----------------------------------------------------------------------------------


@pytest.mark.parametrize("template", LP_TEMPLATES)
def test_pdlp_converges_on_the_plan_programs(template):
    """In the model's own units PDLP did not converge in seconds; in its columns' units it
    reaches the LP optimum (and says "infeasible" only where the plan is)."""
    lp = build_program(replace(CASE, remaining_term=24), Policy(), template).lp
    exact = get_strategy("highs-direct").solve(lp)
    sol = get_strategy("ortools-pdlp").solve(lp)
    assert sol.status == exact.status, sol.message
    if exact.ok:
        assert rel(sol.objective, exact.objective) <= 1e-5
        assert sol.row_duals is not None and sol.row_duals.shape == (lp.num_rows,)
