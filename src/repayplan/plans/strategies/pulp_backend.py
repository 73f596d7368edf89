"""PuLP strategies: CBC (through its command-line driver) and HiGHS (through highspy).

PuLP builds one Python object per variable and per row, so these are the slow reference
paths (~15 ms per plan LP); they exist because PuLP + CBC is what most teams start with, and
the benchmark measures every other strategy against it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pulp

from repayplan.plans.lp import LinearProgram, LPSolution, Status
from repayplan.plans.strategies.base import Capabilities, SolverStrategy, finite_or_none

_STATUS: dict[int, Status] = {
    pulp.LpStatusOptimal: "optimal",
    pulp.LpStatusInfeasible: "infeasible",
    pulp.LpStatusUnbounded: "unbounded",
}


def _build(lp: LinearProgram) -> tuple[pulp.LpProblem, list[pulp.LpVariable], list[list]]:
    """The PuLP problem for ``lp``; also its variables and, per row, the PuLP constraints
    standing for it (two for a ranged row, none for an empty row that holds anyway)."""
    prob = pulp.LpProblem("plan", pulp.LpMinimize)
    integral = lp.integrality if lp.integrality is not None else np.zeros(lp.num_vars, bool)
    variables = [
        prob.add_variable(
            f"x{j}",
            lowBound=finite_or_none(float(lp.lower[j])),
            upBound=finite_or_none(float(lp.upper[j])),
            cat=pulp.LpInteger if integral[j] else pulp.LpContinuous,
        )
        for j in range(lp.num_vars)
    ]
    prob += pulp.LpAffineExpression(
        [(variables[j], float(lp.c[j])) for j in np.flatnonzero(lp.c)],
        constant=float(lp.objective_offset),
    )
    A = lp.A.tocsr()
    row_constraints: list[list] = []
    for i in range(lp.num_rows):
        start, end = A.indptr[i], A.indptr[i + 1]
        terms = [
            (variables[j], float(v))
            for j, v in zip(A.indices[start:end], A.data[start:end], strict=True)
        ]
        lo, hi = float(lp.row_lower[i]), float(lp.row_upper[i])
        made: list = []
        if terms:
            expr = pulp.LpAffineExpression(terms)
            if lo == hi:
                made.append(pulp.LpConstraint(expr, pulp.LpConstraintEQ, f"r{i}", lo))
            else:
                if math.isfinite(lo):
                    made.append(pulp.LpConstraint(expr, pulp.LpConstraintGE, f"r{i}_lo", lo))
                if math.isfinite(hi):
                    made.append(pulp.LpConstraint(expr, pulp.LpConstraintLE, f"r{i}_hi", hi))
        elif not lo <= 0.0 <= hi:
            # An empty row that excludes 0 makes the model infeasible; CBC cannot take it.
            made.append(pulp.LpConstraint(pulp.LpAffineExpression(), pulp.LpConstraintEQ, "", 1))
        for constraint in made:
            prob += constraint
        row_constraints.append(made)
    return prob, variables, row_constraints


class PulpStrategy(SolverStrategy):
    """A PuLP solver: ``make_solver(msg, time_limit, mip)`` returns the PuLP solver object."""

    def __init__(self, name: str, solver_key: str, capabilities: Capabilities, description: str):
        self.name = name
        self.solver_key = solver_key
        self.capabilities = capabilities
        self.description = description
        # CBC reports some unbounded LPs as infeasible (its primal infeasibility check
        # runs first); HiGHS tells them apart itself.
        self.infeasible_may_be_unbounded = solver_key == "cbc"

    def _make_solver(self, time_limit: float | None) -> pulp.LpSolver:
        if self.solver_key == "cbc":
            # The CBC binary bundled with PuLP 3.3 (PuLP 4 moves it to an extra); its
            # deprecation notice is about that move, not about this use.
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                return pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit)
        return pulp.HiGHS(msg=False, timeLimit=time_limit)

    def _solve(self, lp: LinearProgram, time_limit: float | None) -> LPSolution:
        prob, variables, row_constraints = _build(lp)
        prob.solve(self._make_solver(time_limit))
        status = _STATUS.get(prob.status, "error")
        if status == "error" and prob.sol_status == pulp.LpSolutionIntegerFeasible:
            status = "time_limit"
        if status not in ("optimal", "time_limit"):
            return LPSolution(
                status=status, solver=self.name, message=pulp.LpStatus.get(prob.status, "")
            )
        # PuLP leaves variables that appear in no row and no objective term unset: any
        # value within their bounds is optimal, so take the one nearest 0.
        x = np.array(
            [
                v.varValue if v.varValue is not None else min(max(0.0, lo), hi)
                for v, lo, hi in zip(variables, lp.lower, lp.upper, strict=True)
            ],
            dtype=np.float64,
        )
        duals = None
        if self.capabilities.duals and not lp.is_mip:
            # PuLP's .pi is d(objective)/d(rhs): the same convention as ours; a ranged
            # row's two halves cannot both bind, so their sum is the row's dual.
            duals = np.array(
                [sum((c.pi or 0.0) for c in made) for made in row_constraints], dtype=np.float64
            )
        objective = pulp.value(prob.objective)
        return LPSolution(
            status=status,
            solver=self.name,
            x=x,
            objective=float(objective if objective is not None else lp.objective_offset),
            row_duals=duals,
            message=pulp.LpStatus.get(prob.status, ""),
        )
