"""The per-loan planning model (DESIGN.md §3) as a sparse linear program.

Periods t = 1..H on the plan's calendar. Variables:

- ``p[t]``: the interest-bearing part of payment t (cents); the paid amount is
  ``p[t] + extra[t]`` where ``extra`` is arrears spread without interest (template option);
- ``b[t]``: balance after payment t (cents), ``b[H] = 0``;
- ``d[t,k]``: the payment-to-income ratio of period t split over the burden curve's affine
  pieces, ``Σ_k d[t,k] = (p[t] + extra[t]) / y[t]``, each priced at its piece's slope (only in
  models whose objective carries the default cost; stored period-major, ``k`` fastest);
- ``s[t]``: affordability shortfall in cents (only when ``Policy.affordability_penalty``
  makes affordability soft);
- ``w``: penalty fees waived (cents, a counted concession), when there are penalty fees; on
  a settlement, the debt forgiven (penalty fees, then principal);
- ``rho``: the largest payment-to-income ratio (``min_max_pti`` stage 1);
- ``theta``: the common payment-to-income ratio of the seasonal template;
- binaries ``u``: level changes (stepped) or holiday months (chosen_holiday).

(Stored in the order ``p``, ``b``, ``s``, ``w``, ``d``, ``rho``, ``theta``, ``u``; a level
shape has one ``p`` and no ``b``.) Each block declares its unit
(:attr:`~repayplan.plans.lp.LinearProgram.col_unit`): a cent for ``p``, ``b``, ``s``, ``w``;
``1 / y[t]`` — one cent of that period's payment — for ``d[t,k]``; ``1 / max y`` for ``rho``
and ``theta``; 1 for the binaries.

:func:`plan_outline` derives everything but the LP (calendar, incomes, caps, bounds, the
yield target), :func:`build_from_outline` writes the LP, :func:`build_program` does both.
The plan's horizon — cycle, term, due dates, rate factors, incomes — comes from
:mod:`repayplan.plans.horizon`; the LP is assembled with :mod:`repayplan.plans.lp_builder`.

Rows are named so explanations and infeasibility reasons can read them: ``balance[t]``,
``afford[t]``, ``negam[t]``, ``yield_floor``, ``hazard[t]``, ``pti[t]``, ``level[t]``,
``graduated[t]``, ``seasonal[t]``, ``step_up[t]``/``step_down[t]``, ``steps``,
``holiday_pay[t]``, ``holiday_negam[t]``, ``holiday_min[t]``, ``holidays``
(t counts from 1, as installment numbers do).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from datetime import date
from decimal import Decimal

import numpy as np

from repayplan.errors import InputError
from repayplan.finance import Frequency
from repayplan.plans.case import LoanCase, Policy
from repayplan.plans.horizon import (
    default_term,
    months_per_period,
    period_incomes,
    plan_calendar,
    plan_frequency,
)
from repayplan.plans.lp import LinearProgram
from repayplan.plans.lp_builder import ProgramBuilder, RowScale
from repayplan.plans.templates import Template, get_template
from repayplan.risk.burden import DEFAULT_BURDEN_CURVE, BurdenCurve
from repayplan.risk.metrics import DEFAULT_BASE_MONTHLY_HAZARD, periodic_hurdle

#: Share of ``Policy.max_concession`` a plan may use before the "deeper concession"
#: relaxation: the first offer keeps half of the lender's allowance in reserve.
BASE_CONCESSION_SHARE = Decimal("0.5")

#: Periods whose income is below this share of the mean are the seasonal template's
#: declared off-season: payments there may be below interest and below the minimum.
OFF_SEASON_SHARE = 0.5


@dataclass(frozen=True)
class PlanTerms:
    """What a plan's outline and its program share. Money arrays are cents per period
    (length H): ``cap`` is the hard affordability limit of the *total* payment per period,
    ``extra`` the non-interest-bearing arrears instalment paid on top of ``p``, ``incomes``
    the forecast income per period, ``free`` marks periods without the
    no-negative-amortisation and minimum-payment rules (declared holidays, the seasonal
    off-season), ``p_lower`` each period's lower bound on the interest-bearing payment ``p``
    (the minimum payment, 0 in a holiday). ``opening_balance`` is the interest-bearing
    balance before any waiver; ``yield_target`` the yield floor on total payments before the
    spread arrears' share (cents)."""

    template: Template
    objective: str
    annual_rate: Decimal
    frequency: Frequency
    concession_limit: Decimal
    due_dates: tuple[date, ...]
    rate_factors: tuple[Decimal, ...]
    period_rates: np.ndarray
    incomes: np.ndarray
    cap: np.ndarray
    extra: np.ndarray
    holiday: np.ndarray
    free: np.ndarray
    min_payment: np.ndarray
    p_lower: np.ndarray
    discount: np.ndarray
    opening_balance: int
    max_waiver: int
    yield_target: float

    @property
    def periods(self) -> int:
        """Number of periods H."""
        return len(self.due_dates)


