"""Infeasibility as an answer: which constraint makes a plan impossible, and the declared
relaxations to try, in order.

:func:`diagnose` lifts one constraint family at a time (affordability, no negative
amortisation, the yield floor, the minimum payment, the payment shape) and re-solves: each
family whose removal makes the model feasible is named, with the figures that show why.
:func:`relaxation_steps` lists the declared relaxations, cumulative and in order: a longer
term (half as long again, then the policy maximum), the rate cut to its floor, then the
deeper concession the policy allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

import numpy as np

from repayplan.finance import cents_to_decimal
from repayplan.plans.case import Policy
from repayplan.plans.horizon import max_term
from repayplan.plans.lp import LPSolution
from repayplan.plans.model import PlanOutline, PlanProgram, build_program
from repayplan.plans.strategies.base import SolverStrategy

#: Constraint families, in the order reasons are reported: (label, LP row families).
FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("affordability", ("afford", "holiday_pay", "pti")),
    ("no negative amortisation", ("negam", "holiday_negam")),
    ("yield floor", ("yield_floor",)),
    ("minimum payment", ("holiday_min",)),
    (
        "payment shape",
        ("level", "graduated", "falling", "seasonal", "step_up", "step_down", "steps"),
    ),
)


def _money(cents: float) -> str:
    return f"{cents_to_decimal(round(cents)):,}"


def _pct(x: Decimal | float) -> str:
    return f"{Decimal(str(x)) * 100:.4f}".rstrip("0").rstrip(".") + "%"


def _without(program: PlanProgram, label: str, families: tuple[str, ...]) -> PlanProgram:
    lp = program.lp
    lo, up = lp.row_lower.copy(), lp.row_upper.copy()
    for fam in families:
        idx = program.rows.get(fam)
        if idx is not None and idx.size:
            lo[idx], up[idx] = -np.inf, np.inf
    lower = lp.lower
    if label == "minimum payment":
        lower = lower.copy()
        lower[program.cols["p"]] = 0.0
    return replace(program, lp=replace(lp, row_lower=lo, row_upper=up, lower=lower))


def _free_shape(program: PlanProgram) -> PlanProgram:
    return build_program(
        program.case,
        program.policy,
        program.template.name,
        annual_rate=program.annual_rate,
        term=program.periods,
        concession_limit=program.concession_limit,
        shape="free",
    )


def _detail(program: PlanProgram, label: str) -> str:
    case, policy = program.case, program.policy
    r = program.period_rates
    room = np.where(program.holiday, 0.0, program.cap - program.extra)
    n = program.periods
    if label == "affordability":
        most = repayable(program)
        owed = program.opening_balance - program.max_waiver
        rule = (
            f"at most {_pct(policy.pti_cap)} of income, and only what is left after essentials "
            "and other debts"
        )
        if most < owed:
            return (
                f"affordability: paying the most the borrower can afford every period ({rule}) "
                f"repays about {_money(most)} of the {_money(owed)} owed within {n} periods"
            )
        paying = np.flatnonzero(~program.holiday)
        worst = int(paying[np.argmin(room[paying])])
        return (
            f"affordability: only {_money(max(room[worst], 0.0))} is affordable in "
            f"{program.due_dates[worst]:%B %Y} ({rule}"
            + (
                f", after {_money(program.extra[worst])} of spread arrears"
                if program.extra[worst]
                else ""
            )
            + ")"
        )
    if label == "no negative amortisation":
        interest = r * program.opening_balance
        short = np.flatnonzero((room < interest) & ~program.free)
        when = program.due_dates[int(short[0])].strftime("%B %Y") if short.size else "some period"
        return (
            "no negative amortisation: the affordable payment does not cover the interest "
            f"(about {_money(interest[short[0]] if short.size else interest[0])}) in {when}"
        )
    if label == "yield floor":
        return (
            f"yield floor: every affordable plan leaves the lender's NPV at the "
            f"{_pct(policy.hurdle_rate)} hurdle below {_pct(1 - program.concession_limit)} of "
            f"the {_money(case.exposure)} exposure"
        )
    if label == "minimum payment":
        low = int(np.count_nonzero((room < policy.min_payment) & (program.min_payment > 0)))
        if low == 0:
            owed = program.opening_balance - program.max_waiver
            return (
                f"minimum payment: {int(np.count_nonzero(program.min_payment > 0))} payments "
                f"of at least {_money(policy.min_payment)} are more than the "
                f"{_money(owed)} owed"
            )
        return (
            f"minimum payment: {_money(policy.min_payment)} is more than the borrower can afford "
            f"in {low} period(s)"
        )
    return f"payment shape: the {program.template.shape} shape of the {program.template.name} plan"


@dataclass(frozen=True)
class _Bounds:
    """What :func:`refuted` reads of a plan: from its program, or from its outline before
    the program is written (:func:`refuted_outline`). Money in cents per period; the flags
    say which row families are in force (a family :func:`diagnose` lifts is not)."""

    shape: str
    holiday_window: int
    soft: bool
    cap: np.ndarray
    extra: np.ndarray
    holiday: np.ndarray
    free: np.ndarray
    incomes: np.ndarray
    period_rates: np.ndarray
    discount: np.ndarray
    opening_balance: int
    max_waiver: int
    eliminated: bool  # a level shape carried as one payment column
    afford: bool
    graduated: bool
    seasonal: bool
    negam: bool
    yield_floor: float  # lower bound of the yield floor row
    p_lower: np.ndarray  # lower bound of each period's interest-bearing payment


#: The money arrays and amounts :class:`_Bounds` copies from an outline or a program.
_SHARED = ("cap", "extra", "holiday", "free", "incomes", "period_rates", "discount",
           "opening_balance", "max_waiver")  # fmt: skip


def _shared(plan: PlanOutline | PlanProgram) -> dict[str, Any]:
    """The :class:`_Bounds` fields an outline and its program give alike."""
    return {
        "shape": plan.template.shape,
        "holiday_window": plan.template.holiday_window,
        "soft": plan.soft,
        **{name: getattr(plan, name) for name in _SHARED},
    }


def _program_bounds(program: PlanProgram) -> _Bounds:
    lp, shape = program.lp, program.template.shape
    return _Bounds(
        **_shared(program),
        eliminated=shape == "level" and "b" not in program.cols,
        afford=_active(program, "afford"),
        graduated=shape == "graduated" and _active(program, "graduated"),
        seasonal=shape == "seasonal" and _active(program, "seasonal"),
        negam=_active(program, "negam"),
        yield_floor=float(lp.row_lower[program.rows["yield_floor"][0]]),
        p_lower=np.maximum(np.where(program.p_on, lp.lower[program.p_cols], 0.0), 0.0),
    )


def _outline_bounds(outline: PlanOutline) -> _Bounds:
    # The program build_from_outline writes: every family in force, the shape rows where
    # there are paying periods to tie, the payments' bounds as outlined.
    shape, paying = outline.template.shape, int(np.count_nonzero(~outline.holiday))
    return _Bounds(
        **_shared(outline),
        eliminated=outline.level,
        afford=True,
        graduated=shape == "graduated" and paying > 1,
        seasonal=shape == "seasonal" and paying > 0,
        negam=True,  # where no row exists, every period is free and nothing is checked
        yield_floor=outline.yield_target - float(outline.discount @ outline.extra),
        p_lower=np.maximum(outline.p_lower, 0.0),
    )


def _room_of(cap: np.ndarray, extra: np.ndarray, holiday: np.ndarray, shape: str) -> np.ndarray:
    room = np.maximum(np.where(holiday, 0.0, cap - extra), 0.0)
    if shape == "level":
        room = np.where(holiday, 0.0, room[~holiday].min())
    return room


def _room(program: PlanProgram) -> np.ndarray:
    """The most interest-bearing payment each period allows (cents; on a level shape, the
    most affordable *level* payment in every paying period)."""
    return _room_of(program.cap, program.extra, program.holiday, program.template.shape)


def repayable(program: PlanProgram) -> float:
    """Present value, at the plan's own rate, of paying the most the borrower can afford in
    every period (cents): the most of the interest-bearing balance any plan of this shape
    can repay."""
    return float(_room(program) @ (1.0 / np.cumprod(1.0 + program.period_rates)))


def _active(program: PlanProgram, family: str) -> bool:
    """True when the row family is in the program and none of its rows is lifted."""
    rows = program.rows.get(family)
    if rows is None or not rows.size:
        return False
    lp = program.lp
    return bool(np.all(np.isfinite(lp.row_lower[rows]) | np.isfinite(lp.row_upper[rows])))


def _shape_room(b: _Bounds) -> np.ndarray:
    """The most affordable interest-bearing payments (:func:`_room`), tightened by the
    payment shape's rows where they are in force (cents): a graduated payment never exceeds
    a later one, so it is at most the smallest room from its period on; a seasonal payment
    is one share of income, at most the smallest ``cap_t / income_t`` over the paying
    periods."""
    room = _room_of(b.cap, b.extra, b.holiday, b.shape)
    paying = ~b.holiday
    if b.graduated:
        room[paying] = np.minimum.accumulate(room[paying][::-1])[::-1]
    elif b.seasonal:
        y = np.maximum(b.incomes, 1.0)
        share = float(np.min(b.cap[paying] / y[paying]))
        room[paying] = np.minimum(room[paying], np.maximum(share * y - b.extra, 0.0)[paying])
    return room


def refuted(program: PlanProgram) -> str | None:
    """Why ``program`` surely has no solution, when simple bounds show it (else None).

    Proving infeasibility is a solver's slowest answer, and declared relaxations meet it
    often, so three exact necessary conditions are checked first: the most affordable
    payments repay the balance (less the largest waiver) within the term (``Σ p_t / G_t`` is
    the balance repaid, ``p_t ≤ cap_t − extra_t``); no period's interest on the smallest
    balance it can carry exceeds what it can pay; on a level shape, whose payment the payoff
    pins to ``(balance − waiver) / Σ 1/G_t``, the largest such payment meets the yield floor.
    On graduated and seasonal shapes the most affordable payments are those the shape allows
    (:func:`_shape_room`), and the best NPV of a graduated plan is that of the most
    front-loaded non-decreasing one (:func:`_best_graduated_npv`); on other shapes the
    minimum payments are paid first. Plans at the 480-month relaxation took HiGHS 20–200 ms
    to prove infeasible, these checks ~50 µs. Only rows in force count: a family lifted by
    :func:`diagnose` is not assumed.
    """
    return _refute(_program_bounds(program))


def refuted_outline(outline: PlanOutline) -> str | None:
    """:func:`refuted` for the program :func:`~repayplan.plans.model.build_from_outline`
    would write from ``outline`` — the same answer, without writing it (a 480-period plan's
    program costs ~3 ms to build, its refutation ~50 µs)."""
    return _refute(_outline_bounds(outline))


def _refute(b: _Bounds) -> str | None:
    if b.soft or not b.afford:  # no hard cap on the payments: nothing to bound them by
        return None
    room = _shape_room(b)
    growth = np.cumprod(1.0 + b.period_rates)
    owed = b.opening_balance - b.max_waiver
    repaid = np.cumsum(room / growth)
    if repaid[-1] < owed - 1.0:
        return "affordability rules out payoff within the term"
    smallest = np.maximum(growth * (owed - repaid), 0.0)
    before = np.concatenate(([float(owed)], smallest[:-1]))
    # Interest must be covered where a no-negative-amortisation row is in force: not in free
    # periods, not where the model may choose a holiday, not when the family is lifted.
    checked = ~b.free
    if b.shape == "chosen_holiday":
        checked[: min(b.holiday_window, b.free.size - 1)] = False
    if not b.negam:
        checked[:] = False
    if np.any(checked & (room < b.period_rates * before - 1.0)):
        return "the affordable payment does not cover the interest"
    floor = b.yield_floor - 1.0
    paying = ~b.holiday
    if b.eliminated:
        level = min(room[paying][0], b.opening_balance / float((1.0 / growth)[paying].sum()))
        if level * float(b.discount[paying].sum()) < floor:
            return "no level payment meets the yield floor"
    elif b.graduated:
        best = _best_graduated_npv(
            room[paying], growth[paying], b.discount[paying], b.opening_balance
        )
        if best < floor:
            return "no affordable graduated plan meets the yield floor"
    else:
        # The payments' own lower bounds (the minimum payment; 0 where it is lifted) are
        # paid whatever happens, in periods where a cent may buy little NPV.
        lower = b.p_lower
        if np.any(lower > room + 1.0):
            return "a minimum payment is more than is affordable"
        rest = b.opening_balance - float(lower @ (1.0 / growth))
        if rest < -1.0:
            return "the minimum payments repay more than is owed"
        best = float(b.discount @ lower) + _best_npv(
            np.maximum(room - lower, 0.0), growth, b.discount, max(rest, 0.0)
        )
        if best < floor:
            return "no affordable plan meets the yield floor"
    return None


def _best_graduated_npv(
    room: np.ndarray, growth: np.ndarray, disc: np.ndarray, owed: float
) -> float:
    """The most ``Σ disc_t p_t`` over non-decreasing ``0 ≤ p_t ≤ room_t`` (``room``
    non-decreasing, as :func:`_shape_room` makes it) with ``Σ p_t / G_t = owed`` (cents).

    Where a cent of balance buys less NPV the later it is paid (``disc_t·G_t``
    non-increasing: the plan's rate at most the hurdle), the most front-loaded non-decreasing
    plan, ``p_t = min(room_t, c)`` with ``c`` set by the payoff, is best: any other has at
    most its repaid balance by every period (were it more by period k, its payments from
    some t ≤ k on would all exceed ``c`` and it would repay more than ``owed``), and NPV is
    a non-negative combination of those running totals. Otherwise the late-filled knapsack
    of :func:`_best_npv` is itself non-decreasing, hence exact."""
    value = disc * growth
    if room.size < 2 or np.any(np.diff(value) > 1e-12 * value[:-1]):
        return _best_npv(room, growth, disc, owed)
    weight = 1.0 / growth
    order = np.argsort(room, kind="stable")
    u, a = room[order], weight[order]
    below = np.concatenate(([0.0], np.cumsum(a * u)))  # Σ a·u over the k smallest rooms
    above = a.sum() - np.concatenate(([0.0], np.cumsum(a)))  # Σ a over the others
    reach = below[:-1] + u * above[:-1]  # balance repaid with c = u_k
    k = int(np.searchsorted(reach, owed))
    if k >= u.size:
        return float(disc @ room)  # cannot repay: every payment at its room
    level = (owed - below[k]) / above[k]
    return float(disc @ np.minimum(room, level))


def _best_npv(room: np.ndarray, growth: np.ndarray, disc: np.ndarray, owed: float) -> float:
    """The most ``Σ disc_t p_t`` over ``0 ≤ p_t ≤ room_t`` with ``Σ p_t / G_t = owed``: a
    fractional knapsack, filled greedily where a cent of balance buys the most NPV."""
    order = np.argsort(-(disc * growth), kind="stable")
    pv = room[order] / growth[order]
    before = np.concatenate(([0.0], np.cumsum(pv)[:-1]))
    take = np.clip(owed - before, 0.0, pv)  # balance repaid by each period, in order
    return float(take @ (disc[order] * growth[order]))


def cannot_repay(program: PlanProgram) -> bool:
    """True when :func:`refuted` proves ``program`` infeasible."""
    return refuted(program) is not None


def solve_program(program: PlanProgram, strategy: SolverStrategy) -> LPSolution:
    """``strategy.solve(program.lp)``, answering "infeasible" at once when :func:`refuted`
    proves it."""
    why = refuted(program)
    if why is not None:
        return LPSolution("infeasible", strategy.name, message=why)
    return strategy.solve(program.lp)


def diagnose(program: PlanProgram, strategy: SolverStrategy) -> tuple[str, ...]:
    """Reasons ``program`` has no solution: each constraint family whose removal alone makes
    it feasible, with figures; if no single family does, all families that bind together."""
    found = []
    for label, families in FAMILIES:
        present = any(program.rows.get(f) is not None for f in families)
        if label == "payment shape" and program.template.shape == "level":
            lifted = _free_shape(program)  # a level shape has no rows to lift: rebuild it
        elif present or label == "minimum payment":
            lifted = _without(program, label, families)
        else:
            continue
        if label != "affordability" and cannot_repay(lifted):
            continue  # affordability still rules it out
        if strategy.solve(lifted.lp).status in ("optimal", "unbounded"):
            found.append(_detail(program, label))
    if found:
        return tuple(found)
    labels = [
        label
        for label, fams in FAMILIES
        if any(f in program.rows for f in fams)
        or (label == "payment shape" and program.template.shape == "level")
    ]
    return (
        "no single constraint: "
        + ", ".join(labels)
        + f" together with repaying within {program.periods} periods",
    )


def relaxation_steps(
    policy: Policy, program: PlanProgram, base: dict[str, Any]
) -> list[tuple[str, dict[str, Any]]]:
    """The declared relaxations for ``program`` (built with keyword arguments ``base``), each
    as (what was relaxed, the keyword arguments of :func:`build_program` with it), cumulative
    and in order: longer term (not for a settlement), rate cut to the floor, deeper
    concession within policy."""
    steps: list[tuple[str, dict[str, Any]]] = []
    kwargs = dict(base)
    unit = "months" if program.frequency.months == 1 else f"{program.frequency.value} periods"
    top = max_term(policy, program.frequency)
    # A settlement's short term is what makes it one: it is not lengthened.
    terms = () if program.template.settlement else (min(top, math.ceil(program.periods * 1.5)), top)
    for term in sorted(set(terms)):
        if term > program.periods:
            kwargs["term"] = term
            steps.append((f"longer term ({term} {unit})", dict(kwargs)))
    if program.annual_rate > policy.rate_floor:
        kwargs["annual_rate"] = policy.rate_floor
        steps.append((f"rate cut to the {_pct(policy.rate_floor)} floor", dict(kwargs)))
    if program.concession_limit < policy.max_concession:
        kwargs["concession_limit"] = policy.max_concession
        steps.append(
            (f"deeper concession (up to {_pct(policy.max_concession)} of exposure)", dict(kwargs))
        )
    return steps
