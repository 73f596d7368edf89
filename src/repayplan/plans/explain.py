"""Plain-language explanation of a plan from the rows that bind at its optimum and their duals.

A row binds when its activity sits on a bound (to a cent, or 1e-9 for ratio rows). Each
row family has one phrase ("capped by March income", "held up by the yield floor"); where
the solver returns duals, the clauses are ordered by how much their constraint costs the
objective (|dual| × the row's scale), the strongest first.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from functools import lru_cache

import numpy as np

from repayplan.finance import cents_to_decimal
from repayplan.plans.lp import LPSolution
from repayplan.plans.model import PlanProgram
from repayplan.plans.rounding import RoundedPlan

_BIND_CENTS = 0.5  # a money row within half a cent of its bound binds


#: Row families a clause of the explanation speaks for.
EXPLAINED = (
    "afford",
    "holiday_pay",
    "yield_floor",
    "negam",
    "pti",
    "graduated",
    "falling",
    "steps",
)


def binding_rows(program: PlanProgram, x: np.ndarray) -> np.ndarray:
    """Indices of rows whose activity is on a finite bound at ``x``."""
    lp = program.lp
    act = lp.A @ x
    scale = np.maximum(1.0, np.abs(act)) * 1e-9 + _BIND_CENTS
    on_lo = np.isfinite(lp.row_lower) & (np.abs(act - lp.row_lower) <= scale)
    on_up = np.isfinite(lp.row_upper) & (np.abs(act - lp.row_upper) <= scale)
    return np.flatnonzero(on_lo | on_up)


def _family(name: str) -> tuple[str, int | None]:
    head, _, tail = name.partition("[")
    first = tail.rstrip("]").split(",")[0]
    return head, int(first) if first.isdigit() else None


def _month(program: PlanProgram, period: int) -> str:
    return _month_name(program.due_dates[period - 1])


@lru_cache(maxsize=4096)
def _month_name(day: date) -> str:
    return day.strftime("%B %Y")


def _money(cents: float) -> str:
    return f"{cents_to_decimal(round(cents)):,}"


def _percent(x: Decimal | float) -> str:
    return f"{Decimal(str(x)) * 100:.4f}".rstrip("0").rstrip(".") + "%"


def _periods(program: PlanProgram, periods: list[int]) -> str:
    if len(periods) > 3:  # only the first and the last are named
        first, last = _month(program, periods[0]), _month(program, periods[-1])
        return f"{len(periods)} periods from {first} to {last}"
    names = [_month(program, t) for t in periods]
    if len(names) == 1:
        return names[0]
    return ", ".join(names[:-1]) + " and " + names[-1]


def explain(
    program: PlanProgram,
    solution: LPSolution,
    plan: RoundedPlan,
    *,
    contract_rate: Decimal | None = None,
    pti: float | None = None,
) -> str:
    """One paragraph: the shape of the plan, then why it looks so — the binding rows (by
    dual weight when available), the rate, the waiver, holidays and any priced shortfall.
    ``pti`` is the optimum of a ``min_max_pti`` first stage (a fraction)."""
    policy = program.policy
    x = solution.x
    unit = "month" if program.frequency.months == 1 else "period"
    n = len(plan.schedule.installments)
    clauses: list[tuple[float, str]] = []
    binding = np.zeros(program.lp.num_rows, bool)
    binding[binding_rows(program, x)] = True
    duals = solution.row_duals
    by_family: dict[str, list[int]] = {}
    weight: dict[str, float] = {}
    for fam in EXPLAINED:
        idx = program.rows.get(fam)
        if idx is None or not binding[idx].any():
            continue
        idx = idx[binding[idx]]
        periods = [_family(program.lp.row_names[i])[1] for i in idx.tolist()]
        by_family[fam] = [t for t in periods if t is not None]
        if duals is not None:
            lo, up = np.abs(program.lp.row_lower[idx]), np.abs(program.lp.row_upper[idx])
            scale = np.maximum(
                np.where(np.isfinite(lo), lo, 0.0), np.where(np.isfinite(up), up, 0.0)
            )
            scale = np.where(scale > 0, scale, 1.0)
            weight[fam] = float(np.abs(duals[idx]) @ scale)

    def add(fam: str, text: str) -> None:
        clauses.append((weight.get(fam, 0.0), text))

    if "afford" in by_family:
        add("afford", f"capped by {_periods(program, sorted(set(by_family['afford'])))} income")
    if "holiday_pay" in by_family:
        add(
            "holiday_pay",
            f"capped by {_periods(program, sorted(set(by_family['holiday_pay'])))} income",
        )
    if "yield_floor" in by_family:
        add(
            "yield_floor",
            f"held up by the yield floor (lender NPV at the {_percent(policy.hurdle_rate)} hurdle "
            f"at least {_percent(1 - program.concession_limit)} of exposure)",
        )
    if "negam" in by_family:
        add(
            "negam",
            f"interest-only in {len(set(by_family['negam']))} {unit}(s): no negative amortisation",
        )
    if "pti" in by_family and pti is not None:
        add("pti", f"largest payment-to-income ratio held to {_percent(round(pti, 6))}")
    if "graduated" in by_family and len(by_family["graduated"]) < n - 1:
        add("graduated", "payments rise as income recovers")
    if "falling" in by_family and len(by_family["falling"]) < n - 1:
        add("falling", "payments fall as income is expected to fall")
    if "steps" in by_family:
        add("steps", f"at most {program.template.levels} payment levels")

    pay = plan.payments
    at_min = np.flatnonzero(
        (program.min_payment > 0) & (np.abs(program.interest_bearing(x) - program.p_lower) < 0.5)
    )
    if at_min.size:
        clauses.append(
            (0.0, f"minimum payment of {_money(policy.min_payment)} in {at_min.size} {unit}(s)")
        )
    if program.holiday.any():
        k = int(program.holiday.sum())
        clauses.append((0.0, f"payment holiday for the first {k} {unit}(s), interest capitalised"))
    if "u" in program.cols and program.template.shape == "chosen_holiday":
        chosen = [int(t) + 1 for t in np.flatnonzero(program.value(x, "u") > 0.5)]
        if chosen:
            clauses.append((0.0, f"holidays chosen in {_periods(program, chosen)}"))
    if program.annual_rate == policy.rate_floor:
        clauses.append((0.0, f"rate at its floor ({_percent(policy.rate_floor)})"))
    elif contract_rate is not None and program.annual_rate < contract_rate:
        clauses.append(
            (0.0, f"rate cut from {_percent(contract_rate)} to {_percent(program.annual_rate)}")
        )
    if plan.waiver > program.case.penalty_fees:  # a settlement forgives principal too
        clauses.append((0.0, f"{_money(plan.waiver)} of the debt forgiven for settling"))
    elif plan.waiver:
        clauses.append((0.0, f"penalty fees of {_money(plan.waiver)} waived"))
    if program.extra.any():
        k = int(np.count_nonzero(program.extra))
        clauses.append(
            (
                0.0,
                f"arrears of {_money(program.extra.sum())} spread over {k} {unit}(s) "
                "without interest",
            )
        )
    if plan.shortfall.any():
        k = int(np.count_nonzero(plan.shortfall))
        clauses.append(
            (
                0.0,
                f"exceeds the affordable amount by {_money(plan.shortfall.sum())} in {k} "
                f"{unit}(s) (priced shortfall)",
            )
        )

    clauses.sort(key=lambda c: -c[0])
    head = (
        f"{n} {program.frequency.value} payments from {_money(pay.min())} to {_money(pay.max())} "
        f"at {_percent(program.annual_rate)}"
    )
    if not clauses:
        return head + "; no constraint binds."
    return head + ": " + "; ".join(text for _, text in clauses) + "."
