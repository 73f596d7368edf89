"""Choose one plan per loan under portfolio-wide limits (a multiple-choice knapsack).

x[i,k] ∈ {0,1} picks candidate k of loan i, Σ_k x[i,k] = 1. Maximise Σ value·x subject to a
handful of *coupling* limits, all written here as ``usage ≤ rhs``:

- concession budget:        Σ concession·x ≤ budget
- collection floor month j:  −Σ collections_j·x ≤ −floor_j              (j = 1, 2, 3)
- segment cap s:            Σ_{i in s} restructure·x ≤ ⌊cap_s · loans in s⌋
- review capacity:          Σ needs_review·x ≤ capacity

Methods:

- ``exact-cpsat`` / ``exact-cbc``: the MILP solved exactly (CP-SAT on integer cents, or CBC
  through PuLP on the float data), warm-started from the Lagrangian solution.
- ``lagrangian``: the coupling limits are dualised (one multiplier each); the per-loan
  subproblem ``argmax value − λ·usage`` is a vectorised group-argmax over all rows; λ is
  driven to the dual optimum by a box-step cutting-plane (bundle-type) method whose master LP
  has only ``len(λ)`` variables. For a multiple-choice knapsack the Lagrangian dual equals the
  LP relaxation, so the best dual value *is* the LP bound. A vectorised greedy repair restores
  the limits, then a greedy fill spends what slack is left.

Every method reports the gap to that LP bound. Work and memory grow linearly with the number
of candidate rows: there is no per-loan Python loop except in building the exact models.
"""

from __future__ import annotations

import math
import os
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.optimize import linprog

from repayplan.errors import InputError
from repayplan.portfolio.limits import PortfolioLimits

REQUIRED_COLUMNS = (
    "loan_id",
    "candidate",
    "segment",
    "value",
    "concession",
    "collections_1",
    "collections_2",
    "collections_3",
    "restructure",
    "needs_review",
)
KEEP = "keep"
METHODS = ("auto", "exact-cpsat", "exact-cbc", "lagrangian")

_NUMERIC = ("value", "concession", "collections_1", "collections_2", "collections_3")
_FLAGS = ("restructure", "needs_review")
# Multipliers live in scaled units (values ÷ total value range, usage ÷ usage range); a price
# above this means the limit is worth more than the whole portfolio, i.e. it cannot be met.
_MAX_PRICE = 1e6
_DUAL_MAX_ITERATIONS = 250
_DUAL_TOLERANCE = 1e-7
_REPAIR_ROUNDS = 60
_FILL_ROUNDS = 30


@dataclass
class Selection:
    """The chosen plan per loan, its total value and how close it is to optimal.

    Attributes:
        chosen: one row per loan: ``loan_id``, ``candidate`` and the other input columns of
            the chosen row, loans in order of first appearance in the input.
        objective: total ``value`` of the chosen rows (currency units).
        bound: upper bound on the best achievable objective (currency units): the LP
            relaxation, computed as the Lagrangian dual.
        gap: ``(bound − objective) / max(|bound|, 1)``, a fraction.
        method: ``"exact-cpsat"``, ``"exact-cbc"`` or ``"lagrangian"``.
        feasible: whether every limit as given is met.
        reasons: for each limit that could not be met, what was required and to what level
            it was relaxed.
        stats: ``seconds``, ``iterations`` (dual), ``n_loans``, ``n_candidates``,
            ``solver_status``, ``limits`` (per limit: ``used``, ``limit``, ``relaxed_to`` as a
            person reads them, collections positive, and ``price``: the Lagrangian
            multiplier in value per unit of the limit, ≥ 0) and further solver statistics.
    """

    chosen: pd.DataFrame
    objective: float
    bound: float
    gap: float
    method: str
    feasible: bool
    reasons: tuple[str, ...] = ()
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Problem:
    """The instance as arrays; rows are grouped by loan (loan i owns rows starts[i]:ends[i])."""

    frame_rows: np.ndarray  # position of each row in the caller's frame
    loan_of_row: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    keep_rows: np.ndarray
    value: np.ndarray
    usage: sp.csr_array  # rows × limits, "≤" orientation
    rhs: np.ndarray
    names: list[str]
    money: np.ndarray  # bool per limit: currency amounts (else counts)
    scale: np.ndarray  # per-limit usage scale used by the dual and tolerances
    least: np.ndarray  # per-limit least usage reachable by any choice

    @property
    def n_loans(self) -> int:
        return len(self.starts)

    @property
    def n_limits(self) -> int:
        return len(self.rhs)

    def totals(self, sel: np.ndarray) -> np.ndarray:
        """Usage of every limit when loan i takes row ``sel[i]``."""
        return np.asarray(self.usage[sel].sum(axis=0)).ravel()

    def tolerance(self) -> np.ndarray:
        # Counts are exact; money sums of many floats carry rounding noise.
        return np.where(self.money, 1e-6 + 1e-11 * self.scale, 1e-9)


