"""Exact metrics of one cent-exact plan: cost, APR / IRR, lender NPV, default risk, burden.

Every figure a plan reports is computed here from its final :class:`~repayplan.finance.Schedule`
(never read off the LP proxy). The risk side follows DESIGN.md §3: the monthly hazard in
period t is ``base_monthly_hazard × g(payment_t / income_t)`` with ``g`` the burden curve,
scaled to the period's length, and all period arithmetic is vectorised with numpy.

Units in the returned dict: money as strings of currency units with 2 decimals (``"1234.56"``);
annual rates as percent strings with 4 decimals, the unit in the key (``apr_percent``);
probabilities and shares (``pd``, ``survival``, ``concession``, ``max_payment_to_income``) as
float fractions.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np

from repayplan.errors import InputError
from repayplan.finance import (
    Frequency,
    Schedule,
    apr_actuarial,
    cents_to_decimal,
    irr_annualised,
    npv,
    round_half_even,
)
from repayplan.risk.burden import DEFAULT_BURDEN_CURVE, BurdenCurve

#: Monthly default hazard at the reference burden (g = 1, payment-to-income 30 %) used when a
#: loan has no risk score yet. 0.4 % a month is 1 − 0.996¹² ≈ 4.7 % a year — an assumption in
#: the range of annual default rates of unsecured consumer instalment loans, replaced by the
#: risk model's score (``LoanCase.base_monthly_hazard``) as soon as one exists.
DEFAULT_BASE_MONTHLY_HAZARD = 0.004

_PERCENT_QUANTUM = Decimal("0.0001")


def periodic_hurdle(hurdle_rate: Decimal, periods_per_year: int) -> float:
    """The hurdle as a rate per period: the nominal annual fraction divided by periods per year.

    This is the discount rate of ``lender_npv`` and of the model's yield floor, so both agree
    on what "meets the hurdle" means.
    """
    return float(Decimal(hurdle_rate) / Decimal(periods_per_year))


def money(cents: int | float) -> str:
    """Cents as a string of currency units with 2 decimals; a fractional cent rounds half-even."""
    if isinstance(cents, int | np.integer):
        return str(cents_to_decimal(int(cents)))
    return str(round_half_even(Decimal(repr(float(cents))) / 100))


def percent(fraction: Decimal | float) -> str:
    """A fraction as a percent string with 4 decimals (``0.0725`` → ``"7.2500"``)."""
    return str(round_half_even(Decimal(str(fraction)) * 100, _PERCENT_QUANTUM))


def _check(schedule: Schedule, exposure: int, incomes: Sequence[int], **params: Any) -> None:
    n = len(schedule.installments)
    if n == 0:
        raise InputError("has no installments", field="schedule", record="plan")
    if not isinstance(exposure, int | np.integer) or exposure <= 0:
        raise InputError(f"must be positive cents, got {exposure!r}", field="exposure")
    if len(incomes) != n:
        raise InputError(f"has {len(incomes)} values for {n} installments", field="incomes")
    if min(incomes) < 0:
        raise InputError("every period's income must be non-negative cents", field="incomes")
    if not 0.0 <= params["base_monthly_hazard"] <= 1.0:
        raise InputError("must be a probability in [0, 1]", field="base_monthly_hazard")
    if not Decimal(0) <= params["lgd"] <= Decimal(1):
        raise InputError("must be a fraction in [0, 1]", field="lgd")
    if params["hurdle_rate"] <= Decimal(-1):
        raise InputError("must be above -100 %", field="hurdle_rate")
    allowed = sorted(f.periods_per_year for f in Frequency)
    if params["periods_per_year"] not in allowed:
        raise InputError(f"must be one of {allowed}", field="periods_per_year")
    if not 0 <= params["fees"] < schedule.principal:
        raise InputError("must be non-negative cents below the amount financed", field="fees")


def payment_to_income(payments: np.ndarray, incomes: np.ndarray) -> np.ndarray:
    """Payment / income per period (fractions); a payment due in a period without income is
    ``inf``, a period with neither is 0."""
    pay = np.asarray(payments, dtype=float)
    inc = np.asarray(incomes, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = pay / inc
    return np.where(inc > 0, ratio, np.where(pay > 0, np.inf, 0.0))


def period_hazards(
    payments: np.ndarray,
    incomes: np.ndarray,
    base_monthly_hazard: float,
    periods_per_year: int,
    curve: BurdenCurve = DEFAULT_BURDEN_CURVE,
) -> np.ndarray:
    """Default hazard of each period (fractions).

    The monthly hazard ``base × g(payment / income)`` (capped at 1; a payment due without
    income defaults for sure unless the base hazard is 0) is scaled to the period's length as
    ``1 − (1 − λ)^(12 / periods_per_year)``: the chance of at least one default month in a
    period of that many months.
    """
    ratio = payment_to_income(payments, incomes)
    finite = np.isfinite(ratio)
    monthly = np.ones_like(ratio) * (1.0 if base_monthly_hazard > 0 else 0.0)
    monthly[finite] = np.clip(base_monthly_hazard * curve(ratio[finite]), 0.0, 1.0)
    return 1.0 - (1.0 - monthly) ** (12.0 / periods_per_year)


def plan_metrics(
    schedule: Schedule,
    *,
    exposure: int,
    incomes: Sequence[int],
    base_monthly_hazard: float,
    curve: BurdenCurve = DEFAULT_BURDEN_CURVE,
    lgd: Decimal,
    hurdle_rate: Decimal,
    periods_per_year: int,
    start: date,
    fees: int = 0,
) -> dict[str, Any]:
    """Exact metrics of a cent-exact plan.

    ``exposure``: what the lender is owed before the plan (cents; principal, accrued
    interest, arrears and penalty fees — waived fees then count as concession).
    ``incomes``: the borrower's income in each installment's period (cents per period).
    ``base_monthly_hazard``: monthly default hazard at g = 1; ``lgd``, ``hurdle_rate``
    (nominal annual): fractions. ``start``: the date the plan's money is advanced (the
    schedule's first due date is one period later). ``fees``: prepaid finance charges in
    cents, deducted from the advance for the APR and IRR.

    Returns a dict with

    - ``total_paid``, ``total_interest``, ``fees`` — money strings;
    - ``apr_percent`` (US Reg Z Appendix J actuarial method, dated flows) and
      ``apr_unit_period``;
    - ``irr_nominal_annual_percent`` = periodic IRR × periods per year and
      ``irr_effective_annual_percent`` = (1 + periodic IRR)^periods − 1 (the PBoC 2021 No. 3
      IRR method on equally spaced flows);
    - ``lender_npv`` — plain NPV of the *scheduled* payments at the periodic hurdle (what the
      yield floor constrains), ``concession`` = (exposure − lender_npv) / exposure and
      ``concession_amount`` = exposure − lender_npv;
    - ``expected_lender_npv`` — Σ S_{t−1}(1 − λ_t) p_t discounted at the hurdle: the
      scheduled payments weighted by the chance they are actually paid (no recovery);
    - ``pd`` = 1 − S_T and ``survival`` = [S_1 … S_T], S_t = Π_{k≤t}(1 − λ_k);
    - ``expected_loss`` = LGD × Σ S_{t−1} λ_t × EAD_t with EAD_t = balance before payment t
      plus its interest (undiscounted, money string);
    - ``max_payment_to_income`` (fraction; None when a payment falls due in a period without
      income) and ``max_payment_to_income_period`` (its installment number).
    """
    incomes = list(incomes)
    _check(
        schedule,
        exposure,
        incomes,
        base_monthly_hazard=base_monthly_hazard,
        lgd=Decimal(lgd),
        hurdle_rate=Decimal(hurdle_rate),
        periods_per_year=periods_per_year,
        fees=fees,
    )
    installments = schedule.installments
    pay = np.fromiter((i.payment for i in installments), dtype=np.int64, count=len(installments))
    bal = np.fromiter((i.balance for i in installments), dtype=np.int64, count=len(installments))
    inc = np.asarray(incomes, dtype=np.int64)

    lam = period_hazards(pay, inc, base_monthly_hazard, periods_per_year, curve)
    survival = np.cumprod(1.0 - lam)
    alive_before = np.concatenate(([1.0], survival[:-1]))
    # bal + pay is the balance before payment t plus that period's interest: what is owed
    # when the borrower defaults instead of paying.
    ead = (bal + pay).astype(float)
    expected_loss = float(lgd) * float(np.sum(alive_before * lam * ead))

    h = periodic_hurdle(Decimal(hurdle_rate), periods_per_year)
    discount = (1.0 + h) ** -np.arange(1, len(pay) + 1, dtype=float)
    lender_npv = npv(h, pay.tolist())
    expected_npv = float(np.sum(alive_before * (1.0 - lam) * pay * discount))

    advance = schedule.principal - fees
    dated = [(start, -advance), *((i.due_date, i.payment) for i in installments)]
    apr = apr_actuarial(dated)
    irr = irr_annualised([-advance, *pay.tolist()], periods_per_year=periods_per_year)

    ratios = payment_to_income(pay, inc)
    worst = int(np.argmax(ratios))
    return {
        "total_paid": money(schedule.total_paid),
        "total_interest": money(schedule.total_interest),
        "fees": money(fees),
        "apr_percent": percent(apr.apr),
        "apr_unit_period": apr.unit_period,
        "irr_nominal_annual_percent": percent(irr.nominal_annual_rate),
        "irr_effective_annual_percent": percent(irr.effective_annual_rate),
        "hurdle_rate_percent": percent(Decimal(hurdle_rate)),
        "lender_npv": money(float(lender_npv)),
        "expected_lender_npv": money(expected_npv),
        "concession": (exposure - float(lender_npv)) / exposure,
        "concession_amount": money(exposure - float(lender_npv)),
        "pd": float(1.0 - survival[-1]),
        "survival": [round(float(s), 10) for s in survival],
        "expected_loss": money(expected_loss),
        "max_payment_to_income": float(ratios[worst]) if np.isfinite(ratios[worst]) else None,
        "max_payment_to_income_period": int(installments[worst].number),
    }
