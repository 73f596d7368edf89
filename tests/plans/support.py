"""What the plan tests share: generated borrowers and programs, and the checks on answers.

- the worked example: :data:`EXAMPLE` (and :data:`EXAMPLE_IN_ARREARS`), the loan the
  plan tests start from;
- hypothesis strategies: :func:`rates`, :func:`loan_cases`, :func:`cases_and_templates`;
- seeded generators: :func:`plan_case` (a plausible loan), :func:`random_lp`,
  :func:`amortisation_lp`, :func:`late_payer_lp`, :func:`infeasible_lp`,
  :func:`unbounded_lp`;
- checks: :func:`rel_diff`, :func:`assert_kkt` (an optimum with its duals),
  :func:`banded` / :func:`resolution` / :func:`assert_integer_cents` (what an
  integer-cents strategy such as CP-SAT may and may not differ by).
"""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
import scipy.sparse as sp
from hypothesis import strategies as st

from repayplan.plans.case import LoanCase
from repayplan.plans.lp import LinearProgram
from repayplan.plans.strategies.cpsat import EQUALITY_BAND
from repayplan.plans.templates import TEMPLATES

#: The templates whose programs are LPs (no integer columns).
LP_TEMPLATES = [n for n, t in TEMPLATES.items() if not t.is_mip]
#: Relative objective tolerance between exact strategies.
REL_TOL = 1e-6


# --- the worked example -----------------------------------------------------------------------

#: 15,000.00 at 12 % with 36 months left; income 5,000.00 a month, essentials 2,000.00,
#: other debt 200.00 (cents).
EXAMPLE = LoanCase(
    outstanding_principal=1_500_000,
    annual_rate=Decimal("0.12"),
    remaining_term=36,
    monthly_income=500_000,
    essential_expenses=200_000,
    other_debt=20_000,
    start=date(2025, 1, 31),
)
#: :data:`EXAMPLE` in arrears, with penalty fees, accrued interest and a seasonal income.
EXAMPLE_IN_ARREARS = replace(
    EXAMPLE,
    arrears=60_000,
    penalty_fees=5_000,
    accrued_interest=3_000,
    income_seasonality=(0.8, 0.8, 1, 1, 1.2, 1.2, 1.2, 1, 1, 1, 0.9, 0.9),
)


# --- hypothesis strategies ------------------------------------------------------------------


def rates(high: str = "0.3") -> st.SearchStrategy[Decimal]:
    """Annual rates as fractions with four decimals (basis points of a percent), 0..high."""
    return st.decimals("0.0", high, places=4)


@st.composite
def loan_cases(
    draw: st.DrawFn,
    *,
    principal: st.SearchStrategy[int] = st.integers(100_000, 3_000_000),
    rate: st.SearchStrategy[Decimal] = rates("0.3"),
    income: st.SearchStrategy[int] = st.integers(150_000, 1_000_000),
    expense_share: st.SearchStrategy[float] = st.floats(0.1, 0.6),
    term: st.SearchStrategy[int] = st.integers(3, 48),
    hardship: st.SearchStrategy[str | None] = st.none(),
    recovery_months: st.SearchStrategy[int] = st.just(3),
    hardship_income_factor: float = 0.7,
    start: date = date(2025, 3, 31),
    **fields: st.SearchStrategy[Any],
) -> LoanCase:
    """Random borrowers (money in cents): essential expenses are a share of income; with a
    hardship, income falls to ``hardship_income_factor`` for ``recovery_months``. ``fields``
    draw any other :class:`LoanCase` field (``arrears=st.integers(...)``, ...)."""
    monthly_income = draw(income)
    reason = draw(hardship)
    extra = {name: draw(strategy) for name, strategy in fields.items()}
    if "income_seasonality" in extra:  # factors average 1, as LoanCase (and import) require
        season = extra["income_seasonality"]
        extra["income_seasonality"] = tuple(f * 12 / sum(season) for f in season)
    return LoanCase(
        outstanding_principal=draw(principal),
        annual_rate=draw(rate),
        remaining_term=draw(term),
        monthly_income=monthly_income,
        essential_expenses=int(monthly_income * draw(expense_share)),
        hardship=reason,
        recovery_months=draw(recovery_months) if reason else None,
        hardship_income_factor=hardship_income_factor if reason else 1.0,
        start=start,
        **extra,
    )


