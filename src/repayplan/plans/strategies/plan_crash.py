"""A starting basis for the plan LP, guessed from its structure (a "crash"), for ``fast``.

The balanced plan LP (:func:`repayplan.plans.model.build_program`) is, once the balances are
eliminated, a fractional knapsack: pay off the opening balance's present value
``Σ_t p_t / G_t`` (``G_t`` the accumulated growth factor) from per-period pieces — each payment
split over the burden curve's pieces — each with its own cost per unit of present value
``(c_p + c_{t,k} / y_t) · G_t``. Filling the cheapest pieces first (convex pieces fill in order)
solves it when the no-negative-amortisation rows and the yield floor do not bind, which is the
usual case; where they do, the guess is still close.

The guessed point is turned into basis statuses (at a bound → non-basic, else basic) and handed
to HiGHS as an *alien* basis (HiGHS repairs a wrong count of basic variables). The simplex
then proves optimality or pivots on from there, so the answer is exact whatever the guess; a good
guess only saves iterations (≈ 210 → a handful on the benchmark loans).

The structure is read from the row and column names the plan model gives (``p[t]``, ``b[t]``,
``d[i]``, ``balance[t]``, ``hazard[t]``, ``afford[t]``, ``negam[t]``, ``yield_floor``);
:func:`plan_crash` answers ``None`` for any other program, which ``fast`` then solves from
HiGHS's own start.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from functools import lru_cache

import highspy
import numpy as np
import scipy.sparse as sp

from repayplan.plans.lp import LinearProgram

#: Row families the knapsack guess accounts for (others would make it a poor guess).
_KNOWN_ROWS = frozenset({"balance", "afford", "negam", "yield_floor", "hazard"})

_LOWER = highspy.HighsBasisStatus.kLower
_UPPER = highspy.HighsBasisStatus.kUpper
_BASIC = highspy.HighsBasisStatus.kBasic
_BY_CODE = np.array([_LOWER, _BASIC, _UPPER], dtype=object)


@dataclass(frozen=True)
class _Layout:
    """Where the plan's blocks sit: first column / row of each block and the sizes."""

    h: int  # periods
    k: int  # burden-curve pieces per period
    p: int
    b: int
    d: int
    w: int | None
    balance: int
    hazard: int


def _named_block(names: tuple[str, ...], name: str, size: int) -> int | None:
    """Index of ``name[1]`` when ``name[1] … name[size]`` follow each other there."""
    try:
        start = names.index(f"{name}[1]")
    except ValueError:
        return None
    last = start + size - 1
    if last >= len(names) or names[last] != f"{name}[{size}]":
        return None
    return start


_FAMILY = re.compile(r"([A-Za-z_]+)(?:\[\d+\])?\|")


def _layout(lp: LinearProgram) -> _Layout | None:
    if not lp.row_names or not lp.var_names or lp.is_mip:
        return None
    lay = _named_layout(lp.row_names, lp.var_names)
    if lay is None:
        return None
    if lay.hazard < 0:
        return lay  # no burden curve (total-paid objective): one piece a period
    indptr = lp.A.indptr
    # The last period's row holds p[H] and its pieces (a payment holiday, whose hazard rows
    # lack p[t], never reaches the last period; reading the first row miscounted those).
    last = lay.hazard + lay.h - 1
    k = int(indptr[last + 1] - indptr[last]) - 1
    if k < 1 or _named_block(lp.var_names, "d", lay.h * k) != lay.d:
        return None
    return replace(lay, k=k)


@lru_cache(maxsize=1024)
def _named_layout(rows: tuple[str, ...], cols: tuple[str, ...]) -> _Layout | None:
    # Same-shaped plans share their name tuples' contents, so a batch pays for this once per
    # shape (tuple hashing and comparison are cheap next to the scan).
    # Every row must belong to a family the guess understands (one regex pass, in C).
    if not set(_FAMILY.findall("|".join(rows) + "|")) <= _KNOWN_ROWS:
        return None
    try:
        p, b = cols.index("p[1]"), cols.index("b[1]")
    except ValueError:
        return None
    h = b - p  # the model stores p[1..H] then b[1..H]
    if h < 2 or _named_block(cols, "p", h) != p or _named_block(cols, "b", h) != b:
        return None
    balance = _named_block(rows, "balance", h)
    hazard = _named_block(rows, "hazard", h)
    if balance is None:
        return None
    if hazard is None:
        if "hazard[1]" in rows or "d[1]" in cols:
            return None
        w = cols.index("w") if "w" in cols else None
        return _Layout(h=h, k=0, p=p, b=b, d=-1, w=w, balance=balance, hazard=-1)
    try:
        d = cols.index("d[1]")
    except ValueError:
        return None
    w = cols.index("w") if "w" in cols else None
    return _Layout(h=h, k=0, p=p, b=b, d=d, w=w, balance=balance, hazard=hazard)


