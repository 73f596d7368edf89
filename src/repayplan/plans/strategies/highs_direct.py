"""HiGHS called directly through highspy: the model passed as column-wise arrays in one call.

Skips PuLP's per-row objects; presolve is off because on plan-sized LPs (a few hundred rows)
it costs more than it saves (DESIGN.md §6: ≈ 1.5 ms per LP with presolve off).
"""

from __future__ import annotations

import highspy
import numpy as np

from repayplan.plans.lp import LinearProgram, LPSolution, Status
from repayplan.plans.strategies.base import Capabilities, SolverStrategy

_STATUS: dict[highspy.HighsModelStatus, Status] = {
    highspy.HighsModelStatus.kOptimal: "optimal",
    highspy.HighsModelStatus.kInfeasible: "infeasible",
    highspy.HighsModelStatus.kUnbounded: "unbounded",
    highspy.HighsModelStatus.kTimeLimit: "time_limit",
}


def highs_lp(lp: LinearProgram) -> highspy.HighsLp:
    """``lp`` as a ``HighsLp`` (column-wise matrix, ±inf bounds as HiGHS infinity)."""
    model = highspy.HighsLp()
    model.num_col_ = lp.num_vars
    model.num_row_ = lp.num_rows
    model.col_cost_ = np.asarray(lp.c, dtype=np.float64)
    model.col_lower_ = np.asarray(lp.lower, dtype=np.float64)
    model.col_upper_ = np.asarray(lp.upper, dtype=np.float64)
    model.row_lower_ = np.asarray(lp.row_lower, dtype=np.float64)
    model.row_upper_ = np.asarray(lp.row_upper, dtype=np.float64)
    model.offset_ = float(lp.objective_offset)
    csc = lp.A.tocsc()
    model.a_matrix_.format_ = highspy.MatrixFormat.kColwise
    model.a_matrix_.start_ = csc.indptr.astype(np.int32)
    model.a_matrix_.index_ = csc.indices.astype(np.int32)
    model.a_matrix_.value_ = csc.data.astype(np.float64)
    if lp.is_mip:
        model.integrality_ = [
            highspy.HighsVarType.kInteger if flag else highspy.HighsVarType.kContinuous
            for flag in lp.integrality
        ]
    return model


class HighsDirectStrategy(SolverStrategy):
    """HiGHS through highspy's ``passModel`` (simplex for LPs, branch-and-cut for MILPs)."""

    name = "highs-direct"
    capabilities = Capabilities(lp=True, milp=True, duals=True, batch=True, exact=True)
    description = "HiGHS via highspy passModel from arrays, presolve off for LPs"
    # Without presolve HiGHS can stop at "unbounded or infeasible"; base tells them apart.
    infeasible_may_be_unbounded = True

    def _solve(self, lp: LinearProgram, time_limit: float | None) -> LPSolution:
        highs = highspy.Highs()
        highs.setOptionValue("output_flag", False)
        highs.setOptionValue("threads", 1)
        if not lp.is_mip:
            highs.setOptionValue("presolve", "off")
        if time_limit is not None:
            highs.setOptionValue("time_limit", float(time_limit))
        highs.passModel(highs_lp(lp))
        highs.run()
        raw = highs.getModelStatus()
        status = _STATUS.get(raw, "error")
        if raw == highspy.HighsModelStatus.kUnboundedOrInfeasible:
            status = "infeasible"
        info = highs.getInfo()
        has_point = info.primal_solution_status == 2  # kSolutionStatusFeasible
        if status not in ("optimal", "time_limit") or not has_point:
            return LPSolution(
                status=status,
                solver=self.name,
                message=highs.modelStatusToString(raw),
            )
        solution = highs.getSolution()
        duals = None if lp.is_mip else np.asarray(solution.row_dual, dtype=np.float64)
        return LPSolution(
            status=status,
            solver=self.name,
            x=np.asarray(solution.col_value, dtype=np.float64),
            objective=float(info.objective_function_value),
            row_duals=duals,
            mip_gap=float(info.mip_gap) if lp.is_mip else None,
            message=highs.modelStatusToString(raw),
            stats={"simplex_iterations": float(info.simplex_iteration_count)},
        )