def cases_and_templates(
    templates: list[str] | None = None, **case_ranges: Any
) -> st.SearchStrategy[tuple[LoanCase, str]]:
    """``(case, template)`` pairs: a :func:`loan_cases` borrower and one of ``templates``
    (default: every LP template)."""
    return st.tuples(loan_cases(**case_ranges), st.sampled_from(templates or LP_TEMPLATES))


# --- seeded generators ----------------------------------------------------------------------


def plan_case(seed: int, hardship: bool = False, arrears: int = 0, fees: int = 0) -> LoanCase:
    """A plausible loan (cents, fractions) drawn from ``seed``."""
    rng = np.random.default_rng(seed)
    balance = int(rng.integers(300_000, 6_000_000))
    term = int(rng.integers(12, 121))
    income = int(balance / term * rng.uniform(3.0, 10.0))
    season = 1.0 + rng.uniform(0, 0.4) * np.sin(np.arange(12) / 12 * 2 * np.pi + rng.uniform(0, 6))
    return LoanCase(
        outstanding_principal=balance,
        annual_rate=Decimal(int(rng.integers(100, 2500))) / Decimal(10_000),
        remaining_term=term,
        monthly_income=income,
        essential_expenses=int(income * rng.uniform(0.2, 0.45)),
        other_debt=int(income * rng.uniform(0.0, 0.1)),
        income_seasonality=tuple(float(f) for f in season / season.mean()),
        arrears=arrears,
        penalty_fees=fees,
        hardship="job_loss" if hardship else None,
        hardship_income_factor=0.7 if hardship else 1.0,
        recovery_months=6 if hardship else None,
        start=date(2025, 1, 15),
        loan_id=f"t-{seed}",
    )


def random_lp(seed: int, n: int = 8, m: int = 6, integer: bool = False) -> LinearProgram:
    """A bounded, feasible LP: x in a box, rows built around a known interior point."""
    rng = np.random.default_rng(seed)
    dense = rng.normal(size=(m, n)) * (rng.random((m, n)) < 0.6)
    x0 = rng.uniform(1, 5, n)
    act = dense @ x0
    kind = rng.integers(0, 3, m)  # 0: ≥, 1: ≤, 2: ranged
    lo = np.where(kind == 1, -np.inf, np.floor(act - rng.uniform(0.5, 3, m)))
    hi = np.where(kind == 0, np.inf, np.ceil(act + rng.uniform(0.5, 3, m)))
    return LinearProgram(
        c=rng.normal(size=n),
        A=sp.csr_matrix(dense),
        row_lower=lo,
        row_upper=hi,
        lower=np.zeros(n),
        upper=np.full(n, 10.0),
        integrality=np.ones(n, bool) if integer else None,
        objective_offset=float(rng.normal()),
    )


