"""Day counts (30/360, actual/365 fixed, actual/actual ISDA) and per-period rate factors.

A period's *rate factor* is the fraction of the balance charged as interest for that period:
interest = round_half_even(balance × factor). Factors are exact rationals; they are handed out
as :class:`RateFactor` — a ``Decimal`` (28 significant digits) that also carries the exact
``Fraction`` it stands for, so that a half-cent tie (balance × annual / 12 = x.5 cents) rounds
exactly as a lender's system that multiplies before dividing does.
"""

from __future__ import annotations

import calendar as _cal
from collections.abc import Sequence
from datetime import date
from decimal import Decimal, localcontext
from enum import StrEnum
from fractions import Fraction

from repayplan.errors import InputError
from repayplan.finance.calendar import Frequency, add_months


class DayCount(StrEnum):
    """How a period's length becomes a year fraction."""

    THIRTY_360 = "30/360"
    ACTUAL_365 = "actual/365"
    ACTUAL_ACTUAL = "actual/actual"

    @classmethod
    def parse(cls, value: DayCount | str, *, field: str = "day_count") -> DayCount:
        """``value`` as a DayCount; accepts ``act/365``, ``actual/365f``, ``act/act`` …"""
        key = str(value).strip().lower().replace(" ", "")
        key = _ALIASES.get(key, key)
        try:
            return cls(key)
        except ValueError:
            known = ", ".join(m.value for m in cls)
            message = f"unknown day count {value!r} (use one of {known})"
            raise InputError(message, field=field) from None


_ALIASES = {
    "30/360us": "30/360",
    "30u/360": "30/360",
    "act/365": "actual/365",
    "act/365f": "actual/365",
    "actual/365f": "actual/365",
    "actual/365fixed": "actual/365",
    "act/act": "actual/actual",
    "act/actisda": "actual/actual",
    "actual/actualisda": "actual/actual",
}


class RateFactor(Decimal):
    """A period rate factor: a ``Decimal`` for arithmetic and display, exact in ``.exact``.

    Arithmetic on it gives plain Decimals; :func:`repayplan.finance.schedule.schedule_from_payments`
    reads ``.exact`` so that interest rounding never depends on the 28-digit approximation.
    """

    exact: Fraction

    def __new__(cls, exact: Fraction) -> RateFactor:
        exact = Fraction(exact)
        with localcontext() as ctx:
            ctx.prec = 28
            approx = Decimal(exact.numerator) / Decimal(exact.denominator)
        obj = super().__new__(cls, approx)
        obj.exact = exact
        return obj

    def __reduce__(self):  # keep the exact value through pickling (process pools)
        return (RateFactor, (self.exact,))

    def __repr__(self) -> str:
        return f"RateFactor({self.exact.numerator}/{self.exact.denominator} ≈ {Decimal(self)})"


def exact_fraction(x: Decimal | Fraction | int | float | str) -> Fraction:
    """The exact rational value of a rate or factor (a RateFactor's exact value if it is one)."""
    if isinstance(x, RateFactor):
        return x.exact
    if isinstance(x, str):
        return Fraction(Decimal(x))
    return Fraction(x)


def _days_30_360(start: date, end: date) -> int:
    """Days between two dates under 30/360 (US bond basis, ISDA "30/360").

    Day 31 counts as 30 at the start, and at the end only when the start is on the 30th/31st;
    February's end is not adjusted.
    """
    d1 = min(start.day, 30)
    d2 = end.day
    if d2 == 31 and d1 == 30:
        d2 = 30
    return 360 * (end.year - start.year) + 30 * (end.month - start.month) + (d2 - d1)


def _fraction_actual_actual(start: date, end: date) -> Fraction:
    """ISDA actual/actual: days in each calendar year over that year's length (365 or 366)."""
    if end <= start:
        return -_fraction_actual_actual(end, start) if end < start else Fraction(0)
    total = Fraction(0)
    cursor = start
    while cursor < end:
        year_end = date(cursor.year + 1, 1, 1)
        stop = min(end, year_end)
        length = 366 if _cal.isleap(cursor.year) else 365
        total += Fraction((stop - cursor).days, length)
        cursor = stop
    return total


def year_fraction(start: date, end: date, day_count: DayCount | str) -> Fraction:
    """Exact year fraction from ``start`` to ``end`` under ``day_count`` (negative if reversed)."""
    dc = DayCount.parse(day_count)
    if dc is DayCount.THIRTY_360:
        return Fraction(_days_30_360(start, end), 360)
    if dc is DayCount.ACTUAL_365:
        return Fraction((end - start).days, 365)
    return _fraction_actual_actual(start, end)


def day_count_fraction(start: date, end: date, day_count: DayCount | str) -> Decimal:
    """Year fraction from ``start`` to ``end`` as a Decimal (28 significant digits).

    30/360: 30/360-days / 360; actual/365: actual days / 365; actual/actual: ISDA split by
    calendar year. Use :func:`year_fraction` for the exact rational.
    """
    return RateFactor(year_fraction(start, end, day_count))


def period_rate_fractions(
    annual_rate: Decimal | Fraction | str,
    start: date,
    dates: Sequence[date],
    day_count: DayCount | str = DayCount.THIRTY_360,
    frequency: Frequency | str = Frequency.MONTHLY,
) -> list[Fraction]:
    """Exact rate factor of each period ``(start, dates[0]], (dates[0], dates[1]], …``.

    ``annual_rate`` is a fraction (0.094822 for 9.4822 %). Under 30/360 a period that lies on
    a month-based cycle (its due date is exactly ``k × months`` after ``start``, month-end
    roll included) is charged annual × months / 12 exactly — so Jan 31 → Feb 29 is a full
    month; any other period (odd, weekly, semimonthly) gets annual × 30/360-days / 360.
    Actual/365: annual × actual days / 365; actual/actual: annual × ISDA year fraction.
    """
    rate = exact_fraction(annual_rate)
    dc = DayCount.parse(day_count)
    freq = Frequency.parse(frequency)
    factors: list[Fraction] = []
    # One object for every full cycle period, so that schedules and annuities see runs.
    full = rate * freq.months / 12 if freq.months is not None else None
    prev = start
    for k, due in enumerate(dates, start=1):
        if due < prev:
            raise InputError(
                f"due date {due.isoformat()} is before the previous date {prev.isoformat()}",
                field="due_dates",
                record=f"period {k}",
            )
        if (
            dc is DayCount.THIRTY_360
            and freq.months is not None
            and due == add_months(start, k * freq.months, start.day)
        ):
            factors.append(full)
        else:
            factors.append(rate * year_fraction(prev, due, dc))
        prev = due
    return factors


def period_rate_factors(
    annual_rate: Decimal | Fraction | str,
    start: date,
    dates: Sequence[date],
    day_count: DayCount | str = DayCount.THIRTY_360,
    frequency: Frequency | str = Frequency.MONTHLY,
) -> list[Decimal]:
    """Rate factor of each period as :class:`RateFactor` Decimals (exact value in ``.exact``).

    Same rules as :func:`period_rate_fractions`; 30/360 on a monthly cycle gives annual / 12.
    """
    exact = period_rate_fractions(annual_rate, start, dates, day_count, frequency)
    out: list[Decimal] = []
    for f in exact:  # one RateFactor per distinct object: a cycle's full periods share one
        out.append(out[-1] if out and f is exact[len(out) - 1] else RateFactor(f))
    return out
