"""A linear (or mixed-integer) program in standard array form, and a solver's answer.

The plan templates build a :class:`LinearProgram` from arrays; every solver strategy in
:mod:`repayplan.plans.strategies` solves one. The model is stated once, solvers plug in
behind it (as in cvxpy / linopy).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import scipy.sparse as sp

Status = Literal["optimal", "infeasible", "unbounded", "time_limit", "error"]


@dataclass(frozen=True)
class LinearProgram:
    """``min c·x + objective_offset`` s.t. ``row_lower ≤ A x ≤ row_upper``,
    ``lower ≤ x ≤ upper``, and ``x[j]`` integer where ``integrality[j]``.

    Infinite bounds are ``±np.inf``. ``var_names`` / ``row_names`` are for explanations and
    error messages (row names such as ``"afford[3]"`` or ``"yield_floor"``).

    ``col_unit[j]`` (positive; None = 1 for every column) is the natural unit of column ``j``:
    ``x[j] / col_unit[j]`` is of the order of cents (for a money column the unit is 1, one
    cent; a payment-to-income ratio column of period t has unit ``1 / income_t``, one cent of
    that period's payment). Exact simplex solvers ignore it. A first-order method (PDLP) is
    handed the program in these units, where its rows are well scaled, and an integer-only
    solver (CP-SAT) takes every continuous column as a whole number of its units. Integer
    columns have unit 1.
    """

    c: np.ndarray
    A: sp.csr_matrix
    row_lower: np.ndarray
    row_upper: np.ndarray
    lower: np.ndarray
    upper: np.ndarray
    integrality: np.ndarray | None = None
    var_names: tuple[str, ...] = ()
    row_names: tuple[str, ...] = ()
    objective_offset: float = 0.0
    col_unit: np.ndarray | None = None

    def __post_init__(self) -> None:
        m, n = self.A.shape
        for name, arr, size in (
            ("c", self.c, n),
            ("lower", self.lower, n),
            ("upper", self.upper, n),
            ("row_lower", self.row_lower, m),
            ("row_upper", self.row_upper, m),
        ):
            if np.shape(arr) != (size,):
                raise ValueError(f"LinearProgram.{name}: shape {np.shape(arr)}, expected ({size},)")
        if self.integrality is not None and np.shape(self.integrality) != (n,):
            raise ValueError("LinearProgram.integrality: one flag per variable")
        if self.col_unit is not None and (
            np.shape(self.col_unit) != (n,) or not np.all(np.asarray(self.col_unit) > 0)
        ):
            raise ValueError("LinearProgram.col_unit: one positive unit per variable")

    @property
    def num_vars(self) -> int:
        """Number of variables (columns of A)."""
        return self.A.shape[1]

    @property
    def num_rows(self) -> int:
        """Number of constraints (rows of A)."""
        return self.A.shape[0]

    @property
    def units(self) -> np.ndarray:
        """``col_unit`` with integer columns at 1 (all ones when no unit is declared)."""
        if self.col_unit is None:
            return np.ones(self.num_vars)
        unit = np.asarray(self.col_unit, dtype=np.float64)
        if self.is_mip:
            unit = np.where(self.integrality, 1.0, unit)
        return unit

    def in_units(self) -> LinearProgram:
        """The same program in its columns' units: ``z = x / units``, so ``A' = A·diag(u)``,
        ``c' = c·u``, bounds divided by ``u``; row bounds, the offset and the row duals are
        unchanged (a solution maps back as ``x = u·z``). Returns ``self`` when every unit
        is 1."""
        unit = self.units
        if np.all(unit == 1.0):
            return self
        return LinearProgram(
            c=self.c * unit,
            A=(self.A @ sp.diags(unit)).tocsr(),
            row_lower=self.row_lower,
            row_upper=self.row_upper,
            lower=self.lower / unit,
            upper=self.upper / unit,
            integrality=self.integrality,
            var_names=self.var_names,
            row_names=self.row_names,
            objective_offset=self.objective_offset,
        )

    @property
    def is_mip(self) -> bool:
        """True when any variable is integer."""
        return self.integrality is not None and bool(np.any(self.integrality))


@dataclass(frozen=True)
class LPSolution:
    """A solver's answer. ``x``/``objective`` are set when ``status == "optimal"`` (or a
    feasible point at ``"time_limit"``); ``row_duals`` only for LPs on strategies that
    declare duals. ``objective`` includes the program's ``objective_offset``."""

    status: Status
    solver: str
    x: np.ndarray | None = None
    objective: float | None = None
    row_duals: np.ndarray | None = None
    seconds: float = 0.0
    mip_gap: float | None = None
    message: str = ""
    stats: dict[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        """True when the solver proved optimality."""
        return self.status == "optimal"