def select_plans(
    candidates: pd.DataFrame,
    limits: PortfolioLimits,
    method: str = "auto",
    exact_max_loans: int = 20000,
    time_limit: float = 60.0,
) -> Selection:
    """Pick one candidate plan per loan maximising total value under the portfolio limits.

    Args:
        candidates: one row per (loan, candidate plan) with the columns in
            ``REQUIRED_COLUMNS``; money in currency units; every loan has a ``"keep"`` row.
        limits: the portfolio-wide limits.
        method: ``"auto"`` (exact CP-SAT up to ``exact_max_loans`` loans, else Lagrangian),
            ``"exact-cpsat"``, ``"exact-cbc"`` or ``"lagrangian"``.
        exact_max_loans: largest portfolio ``"auto"`` solves exactly.
        time_limit: seconds allowed to the exact solver (and to the dual iterations).

    Limits that cannot be met are relaxed to the best level found and named in ``reasons``;
    this never raises for infeasible limits. Raises InputError for malformed candidates.
    """
    started = time.perf_counter()
    if method not in METHODS:
        raise InputError(
            f"unknown method {method!r}; use one of {', '.join(METHODS)}", field="method"
        )
    problem = _build_problem(candidates, limits)
    stats: dict[str, Any] = {"n_loans": problem.n_loans, "n_candidates": len(problem.value)}
    if problem.n_loans == 0:
        stats |= {"seconds": time.perf_counter() - started, "iterations": 0}
        stats["solver_status"] = "EMPTY"
        chosen = candidates.iloc[0:0].reset_index(drop=True)
        return Selection(
            chosen, 0.0, 0.0, 0.0, _resolve(method, 0, exact_max_loans), True, (), stats
        )

    original_rhs = problem.rhs.copy()
    reasons = _relax_unattainable(problem)
    dual = _solve_dual(problem, time_limit=time_limit)
    sel = _primal_heuristic(problem, dual)
    stats |= {"iterations": dual.iterations, "dual_seconds": dual.seconds}

    resolved = _resolve(method, problem.n_loans, exact_max_loans)
    if resolved == "lagrangian":
        stats["solver_status"] = "HEURISTIC"
        if _violations(problem, sel).any():
            reasons += _relax_to_selection(problem, sel, proof="the greedy repair")
            dual = _solve_dual(problem, time_limit=time_limit, start=dual.prices)
            sel = _fill(problem, sel)
            stats["iterations"] += dual.iterations
    else:
        solve = _solve_cpsat if resolved == "exact-cpsat" else _solve_cbc
        exact = solve(problem, sel, time_limit)
        if exact.status == "INFEASIBLE":
            reasons += _relax_to_selection(problem, sel, proof=resolved)
            dual = _solve_dual(problem, time_limit=time_limit, start=dual.prices)
            stats["iterations"] += dual.iterations
            exact = solve(problem, sel, time_limit)
        stats["solver_status"] = exact.status
        stats |= exact.stats
        if exact.sel is not None and (
            problem.value[exact.sel].sum() >= problem.value[sel].sum()
            or _violations(problem, sel).any()
        ):
            sel = exact.sel

    objective = float(problem.value[sel].sum())
    # The dual bound is exact for the float data; a selection meeting the limits only to
    # within rounding tolerance (cents in CP-SAT) may sit a hair above it.
    bound = max(dual.bound, objective)
    used = problem.totals(sel)
    feasible = bool(np.all(used <= original_rhs + problem.tolerance()))
    stats["seconds"] = time.perf_counter() - started
    # Usage per limit as a person reads it (collections positive), against the limit given,
    # and its multiplier in currency units: the LP-relaxation value gained per unit the limit
    # is relaxed (per currency unit of budget or floor, per loan of a cap or review slot).
    prices = dual.prices / problem.scale * _value_spread(problem) if problem.n_limits else []
    stats["limits"] = {
        name: {
            "used": float(u * sign),
            "limit": float(b * sign),
            "relaxed_to": float(r * sign),
            "price": float(p),
        }
        for name, u, b, r, sign, p in zip(
            problem.names, used, original_rhs, problem.rhs, _signs(problem), prices, strict=True
        )
    }
    chosen = candidates.iloc[problem.frame_rows[sel]].reset_index(drop=True)
    chosen = chosen[
        ["loan_id", "candidate", *[c for c in chosen.columns if c not in ("loan_id", "candidate")]]
    ]
    return Selection(
        chosen=chosen,
        objective=objective,
        bound=float(bound),
        gap=float((bound - objective) / max(abs(bound), 1.0)),
        method=resolved,
        feasible=feasible,
        reasons=tuple(reasons),
        stats=stats,
    )


