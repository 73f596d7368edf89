"""A plan's horizon: its cycle and number of periods, its due dates and 30/360 rate factors,
and the borrower's forecast income over it (seasonality, hardship, a declared change).
What :func:`repayplan.plans.model.plan_outline` lays the program on.
"""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal
from functools import lru_cache

import numpy as np

from repayplan.finance import Frequency, RateFactor, due_dates, period_rate_factors
from repayplan.finance.daycount import exact_fraction
from repayplan.plans.case import LoanCase, Policy
from repayplan.plans.templates import Template


def plan_frequency(case: LoanCase, template: Template) -> Frequency:
    """The plan's cycle: the template's, else the loan's own."""
    return Frequency.parse(template.frequency or case.frequency, field="frequency")


def months_per_period(freq: Frequency) -> float:
    """Calendar months in one period (fractional for week-based cycles)."""
    return float(freq.months) if freq.months is not None else 12.0 / freq.periods_per_year


def default_term(case: LoanCase, policy: Policy, template: Template) -> int:
    """Periods of the template's plan: the remaining term (in months) plus the template's
    extension, on the plan's cycle, capped at ``Policy.max_term_months``. A matured loan
    (no period left) is re-amortised over ``Policy.matured_term_months`` instead of its
    remaining term; a settlement runs ``Policy.settlement_months``."""
    freq = plan_frequency(case, template)
    if template.settlement:
        months = float(policy.settlement_months)
    elif case.matured:
        months = float(policy.matured_term_months + template.extend_term)
    else:
        months = case.remaining_term * months_per_period(Frequency.parse(case.frequency))
        months += template.extend_term
    periods = math.ceil(months / months_per_period(freq) - 1e-9)
    return max(1, min(periods, max_term(policy, freq), payoff_periods(case, policy, template)))


def payoff_periods(case: LoanCase, policy: Policy, template: Template) -> int:
    """The most periods a plan of ``case`` can have: every period but the last pays at
    least ``Policy.min_payment`` on the interest-bearing balance (the exposure, less the
    arrears a ``spread`` template carries beside it), so a small balance is repaid in a few
    minimum payments instead of being unplannable over the contract's long term."""
    if policy.min_payment <= 0:
        return 10**9
    balance = case.exposure
    if template.arrears == "spread":
        balance -= case.arrears + case.accrued_interest
    return max(1, balance // policy.min_payment)


def max_term(policy: Policy, freq: Frequency) -> int:
    """The longest plan the policy allows, in periods of ``freq``."""
    return max(1, int(policy.max_term_months // months_per_period(freq)))


def plan_calendar(
    start: date, periods: int, freq: Frequency, annual_rate: Decimal
) -> tuple[tuple[date, ...], tuple[Decimal, ...], np.ndarray]:
    """Due dates, 30/360 rate factors and the same factors as floats of a plan.

    On month-based cycles every due date is a whole number of periods after ``start``
    (month-end roll), so 30/360 charges ``annual × months / 12`` in every period
    (:func:`repayplan.finance.period_rate_factors`' rule) with no per-period date arithmetic;
    the dates come from a per-start cache.
    """
    if freq.months is None:
        dates = tuple(due_dates(start, periods, freq))
        factors = tuple(period_rate_factors(annual_rate, start, dates, "30/360", freq))
        return dates, factors, np.array([float(f) for f in factors])
    dates = _month_dates(start, freq, -(-periods // _DATE_BLOCK) * _DATE_BLOCK)[:periods]
    one = _month_factor(annual_rate, freq.months)
    return dates, (one,) * periods, np.full(periods, float(one))


#: Due dates are cached per start date in blocks of this many periods.
_DATE_BLOCK = 120


@lru_cache(maxsize=1024)
def _month_dates(start: date, freq: Frequency, periods: int) -> tuple[date, ...]:
    # A nightly run plans many loans, several templates and terms each, on few start dates.
    return tuple(due_dates(start, periods, freq))


@lru_cache(maxsize=4096)
def _month_factor(annual_rate: Decimal, months: int) -> RateFactor:
    return RateFactor(exact_fraction(annual_rate) * months / 12)


def monthly_incomes(case: LoanCase, months: int) -> np.ndarray:
    """Forecast income of the borrower's months 1..``months`` after ``case.start`` (cents,
    float): base income × the calendar month's seasonal factor × the hardship factor while
    the hardship lasts (``recovery_months``; for ever when no recovery is expected)."""
    m = np.arange(1, months + 1)
    cal_month = (case.start.month - 1 + m) % 12
    season = np.asarray(case.income_seasonality, float)[cal_month]
    shock = np.ones(months)
    if case.hardship_income_factor != 1.0:
        until = months if case.recovery_months is None else case.recovery_months
        shock[m <= until] = case.hardship_income_factor
    if case.income_change_months is not None:
        shock[m > case.income_change_months] *= case.income_change_factor
    return case.monthly_income * season * shock


def income_falls(case: LoanCase) -> bool:
    """True when the borrower's income is expected to fall: a declared change to less
    (a fixed-term contract ending, retirement), or a seasonal income past its season — the
    next 12 months after the first three average under 85 % of those three."""
    if case.income_change_months is not None and case.income_change_factor < 1.0:
        return True
    y = monthly_incomes(case, 15)
    return bool(y[3:].mean() < 0.85 * y[:3].mean())


def period_incomes(case: LoanCase, freq: Frequency, dates: list[date]) -> np.ndarray:
    """Income per plan period (cents, float): the sum of the months the period covers on
    month-based cycles; week-based cycles take their share of the due date's month."""
    h = len(dates)
    if freq.months is not None:
        return monthly_incomes(case, h * freq.months).reshape(h, freq.months).sum(axis=1)
    months = np.array([(d.year - case.start.year) * 12 + d.month - case.start.month for d in dates])
    monthly = monthly_incomes(case, int(months.max()) + 1)
    return monthly[np.maximum(months, 0)] * 12.0 / freq.periods_per_year