def _positions(lay: _Layout, a: sp.csr_matrix) -> np.ndarray | None:
    """Where in ``a.data`` the coefficients the guess reads sit: ``−(1 + r_t)`` of
    ``b[t−1]`` in ``balance[t]`` (t ≥ 2), ``p[t]`` in ``balance[t]``, the pieces ``d[t,·]``
    in ``hazard[t]``, then ``w`` in ``balance[1]``. Same-shaped plans store them at the same
    places, so the search runs once per shape and later programs only verify it."""
    cached = _POSITIONS.get(lay)
    if cached is not None:
        found, want_cols = cached
        if found.max() < a.nnz and (a.indices[found] == want_cols).all():
            return found
    t = np.arange(lay.h)
    want_rows = np.concatenate(
        (
            lay.balance + t[1:],
            lay.balance + t,
            np.repeat(lay.hazard + t, lay.k),
            [lay.balance] if lay.w is not None else [],
        )
    ).astype(np.int64)
    want_cols = np.concatenate(
        (
            lay.b + t[:-1],
            lay.p + t,
            lay.d + np.arange(lay.h * lay.k),
            [lay.w] if lay.w is not None else [],
        )
    ).astype(np.int64)
    rows_of = np.repeat(np.arange(a.shape[0]), np.diff(a.indptr))
    key = rows_of * a.shape[1] + a.indices
    order = np.argsort(key, kind="stable")
    wanted = want_rows * a.shape[1] + want_cols
    at = np.searchsorted(key[order], wanted)
    hit = at < key.size
    hit[hit] = key[order][at[hit]] == wanted[hit]
    if not hit.all():
        return None
    found = order[at]
    if len(_POSITIONS) > 1024:
        _POSITIONS.clear()
    _POSITIONS[lay] = (found, want_cols)
    return found


_POSITIONS: dict[_Layout, tuple[np.ndarray, np.ndarray]] = {}


@dataclass(frozen=True)
class Crash:
    """What the structure says about a program before solving it.

    ``basis``: an alien HiGHS basis guessed for a plan LP (None when ``lp`` is not one, or
    no guess could be made); ``likely_infeasible``: the plan LP's relaxation without the
    no-negative-amortisation rows and the yield floor cannot repay the balance (even
    every payment at its cap falls short, the minimum payments overpay, or a cap is below
    the minimum payment), so the program is almost surely infeasible — a hint for how to
    run the solver, never the answer itself.
    """

    basis: highspy.HighsBasis | None = None
    likely_infeasible: bool = False


_NONE = Crash()


def plan_crash(lp: LinearProgram) -> Crash:
    """Guess a starting basis for ``lp`` from its plan structure (see the module docstring)."""
    lay = _layout(lp)
    if lay is None:
        level = _level_layout(lp)
        if level is None:
            return _NONE
        x = _level_point(lp, level)
        return _NONE if x is None else Crash(basis=_statuses(lp, x))
    x = _guess(lp, lay)
    if x is None:
        return _NONE
    if x is _SHORT:
        return Crash(likely_infeasible=True)
    return Crash(basis=_statuses(lp, x))


#: The knapsack's answer when the payments cannot repay the balance at all.
_SHORT = np.zeros(0)


