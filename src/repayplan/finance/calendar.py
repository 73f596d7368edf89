"""Payment calendars: cycles, month arithmetic with the month-end roll, and due dates."""

from __future__ import annotations

import calendar as _cal
from collections.abc import Sequence
from datetime import date, timedelta
from enum import StrEnum

import numpy as np

from repayplan.errors import InputError


class Frequency(StrEnum):
    """A repayment cycle. ``bimonthly`` is every two months; ``semimonthly`` is the 1st and 16th."""

    WEEKLY = "weekly"
    BIWEEKLY = "biweekly"
    SEMIMONTHLY = "semimonthly"
    MONTHLY = "monthly"
    BIMONTHLY = "bimonthly"
    QUARTERLY = "quarterly"
    SEMIANNUAL = "semiannual"
    YEARLY = "yearly"

    @property
    def periods_per_year(self) -> int:
        """Installments per year: 52, 26, 24, 12, 6, 4, 2, 1."""
        return _PERIODS_PER_YEAR[self]

    @property
    def months(self) -> int | None:
        """Months per period for month-based cycles (1, 2, 3, 6, 12), else None."""
        return _MONTHS.get(self)

    @property
    def days(self) -> int | None:
        """Days per period for week-based cycles (7, 14), else None."""
        return _DAYS.get(self)

    @classmethod
    def parse(cls, value: Frequency | str, *, field: str = "frequency") -> Frequency:
        """``value`` as a Frequency (case-insensitive); InputError naming ``field`` if unknown."""
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            known = ", ".join(m.value for m in cls)
            message = f"unknown frequency {value!r} (use one of {known})"
            raise InputError(message, field=field) from None


_PERIODS_PER_YEAR = {
    Frequency.WEEKLY: 52,
    Frequency.BIWEEKLY: 26,
    Frequency.SEMIMONTHLY: 24,
    Frequency.MONTHLY: 12,
    Frequency.BIMONTHLY: 6,
    Frequency.QUARTERLY: 4,
    Frequency.SEMIANNUAL: 2,
    Frequency.YEARLY: 1,
}
_MONTHS = {
    Frequency.MONTHLY: 1,
    Frequency.BIMONTHLY: 2,
    Frequency.QUARTERLY: 3,
    Frequency.SEMIANNUAL: 6,
    Frequency.YEARLY: 12,
}
_DAYS = {Frequency.WEEKLY: 7, Frequency.BIWEEKLY: 14}


_MONTH_DAYS = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def days_in_month(year: int, month: int) -> int:
    """Number of days in ``month`` of ``year`` (28–31)."""
    if month == 2:
        return 29 if _cal.isleap(year) else 28
    return _MONTH_DAYS[month - 1]


def add_months(d: date, months: int, anchor_day: int | None = None) -> date:
    """``d`` moved by ``months`` calendar months, rolled back to the month end when needed.

    The day of month is ``anchor_day`` (default ``d.day``) capped at the target month's
    length, so a schedule anchored on the 31st keeps returning to the 31st:
    Jan 31 + 1 → Feb 29 (leap year) or Feb 28, Jan 31 + 2 → Mar 31.
    """
    anchor = d.day if anchor_day is None else anchor_day
    y, m = divmod(d.year * 12 + (d.month - 1) + months, 12)
    return date(y, m + 1, min(anchor, days_in_month(y, m + 1)))


def count_back(later: date, months: int, anchor_day: int | None = None) -> date:
    """``later`` moved back ``months`` months, landing on ``anchor_day`` (capped).

    By default a month's last day maps to a month's last day (anchor 31), so Jan 31 →
    Feb 29 → Mar 31 are whole months apart (the month-end rule of Reg Z Appendix J
    (b)(3)(iv)); a series due on the 28th passes ``anchor_day=28`` to keep Feb 28 → Jan 28.
    """
    if anchor_day is None:
        month_end = later.day == days_in_month(later.year, later.month)
        anchor_day = 31 if month_end else later.day
    return add_months(later, -months, anchor_day)


def months_between(earlier: date, later: date, anchor_day: int | None = None) -> int:
    """Whole calendar months from ``earlier`` to ``later``, counted back from ``later``.

    With the month-end roll (see :func:`count_back`): Jan 31 → Feb 29 is one month, and so
    is Jan 30 → Feb 28.
    """
    n = (later.year - earlier.year) * 12 + (later.month - earlier.month)
    while n > 0 and count_back(later, n, anchor_day) < earlier:
        n -= 1
    return n


def _next_semimonth_date(d: date) -> date:
    """The first 1st-or-16th strictly after ``d``."""
    if d.day < 16:
        return date(d.year, d.month, 16)
    return add_months(date(d.year, d.month, 1), 1)


def due_dates(start: date, periods: int, frequency: Frequency | str) -> list[date]:
    """The ``periods`` due dates of a schedule that starts (funds) on ``start``.

    The first due date is one period after ``start``. Month-based cycles keep ``start``'s
    day of month with the month-end roll (start Jan 31 monthly → Feb 29, Mar 31, Apr 30 …);
    weekly and biweekly add 7 / 14 days. Semimonthly dates are the 1st and 16th: the first
    due date is the first of them at least half a month after ``start`` (the 1st/16th
    themselves advance by exactly one half-month), so the first period is never short.
    """
    freq = Frequency.parse(frequency)
    if periods < 0:
        raise InputError(f"must be >= 0, got {periods}", field="periods")
    if freq.months is not None:
        step = freq.months
        return [add_months(start, k * step, start.day) for k in range(1, periods + 1)]
    if freq.days is not None:
        return [start + timedelta(days=freq.days * k) for k in range(1, periods + 1)]
    # The first 1st/16th on or after start + half a month.
    dates = [_next_semimonth_date(_half_month_after(start) - timedelta(days=1))]
    while len(dates) < periods:
        dates.append(_next_semimonth_date(dates[-1]))
    return dates[:periods]


def _half_month_after(d: date) -> date:
    """``d`` plus half a month: day+15 in the same month, or day−15 of the next month."""
    if d.day <= 15:
        return date(d.year, d.month, min(d.day + 15, days_in_month(d.year, d.month)))
    nxt = add_months(date(d.year, d.month, 1), 1)
    return date(nxt.year, nxt.month, d.day - 15)


# --- dates as arrays (the vectorised paths of rates.py) ----------------------------------

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()


def ordinals(dates: Sequence[date]) -> np.ndarray:
    """Proleptic Gregorian ordinals (``date.toordinal``) of ``dates`` as an int64 array."""
    return np.fromiter(map(date.toordinal, dates), dtype=np.int64, count=len(dates))


def month_parts(ords: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For ordinals ``ords``: (month index = 12·year + month − 1, day of month, days in month)."""
    days = (np.asarray(ords, dtype=np.int64) - _EPOCH_ORDINAL).astype("datetime64[D]")
    month = days.astype("datetime64[M]")
    first = month.astype("datetime64[D]")
    day = (days - first).astype(np.int64) + 1
    length = ((month + 1).astype("datetime64[D]") - first).astype(np.int64)
    return month.astype(np.int64) + 1970 * 12, day, length


def month_start_ordinals(month_index: np.ndarray) -> np.ndarray:
    """Ordinal of the 1st of each month index (12·year + month − 1)."""
    months = (np.asarray(month_index, dtype=np.int64) - 1970 * 12).astype("datetime64[M]")
    return months.astype("datetime64[D]").astype(np.int64) + _EPOCH_ORDINAL
