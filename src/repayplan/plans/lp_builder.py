"""A :class:`~repayplan.plans.lp.LinearProgram` assembled from named blocks of columns and
rows (COO triplets, canonical CSR built directly), and the scale of rows stated in other
units. It knows nothing of loans: :mod:`repayplan.plans.model` writes the plan's rows with it.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from repayplan.plans.lp import LinearProgram

_NUMBERED: dict[str, tuple[str, ...]] = {}


def _numbered(name: str, n: int) -> tuple[str, ...]:
    """``("name[1]", …, "name[n]")``: names are read only to explain a plan, so each name's
    labels are built once, grown when a longer plan needs more, and sliced (a size-keyed
    cache missed on the many plan lengths of a nightly run)."""
    have = _NUMBERED.get(name, ())
    if len(have) < n:
        grown = max(n, 2 * len(have), 128)
        have = (*have, *(f"{name}[{k}]" for k in range(len(have) + 1, grown + 1)))
        _NUMBERED[name] = have
    return have[:n]


class ProgramBuilder:
    """Collects COO triplets and named rows; columns are allocated in blocks."""

    def __init__(self) -> None:
        self.n = 0
        self.cols: dict[str, slice] = {}
        self.lower: list[np.ndarray] = []
        self.upper: list[np.ndarray] = []
        self.cost: list[np.ndarray] = []
        self.integer: list[np.ndarray] = []
        self.unit: list[np.ndarray] = []
        self.var_names: list[str] = []
        self.r: list[np.ndarray] = []
        self.c: list[np.ndarray] = []
        self.v: list[np.ndarray] = []
        self.row_lo: list[np.ndarray] = []
        self.row_up: list[np.ndarray] = []
        self.row_names: list[str] = []
        self.rows: dict[str, np.ndarray] = {}
        self.m = 0

    def add_vars(
        self, name: str, size: int, lower, upper, cost=0.0, integer=False, unit=1.0
    ) -> np.ndarray:
        """Add a block of ``size`` columns; ``unit`` is their natural unit
        (:attr:`LinearProgram.col_unit`: 1 = a cent)."""
        start = self.n
        self.cols[name] = slice(start, start + size)
        self.lower.append(_filled(lower, size))
        self.upper.append(_filled(upper, size))
        self.cost.append(_filled(cost, size))
        self.integer.append(np.full(size, integer))
        self.unit.append(_filled(unit, size))
        self.var_names += _numbered(name, size) if size > 1 else (name,)
        self.n += size
        return np.arange(start, start + size)

    def add_rows(self, name: str, labels, lo, up, entries) -> np.ndarray:
        """Add rows; ``labels`` are the rows' period numbers (≥ 1) or ``[""]`` for one unnamed
        row; ``entries`` is a list of (local_row, col, value) arrays (broadcast)."""
        k = len(labels)
        if k == 0:
            return np.arange(0)
        base = self.m
        for rows, cols, vals in entries:
            rows, cols, vals = np.broadcast_arrays(np.asarray(rows), np.asarray(cols), vals)
            self.r.append(base + rows.ravel())
            self.c.append(cols.ravel())
            self.v.append(np.asarray(vals, float).ravel())
        self.row_lo.append(_filled(lo, k))
        self.row_up.append(_filled(up, k))
        if k == 1 and isinstance(labels[0], str):
            self.row_names.append(name)
        else:
            first, last = int(labels[0]), int(labels[-1])
            if last - first + 1 == k:  # consecutive periods (the usual case): one slice
                self.row_names += _numbered(name, last)[first - 1 :]
            else:
                numbered = _numbered(name, int(max(labels)))
                self.row_names += [numbered[lab - 1] for lab in labels.tolist()]
        idx = np.arange(base, base + k)
        self.rows[name] = np.concatenate([self.rows.get(name, np.arange(0)), idx])
        self.m += k
        return idx

    def program(self, offset: float) -> LinearProgram:
        r = np.concatenate(self.r) if self.r else np.arange(0)
        c = np.concatenate(self.c) if self.c else np.arange(0)
        v = np.concatenate(self.v) if self.v else np.zeros(0)
        a = _csr(r, c, v, self.m, self.n)
        integrality = np.concatenate(self.integer)
        unit = np.concatenate(self.unit)
        return LinearProgram(
            c=np.concatenate(self.cost),
            A=a,
            row_lower=np.concatenate(self.row_lo),
            row_upper=np.concatenate(self.row_up),
            lower=np.concatenate(self.lower),
            upper=np.concatenate(self.upper),
            integrality=integrality if integrality.any() else None,
            var_names=tuple(self.var_names),
            row_names=tuple(self.row_names),
            objective_offset=offset,
            col_unit=None if np.all(unit == 1.0) else unit,
        )


def _filled(value, size: int) -> np.ndarray:
    """A fresh float array of ``size`` from a scalar or an array of that size."""
    if isinstance(value, (int, float)) or np.ndim(value) == 0:
        return np.full(size, float(value))
    return np.array(np.broadcast_to(np.asarray(value, float), (size,)))


def _csr(r: np.ndarray, c: np.ndarray, v: np.ndarray, m: int, n: int) -> sp.csr_matrix:
    """``scipy.sparse.csr_matrix((v, (r, c)), shape=(m, n))`` in canonical form (column
    indices sorted within each row, duplicates summed in input order — where scipy does
    too, see :func:`_sequential_sums`), built directly: scipy's COO route costs ~0.3 ms a
    plan in index-dtype checks and conversions."""
    order = np.lexsort((c, r))  # stable: duplicates keep their input order
    r, c, v = r[order], c[order], v[order]
    if r.size > 1:
        new = np.empty(r.size, bool)
        new[0] = True
        np.not_equal(r[1:], r[:-1], out=new[1:])
        new[1:] |= c[1:] != c[:-1]
        if not new.all():
            starts = np.flatnonzero(new)
            v = _sequential_sums(v, starts)
            r, c = r[starts], c[starts]
    indptr = np.zeros(m + 1, dtype=np.int32)
    np.cumsum(np.bincount(r, minlength=m), out=indptr[1:])
    return sp.csr_matrix((v, c.astype(np.int32, copy=False), indptr), shape=(m, n), copy=False)


def _sequential_sums(v: np.ndarray, starts: np.ndarray) -> np.ndarray:
    """Sums of ``v`` over the runs beginning at ``starts``, each added left to right
    (``cumsum`` is sequential, unlike ``sum``), as scipy's ``sum_duplicates`` adds a row
    whose entries are in column order — the plan model's only duplicates, the level plan's
    yield row, are — so the coefficients are bit-identical."""
    out = v[starts].copy()
    ends = np.append(starts[1:], v.size)
    for i in np.flatnonzero(ends - starts > 1).tolist():
        out[i] = v[starts[i] : ends[i]].cumsum()[-1]
    return out


class RowScale:
    """Rows stated in other units than period cents, and their factor (default 1)."""

    def __init__(self) -> None:
        self.rows: list[np.ndarray] = []
        self.factors: list[np.ndarray] = []

    def set(self, rows: np.ndarray, factors: np.ndarray) -> None:
        self.rows.append(rows)
        self.factors.append(factors)

    def array(self, m: int) -> np.ndarray:
        out = np.ones(m)
        for rows, factors in zip(self.rows, self.factors, strict=True):
            out[rows] = factors
        return out
