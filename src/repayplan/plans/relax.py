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
from repayplan.plans.model import PlanProgram, max_term
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


def _detail(program: PlanProgram, label: str) -> str:
    case, policy = program.case, program.policy
    r = np.array([float(f) for f in program.rate_factors])
    room = np.where(program.holiday, 0.0, program.cap - program.extra)
    n = program.periods
    if label == "affordability":
        repayable = float(np.maximum(room, 0.0) @ (1.0 / np.cumprod(1.0 + r)))
        owed = program.opening_balance - program.max_waiver
        rule = (
            f"at most {_pct(policy.pti_cap)} of income, and only what is left after essentials "
            "and other debts"
        )
        if repayable < owed:
            return (
                f"affordability: paying the most the borrower can afford every period ({rule}) "
                f"repays about {_money(repayable)} of the {_money(owed)} owed within {n} periods"
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


def diagnose(program: PlanProgram, strategy: SolverStrategy) -> tuple[str, ...]:
    """Reasons ``program`` has no solution: each constraint family whose removal alone makes
    it feasible, with figures; if no single family does, all families that bind together."""
    found = []
    for label, families in FAMILIES:
        present = any(program.rows.get(f) is not None for f in families)
        if not present and label != "minimum payment":
            continue
        if strategy.solve(_without(program, label, families).lp).status in ("optimal", "unbounded"):
            found.append(_detail(program, label))
    if found:
        return tuple(found)
    labels = [label for label, fams in FAMILIES if any(f in program.rows for f in fams)]
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
