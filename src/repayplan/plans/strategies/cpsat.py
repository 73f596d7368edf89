"""CP-SAT on integer-scaled data: every variable an integer in its own unit (cents for money).

CP-SAT only takes integer linear constraints, so the program is restated:

* every variable is an integer; an infinite bound becomes ``±STAND_IN_FACTOR × M`` (at most
  ``2^40``), where ``M`` is the model's magnitude: its largest finite bound (for a loan, about
  the opening balance in cents);
* each row is multiplied by the smallest power of ten ``10^k`` (``k ≤ MAX_ROW_DIGITS``) that
  makes its coefficients integers, else (an interest factor such as ``1 + 0.05/12``) the
  coefficients are rounded at ``10^MAX_ROW_DIGITS``; inequality bounds are rounded inwards;
  an *equality* that integers cannot meet exactly (inexact coefficients, or a fractional
  right-hand side) becomes a band of ± (half a unit + the coefficient rounding error at
  magnitude ``M``) — for a balance row in cents, the half-cent rounding of interest that
  the cent-exact schedule applies anyway;
* ``k`` is lowered for long rows until the row cannot overflow 64-bit activity;
* the objective is multiplied by ``10^m`` so its largest coefficient is about
  ``OBJECTIVE_RESOLUTION`` (less when its activity could overflow) and rounded; the reported
  objective is ``c·x + offset`` in the original units, computed from the integer solution.

The optimum is therefore that of the *integer-cents* model, not of the LP relaxation: the
strategy declares ``exact=False`` and the benchmark reports how far it lands.
"""

from __future__ import annotations

import math

import numpy as np
from ortools.sat.python import cp_model

from repayplan.plans.lp import LinearProgram, LPSolution, Status
from repayplan.plans.strategies.base import Capabilities, SolverStrategy

INTEGER_BOUND = 2**40  # ≈ 1.1e12 cents: the widest domain a variable gets
STAND_IN_FACTOR = 64
MAX_ROW_DIGITS = 9
OBJECTIVE_RESOLUTION = 1e9
DEFAULT_TIME_LIMIT = 30.0  # seconds; CP-SAT proves optimality slowly on wide integer domains
_ACTIVITY_LIMIT = 2.0**62
_EXACT = 1e-9
_INTEGRAL = 1e-6  # a scaled coefficient this close to an integer is that integer

_STATUS: dict[int, Status] = {
    cp_model.OPTIMAL: "optimal",
    cp_model.INFEASIBLE: "infeasible",
    cp_model.FEASIBLE: "time_limit",
}