def amortisation_lp(
    balance: float, annual_rate: float, periods: int, cap: float, floor_share: float = 0.9
) -> LinearProgram:
    """The plan model's core: balance recursion, b_H = 0, affordability caps, no negative
    amortisation, a yield floor; minimise total paid plus a convex burden epigraph."""
    h, r = periods, annual_rate / 12
    p, b, z = np.arange(h), h + np.arange(h), 2 * h + np.arange(h)
    rows, cols, vals, lo, hi = [], [], [], [], []

    def add(entries, lower, upper):
        for col, val in entries:
            rows.append(len(lo))
            cols.append(col)
            vals.append(val)
        lo.append(lower)
        hi.append(upper)

    for t in range(h):
        entries = [(b[t], 1.0), (p[t], 1.0)] + ([(b[t - 1], -(1 + r))] if t else [])
        rhs = (1 + r) * balance if t == 0 else 0.0
        add(entries, rhs, rhs)
    for t in range(1, h):
        add([(p[t], 1.0), (b[t - 1], -r)], 0.0, np.inf)
    disc = (1 + 0.05 / 12) ** -np.arange(1, h + 1)
    add([(p[t], disc[t]) for t in range(h)], floor_share * balance, np.inf)
    for t in range(h):
        for slope, icpt in ((0.5, 1.0), (2.0, 0.8), (8.0, -0.6)):
            add([(z[t], 1.0), (p[t], -slope / cap)], icpt, np.inf)
    upper = np.full(3 * h, np.inf)
    upper[p] = cap
    upper[b[-1]] = 0.0
    return LinearProgram(
        c=np.concatenate([np.full(h, 1.0), np.zeros(h), np.full(h, 50.0)]),
        A=sp.csr_matrix((vals, (rows, cols)), shape=(len(lo), 3 * h)),
        row_lower=np.array(lo),
        row_upper=np.array(hi),
        lower=np.zeros(3 * h),
        upper=upper,
    )


def late_payer_lp() -> LinearProgram:
    """A borrower who would rather pay late (cost falls with t) held up by the yield floor:
    a unique vertex where the yield floor and the opening balance row bind."""
    lp = amortisation_lp(1_000_000.0, 0.0, 12, cap=200_000.0, floor_share=0.97)
    c = np.zeros(lp.num_vars)
    c[:12] = np.linspace(1.0, 0.9, 12)
    return LinearProgram(**{**lp.__dict__, "c": c})


#: Row of :func:`late_payer_lp`'s yield floor.
LATE_PAYER_YIELD_ROW = 12 + 11  # 12 balance rows, 11 no-negative-amortisation rows


def infeasible_lp() -> LinearProgram:
    """x + y ≥ 5 and x + y ≤ 3."""
    return LinearProgram(
        c=np.array([1.0, 1.0]),
        A=sp.csr_matrix(np.array([[1.0, 1.0], [1.0, 1.0]])),
        row_lower=np.array([5.0, -np.inf]),
        row_upper=np.array([np.inf, 3.0]),
        lower=np.zeros(2),
        upper=np.full(2, np.inf),
    )


def unbounded_lp() -> LinearProgram:
    """min −x subject to x − y ≥ 0, x, y ≥ 0: x grows without bound."""
    return LinearProgram(
        c=np.array([-1.0, 0.0]),
        A=sp.csr_matrix(np.array([[1.0, -1.0]])),
        row_lower=np.array([0.0]),
        row_upper=np.array([np.inf]),
        lower=np.zeros(2),
        upper=np.full(2, np.inf),
    )


# --- checks -----------------------------------------------------------------------------------


def rel_diff(a: float, b: float) -> float:
    """|a − b| relative to max(1, |b|)."""
    return abs(a - b) / max(1.0, abs(b))