def _resolve(method: str, n_loans: int, exact_max_loans: int) -> str:
    if method == "auto":
        return "exact-cpsat" if n_loans <= exact_max_loans else "lagrangian"
    return method


# --------------------------------------------------------------------------- validation


def _build_problem(candidates: pd.DataFrame, limits: PortfolioLimits) -> _Problem:
    """Validate ``candidates`` and turn them into arrays grouped by loan."""
    for column in REQUIRED_COLUMNS:
        if column not in candidates.columns:
            raise InputError("missing column", field=column, record="candidates")
    frame = candidates.reset_index(drop=True)
    loan_ids = frame["loan_id"]
    if loan_ids.isna().any():
        row = int(np.flatnonzero(loan_ids.isna().to_numpy())[0])
        raise InputError("is empty", field="loan_id", record=f"candidates row {row}")
    cand = frame["candidate"].astype(str)

    def where(rows: np.ndarray) -> str:
        r = int(rows[0])
        return f"loan {loan_ids.iat[r]} candidate {cand.iat[r]!r}"

    numeric = {}
    for column in _NUMERIC:
        values = pd.to_numeric(frame[column], errors="coerce").to_numpy(dtype=float)
        bad = ~np.isfinite(values)
        if bad.any():
            raise InputError(
                "must be a finite number", field=column, record=where(np.flatnonzero(bad))
            )
        numeric[column] = values
    if (numeric["concession"] < 0).any():
        rows = np.flatnonzero(numeric["concession"] < 0)
        raise InputError("must be >= 0", field="concession", record=where(rows))
    flags = {}
    for column in _FLAGS:
        raw = frame[column]
        if raw.dtype == bool:
            flags[column] = raw.to_numpy()
            continue
        values = pd.to_numeric(raw, errors="coerce").to_numpy(dtype=float)
        bad = ~np.isin(values, (0.0, 1.0))
        if bad.any():
            raise InputError(
                "must be true or false", field=column, record=where(np.flatnonzero(bad))
            )
        flags[column] = values == 1.0

    codes, _ = pd.factorize(loan_ids, sort=False)
    dup = frame.assign(candidate=cand).duplicated(["loan_id", "candidate"]).to_numpy()
    if dup.any():
        raise InputError(
            "appears twice for this loan", field="candidate", record=where(np.flatnonzero(dup))
        )
    order = np.argsort(codes, kind="stable")
    loan_of_row = codes[order]
    n_loans = int(codes.max()) + 1 if len(codes) else 0
    counts = np.bincount(loan_of_row, minlength=n_loans)
    ends = np.cumsum(counts)
    starts = ends - counts

    is_keep = (cand.to_numpy() == KEEP)[order]
    keeps = np.bincount(loan_of_row, weights=is_keep, minlength=n_loans)
    if (keeps == 0).any():
        loan = int(np.flatnonzero(keeps == 0)[0])
        first = loan_ids.iat[int(order[starts[loan]])]
        raise InputError(
            f"has no {KEEP!r} candidate row", field="candidate", record=f"loan {first}"
        )
    keep_rows = np.flatnonzero(is_keep)  # exactly one per loan, in loan order
    keep_frame = order[keep_rows]
    for column, bad in (
        ("concession", numeric["concession"][keep_frame] != 0),
        ("restructure", flags["restructure"][keep_frame]),
    ):
        if bad.any():
            raise InputError(
                "the 'keep' row must have zero concession and not be a restructure",
                field=column,
                record=f"loan {loan_ids.iat[int(keep_frame[np.flatnonzero(bad)[0]])]}",
            )
    seg_codes, segments = pd.factorize(frame["segment"].astype(str), sort=False)
    seg_of_row = seg_codes[order]
    seg_of_loan = seg_of_row[keep_rows]
    mixed = seg_of_row != seg_of_loan[loan_of_row]
    if mixed.any():
        raise InputError(
            "differs between the candidates of one loan",
            field="segment",
            record=where(order[mixed]),
        )

    value = numeric["value"][order]
    cols: list[np.ndarray] = []
    rhs: list[float] = []
    names: list[str] = []
    money: list[bool] = []

    def add(usage: np.ndarray, bound: float, name: str, is_money: bool) -> None:
        cols.append(usage)
        rhs.append(bound)
        names.append(name)
        money.append(is_money)

    if limits.concession_budget is not None:
        add(numeric["concession"][order], limits.concession_budget, "concession budget", True)
    if limits.collection_floors is not None:
        for month, floor in enumerate(limits.collection_floors, start=1):
            add(
                -numeric[f"collections_{month}"][order],
                -floor,
                f"collection floor month {month}",
                True,
            )
    restructure = flags["restructure"][order]
    loans_per_segment = np.bincount(seg_of_loan, minlength=len(segments))
    for segment, cap in limits.segment_caps.items():
        matches = np.flatnonzero(segments == segment)
        if len(matches) == 0:
            continue  # no loan of that segment tonight: nothing to cap
        code = int(matches[0])
        allowed = math.floor(cap * loans_per_segment[code] + 1e-9)
        add(restructure & (seg_of_row == code), allowed, f"segment cap {segment!r}", False)
    if limits.review_capacity is not None:
        add(flags["needs_review"][order], limits.review_capacity, "review capacity", False)

    n_rows = len(order)
    # Sparse columns: segment caps and reviews touch few rows, and dense rows × limits would
    # not fit for millions of rows with many segments.
    row_idx, col_idx, data = [], [], []
    for c, column in enumerate(cols):
        nz = np.flatnonzero(column)
        row_idx.append(nz)
        col_idx.append(np.full(len(nz), c, dtype=np.int64))
        data.append(column[nz].astype(float))
    usage = sp.csr_array(
        (
            np.concatenate(data) if data else np.zeros(0),
            (
                np.concatenate(row_idx) if row_idx else np.zeros(0, dtype=np.int64),
                np.concatenate(col_idx) if col_idx else np.zeros(0, dtype=np.int64),
            ),
        ),
        shape=(n_rows, len(cols)),
    )
    rhs_arr = np.asarray(rhs, dtype=float)
    # Per limit: the least usage any choice of plans reaches (each loan on its lowest row),
    # and the scale (the most usage any choice could produce) that makes prices comparable.
    least = np.array([np.minimum.reduceat(col.astype(float), starts).sum() for col in cols])
    spread = np.array(
        [np.maximum.reduceat(np.abs(col.astype(float)), starts).sum() for col in cols]
    )
    scale = np.maximum(np.maximum(spread, np.abs(rhs_arr)), 1.0) if cols else np.zeros(0)
    return _Problem(
        frame_rows=order,
        loan_of_row=loan_of_row,
        starts=starts,
        ends=ends,
        keep_rows=keep_rows,
        value=value,
        usage=usage,
        rhs=rhs_arr,
        names=names,
        money=np.asarray(money, dtype=bool),
        scale=scale,
        least=least if cols else np.zeros(0),
    )


