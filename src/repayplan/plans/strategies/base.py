"""What a solver strategy is: declared capabilities, ``solve`` and ``solve_batch``.

Every strategy solves a :class:`~repayplan.plans.lp.LinearProgram` and answers an
:class:`~repayplan.plans.lp.LPSolution`. Infeasible, unbounded and timed-out models are
*answers* (a status), never exceptions; only a model the strategy cannot take at all (a MILP
on an LP-only solver) raises :class:`~repayplan.errors.InputError`.

Dual sign convention (all strategies that declare ``duals``): ``row_duals[i]`` is
``d(objective) / d(bound of row i)`` for the minimisation, i.e. the change of the optimum per
unit the binding bound of row ``i`` moves. A binding lower bound (``A_i x ≥ l_i``) has a
dual ≥ 0, a binding upper bound a dual ≤ 0, a slack row 0.
"""

from __future__ import annotations

import math
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

import numpy as np

from repayplan.errors import InputError
from repayplan.plans.lp import LinearProgram, LPSolution


@dataclass(frozen=True)
class Capabilities:
    """What a strategy can do.

    ``lp``/``milp``: the model classes it solves; ``duals``: returns row duals on LPs;
    ``batch``: its solver releases the GIL, so ``solve_batch(threads>1)`` runs in parallel;
    ``exact``: reaches the LP optimum to ≤ 1e-6 relative (a simplex/interior-point vertex,
    not a first-order approximation or an integer restriction); ``integer_only``: solves
    every variable as an integer in its own unit (cents for money); ``max_integer_vars`` /
    ``max_mip_vars``: the largest MILP it takes, in integer variables / in all variables
    (None = any) — a strategy that cannot settle larger ones in seconds declares so, and is
    refused them with an error naming the strategies that can.
    """

    lp: bool
    milp: bool
    duals: bool
    batch: bool
    exact: bool
    integer_only: bool = False
    max_integer_vars: int | None = None
    max_mip_vars: int | None = None


class SolverStrategy(ABC):
    """One way to solve a :class:`LinearProgram`. Subclasses implement :meth:`_solve`."""

    name: str
    capabilities: Capabilities
    description: str
    # Some solvers answer "infeasible" for "infeasible or unbounded" (GLOP through
    # model_builder does); those strategies set this and get the two told apart.
    infeasible_may_be_unbounded: bool = False

    def supports(self, lp: LinearProgram) -> bool:
        """True when this strategy can take ``lp`` (an LP, or a MILP on a MILP solver
        within its ``max_integer_vars``)."""
        caps = self.capabilities
        if not lp.is_mip:
            return caps.lp
        return (
            caps.milp
            and (caps.max_integer_vars is None or _integer_count(lp) <= caps.max_integer_vars)
            and (caps.max_mip_vars is None or lp.num_vars <= caps.max_mip_vars)
        )

    def solve(self, lp: LinearProgram, time_limit: float | None = None) -> LPSolution:
        """Solve ``lp``; ``time_limit`` in seconds (None = no limit).

        Returns the solution with ``seconds`` = wall time of model transfer plus solve.
        Raises :class:`InputError` when the strategy cannot take this class of model.
        """
        if not self.supports(lp):
            kind = "a MILP (integer variables)" if lp.is_mip else "a pure LP"
            caps = self.capabilities
            if lp.is_mip and caps.milp:
                kind = (
                    f"a MILP of {lp.num_vars} variables, {_integer_count(lp)} integer (it "
                    f"takes at most {caps.max_mip_vars} variables, {caps.max_integer_vars} "
                    "integer)"
                )
            raise InputError(
                f"{self.name} cannot solve {kind}; strategies that can: "
                + ", ".join(_capable_names(lp)),
                field="solver",
            )
        started = time.perf_counter()
        try:
            solution = self._solve(lp, time_limit)
        except InputError:
            raise
        except Exception as exc:  # a solver library failure is reported, not raised
            solution = LPSolution(status="error", solver=self.name, message=repr(exc))
        if solution.status == "infeasible" and self.infeasible_may_be_unbounded:
            solution = self._tell_unbounded(lp, solution, time_limit)
        return replace(solution, seconds=time.perf_counter() - started)

    def _tell_unbounded(
        self, lp: LinearProgram, solution: LPSolution, time_limit: float | None
    ) -> LPSolution:
        # With a zero objective nothing is unbounded: a feasible point here means the
        # original "infeasible" was really "unbounded".
        probe = self._solve(replace(lp, c=np.zeros_like(lp.c), objective_offset=0.0), time_limit)
        if probe.status == "optimal":
            return replace(solution, status="unbounded", message="objective unbounded below")
        return solution

    def solve_batch(self, lps: Sequence[LinearProgram], threads: int = 1) -> list[LPSolution]:
        """Solve many programs, in input order.

        With ``threads > 1`` and a strategy whose solver releases the GIL
        (``capabilities.batch``), the programs are solved by a thread pool; otherwise one by one.
        """
        if threads > 1 and self.capabilities.batch and len(lps) > 1:
            with ThreadPoolExecutor(max_workers=threads) as pool:
                return list(pool.map(self.solve, lps))
        return [self.solve(lp) for lp in lps]

    @abstractmethod
    def _solve(self, lp: LinearProgram, time_limit: float | None) -> LPSolution:
        """Solve a model this strategy supports; may raise on library failure."""


def _integer_count(lp: LinearProgram) -> int:
    return int(np.count_nonzero(lp.integrality)) if lp.integrality is not None else 0


def _no_registry(lp: LinearProgram) -> list[str]:
    return []


# Names the strategies that can take a model, for the error above. The registry (the only
# module that knows every strategy) installs it with :func:`set_capable_names`, so this
# module never imports the registry.
_capable_names: Callable[[LinearProgram], list[str]] = _no_registry


def set_capable_names(lookup: Callable[[LinearProgram], list[str]]) -> None:
    """Install ``lookup`` (model → names of the strategies that can solve it) for the
    error a strategy raises on a model it cannot take; called once by the registry."""
    global _capable_names
    _capable_names = lookup


def finite_or_none(value: float) -> float | None:
    """``value`` unless it is ±inf/NaN (the text protos and PuLP want None for 'no bound')."""
    return value if math.isfinite(value) else None