def _guess(lp: LinearProgram, lay: _Layout) -> np.ndarray | None:
    """The fractional-knapsack point (every column); None when the pattern is unexpected,
    ``_SHORT`` when the knapsack cannot be filled."""
    h, k = lay.h, lay.k
    a = lp.A
    # The blocks are contiguous: slices (views) cost far less than index arrays here.
    pc, bc, dcols = slice(lay.p, lay.p + h), slice(lay.b, lay.b + h), slice(lay.d, lay.d + h * k)
    pos = _positions(lay, a)
    if pos is None:
        return None
    vals = a.data[pos]
    # balance[t]: b_t + p_t − (1 + r_t) b_{t−1} = rhs_t (rhs only in t = 0);
    # hazard[t]: p_t − y_t Σ_k d[t,k] = −extra_t.
    growth_next = -vals[: h - 1]  # 1 + r_t for t ≥ 1
    own_p = vals[h - 1 : 2 * h - 1]
    w_coef = float(vals[-1]) if lay.w is not None else 0.0
    if k:
        pieces = vals[2 * h - 1 : 2 * h - 1 + h * k].reshape(h, k)
        y = -pieces[:, 0]
        extra = -lp.row_lower[lay.hazard : lay.hazard + h]
        width = lp.upper[dcols].reshape(h, k)
        dcost = lp.c[dcols].reshape(h, k)
    else:  # no burden curve: each payment is one piece, priced at its own cost
        pieces, y = -np.ones((h, 1)), np.ones(h)
        extra = np.zeros(h)
        width = np.full((h, 1), np.inf)
        dcost = np.zeros((h, 1))
    # (ndarray methods and ufuncs below: numpy's function wrappers cost µs each here)
    if (
        growth_next.min() <= 0
        or np.abs(own_p - 1.0).max() > 1e-12
        or y.min() <= 0
        or np.abs(pieces + y[:, None]).max() > 1e-9 * y.max()
    ):
        return None
    g = np.empty(h)
    g[0] = 1.0
    growth_next.cumprod(out=g[1:])  # G'_t, relative to period 1
    rhs0 = float(lp.row_lower[lay.balance])

    # Payment bounds: the column's own, tightened by single-entry rows (the afford caps).
    lo = lp.lower[pc].astype(float)
    hi = lp.upper[pc].astype(float)
    nnz = np.diff(a.indptr)
    single = np.flatnonzero(nnz == 1)
    col = a.indices[a.indptr[single]]
    val = a.data[a.indptr[single]]
    on_p = (col >= lay.p) & (col < lay.p + h) & (val > 0)
    tp = col[on_p] - lay.p
    np.minimum.at(hi, tp, lp.row_upper[single[on_p]] / val[on_p])
    np.maximum.at(lo, tp, lp.row_lower[single[on_p]] / val[on_p])
    if (hi < lo).any():
        return _SHORT  # a cap below the minimum payment

    # Pieces in payment cents: piece j of period t covers q = p + extra in [y·R_{j−1}, y·R_j].
    kk = width.shape[1]  # k, or the one piece of a plan without a burden curve
    edges = np.zeros((h, kk + 1))
    width.cumsum(axis=1, out=edges[:, 1:])
    edges *= y[:, None]
    shifted = edges - extra[:, None]
    np.maximum(shifted, lo[:, None], out=shifted)
    np.minimum(shifted, hi[:, None], out=shifted)
    start, stop = shifted[:, :-1], shifted[:, 1:]
    room = stop - start  # cents each piece can still take above the minimum payment
    pv_per_cent = 1.0 / g
    cost = (lp.c[pc][:, None] + dcost / y[:, None]) * g[:, None]  # per unit of present value
    need = rhs0 - float((lo * pv_per_cent).sum())
    pieces_pv = (room * pv_per_cent[:, None]).ravel()
    pieces_cost = cost.ravel()
    w_fill = 0.0
    if lay.w is not None:  # the waiver retires present value at its row coefficient
        w_room = float(lp.upper[lay.w] - lp.lower[lay.w])
        if w_coef > 0 and np.isfinite(w_room):
            pieces_pv = np.append(pieces_pv, w_room * w_coef)
            pieces_cost = np.append(pieces_cost, lp.c[lay.w] / w_coef)
        need -= float(lp.lower[lay.w]) * w_coef
    order = pieces_cost.argsort(kind="stable")
    cum = pieces_pv[order].cumsum()
    if not cum.size or cum[-1] < need or need < 0:
        return _SHORT
    filled = np.zeros_like(pieces_pv)
    cut = int(np.searchsorted(cum, need))
    filled[order[:cut]] = pieces_pv[order[:cut]]
    filled[order[cut]] = need - (cum[cut - 1] if cut else 0.0)
    if lay.w is not None and filled.size == h * kk + 1:
        w_fill = filled[-1] / w_coef
        filled = filled[:-1]
    pay = lo + (filled.reshape(h, kk) * g[:, None]).sum(axis=1)

    x = lp.lower.astype(float)
    free = ~np.isfinite(x)
    x[free] = lp.upper[free]
    x[~np.isfinite(x)] = 0.0
    x[pc] = pay
    w_val = 0.0
    if lay.w is not None:
        w_val = float(lp.lower[lay.w]) + w_fill
        x[lay.w] = w_val
        rhs0 -= w_val * w_coef
    x[bc] = g * (rhs0 - (pay / g).cumsum())
    last = lay.b + h - 1
    x[last] = lp.upper[last] if np.isfinite(lp.upper[last]) else x[last]
    if k:
        ratio = (pay + extra) / y
        lower_edge = edges[:, :-1] / y[:, None]
        x[dcols] = np.minimum(np.maximum(ratio[:, None] - lower_edge, 0.0), width).ravel()
    return x