# --------------------------------------------------------------------------- infeasibility


def _signs(problem: _Problem) -> np.ndarray:
    """+1 per limit, −1 for collection floors (stored negated to read as ``usage ≤ rhs``)."""
    return np.array([-1.0 if n.startswith("collection floor") else 1.0 for n in problem.names])


def _level(problem: _Problem, c: int, amount: float) -> str:
    """A limit's level as a person reads it."""
    shown = amount * _signs(problem)[c]
    return f"{shown:,.2f}" if problem.money[c] else f"{shown:,.0f}"


def _relax_unattainable(problem: _Problem) -> list[str]:
    """Relax each limit that no choice can meet even on its own, to its attainable extreme."""
    reasons = []
    attainable = problem.least
    for c in np.flatnonzero(attainable > problem.rhs + problem.tolerance()):
        reasons.append(
            f"{problem.names[c]}: {_level(problem, c, problem.rhs[c])} required but "
            f"{_level(problem, c, attainable[c])} is the best any choice of plans reaches; "
            f"relaxed to {_level(problem, c, attainable[c])}"
        )
        problem.rhs[c] = attainable[c]
    return reasons


def _relax_to_selection(problem: _Problem, sel: np.ndarray, proof: str) -> list[str]:
    """Relax the limits ``sel`` breaks to what it uses (it is the best effort found)."""
    used = problem.totals(sel)
    reasons = []
    for c in np.flatnonzero(used > problem.rhs + problem.tolerance()):
        reasons.append(
            f"{problem.names[c]}: {_level(problem, c, problem.rhs[c])} cannot be met together "
            f"with the other limits ({proof}); relaxed to {_level(problem, c, used[c])}"
        )
        problem.rhs[c] = used[c]
    return reasons


