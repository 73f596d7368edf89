"""OR-Tools strategies through ``model_builder``: PDLP and SCIP.

The model is handed over in one call from the sparse arrays
(``ModelBuilderHelper.fill_model_from_sparse_data``), with no per-row Python objects; that
transfer is what makes these strategies ~30× faster than building a PuLP model (DESIGN.md §6).
"""

from __future__ import annotations

import numpy as np
from ortools.linear_solver.python import model_builder_helper as mbh

from repayplan.plans.lp import LinearProgram, LPSolution, Status
from repayplan.plans.strategies.base import Capabilities, SolverStrategy

PDLP_TIME_LIMIT = 5.0  # seconds

_STATUS: dict[mbh.SolveStatus, Status] = {
    mbh.SolveStatus.OPTIMAL: "optimal",
    mbh.SolveStatus.INFEASIBLE: "infeasible",
    mbh.SolveStatus.UNBOUNDED: "unbounded",
}

# PDLP is a first-order method: it converges only on a well-scaled program. In the plan
# model's own units (payment-to-income ratio pieces next to cents: coefficients ~1e6 apart)
# it did not reach 1e-6 relative KKT residuals within 10 s; handed the program in its
# columns' declared units (``LinearProgram.in_units``: every column in cents), it reaches
# the 1e-8 criteria in tens of milliseconds. It stays declared inexact (a first-order
# approximation, not a vertex) and runs under PDLP_TIME_LIMIT unless told otherwise.
# Feasibility polishing cleans up primal residuals. The infeasibility certificates are held
# to 1e-10 (default 1e-8): at 1e-8 PDLP called 8 of 17 feasible seasonal plans and 9 of 18
# graduated ones "infeasible" (measured on the benchmark loans); at 1e-10 none, and the
# truly infeasible ones are still detected.
PDLP_PARAMETERS = (
    "termination_criteria { simple_optimality_criteria { "
    "eps_optimal_absolute: 1e-8 eps_optimal_relative: 1e-8 } "
    "eps_primal_infeasible: 1e-10 eps_dual_infeasible: 1e-10 } "
    "num_threads: 1 use_feasibility_polishing: true "
    "handle_some_primal_gradients_on_finite_bounds_as_residuals: false"
)


def helper_model(lp: LinearProgram) -> mbh.ModelBuilderHelper:
    """An OR-Tools ``ModelBuilderHelper`` filled from ``lp``'s arrays in one call."""
    model = mbh.ModelBuilderHelper()
    model.fill_model_from_sparse_data(
        np.asarray(lp.lower, dtype=np.float64),
        np.asarray(lp.upper, dtype=np.float64),
        np.asarray(lp.c, dtype=np.float64),
        np.asarray(lp.row_lower, dtype=np.float64),
        np.asarray(lp.row_upper, dtype=np.float64),
        lp.A.tocsr().astype(np.float64),
    )
    model.set_objective_offset(float(lp.objective_offset))
    if lp.is_mip:
        for j in np.flatnonzero(lp.integrality):
            model.set_var_integrality(int(j), True)
    return model


class ModelBuilderStrategy(SolverStrategy):
    """An OR-Tools solver behind ``model_builder``: ``solver_id`` is its name there
    (``"glop"``, ``"pdlp"``, ``"scip"``), ``parameters`` its text-proto parameters,
    ``default_time_limit`` the seconds it gets when the caller gives none; ``in_units``:
    hand the solver the program in its columns' declared units (for PDLP)."""

    def __init__(
        self,
        name: str,
        solver_id: str,
        capabilities: Capabilities,
        description: str,
        parameters: str = "",
        default_time_limit: float | None = None,
        in_units: bool = False,
    ) -> None:
        self.name = name
        self.solver_id = solver_id
        self.capabilities = capabilities
        self.description = description
        self.parameters = parameters
        self.default_time_limit = default_time_limit
        self.in_units = in_units
        self.infeasible_may_be_unbounded = solver_id == "glop"

    def _solve(self, lp: LinearProgram, time_limit: float | None) -> LPSolution:
        # Column scaling leaves the rows (and so the row duals) as they are: x = unit · z.
        unit = lp.units if self.in_units else None
        model = helper_model(lp.in_units() if unit is not None else lp)
        solver = mbh.ModelSolverHelper(self.solver_id)
        if self.parameters:
            solver.set_solver_specific_parameters(self.parameters)
        limit = self.default_time_limit if time_limit is None else time_limit
        if limit is not None:
            solver.set_time_limit_in_seconds(float(limit))
        solver.solve(model)
        raw = solver.status()
        status = _STATUS.get(raw)
        if status is None:
            status = "time_limit" if solver.has_solution() else "error"
        if not solver.has_solution() or status in ("infeasible", "unbounded"):
            return LPSolution(status=status, solver=self.name, message=solver.status_string())
        scale = 1.0 if unit is None else unit
        duals = None
        if self.capabilities.duals and not lp.is_mip:
            duals = np.asarray(solver.dual_values(), dtype=np.float64)
        gap = None
        if lp.is_mip:
            obj, bound = solver.objective_value(), solver.best_objective_bound()
            gap = abs(obj - bound) / max(abs(obj), 1e-9)
        return LPSolution(
            status=status,
            solver=self.name,
            x=np.asarray(solver.variable_values(), dtype=np.float64) * scale,
            objective=float(solver.objective_value()),
            row_duals=duals,
            mip_gap=gap,
            message=solver.status_string(),
            stats={"solver_wall_seconds": float(solver.wall_time())},
        )
