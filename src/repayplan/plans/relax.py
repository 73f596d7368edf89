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
from dataclasses import replace
from decimal import Decimal
from typing import Any

import numpy as np

from repayplan.finance import cents_to_decimal
from repayplan.plans.case import Policy
from repayplan.plans.lp import LPSolution
from repayplan.plans.model import PlanProgram, build_program, max_term
from repayplan.plans.strategies.base import SolverStrategy

#: Constraint families, in the order reasons are reported: (label, LP row families).
FAMILIES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("affordability", ("afford", "holiday_pay", "pti")),
    ("no negative amortisation", ("negam", "holiday_negam")),
    ("yield floor", ("yield_floor",)),
    ("minimum payment", ("holiday_min",)),
    ("payment shape", ("level", "graduated", "seasonal", "step_up", "step_down", "steps")),
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
        return (
            f"minimum payment: {_money(policy.min_payment)} is more than the borrower can afford "
            f"in {low} period(s)"
        )
    return f"payment shape: the {program.template.shape} shape of the {program.template.name} plan"


def _room(program: PlanProgram) -> np.ndarray:
    """The most interest-bearing payment each period allows (cents; on a level shape, the
    most affordable *level* payment in every paying period)."""
    room = np.maximum(np.where(program.holiday, 0.0, program.cap - program.extra), 0.0)
    if program.template.shape == "level":
        room = np.where(program.holiday, 0.0, room[~program.holiday].min())
    return room


def repayable(program: PlanProgram) -> float:
    """Present value, at the plan's own rate, of paying the most the borrower can afford in
    every period (cents): the most of the interest-bearing balance any plan of this shape
    can repay."""
    return float(_room(program) @ (1.0 / np.cumprod(1.0 + program.period_rates)))


def refuted(program: PlanProgram) -> str | None:
    """Why ``program`` surely has no solution, when simple bounds show it (else None).

    Proving infeasibility is a solver's slowest answer, and declared relaxations meet it
    often, so three exact necessary conditions are checked first: the most affordable
    payments repay the balance (less the largest waiver) within the term (``Σ p_t / G_t`` is
    the balance repaid, ``p_t ≤ cap_t − extra_t``); no period's interest on the smallest
    balance it can carry exceeds what it can pay; on a level shape, whose payment the payoff
    pins to ``(balance − waiver) / Σ 1/G_t``, the largest such payment meets the yield floor.
    """
    if program.soft:
        return None
    room = _room(program)
    growth = np.cumprod(1.0 + program.period_rates)
    owed = program.opening_balance - program.max_waiver
    repaid = np.cumsum(room / growth)
    if repaid[-1] < owed - 1.0:
        return "affordability rules out payoff within the term"
    smallest = np.maximum(growth * (owed - repaid), 0.0)
    before = np.concatenate(([float(owed)], smallest[:-1]))
    checked = ~program.free
    if np.any(checked & (room < program.period_rates * before - 1.0)):
        return "the affordable payment does not cover the interest"
    floor = program.lp.row_lower[program.rows["yield_floor"][0]] - 1.0
    if program.template.shape == "level" and "b" not in program.cols:
        paying = ~program.holiday
        level = min(room[paying][0], program.opening_balance / float((1.0 / growth)[paying].sum()))
        if level * float(program.discount[paying].sum()) < floor:
            return "no level payment meets the yield floor"
    elif _best_npv(room, growth, program.discount, program.opening_balance) < floor:
        return "no affordable plan meets the yield floor"
    return None


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
    and in order: longer term, rate cut to the floor, deeper concession within policy."""
    steps: list[tuple[str, dict[str, Any]]] = []
    kwargs = dict(base)
    unit = "months" if program.frequency.months == 1 else f"{program.frequency.value} periods"
    top = max_term(policy, program.frequency)
    for term in sorted({min(top, math.ceil(program.periods * 1.5)), top}):
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