def _violations(problem: _Problem, sel: np.ndarray) -> np.ndarray:
    return problem.totals(sel) > problem.rhs + problem.tolerance()


def _group_reduce(problem: _Problem, rows: np.ndarray, ufunc: np.ufunc) -> np.ndarray:
    return ufunc.reduceat(rows, problem.starts, axis=0)


def _first_arg(problem: _Problem, scores: np.ndarray, best: np.ndarray) -> np.ndarray:
    """Row index of the first row of each loan whose score equals that loan's ``best``."""
    hits = np.flatnonzero(scores == best[problem.loan_of_row])
    loans = problem.loan_of_row[hits]
    first = np.ones(len(hits), dtype=bool)
    first[1:] = loans[1:] != loans[:-1]
    return hits[first]


# --------------------------------------------------------------------------- Lagrangian dual


@dataclass
class _Dual:
    bound: float  # best (lowest) dual value, currency units
    prices: np.ndarray  # multipliers at that value, scaled units
    sel: np.ndarray  # the subproblem's choice at those prices
    best_feasible: np.ndarray | None  # best choice met along the way that meets every limit
    iterations: int
    seconds: float


def _solve_dual(problem: _Problem, time_limit: float, start: np.ndarray | None = None) -> _Dual:
    """Minimise L(λ) = Σ_i max_k (v − λ·a) + λ·b over 0 ≤ λ ≤ _MAX_PRICE (box-step cuts).

    Values are divided by the total value spread and usage by each limit's scale, so one box
    size fits every limit. Each evaluation costs one sparse mat-vec and one group max.
    """
    started = time.perf_counter()
    m = problem.n_limits
    spread = _group_reduce(problem, problem.value, np.maximum) - _group_reduce(
        problem, problem.value, np.minimum
    )
    v_scale = max(float(spread.sum()), 1.0)
    value = problem.value / v_scale
    usage = problem.usage @ sp.diags_array(1.0 / problem.scale) if m else problem.usage
    rhs = problem.rhs / problem.scale if m else problem.rhs
    tol = problem.tolerance() / problem.scale if m else problem.rhs
    best_feasible: np.ndarray | None = None
    best_feasible_value = -math.inf

    def evaluate(prices: np.ndarray) -> tuple[float, np.ndarray, np.ndarray]:
        nonlocal best_feasible, best_feasible_value
        reduced = value - usage @ prices if m else value
        best = _group_reduce(problem, reduced, np.maximum)
        sel = _first_arg(problem, reduced, best)
        used = np.asarray(usage[sel].sum(axis=0)).ravel()
        if np.all(used <= rhs + tol):
            total = value[sel].sum()
            if total > best_feasible_value:
                best_feasible, best_feasible_value = sel, total
        return float(best.sum() + prices @ rhs), rhs - used, sel

    center = np.zeros(m) if start is None else np.clip(start, 0.0, _MAX_PRICE)
    f_center, g_center, sel_center = evaluate(center)
    cuts_g, cuts_rhs = [g_center], [g_center @ center - f_center]
    radius = 1.0
    iterations = 1
    while m and iterations < _DUAL_MAX_ITERATIONS and time.perf_counter() - started < time_limit:
        # Master: min η s.t. η ≥ f_j + g_j·(λ − λ_j) for every cut j, λ in a box around centre.
        lo = np.maximum(center - radius, 0.0)
        hi = np.minimum(center + radius, _MAX_PRICE)
        a_ub = np.hstack([np.asarray(cuts_g), -np.ones((len(cuts_g), 1))])
        res = linprog(
            np.r_[np.zeros(m), 1.0],
            A_ub=a_ub,
            b_ub=np.asarray(cuts_rhs),
            bounds=[*zip(lo, hi, strict=True), (None, None)],
            method="highs",
        )
        if res.status != 0:
            break
        trial, predicted = res.x[:m], res.x[m]
        if f_center - predicted <= _DUAL_TOLERANCE * (1.0 + abs(f_center)):
            break
        f_trial, g_trial, sel_trial = evaluate(trial)
        iterations += 1
        cuts_g.append(g_trial)
        cuts_rhs.append(g_trial @ trial - f_trial)
        if f_trial <= f_center - 0.1 * (f_center - predicted):
            on_edge = np.any((np.abs(trial - center) >= 0.99 * radius) & (trial > 0))
            center, f_center, sel_center = trial, f_trial, sel_trial
            if on_edge:
                radius *= 2.0
    return _Dual(
        bound=f_center * v_scale,
        prices=center,
        sel=sel_center,
        best_feasible=best_feasible,
        iterations=iterations,
        seconds=time.perf_counter() - started,
    )