#: The fields of :class:`PlanTerms`, which a program copies from its outline.
_TERMS = tuple(f.name for f in fields(PlanTerms))


@dataclass(frozen=True)
class PlanOutline(PlanTerms):
    """A plan before its LP is written (:func:`plan_outline`): its :class:`PlanTerms`, and
    ``p_upper`` the interest-bearing payment's upper bound per period (cents), ``soft`` True
    when affordability is priced, not hard, ``pti_ceiling`` the second-stage ratio ceiling
    of ``min_max_pti`` (a fraction) or None."""

    p_upper: np.ndarray
    soft: bool
    pti_ceiling: float | None

    @property
    def level(self) -> bool:
        """True when the program carries one payment column (a level shape paying in more
        than one period): its balances are eliminated."""
        return self.template.shape == "level" and int(np.count_nonzero(~self.holiday)) > 1


@dataclass(frozen=True)
class PlanProgram(PlanTerms):
    """A template's LP for one loan plus everything needed to read the answer back: its
    :class:`PlanTerms`, the loan and policy it was built for, and where things are in the LP.

    ``p_cols`` is the column of each period's interest-bearing payment and ``p_on`` False where
    it is 0 by construction: a level shape has one payment column for every paying period and
    no balance columns (balances are affine in it, see :meth:`balances`). ``row_scale[i]``
    converts cents of period money into row ``i``'s units (rows stated in time-0 cents are
    scaled).
    """

    lp: LinearProgram
    case: LoanCase
    policy: Policy
    p_cols: np.ndarray
    p_on: np.ndarray
    row_scale: np.ndarray
    cols: dict[str, slice] = field(default_factory=dict)
    rows: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def soft(self) -> bool:
        """True when affordability is soft (a priced shortfall variable exists)."""
        return "s" in self.cols

    def payments(self, x: np.ndarray) -> np.ndarray:
        """Total payment per period (cents, float) from a solution vector."""
        return self.interest_bearing(x) + self.extra

    def interest_bearing(self, x: np.ndarray) -> np.ndarray:
        """The interest-bearing part ``p`` of each payment (cents, float)."""
        return np.where(self.p_on, x[self.p_cols], 0.0)

    def balances(self, x: np.ndarray) -> np.ndarray:
        """Interest-bearing balance after each payment (cents, float)."""
        if "b" in self.cols:
            return x[self.cols["b"]]
        growth = np.cumprod(1.0 + self.period_rates)
        paid = np.cumsum(self.interest_bearing(x) / growth)
        return growth * (self.opening_balance - self.waiver(x) - paid)

    def waiver(self, x: np.ndarray) -> float:
        """Penalty fees waived — on a settlement, the debt forgiven — (cents, float; 0 when
        the model has no waiver variable)."""
        return float(x[self.cols["w"]][0]) if "w" in self.cols else 0.0

    def value(self, x: np.ndarray, name: str) -> np.ndarray:
        """The block of variables called ``name`` (``p``, ``b``, ``d``, ``s``, ``rho`` …)."""
        return x[self.cols[name]]

    def with_row_bounds(
        self, row: int, *, lower: float | None = None, upper: float | None = None
    ) -> PlanProgram:
        """A copy whose row ``row`` has new bounds (used to tighten after rounding)."""
        lo, up = self.lp.row_lower.copy(), self.lp.row_upper.copy()
        if lower is not None:
            lo[row] = lower
        if upper is not None:
            up[row] = upper
        return replace(self, lp=replace(self.lp, row_lower=lo, row_upper=up))


