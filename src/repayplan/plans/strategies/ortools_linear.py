"""``ortools-glop``: GLOP through the classic ``pywraplp`` API, built row by row.

This is how most OR-Tools code states an LP, so the benchmark keeps it as the ordinary
OR-Tools path next to ``fast`` (the same GLOP, fed from arrays in one call).
"""

from __future__ import annotations

import numpy as np
from ortools.linear_solver import pywraplp

from repayplan.plans.lp import LinearProgram, LPSolution, Status
from repayplan.plans.strategies.base import Capabilities, SolverStrategy

_STATUS: dict[int, Status] = {
    pywraplp.Solver.OPTIMAL: "optimal",
    pywraplp.Solver.INFEASIBLE: "infeasible",
    pywraplp.Solver.UNBOUNDED: "unbounded",
}


class PywraplpGlopStrategy(SolverStrategy):
    """GLOP via ``pywraplp.Solver``; LPs only, with duals."""

    name = "ortools-glop"
    capabilities = Capabilities(lp=True, milp=False, duals=True, batch=True, exact=True)
    description = "OR-Tools pywraplp model built row by row, GLOP simplex"
    # GLOP may stop at "infeasible or unbounded", which pywraplp reports as infeasible.
    infeasible_may_be_unbounded = True

    def _solve(self, lp: LinearProgram, time_limit: float | None) -> LPSolution:
        solver = pywraplp.Solver.CreateSolver("GLOP")
        if time_limit is not None:
            solver.SetTimeLimit(int(time_limit * 1000))
        inf = solver.infinity()
        lower = np.where(np.isfinite(lp.lower), lp.lower, -inf)
        upper = np.where(np.isfinite(lp.upper), lp.upper, inf)
        xs = [
            solver.NumVar(float(lo), float(hi), f"x{j}")
            for j, (lo, hi) in enumerate(zip(lower, upper, strict=True))
        ]
        A = lp.A.tocsr()
        row_lo = np.where(np.isfinite(lp.row_lower), lp.row_lower, -inf)
        row_hi = np.where(np.isfinite(lp.row_upper), lp.row_upper, inf)
        rows = []
        for i in range(lp.num_rows):
            row = solver.RowConstraint(float(row_lo[i]), float(row_hi[i]), f"r{i}")
            for j, v in zip(
                A.indices[A.indptr[i] : A.indptr[i + 1]],
                A.data[A.indptr[i] : A.indptr[i + 1]],
                strict=True,
            ):
                row.SetCoefficient(xs[j], float(v))
            rows.append(row)
        objective = solver.Objective()
        for j in np.flatnonzero(lp.c):
            objective.SetCoefficient(xs[j], float(lp.c[j]))
        objective.SetOffset(float(lp.objective_offset))
        objective.SetMinimization()
        raw = solver.Solve()
        status = _STATUS.get(raw, "error")
        if raw == pywraplp.Solver.FEASIBLE:
            status = "time_limit"
        if status not in ("optimal", "time_limit"):
            return LPSolution(status=status, solver=self.name)
        return LPSolution(
            status=status,
            solver=self.name,
            x=np.array([v.solution_value() for v in xs], dtype=np.float64),
            objective=float(objective.Value()),
            row_duals=np.array([r.dual_value() for r in rows], dtype=np.float64),
            stats={"simplex_iterations": float(solver.iterations())},
        )