# --------------------------------------------------------------------------- repair and fill


def _primal_heuristic(problem: _Problem, dual: _Dual) -> np.ndarray:
    """Best selection found from the dual's choice, the best feasible one met, and all-keep."""
    starts = [dual.sel] + ([dual.best_feasible] if dual.best_feasible is not None else [])
    results = []
    for sel in starts:
        repaired = _repair(problem, sel.copy(), dual.prices)
        results.append(
            _fill(problem, repaired) if not _violations(problem, repaired).any() else repaired
        )
    if all(_violations(problem, s).any() for s in results):
        repaired = _repair(problem, problem.keep_rows.copy(), dual.prices)
        results.append(
            _fill(problem, repaired) if not _violations(problem, repaired).any() else repaired
        )

    def rank(sel: np.ndarray) -> tuple[float, float]:
        excess = np.maximum(problem.totals(sel) - problem.rhs, 0.0) / np.maximum(problem.scale, 1.0)
        return (-float(excess.sum()), float(problem.value[sel].sum()))

    return max(results, key=rank)


def _swap_deltas(problem: _Problem, sel: np.ndarray) -> sp.csr_array:
    """Per row: change of every limit's usage if its loan switched from ``sel`` to that row."""
    return problem.usage - problem.usage[sel[problem.loan_of_row]]


