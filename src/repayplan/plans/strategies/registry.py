"""The one registry of solver strategies, by name, with their declared capabilities.

Callers ask by name (``get_strategy("pulp-cbc")``) or by model (``strategies_for(lp)``);
nothing outside this package tests which solver it is talking to (as in linopy's
``solver_capabilities``).
"""

from __future__ import annotations

from repayplan.errors import InputError
from repayplan.plans.lp import LinearProgram
from repayplan.plans.strategies.base import Capabilities, SolverStrategy, set_capable_names
from repayplan.plans.strategies.cpsat import CpSatStrategy
from repayplan.plans.strategies.fast import FastStrategy
from repayplan.plans.strategies.highs_direct import HighsDirectStrategy
from repayplan.plans.strategies.ortools_linear import PywraplpGlopStrategy
from repayplan.plans.strategies.ortools_mb import (
    PDLP_PARAMETERS,
    PDLP_TIME_LIMIT,
    ModelBuilderStrategy,
)
from repayplan.plans.strategies.pulp_backend import PulpStrategy

_STRATEGIES: dict[str, SolverStrategy] = {
    s.name: s
    for s in (
        PulpStrategy(
            "pulp-cbc",
            "cbc",
            Capabilities(lp=True, milp=True, duals=True, batch=True, exact=True),
            "PuLP model, COIN-OR CBC through its command-line driver (the reference)",
        ),
        PulpStrategy(
            "pulp-highs",
            "highs",
            Capabilities(lp=True, milp=True, duals=True, batch=False, exact=True),
            "PuLP model, HiGHS through highspy",
        ),
        PywraplpGlopStrategy(),
        ModelBuilderStrategy(
            "ortools-pdlp",
            "pdlp",
            Capabilities(lp=True, milp=False, duals=True, batch=True, exact=False),
            "OR-Tools model_builder, PDLP first-order method on the program in its columns' "
            "units (1e-8 tolerances, 5 s default limit)",
            PDLP_PARAMETERS,
            PDLP_TIME_LIMIT,
            in_units=True,
        ),
        CpSatStrategy(),
        ModelBuilderStrategy(
            "ortools-scip",
            "scip",
            Capabilities(lp=True, milp=True, duals=False, batch=False, exact=True),
            "OR-Tools model_builder, SCIP branch-and-cut",
        ),
        HighsDirectStrategy(),
        FastStrategy(),
    )
}


def strategy_names() -> list[str]:
    """Names of every registered strategy, in registry order."""
    return list(_STRATEGIES)


def get_strategy(name: str) -> SolverStrategy:
    """The strategy called ``name``; an unknown name raises :class:`InputError` listing them."""
    try:
        return _STRATEGIES[name]
    except KeyError:
        raise InputError(
            f"unknown solver {name!r}; use one of " + ", ".join(_STRATEGIES), field="solver"
        ) from None


def strategies_for(
    lp: LinearProgram, *, exact: bool = False, duals: bool = False
) -> list[SolverStrategy]:
    """Strategies that can solve ``lp`` (an LP, or a MILP on MILP solvers); with ``exact``
    only those that reach the optimum to 1e-6, with ``duals`` only those that return duals."""
    return [
        s
        for s in _STRATEGIES.values()
        if s.supports(lp)
        and (s.capabilities.exact or not exact)
        and (s.capabilities.duals or not duals)
    ]


set_capable_names(lambda lp: [s.name for s in strategies_for(lp)])