def _holiday_periods(case: LoanCase, policy: Policy, freq: Frequency, h: int) -> int:
    months = policy.max_holiday_months
    if case.recovery_months is not None and case.hardship is not None:
        months = min(months, max(1, case.recovery_months))
    return max(1, min(h - 1, int(months // months_per_period(freq))))


def _reference_exposure(total: float, r: np.ndarray) -> np.ndarray:
    """Balance before each payment of a level annuity (the exposure at risk the default-cost
    term weighs each period's hazard by; fixed so the objective stays linear)."""
    growth = np.cumprod(1.0 + r)
    disc = 1.0 / growth
    level = total / disc.sum()
    # b_t = growth_t (B − level Σ_{k≤t} disc_k); the exposure before payment t is b_{t−1}.
    after = growth * (total - level * np.cumsum(disc))
    return np.maximum(np.concatenate(([total], after[:-1])), 0.0)


def plan_outline(
    case: LoanCase,
    policy: Policy,
    template: str = "balanced",
    *,
    annual_rate: Decimal | None = None,
    term: int | None = None,
    concession_limit: Decimal | None = None,
    pti_ceiling: float | None = None,
    shape: str | None = None,
) -> PlanOutline:
    """Everything :func:`build_program` derives before it writes the LP (same arguments):
    the calendar, incomes, caps, arrears, holidays, bounds and the yield target — what
    :func:`repayplan.plans.relax.refuted` reads, so a plan that surely has no solution is
    answered without building its program."""
    tpl = get_template(template)
    if shape is not None:
        tpl = replace(tpl, shape=shape)
    rec = f"loan {case.loan_id}"
    rate = case.annual_rate if annual_rate is None else Decimal(annual_rate)
    if rate < 0:
        raise InputError(f"must be >= 0, got {rate}", field="annual_rate", record=rec)
    freq = plan_frequency(case, tpl)
    h = default_term(case, policy, tpl) if term is None else int(term)
    if h < 1:
        raise InputError(f"must be at least 1 period, got {h}", field="term", record=rec)
    if concession_limit is not None:
        kappa = Decimal(concession_limit)
    elif tpl.settlement:  # the settlement's forgiveness is its concession
        kappa = max(policy.settlement_discount, policy.max_concession)
    else:
        kappa = policy.max_concession * BASE_CONCESSION_SHARE
    objective = tpl.objective
    if objective == "min_max_pti" and pti_ceiling is not None:
        objective = "balanced"

    dates, factors, r = plan_calendar(case.start, h, freq, rate)
    ppy = freq.periods_per_year
    mpp = months_per_period(freq)
    y = period_incomes(case, freq, dates)
    outgoings = (case.essential_expenses + case.other_debt) * mpp
    alpha = float(policy.pti_cap)
    cap = np.floor(np.maximum(0.0, np.minimum(alpha * y, y - outgoings)) + 1e-9)
    if pti_ceiling is not None:
        cap = np.minimum(cap, np.floor(pti_ceiling * y + 1e-9))

    # Arrears: capitalised into the interest-bearing balance, or spread without interest.
    extra = np.zeros(h)
    bucket = case.arrears + case.accrued_interest
    if tpl.arrears == "spread" and bucket > 0:
        k = max(1, min(tpl.spread_periods, h - 1 if h > 1 else 1))
        extra[:k] = bucket // k
        extra[: bucket % k] += 1
        opening = case.exposure - bucket
    else:
        opening = case.exposure
    max_waiver = int(Decimal(case.penalty_fees) * policy.max_penalty_waiver)
    if tpl.settlement:  # penalty fees first, then principal, up to the settlement discount
        max_waiver = max(max_waiver, int(Decimal(case.exposure) * policy.settlement_discount))

    holiday = np.zeros(h, bool)
    if tpl.holiday and h > 1:
        holiday[: _holiday_periods(case, policy, freq, h)] = True
    free = holiday.copy()
    if tpl.shape == "seasonal":
        free |= y < OFF_SEASON_SHARE * y.mean()
    last = np.zeros(h, bool)
    last[-1] = True
    min_pay = np.where(free | last, 0.0, float(policy.min_payment))
    p_upper = np.where(holiday, 0.0, np.inf)

    chosen = tpl.shape == "chosen_holiday"
    p_lower = min_pay.copy()
    if chosen:  # the window's minimum payment moves into rows that a holiday switches off
        p_lower[: min(tpl.holiday_window, h - 1)] = 0.0
    disc = (1.0 + periodic_hurdle(policy.hurdle_rate, ppy)) ** -np.arange(1, h + 1, dtype=float)
    return PlanOutline(
        template=tpl,
        objective=objective,
        annual_rate=rate,
        frequency=freq,
        concession_limit=kappa,
        due_dates=dates,
        rate_factors=tuple(factors),
        period_rates=r,
        incomes=y,
        cap=cap,
        extra=extra,
        holiday=holiday,
        free=free,
        min_payment=min_pay,
        p_lower=p_lower,
        p_upper=p_upper,
        discount=disc,
        opening_balance=opening,
        max_waiver=max_waiver,
        yield_target=float(1 - kappa) * case.exposure + h,
        soft=policy.affordability_penalty is not None,
        pti_ceiling=pti_ceiling,
    )


def build_program(
    case: LoanCase,
    policy: Policy,
    template: str = "balanced",
    curve: BurdenCurve = DEFAULT_BURDEN_CURVE,
    *,
    annual_rate: Decimal | None = None,
    term: int | None = None,
    concession_limit: Decimal | None = None,
    pti_ceiling: float | None = None,
    shape: str | None = None,
) -> PlanProgram:
    """Build ``template``'s LP (or MILP) for ``case`` under ``policy``.

    ``annual_rate`` (fraction; default the contract rate), ``term`` (periods; default
    :func:`default_term`) and ``concession_limit`` (fraction of exposure; default
    ``BASE_CONCESSION_SHARE × Policy.max_concession``) are the knobs the rate search and the
    declared relaxations turn. ``pti_ceiling`` turns a ``min_max_pti`` template into its
    second stage: payments held at or below that share of income, balanced objective.
    ``shape`` overrides the template's payment shape (the diagnosis lifts a shape this way).
    Objective values are in cents (``min_max_pti`` stage 1: a fraction).
    """
    outline = plan_outline(
        case,
        policy,
        template,
        annual_rate=annual_rate,
        term=term,
        concession_limit=concession_limit,
        pti_ceiling=pti_ceiling,
        shape=shape,
    )
    return build_from_outline(case, policy, outline, curve)


def build_from_outline(
    case: LoanCase,
    policy: Policy,
    outline: PlanOutline,
    curve: BurdenCurve = DEFAULT_BURDEN_CURVE,
) -> PlanProgram:
    """The program of :func:`plan_outline`'s ``outline`` (what :func:`build_program` returns
    for the same arguments)."""
    o = outline
    tpl, objective, freq = o.template, o.objective, o.frequency
    dates, r, y = o.due_dates, o.period_rates, o.incomes
    cap, extra, holiday, free = o.cap, o.extra, o.holiday, o.free
    opening, max_waiver, p_lower, p_upper = o.opening_balance, o.max_waiver, o.p_lower, o.p_upper
    h = len(dates)
    mpp = months_per_period(freq)
    y_eff = np.maximum(y, 1.0)
    alpha = float(policy.pti_cap)
    pti_ceiling = o.pti_ceiling
    lam = 1.0 - (1.0 - (case.base_monthly_hazard or DEFAULT_BASE_MONTHLY_HAZARD)) ** mpp
    hazard_cost = lam * float(policy.lgd) * _reference_exposure(float(case.exposure), r)
    soft = policy.affordability_penalty is not None
    penalty = float(policy.affordability_penalty) if soft else 0.0
    weight = float(policy.cost_weight)
    uses_hazard = objective == "balanced"
    hazard_offset = 0.0

    bld = ProgramBuilder()
    if objective == "balanced":
        p_cost, s_cost = weight, penalty
    elif objective == "min_total_paid":
        p_cost, s_cost = 1.0, penalty
    else:  # min_max_pti stage 1: a shortfall of one month's mean income costs `penalty`
        p_cost, s_cost = 0.0, penalty / float(y_eff.mean())
    chosen = tpl.shape == "chosen_holiday"
    t = np.arange(h)
    pay_t = t[~holiday]
    # A level shape has one payment for every paying period; the balances are then affine in
    # it and the waiver, so they are eliminated (a handful of columns instead of 2H).
    level = tpl.shape == "level" and pay_t.size > 1
    if level:
        p_var = bld.add_vars("p", 1, float(p_lower[pay_t].max()), np.inf, p_cost * pay_t.size)
        p = np.full(h, p_var[0])
        b = None
    else:
        p = bld.add_vars("p", h, p_lower, p_upper, p_cost)
        b_up = np.full(h, np.inf)
        b_up[-1] = 0.0
        b = bld.add_vars("b", h, 0.0, b_up)
    s = bld.add_vars("s", h, 0.0, np.inf, s_cost) if soft else None
    w = bld.add_vars("w", 1, 0.0, max_waiver) if max_waiver > 0 else None
    scale = RowScale()

    if level:
        # b_t = G_t (opening − w − P·S_t) with G_t = Π_{k≤t}(1 + r_k), S_t = Σ_{paying k≤t} 1/G_k:
        # b_H = 0 is one row, and b_t ≥ 0 before it follows (S_t grows with t).
        growth = np.cumprod(1.0 + r)
        acc = np.cumsum(np.where(holiday, 0.0, 1.0 / growth))
        ent = [(0, p_var[0], acc[-1])]
        if w is not None:
            ent.append((0, w[0], 1.0))
        bld.add_rows("payoff", [""], opening, opening, ent)
    else:
        # balance[t]: b_t + p_t − (1 + r_t) b_{t−1} = 0, with b_0 = opening − w.
        rhs = np.zeros(h)
        rhs[0] = (1.0 + r[0]) * opening
        ent = [(t, b, 1.0), (t, p, 1.0), (t[1:], b[:-1], -(1.0 + r[1:]))]
        if w is not None:
            ent.append((0, w[0], 1.0 + r[0]))
        bld.add_rows("balance", t + 1, rhs, rhs, ent)

    # afford[t]: total payment within the cap (a priced shortfall when soft).
    ta = t[~holiday] if not chosen else t
    ent = [(np.arange(ta.size), p[ta], 1.0)]
    if s is not None:
        ent.append((np.arange(ta.size), s[ta], -1.0))
    bld.add_rows("afford", ta + 1, -np.inf, cap[ta] - extra[ta], ent)

    # negam[t]: p_t ≥ r_t b_{t−1} outside free periods (t = 1 uses the opening balance).
    tn = t[~free]
    if chosen:
        tn = tn[tn >= min(tpl.holiday_window, h - 1)]
    if level:
        # p_t ≥ r_t b_{t−1}, divided by G_{t−1} so its coefficients stay below 1 on long terms:
        # P (1/G_{t−1} + r_t S_{t−1}) + r_t w ≥ r_t · opening.
        tn = tn[~holiday[tn]]
        g_prev = np.concatenate(([1.0], growth[:-1]))[tn]
        s_prev = np.concatenate(([0.0], acc[:-1]))[tn]
        i = np.arange(tn.size)
        ent = [(i, p_var[0], 1.0 / g_prev + r[tn] * s_prev)]
        if w is not None:
            ent.append((i, w[0], r[tn]))
        rows = bld.add_rows("negam", tn + 1, r[tn] * opening, np.inf, ent)
        scale.set(rows, 1.0 / g_prev)
    else:
        _negam_rows(bld, "negam", tn, p, b, w, r, opening)

    # yield_floor: Σ d_t (p_t + extra_t) ≥ (1 − κ)·exposure (+ 1 cent a period of margin so the
    # cent rounding cannot push the exact NPV below it).
    disc, target = o.discount, o.yield_target
    pay_disc = (0, p[pay_t], disc[pay_t])
    bld.add_rows("yield_floor", [""], target - float(disc @ extra), np.inf, [pay_disc])

    if uses_hazard:
        # The burden curve g is convex, so its cost is carried as increments: the payment's
        # share of income x[t] = Σ_k d[t,k], each d[t,k] within its piece's width and priced at
        # the piece's slope. Filling the cheaper (lower) pieces first is optimal, so the cost
        # equals g exactly — one row per period instead of one per period and piece.
        ratios = np.asarray(curve.ratios, float)
        slopes, _ = curve.pieces()
        top = np.inf if soft else max(alpha, pti_ceiling or 0.0)
        k = max(1, int(np.searchsorted(ratios[:-1], top, side="left")))
        width = np.diff(ratios)[:k].copy()
        width[-1] = np.inf  # the last piece's slope continues past its breakpoint
        d = bld.add_vars(
            "d",
            h * k,
            0.0,
            np.tile(width, h),
            (hazard_cost[:, None] * slopes[None, :k]).ravel(),
            unit=np.repeat(1.0 / y_eff, k),  # one cent of the period's payment
        )
        hazard_offset = float(hazard_cost.sum() * curve.factors[0])
        rows = np.repeat(np.arange(h), k)
        bld.add_rows(
            "hazard",
            t + 1,
            -extra,
            -extra,
            [(pay_t, p[pay_t], 1.0), (rows, d, -np.repeat(y_eff, k))],
        )

    if objective == "min_max_pti":
        rho = bld.add_vars("rho", 1, 0.0, np.inf, 1.0, unit=1.0 / float(y_eff.max()))
        tp = t[~holiday]
        i = np.arange(tp.size)
        bld.add_rows("pti", tp + 1, -np.inf, -extra[tp], [(i, p[tp], 1.0), (i, rho[0], -y_eff[tp])])

    if not level:
        _shape_rows(
            bld, tpl, policy, freq, p, b, w, r, opening, t, holiday, free, cap, extra, y_eff
        )

    offset = float(extra.sum()) * p_cost + hazard_offset
    terms = {name: getattr(o, name) for name in _TERMS}  # the outline's, as they are
    terms["p_lower"] = np.where(holiday, 0.0, p_lower)
    return PlanProgram(
        **terms,
        lp=bld.program(offset),
        case=case,
        policy=policy,
        p_cols=p,
        p_on=~holiday if level else np.ones(h, bool),
        row_scale=scale.array(bld.m),
        cols=dict(bld.cols),
        rows=dict(bld.rows),
    )


def _negam_rows(bld, name, tn, p, b, w, r, opening, big_m=None, u=None) -> None:
    """``p_t − r_t b_{t−1} (+ M u_t) ≥ 0`` for the periods ``tn``."""
    if tn.size == 0:
        return
    i = np.arange(tn.size)
    lo = np.where(tn == 0, r[0] * opening, 0.0)
    ent = [(i, p[tn], 1.0)]
    later = tn > 0
    ent.append((i[later], b[tn[later] - 1], -r[tn[later]]))
    if w is not None and not later.all():
        ent.append((i[~later], w[0], r[0]))
    if u is not None:
        ent.append((i, u, big_m))
    bld.add_rows(name, tn + 1, lo, np.inf, ent)


def _shape_rows(bld, tpl, policy, freq, p, b, w, r, opening, t, holiday, free, cap, extra, y):
    """Rows of the template's payment shape (level, graduated, seasonal, stepped, holidays)."""
    h = t.size
    pay_t = t[~holiday]
    if tpl.shape in ("level", "graduated", "falling") and pay_t.size > 1:
        cur, prev = pay_t[1:], pay_t[:-1]
        i = np.arange(cur.size)
        lo, up = {"level": (0.0, 0.0), "graduated": (0.0, np.inf), "falling": (-np.inf, 0.0)}[
            tpl.shape
        ]
        bld.add_rows(tpl.shape, cur + 1, lo, up, [(i, p[cur], 1.0), (i, p[prev], -1.0)])
    elif tpl.shape == "seasonal":
        theta = bld.add_vars("theta", 1, 0.0, np.inf, unit=1.0 / float(y.max()))
        i = np.arange(pay_t.size)
        rhs = -extra[pay_t]
        bld.add_rows(
            "seasonal", pay_t + 1, rhs, rhs, [(i, p[pay_t], 1.0), (i, theta[0], -y[pay_t])]
        )
    elif tpl.shape == "stepped" and h > 1:
        big = float(cap.max()) + 1.0
        u = bld.add_vars("u", h - 1, 0.0, 1.0, integer=True)
        i = np.arange(h - 1)
        cur = t[1:]
        ent = [(i, p[cur], 1.0), (i, p[cur - 1], -1.0)]
        bld.add_rows("step_up", cur + 1, -np.inf, 0.0, [*ent, (i, u, -big)])
        bld.add_rows("step_down", cur + 1, 0.0, np.inf, [*ent, (i, u, big)])
        bld.add_rows("steps", [""], -np.inf, tpl.levels - 1, [(0, u, 1.0)])
    elif tpl.shape == "chosen_holiday" and h > 1:
        n = min(tpl.holiday_window, h - 1)
        u = bld.add_vars("u", n, 0.0, 1.0, integer=True)
        win = t[:n]
        i = np.arange(n)
        # holiday_pay: p_t ≤ (cap_t − extra_t)(1 − u_t); the afford row keeps the cap itself.
        room = np.maximum(cap[win] - extra[win], 0.0)
        bld.add_rows("holiday_pay", win + 1, -np.inf, room, [(i, p[win], 1.0), (i, u, room)])
        # holiday_negam: interest covered unless on holiday; M bounds r_t b_{t−1} in the window.
        growth = np.cumprod(1.0 + r[:n])
        big_m = r[win] * opening * np.concatenate(([1.0], growth[:-1])) + 1.0
        on = ~free[win]
        _negam_rows(bld, "holiday_negam", win[on], p, b, w, r, opening, big_m[on], u[on])
        # holiday_min: the minimum payment unless on holiday.
        mp = np.where(free[win], 0.0, float(policy.min_payment))
        bld.add_rows("holiday_min", win + 1, mp, np.inf, [(i, p[win], 1.0), (i, u, mp)])
        bld.add_rows("holidays", [""], -np.inf, _max_holidays(policy, freq), [(0, u, 1.0)])


def _max_holidays(policy: Policy, freq: Frequency) -> float:
    return float(max(1, int(policy.max_holiday_months // months_per_period(freq))))