# --- level shapes -----------------------------------------------------------------------

#: Row families of a level plan the exact point below accounts for.
_LEVEL_ROWS = frozenset({"payoff", "afford", "negam", "yield_floor", "hazard"})


@dataclass(frozen=True)
class _LevelLayout:
    """A level plan (one payment column ``p``; balances eliminated): the columns of ``p``,
    ``w`` (None without a waiver) and the first piece ``d[1]``, the ``payoff`` row, the
    first ``hazard`` row, periods ``h`` and pieces a period ``k``."""

    h: int
    k: int
    p: int
    w: int | None
    d: int
    payoff: int
    hazard: int


@lru_cache(maxsize=1024)
def _named_level_layout(rows: tuple[str, ...], cols: tuple[str, ...]) -> _LevelLayout | None:
    if not set(_FAMILY.findall("|".join(rows) + "|")) <= _LEVEL_ROWS:
        return None
    if not cols or cols[0] != "p" or "payoff" not in rows:
        return None
    w = 1 if len(cols) > 1 and cols[1] == "w" else None
    d = 1 if w is None else 2
    n_d = len(cols) - d
    try:
        hazard = rows.index("hazard[1]")
    except ValueError:
        return None
    h = sum(1 for name in rows[hazard:] if name.startswith("hazard["))
    if h < 2 or n_d % h or _named_block(rows, "hazard", h) != hazard:
        return None
    k = n_d // h
    if k < 1 or _named_block(cols, "d", h * k) != d:
        return None
    return _LevelLayout(h=h, k=k, p=0, w=w, d=d, payoff=rows.index("payoff"), hazard=hazard)


def _level_layout(lp: LinearProgram) -> _LevelLayout | None:
    if not lp.row_names or not lp.var_names or lp.is_mip:
        return None
    return _named_level_layout(lp.row_names, lp.var_names)