def _row_scale(coeffs: np.ndarray, widest: np.ndarray) -> tuple[int, bool]:
    """``(10^k, exact)`` for one row: the smallest scale making ``coeffs`` integral, else the
    largest that cannot overflow given the variables' widest magnitudes ``widest``."""
    reach = float(np.sum(np.abs(coeffs) * widest))
    for k in range(MAX_ROW_DIGITS + 1):
        scale = 10**k
        scaled = coeffs * scale
        if reach * scale * 2 > _ACTIVITY_LIMIT:
            return max(scale // 10, 1), False
        if np.all(np.abs(scaled - np.round(scaled)) <= _INTEGRAL):
            return scale, True
    return 10**MAX_ROW_DIGITS, False


def _magnitude(lp: LinearProgram) -> float:
    """The largest finite bound of the model (rows and variables), at least 1."""
    bounds = np.concatenate([lp.lower, lp.upper, lp.row_lower, lp.row_upper])
    finite = np.abs(bounds[np.isfinite(bounds)])
    return max(1.0, float(finite.max()) if finite.size else 1.0)


class CpSatStrategy(SolverStrategy):
    """CP-SAT on the integer restriction of the program (see the module docstring)."""

    name = "ortools-cpsat"
    capabilities = Capabilities(
        lp=True, milp=True, duals=False, batch=True, exact=False, integer_only=True
    )
    description = "OR-Tools CP-SAT on integer cents (integer restriction; rows scaled to integers)"

    def __init__(self, workers: int = 1) -> None:
        # One worker per solve: batches parallelise across loans instead (solve_batch).
        self.workers = workers

    def _solve(self, lp: LinearProgram, time_limit: float | None) -> LPSolution:
        magnitude = _magnitude(lp)
        stand_in = float(min(INTEGER_BOUND, STAND_IN_FACTOR * magnitude))
        lower = np.where(np.isfinite(lp.lower), np.ceil(lp.lower - _EXACT), -stand_in)
        upper = np.where(np.isfinite(lp.upper), np.floor(lp.upper + _EXACT), stand_in)
        lower = np.clip(lower, -INTEGER_BOUND, INTEGER_BOUND).astype(np.int64)
        upper = np.clip(upper, -INTEGER_BOUND, INTEGER_BOUND).astype(np.int64)
        if np.any(lower > upper):
            return LPSolution(
                status="infeasible",
                solver=self.name,
                message="no integer within a variable's bounds",
            )
        model = cp_model.CpModel()
        xs = [
            model.new_int_var(int(lo), int(hi), f"x{j}")
            for j, (lo, hi) in enumerate(zip(lower, upper, strict=True))
        ]
        widest = np.maximum(np.abs(lower), np.abs(upper)).astype(np.float64)
        A = lp.A.tocsr()
        for i in range(lp.num_rows):
            start, end = A.indptr[i], A.indptr[i + 1]
            cols, coeffs = A.indices[start:end], A.data[start:end]
            lo, hi = float(lp.row_lower[i]), float(lp.row_upper[i])
            if cols.size == 0:
                if not lo <= 0.0 <= hi:
                    return LPSolution(
                        status="infeasible", solver=self.name, message=f"empty row {i} excludes 0"
                    )
                continue
            scale, exact = _row_scale(coeffs, widest[cols])
            int_coeffs = np.round(coeffs * scale)
            error = np.abs(coeffs - int_coeffs / scale) @ np.minimum(widest[cols], magnitude)
            slack = 0.0
            if lo == hi and not (exact and abs(lo * scale - round(lo * scale)) <= _EXACT):
                # An equality integers cannot meet exactly (an interest factor, or interest
                # on the opening balance) gets the half-unit band; inequalities keep their
                # bounds, rounded inwards.
                slack = 0.5 + float(error)
            row_lo = math.ceil((lo - slack) * scale - _EXACT) if math.isfinite(lo) else None
            row_hi = math.floor((hi + slack) * scale + _EXACT) if math.isfinite(hi) else None
            expr = cp_model.LinearExpr.weighted_sum(
                [xs[j] for j in cols], int_coeffs.astype(np.int64).tolist()
            )
            if row_lo is not None and row_hi is not None and row_lo == row_hi:
                model.add(expr == row_lo)
                continue
            if row_lo is not None:
                model.add(expr >= row_lo)
            if row_hi is not None:
                model.add(expr <= row_hi)
        nonzero = np.flatnonzero(lp.c)
        if nonzero.size:
            weights = np.abs(lp.c[nonzero])
            room = min(
                OBJECTIVE_RESOLUTION / float(weights.max()),
                _ACTIVITY_LIMIT / 2 / float(weights @ widest[nonzero]),
            )
            digits = math.floor(math.log10(room))
            int_c = np.round(lp.c[nonzero] * 10.0**digits).astype(np.int64).tolist()
            model.minimize(cp_model.LinearExpr.weighted_sum([xs[j] for j in nonzero], int_c))
        solver = cp_model.CpSolver()
        solver.parameters.num_workers = self.workers
        solver.parameters.max_time_in_seconds = (
            DEFAULT_TIME_LIMIT if time_limit is None else float(time_limit)
        )
        raw = solver.solve(model)
        status = _STATUS.get(raw, "error")
        if status not in ("optimal", "time_limit"):
            return LPSolution(status=status, solver=self.name, message=solver.status_name(raw))
        x = np.array([solver.value(v) for v in xs], dtype=np.float64)
        at_stand_in = (~np.isfinite(lp.lower) & (x <= -stand_in)) | (
            ~np.isfinite(lp.upper) & (x >= stand_in)
        )
        if np.any(at_stand_in & (lp.c != 0)):
            # The optimum sits on a stand-in for an infinite bound: the program is unbounded.
            return LPSolution(status="unbounded", solver=self.name, message="objective unbounded")
        return LPSolution(
            status=status,
            solver=self.name,
            x=x,
            objective=float(lp.c @ x + lp.objective_offset),
            mip_gap=0.0 if status == "optimal" else None,
            message=solver.status_name(raw),
            stats={"solver_wall_seconds": solver.wall_time, "branches": float(solver.num_branches)},
        )