def _repair(problem: _Problem, sel: np.ndarray, prices: np.ndarray) -> np.ndarray:
    """Greedy: while a limit is broken, make the swaps that free it at least cost.

    Cost of a swap = value lost + dual price of the other limits it uses more of, per unit of
    the broken limit it frees. Swaps may use other limits only within their slack (none for a
    broken one), so no limit gets worse and each round shrinks the total excess.
    """
    tol = problem.tolerance()
    prices_abs = prices / problem.scale * _value_spread(problem)
    for _ in range(_REPAIR_ROUNDS):
        excess = problem.totals(sel) - problem.rhs
        broken = excess > tol
        if not broken.any():
            break
        c = int(np.argmax(np.where(broken, excess / problem.scale, -np.inf)))
        slack = np.maximum(-excess, 0.0) + tol
        slack[c] = np.inf
        deltas = _swap_deltas(problem, sel)
        frees = -deltas[:, [c]].toarray().ravel()
        growth = deltas.maximum(0)
        weights = prices_abs.copy()
        weights[c] = 0.0
        usable = (frees > 0) & (growth @ (1.0 / slack) <= 1.0)
        loss = problem.value[sel[problem.loan_of_row]] - problem.value + growth @ weights
        ratio = np.where(usable, loss / np.where(usable, frees, 1.0), np.inf)
        best = _group_reduce(problem, ratio, np.minimum)
        rows = _first_arg(problem, ratio, best)
        rows = rows[np.isfinite(ratio[rows])]
        if len(rows) == 0:
            break
        rows = rows[np.argsort(ratio[rows], kind="stable")]
        gained = np.cumsum(frees[rows])
        rows = rows[: int(np.searchsorted(gained, excess[c] - tol[c])) + 1]
        # Stop before the swaps together overdraw another limit's slack.
        running = np.cumsum(deltas[rows].toarray(), axis=0)
        over = np.flatnonzero(np.any(running > slack, axis=1))
        if len(over):
            rows = rows[: max(int(over[0]), 1)]
        sel[problem.loan_of_row[rows]] = rows
    return sel


def _value_spread(problem: _Problem) -> float:
    spread = _group_reduce(problem, problem.value, np.maximum) - _group_reduce(
        problem, problem.value, np.minimum
    )
    return max(float(spread.sum()), 1.0)


def _fill(problem: _Problem, sel: np.ndarray) -> np.ndarray:
    """Greedy: spend the slack left on the swaps with most value gained per share of slack."""
    tol = problem.tolerance()
    for _ in range(_FILL_ROUNDS):
        slack = np.maximum(problem.rhs - problem.totals(sel), 0.0) + tol
        deltas = _swap_deltas(problem, sel)
        gain = problem.value - problem.value[sel[problem.loan_of_row]]
        need = deltas.maximum(0) @ (1.0 / slack) if problem.n_limits else np.zeros_like(gain)
        fits = need <= 1.0
        score = np.where((gain > 1e-12) & fits, gain / np.maximum(need, 1e-12), -np.inf)
        best = _group_reduce(problem, score, np.maximum)
        rows = _first_arg(problem, score, best)
        rows = rows[np.isfinite(score[rows])]
        if len(rows) == 0:
            break
        order = rows[np.argsort(-score[rows], kind="stable")]
        if problem.n_limits:
            running = np.cumsum(deltas[order].toarray(), axis=0)
            ok = np.flatnonzero(np.all(running <= slack, axis=1))
            order = order[:1] if len(ok) == 0 else order[: ok[-1] + 1]
        sel[problem.loan_of_row[order]] = order
    return sel


# --------------------------------------------------------------------------- exact solvers


@dataclass
class _Exact:
    sel: np.ndarray | None
    status: str
    stats: dict[str, Any]


def _cents(amounts: np.ndarray) -> np.ndarray:
    return np.rint(amounts * 100.0).astype(np.int64)  # np.rint rounds half to even


def _integer_rhs(problem: _Problem) -> np.ndarray:
    """Limits in the integer model's units, rounded in the safe direction (tighter)."""
    scaled = np.where(problem.money, problem.rhs * 100.0, problem.rhs)
    return np.floor(scaled + 1e-6).astype(np.int64)


