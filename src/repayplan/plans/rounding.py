"""From an LP solution to a cent-exact schedule, and the exact re-check of every constraint.

The LP works in real-valued cents; a borrower pays whole cents. :func:`round_plan` rounds
the interest-bearing payments half-even inside their integer bounds, runs the exact balance
recursion (:func:`repayplan.finance.schedule_from_payments`: interest rounded half-even, the
last installment settles the residual), adds back the arrears spread without interest, and
then checks the *exact* schedule against affordability, no negative amortisation, the
minimum payment, the yield floor and the rate cap. What it finds is returned as
:class:`Violation` s; :func:`repayplan.plans.quote.quote` tightens the violated rows by the
measured amount and re-solves, so the schedule it offers meets them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import numpy as np

from repayplan.finance import (
    Installment,
    Schedule,
    div_round_half_even,
    irr_annualised,
    schedule_from_payments,
)
from repayplan.finance.daycount import exact_fraction
from repayplan.plans.model import PlanProgram

#: Tolerance of the rate-cap check (a fraction): half of 0.01 percentage point, so the IRR
#: rounded to two decimals of a percent, as caps are stated, never exceeds the cap. Interest
#: rounded to the cent on small late balances can lift the exact IRR of a plan priced at the
#: cap by ~1e-6 — rounding noise, not a charge.
RATE_CAP_TOLERANCE = Decimal("0.00005")


@dataclass(frozen=True)
class Violation:
    """A constraint the exact schedule misses: ``kind`` is the LP row family (``afford``,
    ``negam``, ``min_payment``, ``yield_floor``, ``rate_cap``), ``period`` the installment
    number (None for whole-plan rows), ``amount`` by how much (cents; a fraction for
    ``rate_cap``)."""

    kind: str
    period: int | None
    amount: float


@dataclass(frozen=True)
class RoundedPlan:
    """The cent-exact plan: schedule (financed amount = exposure − waiver), the waiver in
    cents, per-period shortfall against affordability (cents; non-zero only when
    affordability is soft), the lender NPV at the hurdle (cents, float), the IRR-method
    nominal annual rate (fraction) and what still fails."""

    schedule: Schedule
    waiver: int
    shortfall: np.ndarray
    lender_npv: float
    irr_annual_rate: Decimal
    violations: tuple[Violation, ...]

    @property
    def payments(self) -> np.ndarray:
        """Total payment per installment (cents, int64)."""
        return np.array([i.payment for i in self.schedule.installments], dtype=np.int64)


def round_payments(program: PlanProgram, x: np.ndarray) -> tuple[np.ndarray, int]:
    """Interest-bearing payments and the waiver in whole cents, inside the LP's bounds.

    Rounding each payment on its own lets the errors compound into the last installment
    (tens of cents over a long plan), which can push it past its affordability cap. Instead
    each payment is chosen so the *exact* balance (interest rounded half-even, as
    :func:`~repayplan.finance.schedule_from_payments` charges it) lands on the LP's balance
    ``b[t]`` rounded half-even: the exact path never strays more than a cent from the LP
    path, so the last installment stays within a cent of the LP's. Level and stepped shapes
    round each payment *up* to the cent instead (a whole-cent cap is never crossed by that),
    so equal payments stay equal and the last installment comes out slightly smaller. Bounds
    are whole cents (caps are floored), and outside free periods a payment never drops below
    its interest.
    """
    lower = np.ceil(program.p_lower - 1e-9).astype(np.int64)
    upper = np.where(program.holiday, 0.0, program.cap - program.extra)
    if program.soft:
        upper = np.where(program.holiday, 0.0, np.inf)
    upper = np.where(np.isfinite(upper), np.maximum(upper, lower), 2.0**62).astype(np.int64)
    waiver = int(np.clip(np.rint(program.waiver(x)), 0, program.max_waiver))
    if program.template.shape in ("level", "stepped"):
        up_to_cent = np.ceil(program.interest_bearing(x) - 1e-6)
        return np.clip(up_to_cent, lower, upper).astype(np.int64), waiver
    target = np.rint(program.balances(x)).astype(np.int64).tolist()
    factors = [exact_fraction(f) for f in program.rate_factors]
    free = program.free.tolist()
    lo, up = lower.tolist(), upper.tolist()
    balance = program.opening_balance - waiver
    pay = []
    for t, f in enumerate(factors):
        interest = div_round_half_even(balance * f.numerator, f.denominator)
        due = balance + interest
        p = min(max(due - target[t], lo[t]), up[t])
        if not free[t]:
            p = max(p, min(interest, up[t]))
        p = min(p, due)
        pay.append(p)
        balance = due - p
    return np.array(pay, dtype=np.int64), waiver


def exact_schedule(program: PlanProgram, pay: np.ndarray, waiver: int) -> Schedule:
    """The cent-exact schedule of interest-bearing payments ``pay`` plus the spread arrears."""
    base = schedule_from_payments(
        program.opening_balance - waiver,
        program.rate_factors,
        program.due_dates,
        [int(v) for v in pay],
    )
    extra = program.extra.astype(np.int64)
    if not extra.any():
        return _trimmed(base)
    owed_after = int(extra.sum()) - np.cumsum(extra)
    rows = tuple(
        Installment(
            i.number,
            i.due_date,
            i.payment + int(e),
            i.principal + int(e),
            i.interest,
            i.balance + int(o),
        )
        for i, e, o in zip(base.installments, extra, owed_after, strict=True)
    )
    return _trimmed(Schedule(principal=base.principal + int(extra.sum()), installments=rows))


def _trimmed(schedule: Schedule) -> Schedule:
    """``schedule`` without the empty installments after the loan is paid off (prepayment
    is free, so an early payoff simply ends the plan)."""
    inst = schedule.installments
    paid_off = next((k for k, i in enumerate(inst) if i.balance == 0), len(inst) - 1)
    if all(i.payment == 0 for i in inst[paid_off + 1 :]):
        inst = inst[: paid_off + 1]
    return Schedule(principal=schedule.principal, installments=inst)


def check_schedule(program: PlanProgram, schedule: Schedule, waiver: int) -> RoundedPlan:
    """Re-check every constraint of ``program`` on the exact ``schedule``."""
    inst = schedule.installments
    n = len(inst)
    pay = np.array([i.payment for i in inst], dtype=np.int64)
    interest = np.array([i.interest for i in inst], dtype=np.int64)
    extra = program.extra[:n].astype(np.int64)
    found: list[Violation] = []

    over = pay - program.cap[:n].astype(np.int64)
    shortfall = np.maximum(over, 0)
    if not program.soft:
        found += [Violation("afford", int(t) + 1, float(over[t])) for t in np.flatnonzero(over > 0)]
        shortfall = np.zeros_like(shortfall)
    # Interest must be covered by the interest-bearing part outside free periods.
    short = interest - (pay - extra)
    bad = np.flatnonzero((short > 0) & ~program.free[:n])
    found += [Violation("negam", int(t) + 1, float(short[t])) for t in bad]
    below = program.min_payment[:n] - pay
    found += [
        Violation("min_payment", int(t) + 1, float(below[t]))
        for t in np.flatnonzero(below[:-1] > 0)
    ]
    npv = float(program.discount[:n] @ pay)
    floor = float(1 - program.concession_limit) * program.case.exposure
    if npv < floor:
        found.append(Violation("yield_floor", None, floor - npv))
    advance = schedule.principal
    irr = irr_annualised(
        [-advance, *pay.tolist()], periods_per_year=program.frequency.periods_per_year
    )
    rate = Decimal(irr.nominal_annual_rate)
    if rate > program.policy.rate_cap + RATE_CAP_TOLERANCE:
        found.append(Violation("rate_cap", None, float(rate - program.policy.rate_cap)))
    return RoundedPlan(schedule, waiver, shortfall, npv, rate, tuple(found))


def round_plan(program: PlanProgram, x: np.ndarray) -> RoundedPlan:
    """Cent-exact plan from LP solution ``x``, with its exact constraint check."""
    pay, waiver = round_payments(program, x)
    return check_schedule(program, exact_schedule(program, pay, waiver), waiver)


def tighten(program: PlanProgram, violations: tuple[Violation, ...]) -> PlanProgram | None:
    """``program`` with each violated row moved by the violation plus one cent, so a
    re-solve lands on a schedule that meets it after rounding; None when a violation cannot
    be fixed by tightening (the rate cap, a minimum payment)."""
    names = program.lp.row_names
    for v in violations:
        if v.kind in ("afford", "negam"):
            label = f"{v.kind}[{v.period}]"
            if label not in names:  # a holiday row family carries this period instead
                return None
            row = names.index(label)
            move = (v.amount + 1) * program.row_scale[row]
            if v.kind == "afford":
                program = program.with_row_bounds(row, upper=program.lp.row_upper[row] - move)
            else:
                program = program.with_row_bounds(row, lower=program.lp.row_lower[row] + move)
        elif v.kind == "yield_floor":
            row = names.index("yield_floor")
            program = program.with_row_bounds(row, lower=program.lp.row_lower[row] + v.amount + 1)
        else:
            return None
    return program
