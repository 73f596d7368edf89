"""The two plans every optimised plan is compared with: the contract, and a HAMP-style waterfall.

* :func:`contract_plan` — the loan as it stands: the regular installment continues over the
  remaining term at the contract rate; arrears, accrued interest and penalty fees fall due
  with the first installment.
* :func:`waterfall_plan` — the rule-based modification of the US Home Affordable Modification
  Program (Treasury Supplemental Directive 09-01, "Standard Modification Waterfall"; MHA
  Handbook for Servicers of Non-GSE Mortgages, Ch. II §6.3). The steps are applied in order
  until the housing ratio (principal and interest + fixed housing costs) / gross monthly
  income is as close as possible to the target (31 %) without going below it:

  1. capitalise arrears and accrued interest; late (penalty) fees are waived, never
     capitalised;
  2. cut the rate in 0.125-point steps from the current, unrounded rate down to the 2 % floor;
  3. extend the term one month at a time up to 480 months;
  4. forbear principal — non-interest-bearing, due with the last installment as a balloon —
     up to 30 % of the capitalised balance.

  A step stops at its last increment whose ratio is not below the target; the next step runs
  only when that increment is the step's limit (floor rate, 480 months) and the ratio is still
  above the target. If the ratio is still above the target after the largest forbearance, the
  plan says so (``target_met`` false).

Both return :class:`~repayplan.plans.alternative.Alternative` objects whose metrics come from
:func:`repayplan.risk.metrics.plan_metrics`; money is integer cents throughout.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import ROUND_FLOOR, Decimal
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np

from repayplan.errors import InputError
from repayplan.finance import (
    Frequency,
    Schedule,
    add_months,
    annuity_installment,
    cents_to_decimal,
    div_round_half_even,
    due_dates,
    period_rate_fractions,
    schedule_from_payments,
)
from repayplan.plans.alternative import Alternative
from repayplan.plans.case import LoanCase, Policy
from repayplan.risk.burden import DEFAULT_BURDEN_CURVE, BurdenCurve
from repayplan.risk.metrics import DEFAULT_BASE_MONTHLY_HAZARD, percent, plan_metrics

_DAY_COUNT = "30/360"


@dataclass(frozen=True)
class WaterfallPreset:
    """The parameters of a rule-based modification waterfall (fractions per year, months).

    ``target_ratio``: housing ratio to reach; ``rate_step``: size of one rate cut;
    ``rate_floor``: lowest rate; ``max_term_months``: longest term after extension;
    ``max_forbearance_share``: largest forborne share of the capitalised balance.
    """

    name: str
    target_ratio: Decimal
    rate_step: Decimal
    rate_floor: Decimal
    max_term_months: int
    max_forbearance_share: Decimal
    source: str = ""


HAMP = WaterfallPreset(
    name="hamp",
    target_ratio=Decimal("0.31"),
    rate_step=Decimal("0.00125"),
    rate_floor=Decimal("0.02"),
    max_term_months=480,
    max_forbearance_share=Decimal("0.30"),
    source="US Treasury HAMP Supplemental Directive 09-01 (2009), Standard Modification Waterfall",
)

#: Waterfall presets by name (``repayplan quote --preset NAME``).
PRESETS: dict[str, WaterfallPreset] = {HAMP.name: HAMP}


@dataclass(frozen=True)
class WaterfallTerms:
    """What the waterfall decided, before the schedule is built.

    ``capitalised`` / ``waived_fees`` / ``forborne`` in cents; ``annual_rate`` a fraction;
    ``term_months`` the new term; ``payment`` the new monthly principal and interest in cents
    (on the interest-bearing balance); ``ratio_before`` / ``ratio`` the housing ratios of the
    contract and of the modified loan (exact fractions); ``steps`` the steps that changed
    something, in order (``"capitalise"``, ``"rate"``, ``"term"``, ``"forbear"``).
    """

    preset: WaterfallPreset
    target_ratio: Decimal
    income: int
    capitalised: int
    waived_fees: int
    annual_rate: Decimal
    term_months: int
    forborne: int
    payment: int
    ratio_before: Fraction
    ratio: Fraction
    target_met: bool
    steps: tuple[str, ...]


def resolve_preset(preset: str | WaterfallPreset) -> WaterfallPreset:
    """A preset by name (case-insensitive) or as given; an unknown name is an InputError."""
    if isinstance(preset, WaterfallPreset):
        return preset
    found = PRESETS.get(str(preset).lower())
    if found is None:
        raise InputError(
            f"unknown waterfall preset {preset!r}; use one of " + ", ".join(sorted(PRESETS)),
            field="preset",
        )
    return found


@lru_cache(maxsize=4096)
def _annuity_factor(annual_rate: Decimal, months: int) -> Fraction:
    """Exact level payment per cent of balance over ``months`` at ``annual_rate`` (30/360).

    Under 30/360 every period of a monthly cycle is charged exactly annual / 12 (the finance
    contract), so the sum of discount factors behind :func:`finance.annuity_installment` has
    the closed form r(1+r)^n / ((1+r)^n − 1): the same rational, in one power instead of a
    loop over n big fractions (about 1000× faster at 480 months — the waterfall probes many).
    """
    r = Fraction(annual_rate) / 12
    if r == 0:
        return Fraction(1, months)
    growth = (1 + r) ** months
    return r * growth / (growth - 1)


def level_payment(balance: int, annual_rate: Decimal, months: int) -> int:
    """Regular monthly principal-and-interest installment (cents, half-even) of an annuity of
    ``balance`` cents over ``months`` at ``annual_rate`` (30/360): the installment
    :func:`finance.build_schedule` sets for the same loan."""
    factor = _annuity_factor(Decimal(annual_rate), months)
    return int(div_round_half_even(balance * factor.numerator, factor.denominator))


def _monthly_schedule(balance: int, annual_rate: Decimal, months: int, start: date) -> Schedule:
    """The annuity of ``balance`` over ``months`` (30/360, monthly), cent-exact: the level
    installment run through :func:`finance.schedule_from_payments` (as build_schedule does)."""
    dates = due_dates(start, months, Frequency.MONTHLY)
    factors = period_rate_fractions(annual_rate, start, dates, _DAY_COUNT, Frequency.MONTHLY)
    payment = level_payment(balance, annual_rate, months)
    return schedule_from_payments(balance, factors, dates, [payment] * months)


def _last_not_below(count: int, ratio_at: Callable[[int], Fraction], target: Fraction) -> int:
    """Largest k in [0, count) whose ratio is ≥ target, or 0 when none is.

    ``ratio_at`` is non-increasing in k (each increment lowers the payment or keeps it), so
    the increments that do not go below the target form a prefix and bisection finds its end:
    the same stopping point as stepping one increment at a time, in O(log count) schedules.
    """
    if ratio_at(count - 1) >= target:
        return count - 1
    lo, hi = 0, count - 1  # invariant: lo is kept (stay at 0 or ratio ≥ target), hi is below
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ratio_at(mid) >= target:
            lo = mid
        else:
            hi = mid
    return lo


def _rate_candidates(current: Decimal, step: Decimal, floor: Decimal) -> list[Decimal]:
    """Current rate, then one step lower at a time while not below the floor, then the floor."""
    if current <= floor:
        return [current]
    steps = int(((current - floor) / step).to_integral_value(rounding=ROUND_FLOOR))
    rates = [current - k * step for k in range(steps + 1)]
    if rates[-1] > floor:
        rates.append(floor)
    return rates


def _current_income(case: LoanCase) -> int:
    """Gross monthly income now (cents): the hardship factor applies while it lasts."""
    return int(np.rint(case.monthly_income * case.hardship_income_factor))


def _months(case: LoanCase, periods: int) -> int:
    """``periods`` of the case's frequency in whole months (rounded up)."""
    per_year = Frequency(case.frequency).periods_per_year
    return -(-periods * 12 // per_year)


def waterfall_terms(
    case: LoanCase,
    preset: str | WaterfallPreset = "hamp",
    target_ratio: Decimal | None = None,
) -> WaterfallTerms:
    """Run the waterfall's four steps for ``case`` and return the new terms (no schedule yet).

    ``target_ratio`` (a fraction) overrides the preset's target. Income is the current gross
    monthly income (``monthly_income × hardship_income_factor``); fixed housing costs are
    ``case.fixed_costs``.
    """
    rules = resolve_preset(preset)
    target_dec = rules.target_ratio if target_ratio is None else Decimal(target_ratio)
    if not Decimal(0) < target_dec <= Decimal(1):
        raise InputError(f"must be a fraction in (0, 1], got {target_dec}", field="target_ratio")
    target = Fraction(target_dec)
    income = _current_income(case)
    if income <= 0:
        raise InputError(
            "current income is 0: the housing ratio is undefined",
            field="hardship_income_factor",
            record=f"loan {case.loan_id}",
        )

    def ratio(payment: int) -> Fraction:
        return Fraction(payment + case.fixed_costs, income)

    rate0 = case.annual_rate
    term0 = _months(case, max(case.remaining_term, 1))  # a matured loan starts from 1 month
    if case.regular_payment is None:
        contract_payment = level_payment(case.outstanding_principal, rate0, term0)
    else:  # its monthly equivalent when the contract is not monthly
        per_year = Frequency(case.frequency).periods_per_year
        contract_payment = int(div_round_half_even(case.regular_payment * per_year, 12))

    # Step 1: arrears and accrued interest join the balance; penalty fees are waived.
    balance = case.outstanding_principal + case.accrued_interest + case.arrears
    if balance == 0:
        raise InputError(
            "only penalty fees are owed; the waterfall waives them and has nothing to modify",
            field="outstanding_principal",
            record=f"loan {case.loan_id}",
        )
    steps = ["capitalise"] if balance != case.outstanding_principal or case.penalty_fees else []

    # Step 2: rate cuts.
    rates = _rate_candidates(rate0, rules.rate_step, rules.rate_floor)
    k = _last_not_below(
        len(rates), lambda i: ratio(level_payment(balance, rates[i], term0)), target
    )
    rate = rates[k]
    if k:
        steps.append("rate")
    done = k < len(rates) - 1 or ratio(level_payment(balance, rate, term0)) <= target

    # Step 3: term extension, one month at a time.
    term = term0
    if not done:
        terms = max(rules.max_term_months - term0, 0) + 1
        k = _last_not_below(terms, lambda i: ratio(level_payment(balance, rate, term0 + i)), target)
        term = term0 + k
        if k:
            steps.append("term")
        done = k < terms - 1 or ratio(level_payment(balance, rate, term)) <= target

    # Step 4: principal forbearance, to the cent.
    forborne = 0
    if not done:
        cap = int((balance * rules.max_forbearance_share).to_integral_value(rounding=ROUND_FLOOR))
        forborne = _last_not_below(
            cap + 1, lambda f: ratio(level_payment(balance - f, rate, term)), target
        )
        if forborne:
            steps.append("forbear")
        done = forborne < cap or ratio(level_payment(balance - forborne, rate, term)) <= target

    payment = level_payment(balance - forborne, rate, term)
    final = ratio(payment)
    return WaterfallTerms(
        preset=rules,
        target_ratio=target_dec,
        income=income,
        capitalised=balance,
        waived_fees=case.penalty_fees,
        annual_rate=rate,
        term_months=term,
        forborne=forborne,
        payment=payment,
        ratio_before=ratio(contract_payment),
        ratio=final,
        target_met=done,
        steps=tuple(steps),
    )


def _add_non_interest_bearing(schedule: Schedule, amount: int, due_index: int) -> Schedule:
    """``schedule`` plus ``amount`` cents that bear no interest and fall due with installment
    ``due_index``: that installment's payment and principal grow by ``amount``, and the
    balances before it carry it."""
    if amount == 0:
        return schedule
    rows = [
        dataclasses.replace(
            row,
            payment=row.payment + amount * (k == due_index),
            principal=row.principal + amount * (k == due_index),
            balance=row.balance + amount * (k < due_index),
        )
        for k, row in enumerate(schedule.installments)
    ]
    return dataclasses.replace(
        schedule, principal=schedule.principal + amount, installments=tuple(rows)
    )


def period_incomes(case: LoanCase, dates: Sequence[date], periods_per_year: int) -> list[int]:
    """Borrower's income in each period ending on ``dates`` (cents, half-even).

    ``monthly_income × months per period × seasonality[month of the due date]``, times the
    hardship factor for due dates up to ``recovery_months`` after the start (all of them when
    no recovery is expected).
    """
    season = np.asarray(case.income_seasonality, dtype=float)[[d.month - 1 for d in dates]]
    if case.recovery_months is None:
        hardship = np.ones(len(dates), dtype=bool)
    else:
        recovered = add_months(case.start, case.recovery_months)
        hardship = np.array([d <= recovered for d in dates], dtype=bool)
    factor = np.where(hardship, case.hardship_income_factor, 1.0)
    if case.income_change_months is not None:
        changed = add_months(case.start, case.income_change_months)
        factor = factor * np.array(
            [case.income_change_factor if d > changed else 1.0 for d in dates]
        )
    income = case.monthly_income * (12 / periods_per_year) * season * factor
    return np.rint(income).astype(np.int64).tolist()


def _metrics(
    case: LoanCase,
    policy: Policy,
    schedule: Schedule,
    periods_per_year: int,
    curve: BurdenCurve,
) -> dict[str, Any]:
    dates = [row.due_date for row in schedule.installments]
    hazard = case.base_monthly_hazard
    return plan_metrics(
        schedule,
        exposure=case.exposure,
        incomes=period_incomes(case, dates, periods_per_year),
        base_monthly_hazard=DEFAULT_BASE_MONTHLY_HAZARD if hazard is None else hazard,
        curve=curve,
        lgd=policy.lgd,
        hurdle_rate=policy.hurdle_rate,
        periods_per_year=periods_per_year,
        start=case.start,
    )


def _amount(cents: int) -> str:
    return f"{cents_to_decimal(cents):,.2f}"


def _decimal(x: Decimal | Fraction) -> Decimal:
    return Decimal(x.numerator) / Decimal(x.denominator) if isinstance(x, Fraction) else x


def _pct(fraction: Decimal | Fraction) -> str:
    """A fraction as readable percent with 2 decimals (``0.0725`` → ``"7.25 %"``)."""
    return f"{Decimal(percent(_decimal(fraction))):.2f} %"


def contract_plan(
    case: LoanCase, policy: Policy = Policy(), curve: BurdenCurve = DEFAULT_BURDEN_CURVE
) -> Alternative:
    """The loan as it stands, as an :class:`Alternative` named ``"contract"``.

    The regular installment (``case.regular_payment``, or the level annuity of the
    outstanding principal over the remaining term when none is stored) continues over
    ``case.remaining_term`` periods of ``case.frequency`` at the contract rate (30/360); the
    last installment settles the balance to the cent. Accrued interest, arrears and penalty
    fees are due with the first installment and bear no further interest. A matured loan
    (no period left) is due in full: one installment, one period after ``case.start``.
    """
    freq = Frequency(case.frequency)
    n, rate, start = max(case.remaining_term, 1), case.annual_rate, case.start
    dates = due_dates(start, n, freq)
    factors = period_rate_fractions(rate, start, dates, _DAY_COUNT, freq)
    regular = None if case.matured else case.regular_payment
    if regular is None:
        regular = annuity_installment(case.outstanding_principal, factors)
    base = schedule_from_payments(case.outstanding_principal, factors, dates, [regular] * n)
    due_now = case.accrued_interest + case.arrears + case.penalty_fees
    schedule = _add_non_interest_bearing(base, due_now, 0)
    parts = [
        f"The contract as it stands: {n} {freq.value} installments of {_amount(regular)} "
        f"at {_pct(rate)}"
    ]
    if case.matured:
        parts = [
            f"The loan has matured: the balance is due in full, one installment of "
            f"{_amount(regular)} (interest at {_pct(rate)})"
        ]
    if due_now:
        owed = [
            f"{label} {_amount(v)}"
            for label, v in (
                ("accrued interest", case.accrued_interest),
                ("arrears", case.arrears),
                ("penalty fees", case.penalty_fees),
            )
            if v
        ]
        parts.append(", ".join(owed) + " due with the first installment")
    return Alternative(
        name="contract",
        schedule=schedule,
        annual_rate=rate,
        metrics=_metrics(case, policy, schedule, freq.periods_per_year, curve),
        objective=None,
        explanation="; ".join(parts) + ".",
        forborne_principal=0,
        frequency=freq.value,
    )


def _waterfall_explanation(case: LoanCase, t: WaterfallTerms) -> str:
    parts = [f"{t.preset.name.upper()} waterfall to a {_pct(t.target_ratio)} housing ratio"]
    if "capitalise" in t.steps:
        capitalised = t.capitalised - case.outstanding_principal
        text = f"capitalised {_amount(capitalised)} of arrears and accrued interest"
        if t.waived_fees:
            text += f", waived {_amount(t.waived_fees)} of late fees"
        parts.append(text)
    if "rate" in t.steps:
        parts.append(f"rate cut from {_pct(case.annual_rate)} to {_pct(t.annual_rate)}")
    if "term" in t.steps and case.matured:
        parts.append(f"the matured balance re-amortised over {t.term_months} months")
    elif "term" in t.steps:
        parts.append(
            f"term extended from {_months(case, case.remaining_term)} to {t.term_months} months"
        )
    if "forbear" in t.steps:
        parts.append(f"{_amount(t.forborne)} forborne (no interest, due with the last installment)")
    if len(parts) == 1 or t.steps == ("capitalise",):
        parts.append("no rate cut, extension or forbearance was needed")
    ratio = f"housing ratio {_pct(t.ratio_before)} → {_pct(t.ratio)}"
    if not t.target_met:
        ratio += " — the target cannot be reached within the waterfall's limits"
    parts.append(ratio)
    return "; ".join(parts) + "."


def waterfall_plan(
    case: LoanCase,
    policy: Policy = Policy(),
    preset: str | WaterfallPreset = "hamp",
    target_ratio: Decimal | None = None,
    curve: BurdenCurve = DEFAULT_BURDEN_CURVE,
) -> Alternative:
    """The rule-based modification of ``case`` (see the module docstring), named ``"waterfall"``.

    ``preset`` names the rules (``"hamp"``); ``target_ratio`` (a fraction, e.g. ``0.31``)
    overrides the preset's target. The plan is monthly at the new rate (30/360) over the new
    term; the forborne principal is added to the last installment. ``metrics`` holds
    :func:`plan_metrics` plus ``"waterfall"``: the steps taken, the target and reached housing
    ratios (percent strings), ``target_met``, and the capitalised / waived / forborne amounts.
    """
    t = waterfall_terms(case, preset, target_ratio)
    base = _monthly_schedule(t.capitalised - t.forborne, t.annual_rate, t.term_months, case.start)
    schedule = _add_non_interest_bearing(base, t.forborne, len(base.installments) - 1)
    metrics = _metrics(case, policy, schedule, 12, curve)
    metrics["waterfall"] = {
        "preset": t.preset.name,
        "steps": list(t.steps),
        "target_ratio_percent": percent(t.target_ratio),
        "ratio_before_percent": percent(_decimal(t.ratio_before)),
        "ratio_percent": percent(_decimal(t.ratio)),
        "target_met": t.target_met,
        "capitalised": str(cents_to_decimal(t.capitalised)),
        "waived_fees": str(cents_to_decimal(t.waived_fees)),
        "forborne": str(cents_to_decimal(t.forborne)),
        "monthly_payment": str(cents_to_decimal(t.payment)),
    }
    return Alternative(
        name="waterfall",
        schedule=schedule,
        annual_rate=t.annual_rate,
        metrics=metrics,
        objective=None,
        explanation=_waterfall_explanation(case, t),
        forborne_principal=t.forborne,
        frequency="monthly",
    )