def _solve_cpsat(problem: _Problem, hint: np.ndarray, time_limit: float) -> _Exact:
    """CP-SAT on integer cents: value, concession and collections ×100, rounded half-even."""
    from ortools.sat.python import cp_model

    model = cp_model.CpModel()
    n_rows = len(problem.value)
    x = [model.new_bool_var("") for _ in range(n_rows)]
    for lo, hi in zip(problem.starts.tolist(), problem.ends.tolist(), strict=True):
        model.add_exactly_one(x[lo:hi])
    usage = problem.usage.tocsc()
    rhs = _integer_rhs(problem)
    for c in range(problem.n_limits):
        column = usage[:, [c]]
        rows = column.indices
        coeffs = _cents(column.data) if problem.money[c] else np.rint(column.data).astype(np.int64)
        model.add(
            cp_model.LinearExpr.weighted_sum([x[r] for r in rows], coeffs.tolist()) <= int(rhs[c])
        )
    model.maximize(cp_model.LinearExpr.weighted_sum(x, _cents(problem.value).tolist()))
    hinted = np.zeros(n_rows, dtype=bool)
    hinted[hint] = True
    for var, on in zip(x, hinted.tolist(), strict=True):
        model.add_hint(var, on)
    solver = cp_model.CpSolver()
    solver.parameters.max_time_in_seconds = float(time_limit)
    solver.parameters.num_workers = max(os.cpu_count() or 1, 2)
    status = solver.solve(model)
    name = solver.status_name(status)
    stats = {
        "exact_seconds": solver.wall_time,
        "solver_bound": solver.best_objective_bound / 100.0,
        "branches": solver.num_branches,
    }
    if status not in (cp_model.OPTIMAL, cp_model.FEASIBLE):
        return _Exact(None, name, stats)
    on = solver.boolean_values(x).to_numpy(dtype=bool)
    return _Exact(np.flatnonzero(on), name, stats)


def _solve_cbc(problem: _Problem, hint: np.ndarray, time_limit: float) -> _Exact:
    """CBC through PuLP on the float data, warm-started from ``hint``."""
    import pulp

    started = time.perf_counter()
    n_rows = len(problem.value)
    prob = pulp.LpProblem("portfolio_selection", pulp.LpMaximize)
    x = [prob.add_variable(f"x{r}", cat=pulp.LpBinary) for r in range(n_rows)]
    prob += pulp.LpAffineExpression(zip(x, problem.value.tolist(), strict=True))
    for i, (lo, hi) in enumerate(zip(problem.starts.tolist(), problem.ends.tolist(), strict=True)):
        prob += pulp.LpAffineExpression((v, 1.0) for v in x[lo:hi]) == 1, f"one_{i}"
    usage = problem.usage.tocsc()
    for c in range(problem.n_limits):
        column = usage[:, [c]]
        terms = zip([x[r] for r in column.indices], column.data.tolist(), strict=True)
        prob += pulp.LpAffineExpression(terms) <= float(problem.rhs[c]), f"limit_{c}"
    hinted = np.zeros(n_rows, dtype=bool)
    hinted[hint] = True
    for var, on in zip(x, hinted.tolist(), strict=True):
        var.setInitialValue(1 if on else 0)
    with warnings.catch_warnings():
        # PuLP 3.3 flags PULP_CBC_CMD for 4.0, yet it is the only CBC here (COIN_CMD needs a
        # system cbc); pyproject pins pulp 3.3 because 4.x needs Python 3.12.
        warnings.simplefilter("ignore", DeprecationWarning)
        solver = pulp.PULP_CBC_CMD(msg=False, timeLimit=time_limit, warmStart=True)
        prob.solve(solver)
    stats = {"exact_seconds": time.perf_counter() - started}
    if prob.sol_status == pulp.LpSolutionInfeasible or prob.status == pulp.LpStatusInfeasible:
        return _Exact(None, "INFEASIBLE", stats)
    if prob.sol_status not in (pulp.LpSolutionOptimal, pulp.LpSolutionIntegerFeasible):
        return _Exact(None, pulp.LpStatus[prob.status].upper(), stats)
    values = np.array([v.varValue or 0.0 for v in x])
    best = _group_reduce(problem, values, np.maximum)
    status = "OPTIMAL" if prob.sol_status == pulp.LpSolutionOptimal else "FEASIBLE"
    return _Exact(_first_arg(problem, values, best), status, stats)
