"""CP-SAT on integer-scaled data: every variable an integer in its own unit (cents for money).

CP-SAT only takes integer linear constraints, so the program is restated:

* every continuous column is taken in its declared unit (:attr:`LinearProgram.col_unit`:
  a cent for money, one cent of the period's payment for a payment-to-income ratio piece)
  and becomes an integer in that unit; integer columns stay as they are. An infinite bound
  becomes ``±STAND_IN_FACTOR × M`` (at most ``2^40``), where ``M`` is the model's magnitude:
  its largest finite bound (for a loan, about the opening balance in cents);
* an inequality row is multiplied by the smallest power of ten ``10^k``
  (``k ≤ MAX_ROW_DIGITS``) that makes its coefficients integers, else the coefficients are
  rounded at ``10^k`` (``k`` lowered for long rows until the row cannot overflow 64-bit
  activity); its bounds are rounded inwards;
* an *equality* that integers cannot meet exactly (a fractional coefficient such as an
  interest factor ``1 + r``, or a fractional right-hand side) holds within a band of
  ± (``EQUALITY_BAND`` × its largest coefficient + the coefficient rounding error at
  magnitude ``M``): for a balance row in cents, a cent of interest rounding. It is split
  so the chain of balances stays exact in integers: ``Σ a_j x_j = R`` becomes
  ``Σ q_j x_j + e = round(R)`` with ``q_j = round(a_j)`` and a new integer ``e`` (minus the
  period's interest, for a balance row), plus the band row
  ``e − Σ (a_j − q_j) x_j = round(R) − R ± band``;
* the objective is multiplied by ``10^m`` so its largest coefficient is about
  ``OBJECTIVE_RESOLUTION`` (less when its activity could overflow) and rounded; the reported
  objective is ``c·x + offset`` in the original units, computed from the integer solution.

Before the plan model declared its columns' units, the ratio pieces ``d[t,k]`` (fractions
of 1) were integers of their own unit — 0 — and every free-shape plan came back
"infeasible". CP-SAT alone also walks wide integer domains one value at a time and found
no first plan in 10 s on a 12-period balanced plan, and its own bound does not close on
36–120-period plans. So the LP relaxation *of the integer model* is solved first with GLOP
(the same OR-Tools build, a few ms): its optimum, less a 1e-6 margin, is a valid lower
bound handed to CP-SAT as a constraint on the objective, and its point, rounded, is the
search hint (for a MILP, the relaxation re-solved with the binaries rounded and fixed).
CP-SAT stops when its plan is within ``RELATIVE_GAP`` (MILPs: ``MILP_RELATIVE_GAP``) of
its bound — or within a unit of each banded row at the objective's steepest cost, the
integer model's own resolution (a small loan's relative gap cannot close below it) — and
answers ``"optimal"`` with that gap in ``mip_gap``. MILPs run CP-SAT's
quick-restart search beside its LP-bound tree search, which raises the bound over the
binaries that the big-M relaxation leaves loose; MILPs larger than the declared
``MAX_INTEGER_VARS`` / ``MAX_MIP_VARS`` are refused (``InputError`` naming the strategies
that take them).

The answer is the optimum of the *integer-cents* model within that gap, not of the LP: the
strategy declares ``exact=False``. Measured on random loans it lands within 1e-4 of the LP
optimum on every LP template (typically ~1e-5; the bands let it land slightly below as
well as above; 2.6e-5 at most on the benchmark's 18 balanced plans) and within 5e-4 of
SCIP's on the MILP templates it takes. A plan infeasible by less than the bands' cents can
be feasible in the integer-cents model, and is answered so.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse as sp
from ortools.linear_solver.python import model_builder_helper as mbh
from ortools.sat.python import cp_model

from repayplan.plans.lp import LinearProgram, LPSolution, Status
from repayplan.plans.strategies.base import Capabilities, SolverStrategy

INTEGER_BOUND = 2**40  # ≈ 1.1e12 cents: the widest domain a variable gets
STAND_IN_FACTOR = 64
MAX_ROW_DIGITS = 9
OBJECTIVE_RESOLUTION = 1e9
#: An equality integers cannot meet exactly holds within ± this many units (cents) of its
#: largest coefficient's column. One cent, not half: at ±0.5 every payment of a seasonal
#: plan is pinned to theta × income and no integer plan repays to the cent (measured:
#: "infeasible"); ±1 leaves each period a cent of play, as the settling instalment of a
#: cent-exact schedule does. A level plan's payoff row (coefficient Σ 1/G_t on its one
#: payment) gets ± one cent of payment, the payment rounded.
EQUALITY_BAND = 1.0
RELATIVE_GAP = 1e-4  # CP-SAT stops when within this of the bound
MILP_RELATIVE_GAP = 5e-4
DEFAULT_TIME_LIMIT = 30.0  # seconds; CP-SAT proves optimality slowly on wide integer domains
#: CP-SAT subsolvers for MILPs (one thread each): quick restarts find and improve plans,
#: the LP-bound tree search raises the bound over the binaries.
MILP_SUBSOLVERS = ("quick_restart", "lb_tree_search")
#: The largest MILP CP-SAT is declared for: at most 24 integer variables and 520 in all.
#: That takes chosen holiday months (12 binaries) on plans of up to ~84 monthly periods and
#: at most K payment levels (one binary a period) on plans of up to 25 periods. Measured on
#: random loans: those settle within MILP_RELATIVE_GAP in 0.03–0.15 s (chosen holiday, 28
#: of 28; one 5.6 s) and 0.07–9 s (stepped, 12 of 12); a 130-period chosen-holiday plan
#: stopped at 10 s 1–7 % from its bound in 5 of 8 variants, and 35+ binaries of the stepped
#: template often did not settle in 10 s (SCIP itself needs 1–12 s on 90–120 periods).
MAX_INTEGER_VARS = 24
MAX_MIP_VARS = 520
_BOUND_MARGIN = 1e-6  # relative safety margin on the LP bound (GLOP's tolerances)
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


class _Infeasible(Exception):
    """The integer restatement has no solution for a reason visible without a search."""


@dataclass
class _IntegerModel:
    """The integer restatement, as integer rows over integer columns (the program's own
    columns first, then the split equalities' ``e`` columns)."""

    lower: list[int]
    upper: list[int]
    magnitude: float
    rows: list[tuple[list[int], list[int], int | None, int | None]] = field(default_factory=list)
    bands: int = 0  # equalities held within a band

    def new_column(self, bound: int) -> int:
        self.lower.append(-bound)
        self.upper.append(bound)
        return len(self.lower) - 1

    def add_row(self, cols: list[int], coeffs: np.ndarray, lo: int | None, hi: int | None) -> None:
        """``lo ≤ Σ coeffs·x[cols] ≤ hi`` (integer coefficients; None = no bound)."""
        self.rows.append((cols, [int(c) for c in coeffs], lo, hi))

    def add_band(self, cols: list[int], coeffs: np.ndarray, centre: float, band: float) -> None:
        """``Σ coeffs·x[cols] = centre`` as integers can meet it: within ± (``band`` + the
        coefficient rounding error at the model's magnitude), scaled to integers."""
        widest = np.maximum(np.abs(self.lower), np.abs(self.upper)).astype(np.float64)[cols]
        scale, _ = _row_scale(coeffs, widest)
        int_coeffs = np.round(coeffs * scale)
        error = float(np.abs(coeffs - int_coeffs / scale) @ np.minimum(widest, self.magnitude))
        slack = band + error
        self.bands += 1
        lo = math.ceil((centre - slack) * scale - _EXACT)
        hi = math.floor((centre + slack) * scale + _EXACT)
        self.add_row(cols, int_coeffs, lo, hi)

    def relaxation(self) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
        """The rows as ``(A, row_lower, row_upper)`` floats, for the LP relaxation."""
        r, c, v = [], [], []
        lo = np.full(len(self.rows), -np.inf)
        hi = np.full(len(self.rows), np.inf)
        for i, (cols, coeffs, row_lo, row_hi) in enumerate(self.rows):
            # Divided by the row's largest coefficient: the same polytope, sane magnitudes.
            big = float(max(abs(k) for k in coeffs))
            r += [i] * len(cols)
            c += cols
            v += [k / big for k in coeffs]
            if row_lo is not None:
                lo[i] = row_lo / big
            if row_hi is not None:
                hi[i] = row_hi / big
        a = sp.csr_matrix((v, (r, c)), shape=(len(self.rows), len(self.lower)))
        return a, lo, hi


def integer_model(lp: LinearProgram) -> _IntegerModel:
    """The integer restatement of ``lp`` (already in its columns' units); raises
    :class:`_Infeasible` when a bound or an empty row already rules every integer out."""
    magnitude = _magnitude(lp)
    stand_in = float(min(INTEGER_BOUND, STAND_IN_FACTOR * magnitude))
    lower = np.where(np.isfinite(lp.lower), np.ceil(lp.lower - _EXACT), -stand_in)
    upper = np.where(np.isfinite(lp.upper), np.floor(lp.upper + _EXACT), stand_in)
    lower = np.clip(lower, -INTEGER_BOUND, INTEGER_BOUND).astype(np.int64)
    upper = np.clip(upper, -INTEGER_BOUND, INTEGER_BOUND).astype(np.int64)
    if np.any(lower > upper):
        raise _Infeasible("no integer within a variable's bounds")
    model = _IntegerModel(lower.tolist(), upper.tolist(), magnitude)
    widest = np.maximum(np.abs(lower), np.abs(upper)).astype(np.float64)
    A = lp.A.tocsr()
    for i in range(lp.num_rows):
        start, end = A.indptr[i], A.indptr[i + 1]
        cols, coeffs = A.indices[start:end], A.data[start:end]
        lo, hi = float(lp.row_lower[i]), float(lp.row_upper[i])
        if cols.size == 0:
            if not lo <= 0.0 <= hi:
                raise _Infeasible(f"empty row {i} excludes 0")
            continue
        whole = np.round(coeffs)
        integral = np.all(np.abs(coeffs - whole) <= _INTEGRAL)
        if lo == hi and not (integral and abs(lo - round(lo)) <= _EXACT):
            band = EQUALITY_BAND * max(1.0, float(np.abs(coeffs).max()))
            if integral or not np.any(whole):
                model.add_band(cols.tolist(), coeffs, lo, band)
                continue
            # Σ q_j x_j + e = round(R) exactly, and e − Σ f_j x_j = round(R) − R ± band.
            frac = coeffs - whole
            reach = float(np.abs(frac) @ widest[cols]) + abs(lo) + 2 * band + 1
            e = model.new_column(int(min(INTEGER_BOUND, math.ceil(reach))))
            rhs = round(lo)
            model.add_row([*cols.tolist(), e], np.append(whole, 1.0), rhs, rhs)
            keep = np.flatnonzero(frac)
            model.add_band([e, *cols[keep].tolist()], np.append(1.0, -frac[keep]), rhs - lo, band)
            continue
        scale, _ = _row_scale(coeffs, widest[cols])
        int_coeffs = np.round(coeffs * scale)
        row_lo = math.ceil(lo * scale - _EXACT) if math.isfinite(lo) else None
        row_hi = math.floor(hi * scale + _EXACT) if math.isfinite(hi) else None
        if row_lo is not None and row_hi is not None and row_lo > row_hi:
            raise _Infeasible(f"no integer activity within row {i}'s bounds")
        model.add_row(cols.tolist(), int_coeffs, row_lo, row_hi)
    return model


def _objective(lp: LinearProgram, widest: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(columns, integer coefficients) of the scaled, rounded objective."""
    nonzero = np.flatnonzero(lp.c)
    if not nonzero.size:
        return nonzero, np.zeros(0, dtype=np.int64)
    weights = np.abs(lp.c[nonzero])
    room = min(
        OBJECTIVE_RESOLUTION / float(weights.max()),
        _ACTIVITY_LIMIT / 2 / max(float(weights @ widest[nonzero]), 1.0),
    )
    digits = math.floor(math.log10(room))
    return nonzero, np.round(lp.c[nonzero] * 10.0**digits).astype(np.int64)


def _relaxed(
    model: _IntegerModel, obj_cols: np.ndarray, obj: np.ndarray, integer_cols: np.ndarray
) -> tuple[np.ndarray, float] | None:
    """GLOP on the integer model's LP relaxation: (a hint point, the relaxation's optimum in
    the integer objective's units), or None when it does not answer "optimal".

    With integer columns (a MILP's binaries) the relaxation's point is a poor hint (its
    binaries are fractional), so the hint is the relaxation re-solved with the integer
    columns fixed at their rounded values — a "dive" — when that is feasible."""
    a, lo, hi = model.relaxation()
    lower = np.asarray(model.lower, dtype=np.float64)
    upper = np.asarray(model.upper, dtype=np.float64)
    c = np.zeros(len(lower))
    big = float(np.abs(obj).max()) if obj.size else 1.0
    c[obj_cols] = obj / big

    def solve(lower: np.ndarray, upper: np.ndarray) -> tuple[np.ndarray, float] | None:
        helper = mbh.ModelBuilderHelper()
        helper.fill_model_from_sparse_data(lower, upper, c, lo, hi, a)
        solver = mbh.ModelSolverHelper("glop")
        solver.set_time_limit_in_seconds(5.0)
        solver.solve(helper)
        if solver.status() != mbh.SolveStatus.OPTIMAL:
            return None
        return np.asarray(solver.variable_values(), dtype=np.float64), solver.objective_value()

    first = solve(lower, upper)
    if first is None:
        return None
    point, value = first
    if integer_cols.size:
        fixed = np.clip(np.round(point[integer_cols]), lower[integer_cols], upper[integer_cols])
        lo_fix, up_fix = lower.copy(), upper.copy()
        lo_fix[integer_cols] = up_fix[integer_cols] = fixed
        dive = solve(lo_fix, up_fix)
        if dive is not None:
            point = dive[0]
    return point, value * big


class CpSatStrategy(SolverStrategy):
    """CP-SAT on the integer restriction of the program (see the module docstring)."""

    name = "ortools-cpsat"
    capabilities = Capabilities(
        lp=True,
        milp=True,
        duals=False,
        batch=True,
        exact=False,
        integer_only=True,
        max_integer_vars=MAX_INTEGER_VARS,
        max_mip_vars=MAX_MIP_VARS,
    )
    description = (
        "OR-Tools CP-SAT on integer cents (integer restriction, rows scaled to integers; "
        "GLOP bound and hint)"
    )

    def __init__(self, workers: int = 1) -> None:
        # One worker per LP solve: batches parallelise across loans instead (solve_batch).
        # MILPs get one worker per MILP_SUBSOLVERS entry.
        self.workers = workers

    def _solve(self, lp: LinearProgram, time_limit: float | None) -> LPSolution:
        unit = lp.units
        scaled = lp.in_units()
        try:
            ints = integer_model(scaled)
        except _Infeasible as why:
            return LPSolution(status="infeasible", solver=self.name, message=str(why))
        n = scaled.num_vars
        widest = np.maximum(np.abs(ints.lower[:n]), np.abs(ints.upper[:n])).astype(np.float64)
        obj_cols, obj = _objective(scaled, widest)
        model = cp_model.CpModel()
        xs = [
            model.new_int_var(lo, hi, f"x{j}")
            for j, (lo, hi) in enumerate(zip(ints.lower, ints.upper, strict=True))
        ]
        for cols, coeffs, lo, hi in ints.rows:
            expr = cp_model.LinearExpr.weighted_sum([xs[j] for j in cols], coeffs)
            if lo is not None and hi is not None and lo == hi:
                model.add(expr == lo)
                continue
            if lo is not None:
                model.add(expr >= lo)
            if hi is not None:
                model.add(expr <= hi)
        objective = cp_model.LinearExpr.weighted_sum([xs[j] for j in obj_cols], obj.tolist())
        integer_cols = np.flatnonzero(lp.integrality) if lp.is_mip else np.arange(0)
        relaxed = _relaxed(ints, obj_cols, obj, integer_cols)
        if relaxed is not None:
            point, bound = relaxed
            for var, value, lo, hi in zip(xs, point, ints.lower, ints.upper, strict=True):
                model.add_hint(var, int(min(max(round(value), lo), hi)))
            if obj.size:
                model.add(objective >= math.floor(bound - _BOUND_MARGIN * abs(bound) - 1.0))
        if obj.size:
            model.minimize(objective)
        solver = cp_model.CpSolver()
        params = solver.parameters
        params.max_time_in_seconds = DEFAULT_TIME_LIMIT if time_limit is None else float(time_limit)
        params.relative_gap_limit = MILP_RELATIVE_GAP if lp.is_mip else RELATIVE_GAP
        if obj.size and ints.bands:
            # The bands' own resolution: a unit (cent) of play in each banded row, at the
            # objective's steepest cost, is what the integer model cannot tell apart anyway.
            params.absolute_gap_limit = float(ints.bands * EQUALITY_BAND * np.abs(obj).max())
        params.linearization_level = 2
        if lp.is_mip:
            params.num_workers = len(MILP_SUBSOLVERS)
            params.subsolvers.extend(MILP_SUBSOLVERS)
        else:
            params.num_workers = self.workers
        raw = solver.solve(model)
        status = _STATUS.get(raw, "error")
        if status not in ("optimal", "time_limit"):
            return LPSolution(status=status, solver=self.name, message=solver.status_name(raw))
        z = np.array([solver.value(v) for v in xs[:n]], dtype=np.float64)
        stand_in = float(min(INTEGER_BOUND, STAND_IN_FACTOR * ints.magnitude))
        at_stand_in = (~np.isfinite(scaled.lower) & (z <= -stand_in)) | (
            ~np.isfinite(scaled.upper) & (z >= stand_in)
        )
        if np.any(at_stand_in & (scaled.c != 0)):
            # The optimum sits on a stand-in for an infinite bound: the program is unbounded.
            return LPSolution(status="unbounded", solver=self.name, message="objective unbounded")
        x = unit * z
        value, best = solver.objective_value, solver.best_objective_bound
        return LPSolution(
            status=status,
            solver=self.name,
            x=x,
            objective=float(lp.c @ x + lp.objective_offset),
            mip_gap=abs(value - best) / max(abs(value), 1e-9) if obj.size else 0.0,
            message=solver.status_name(raw),
            stats={"solver_wall_seconds": solver.wall_time, "branches": float(solver.num_branches)},
        )
