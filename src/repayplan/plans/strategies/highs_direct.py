"""HiGHS called directly through highspy: the model passed from its arrays in one call.

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


def pass_model(highs: highspy.Highs, lp: LinearProgram) -> None:
    """Hand ``lp`` to ``highs`` in one call from its arrays: the CSR matrix row-wise as it
    is (HiGHS transposes it in C++), ±inf bounds as they are (HiGHS reads them as infinite).
    ~10 µs on a plan LP, against ~200 µs for filling a ``HighsLp`` attribute by attribute."""
    a = lp.A.tocsr()
    integrality = (
        np.asarray(lp.integrality, dtype=np.int32)  # 1 = kInteger, 0 = kContinuous
        if lp.is_mip
        else np.zeros(lp.num_vars, dtype=np.int32)
    )
    status = highs.passModel(
        lp.num_vars,
        lp.num_rows,
        a.nnz,
        int(highspy.MatrixFormat.kRowwise),
        int(highspy.ObjSense.kMinimize),
        float(lp.objective_offset),
        np.asarray(lp.c, dtype=np.float64),
        np.asarray(lp.lower, dtype=np.float64),
        np.asarray(lp.upper, dtype=np.float64),
        np.asarray(lp.row_lower, dtype=np.float64),
        np.asarray(lp.row_upper, dtype=np.float64),
        a.indptr.astype(np.int32, copy=False),
        a.indices.astype(np.int32, copy=False),
        a.data.astype(np.float64, copy=False),
        integrality,
    )
    if status == highspy.HighsStatus.kError:
        raise RuntimeError("HiGHS refused the model (passModel)")


class HighsDirectStrategy(SolverStrategy):
    """HiGHS through highspy's ``passModel`` (simplex for LPs, branch-and-cut for MILPs)."""

    name = "highs-direct"
    capabilities = Capabilities(lp=True, milp=True, duals=True, batch=True, exact=True)
    description = "HiGHS via highspy passModel from arrays, presolve off for LPs"

    def _solve(self, lp: LinearProgram, time_limit: float | None) -> LPSolution:
        highs = highspy.Highs()
        highs.setOptionValue("output_flag", False)
        highs.setOptionValue("threads", 1)
        if not lp.is_mip:
            highs.setOptionValue("presolve", "off")
        if time_limit is not None:
            highs.setOptionValue("time_limit", float(time_limit))
        pass_model(highs, lp)
        highs.run()
        if not lp.is_mip and highs.getModelStatus() == highspy.HighsModelStatus.kUnknown:
            # The dual simplex can stall at "unknown" on nearly infeasible plans; the primal
            # simplex with presolve settles them.
            highs.setOptionValue("presolve", "on")
            highs.setOptionValue("simplex_strategy", 4)
            highs.clearSolver()
            highs.run()
        return self._answer(highs, lp, time_limit)

    def _answer(
        self, highs: highspy.Highs, lp: LinearProgram, time_limit: float | None
    ) -> LPSolution:
        """The answer of a run; without presolve HiGHS can stop at "unbounded or infeasible",
        and only then is the zero-objective probe run to tell the two apart."""
        answer = highs_answer(highs, lp, self.name)
        if highs.getModelStatus() == highspy.HighsModelStatus.kUnboundedOrInfeasible:
            return self._tell_unbounded(lp, answer, time_limit)
        return answer


def highs_answer(highs: highspy.Highs, lp: LinearProgram, name: str) -> LPSolution:
    """The :class:`LPSolution` of a ``Highs`` instance that has just run ``lp``."""
    raw = highs.getModelStatus()
    status = _STATUS.get(raw, "error")
    if raw == highspy.HighsModelStatus.kUnboundedOrInfeasible:
        status = "infeasible"
    info = highs.getInfo()
    has_point = info.primal_solution_status == 2  # kSolutionStatusFeasible
    if status not in ("optimal", "time_limit") or not has_point:
        return LPSolution(status=status, solver=name, message=highs.modelStatusToString(raw))
    solution = highs.getSolution()
    duals = None if lp.is_mip else np.asarray(solution.row_dual, dtype=np.float64)
    return LPSolution(
        status=status,
        solver=name,
        x=np.asarray(solution.col_value, dtype=np.float64),
        objective=float(info.objective_function_value),
        row_duals=duals,
        mip_gap=float(info.mip_gap) if lp.is_mip else None,
        message=highs.modelStatusToString(raw),
        stats={"simplex_iterations": float(info.simplex_iteration_count)},
    )