def assert_kkt(lp: LinearProgram, sol, tol: float = 1e-6, *, by_terms: bool = False) -> None:
    """``sol`` is optimal with its duals: primal feasible, reduced costs of the right sign for
    where each column sits, duals of the right sign for where each row binds (base.py's
    convention), and the dual objective equal to the primal one — whatever vertex it is.

    Rows are held to ``tol`` of their activity, or with ``by_terms`` of the magnitude of
    their terms (for a solver that reads its answer back as text, like CBC through PuLP)."""
    x, y = sol.x, sol.row_duals
    act = lp.A @ x
    scale = np.maximum(1.0, abs(lp.A) @ np.abs(x) if by_terms else np.abs(act))
    assert np.all(act >= lp.row_lower - tol * scale) and np.all(act <= lp.row_upper + tol * scale)
    d = lp.c - lp.A.T @ y
    dtol = tol * max(1.0, np.abs(lp.c).max())
    xs = np.maximum(1.0, np.abs(x))
    at_lo = np.abs(x - lp.lower) <= 1e-7 * xs
    at_up = np.abs(x - lp.upper) <= 1e-7 * xs
    assert np.all(d[~at_lo] <= dtol), "column above its lower bound with a positive reduced cost"
    assert np.all(d[~at_up] >= -dtol), "column below its upper bound with a negative reduced cost"
    equal = lp.row_lower == lp.row_upper  # an equality row's dual may take either sign
    # A row within the feasibility tolerance of a bound counts as at it: HiGHS reports
    # activities up to its 1e-7 primal tolerance off the bound with the bound's dual.
    r_lo = equal | (np.abs(act - lp.row_lower) <= tol * scale)
    r_up = equal | (np.abs(act - lp.row_upper) <= tol * scale)
    ytol = tol * max(1.0, np.abs(y).max())
    assert np.all(y[~r_lo] <= ytol) and np.all(y[~r_up] >= -ytol)
    # Complementary slackness in aggregate: c·x = y·Ax + d·x, so the duality gap is
    # Σ y_i (a_i x − bound_i) + Σ d_j (x_j − bound_j) over the bounds each dual points at
    # (a dual within tolerance of 0 on an infinite bound counts as 0).
    row_bound = np.where(equal | (y > 0), lp.row_lower, lp.row_upper)
    col_bound = np.where(d > 0, lp.lower, lp.upper)
    row_gap = np.where(np.isfinite(row_bound), y * (act - np.nan_to_num(row_bound)), 0.0)
    col_gap = np.where(np.isfinite(col_bound), d * (x - np.nan_to_num(col_bound)), 0.0)
    gap = abs(row_gap.sum() + col_gap.sum())
    assert gap <= 1e-6 * max(1.0, abs(sol.objective)), (gap, sol.objective)


def banded(lp: LinearProgram) -> tuple[np.ndarray, np.ndarray]:
    """Which rows CP-SAT holds within a band (equalities integers cannot meet exactly, in the
    columns' units) and each row's band (a cent of its largest coefficient)."""
    scaled = lp.in_units()
    a = scaled.A
    widest = np.maximum.reduceat(np.abs(a.data), a.indptr[:-1]) if a.nnz else np.zeros(0)
    fractional = np.zeros(lp.num_rows, bool)
    rows = np.repeat(np.arange(lp.num_rows), np.diff(a.indptr))
    off = np.abs(a.data - np.round(a.data)) > 1e-6
    fractional[rows[off]] = True
    rhs = np.where(np.isfinite(scaled.row_lower), scaled.row_lower, 0.0)
    fractional |= np.abs(rhs - np.round(rhs)) > 1e-9
    equal = scaled.row_lower == scaled.row_upper
    return equal & fractional, EQUALITY_BAND * np.maximum(1.0, widest)


def resolution(lp: LinearProgram) -> float:
    """What the integer-cents model cannot tell apart: a cent of play in each banded row at
    the objective's steepest cost per unit (its optimum may sit that far either side of the
    LP's)."""
    rows, band = banded(lp)
    return float(band[rows].sum() * np.abs(lp.c * lp.units).max())


def assert_integer_cents(lp: LinearProgram, x: np.ndarray) -> None:
    """``x`` is a whole number of each column's unit, meets every inequality row and holds
    every equality row within the declared band (a cent of its largest coefficient)."""
    z = x / lp.units
    np.testing.assert_allclose(z, np.round(z), atol=1e-6)
    act = lp.A @ x
    equal = lp.row_lower == lp.row_upper
    tol = 1e-6 * np.maximum(1.0, np.abs(act))
    ineq = ~equal
    assert np.all(act[ineq] >= lp.row_lower[ineq] - tol[ineq])
    assert np.all(act[ineq] <= lp.row_upper[ineq] + tol[ineq])
    widest = np.maximum.reduceat(np.abs(lp.A.data), lp.A.indptr[:-1]) if lp.A.nnz else 0.0
    band = EQUALITY_BAND * np.maximum(1.0, widest) * 1.01 + 1e-6
    assert np.all(np.abs(act[equal] - lp.row_lower[equal]) <= band[equal])