def _level_point(lp: LinearProgram, lay: _LevelLayout) -> np.ndarray | None:
    """The optimum of a balanced level plan, computed (None when the pattern is unexpected
    or no level payment is feasible).

    The payoff row ``A·P + c_w·w = R`` ties the waiver to the payment, so every other row
    but the hazard rows is an interval for the one payment ``P``; the hazard rows only split
    each period's payment-to-income ratio over the burden curve's pieces (cheapest first).
    The cost is convex in ``P``, so the optimum is the first point of the feasible interval
    where its slope — ``c_P − c_w·A/c_w`` plus each paying period's current piece cost
    over its income — turns non-negative: at the interval's end or at a piece's edge."""
    a = lp.A
    h, k = lay.h, lay.k
    indptr, indices, data = a.indptr, a.indices, a.data
    # payoff: coefficients of p (and w)
    lo_p, hi_p = indptr[lay.payoff], indptr[lay.payoff + 1]
    payoff = dict(zip(indices[lo_p:hi_p].tolist(), data[lo_p:hi_p].tolist(), strict=True))
    acc = payoff.get(lay.p, 0.0)
    cw = payoff.get(lay.w, 0.0) if lay.w is not None else 0.0
    rhs = float(lp.row_lower[lay.payoff])
    if acc <= 0 or set(payoff) - {lay.p, lay.w} or lp.row_upper[lay.payoff] != rhs:
        return None
    # P = (R − c_w·w)/A for w within its bounds.
    p_lo, p_hi = float(lp.lower[lay.p]), float(lp.upper[lay.p])
    if lay.w is not None:
        if cw <= 0:
            return None
        p_lo = max(p_lo, (rhs - cw * float(lp.upper[lay.w])) / acc)
        p_hi = min(p_hi, (rhs - cw * float(lp.lower[lay.w])) / acc)
    else:
        p_lo = p_hi = rhs / acc if p_lo <= rhs / acc <= p_hi else np.nan
    # Every other non-hazard row: β·P + γ within its bounds (w = (R − A·P)/c_w substituted).
    rows = np.repeat(np.arange(a.shape[0]), np.diff(indptr))
    hazard_rows = (rows >= lay.hazard) & (rows < lay.hazard + h)
    other = ~hazard_rows & (rows != lay.payoff)
    if np.any((indices[other] != lay.p) & (indices[other] != (lay.w if lay.w is not None else -1))):
        return None
    on_p = other & (indices == lay.p)
    beta = np.bincount(rows[on_p], data[on_p], minlength=a.shape[0])
    gamma = np.zeros(a.shape[0])
    if lay.w is not None:
        on_w = other & (indices == lay.w)
        a_w = np.bincount(rows[on_w], data[on_w], minlength=a.shape[0])
        beta -= a_w * acc / cw
        gamma = a_w * rhs / cw
    live = np.zeros(a.shape[0], bool)
    live[rows[other]] = True
    live &= beta != 0
    lo_r = (lp.row_lower[live] - gamma[live]) / beta[live]
    hi_r = (lp.row_upper[live] - gamma[live]) / beta[live]
    neg = beta[live] < 0
    lo_r[neg], hi_r[neg] = hi_r[neg], lo_r[neg]
    if lo_r.size:
        p_lo = max(p_lo, float(lo_r.max()))
        p_hi = min(p_hi, float(hi_r.min()))
    if not (np.isfinite(p_lo) and p_lo <= p_hi + 1e-9 * max(1.0, abs(p_lo))):
        return None
    # Hazard rows: P·[paying] − y_t Σ_j d[t,j] = −extra_t.
    d_cols = slice(lay.d, lay.d + h * k)
    y_rows = -data[hazard_rows & (indices >= lay.d)]
    if y_rows.size != h * k:
        return None
    y = y_rows.reshape(h, k)[:, 0]
    paying = np.zeros(h, bool)
    p_in = hazard_rows & (indices == lay.p)
    paying[rows[p_in] - lay.hazard] = True
    if y.min() <= 0 or np.any(data[p_in] != 1.0):
        return None
    extra = -lp.row_lower[lay.hazard : lay.hazard + h]
    width = lp.upper[d_cols].reshape(h, k)
    dcost = lp.c[d_cols].reshape(h, k)
    edges = np.zeros((h, k + 1))
    width.cumsum(axis=1, out=edges[:, 1:])

    def ratio(pay: float) -> np.ndarray:
        return (np.where(paying, pay, 0.0) + extra) / y

    def slope(pay: float) -> float:
        # Right derivative of the cost in P at `pay`: the piece each paying ratio is in.
        piece = np.minimum((edges[:, 1:] <= ratio(pay)[:, None]).sum(axis=1), k - 1)
        cost = dcost[np.arange(h), piece] / y
        return float(lp.c[lay.p] - (lp.c[lay.w] * acc / cw if lay.w is not None else 0.0)) + float(
            cost[paying].sum()
        )

    pay = p_lo
    if p_hi > p_lo and slope(p_lo) < 0:
        # Piece edges in payment cents, inside the interval, in order; the slope only rises.
        edge_pay = (edges[:, 1:k] * y[:, None] - extra[:, None])[paying].ravel()
        edge_pay = np.sort(edge_pay[(edge_pay > p_lo) & (edge_pay < p_hi)])
        lo_i, hi_i = 0, edge_pay.size  # the first edge where the slope is non-negative
        while lo_i < hi_i:
            mid = (lo_i + hi_i) // 2
            if slope(float(edge_pay[mid])) >= 0:
                hi_i = mid
            else:
                lo_i = mid + 1
        pay = float(edge_pay[lo_i]) if lo_i < edge_pay.size else p_hi
    x = np.zeros(lp.num_vars)
    x[lay.p] = pay
    if lay.w is not None:
        x[lay.w] = min(max((rhs - acc * pay) / cw, lp.lower[lay.w]), lp.upper[lay.w])
    x[d_cols] = np.minimum(np.maximum(ratio(pay)[:, None] - edges[:, :-1], 0.0), width).ravel()
    return x


def _statuses(lp: LinearProgram, x: np.ndarray) -> highspy.HighsBasis:
    """Non-basic at a bound it sits on (relative tolerance 1e-9), basic otherwise."""
    tol = 1e-9 * np.maximum(1.0, np.abs(x))
    at_lo = np.abs(x - lp.lower) <= tol
    at_up = ~at_lo & (np.abs(x - lp.upper) <= tol)
    act = lp.A @ x
    rtol = 1e-9 * np.maximum(1.0, np.abs(act))
    r_lo = np.abs(act - lp.row_lower) <= rtol
    r_up = ~r_lo & (np.abs(act - lp.row_upper) <= rtol)
    # Equality rows are always non-basic; a violated row stays basic (the simplex repairs it).
    r_lo |= lp.row_lower == lp.row_upper
    basis = highspy.HighsBasis()
    basis.col_status = _to_status(at_lo, at_up)
    basis.row_status = _to_status(r_lo, r_up)
    basis.alien = True
    basis.valid = True
    return basis


def _to_status(at_lo: np.ndarray, at_up: np.ndarray) -> list[highspy.HighsBasisStatus]:
    codes = np.where(at_lo, 0, np.where(at_up, 2, 1))
    return _BY_CODE[codes].tolist()
