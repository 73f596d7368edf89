"""Exact financial core: money in cents, calendars, day counts, schedules, APR / IRR / NPV.

Pure functions, no I/O. Money is integer cents (half-even rounding), rates are fractions.
"""

from repayplan.finance.calendar import Frequency, add_months, due_dates, months_between
from repayplan.finance.cashflows import parse_cashflows
from repayplan.finance.daycount import (
    DayCount,
    RateFactor,
    day_count_fraction,
    period_rate_factors,
    period_rate_fractions,
    year_fraction,
)
from repayplan.finance.money import (
    cents_to_decimal,
    div_round_half_even,
    format_cents,
    round_half_even,
    to_cents,
)
from repayplan.finance.rates import (
    AprResult,
    IrrResult,
    apr,
    apr_actuarial,
    infer_periods_per_year,
    irr,
    irr_annualised,
    npv,
    xirr,
)
from repayplan.finance.schedule import (
    Installment,
    Method,
    Schedule,
    amortise_batch,
    annuity_installment,
    build_schedule,
    factors_as_ratio,
    schedule_from_payments,
)

__all__ = [
    "AprResult",
    "DayCount",
    "Frequency",
    "Installment",
    "IrrResult",
    "Method",
    "RateFactor",
    "Schedule",
    "add_months",
    "amortise_batch",
    "annuity_installment",
    "apr",
    "apr_actuarial",
    "build_schedule",
    "cents_to_decimal",
    "day_count_fraction",
    "div_round_half_even",
    "due_dates",
    "factors_as_ratio",
    "format_cents",
    "infer_periods_per_year",
    "irr",
    "irr_annualised",
    "months_between",
    "npv",
    "parse_cashflows",
    "period_rate_factors",
    "period_rate_fractions",
    "round_half_even",
    "schedule_from_payments",
    "to_cents",
    "xirr",
    "year_fraction",
]
