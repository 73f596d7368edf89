"""Rates from cash flows: APR (US Reg Z, Appendix J actuarial), IRR-annualised (PBoC 2021 No. 3),
periodic IRR, NPV and XIRR.

Flows are ``(date, cents)`` pairs seen from the lender: negative = money advanced to the
borrower, positive = money the borrower pays (installments *and* fees: every fee is a cost).

Every rate solves Σ a_k / ((1 + f_k·x)(1 + x)^t_k) = 0 for x on (−1, ∞), in double precision.
When the flows change sign once in time (advances, then payments — every loan) the root is
unique and a safeguarded Newton iteration on numpy arrays finds it to about 1e-16 in a few
steps; any other pattern, or a Newton run that does not settle, goes to the bracket-and-Brent
search (about 1e-15). Both evaluate the sum scaled by its largest term, so no power overflows.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise

import numpy as np
from scipy.optimize import brentq

from repayplan.errors import InputError
from repayplan.finance.calendar import (
    add_months,
    count_back,
    days_in_month,
    month_parts,
    month_start_ordinals,
    months_between,
    ordinals,
)

_AVG_MONTH_DAYS = 365 / 12
# The root search's range: the rate is above _LO, and the bracket grows ×4 from 1 up to
# _MAX_HI (the last end below 1e9), beyond which the flows have no rate.
_LO = -0.999999
_MAX_HI = 4.0**14
_EPS = float(np.finfo(float).eps)
_NEWTON_STEPS = 100


@dataclass(frozen=True)
class AprResult:
    """An APR by the actuarial method: ``apr`` is a fraction (0.0969 = 9.69 %).

    ``unit_period`` names the unit-period ("month", "semimonth", "week", "4 weeks",
    "2 months", "year", "day", or "term" for a single payment) and
    ``unit_periods_per_year`` how many fit in a year (12, 24, 52, 13, 6, 1, 365, 365/days …).
    """

    apr: Decimal
    unit_period: str
    unit_periods_per_year: Decimal
    unit_period_rate: Decimal


@dataclass(frozen=True)
class IrrResult:
    """IRR-method rates (PBoC 2021 No. 3): all fractions.

    ``nominal_annual_rate`` = periodic × periods_per_year (the disclosed 年化利率);
    ``effective_annual_rate`` = (1 + periodic) ** periods_per_year − 1.
    """

    periodic_rate: Decimal
    periods_per_year: int
    nominal_annual_rate: Decimal
    effective_annual_rate: Decimal


def _to_decimal(x: float) -> Decimal:
    """A solver's float as a Decimal with 12 decimals (well past any disclosure precision)."""
    return Decimal(repr(round(float(x), 12)))


def _check_signs(amounts: np.ndarray, what: str) -> None:
    """Both an advance (negative) and a payment (positive) must be present."""
    if not np.any(amounts < 0):
        message = "no advance (a negative amount) in the cash flows"
        raise InputError(message, field="amount", record=what)
    if not np.any(amounts > 0):
        message = "no payment (a positive amount) in the cash flows"
        raise InputError(message, field="amount", record=what)


# --- the root of a discounted sum --------------------------------------------------------


class _Discounted:
    """h(x) = Σ a_k·exp(e_k(x) − max e), e_k = −t_k·ln(1 + x) − ln(1 + f_k·x): the discounted
    sum divided by its largest discount factor — the same sign and roots, and no overflow
    near x = −1 or at a large x, where the plain powers overflow to inf (and inf − inf = nan)."""

    def __init__(self, a: np.ndarray, t: np.ndarray, f: np.ndarray) -> None:
        keep = a != 0
        self.a, self.t, self.f = a[keep], t[keep], f[keep]
        self.odd = bool(np.any(self.f))

    def _weights(self, x: float) -> np.ndarray:
        e = -self.t * math.log1p(x)
        if self.odd:
            e -= np.log1p(self.f * x)
        return np.exp(e - e.max())

    def __call__(self, x: float) -> float:
        return float(self.a @ self._weights(x))

    def newton_step(self, x: float) -> tuple[float, float]:
        """``(h(x), x − g(x)/g'(x))``: the scale cancels in the Newton step."""
        aw = self.a * self._weights(x)
        slope = self.t / (1.0 + x)
        if self.odd:
            slope = slope + self.f / (1.0 + self.f * x)
        value = float(aw.sum())
        return value, x + value / float(aw @ slope)


def _newton_root(h: _Discounted) -> float | None:
    """The rate by safeguarded Newton when it is unique, else None (let Brent decide).

    Unique: the flows change sign once in time (max time of one sign < min time of the
    other) and the odd fractions are at most 1, so the oriented sum is positive left of its
    root and negative right of it. Newton steps that leave the bracket known so far are
    replaced by bisection. Returns None for any root Brent's search would not accept.
    """
    if h.a.size == 0 or h.f.max(initial=0.0) > 1.0:
        return None
    tau = h.t + h.f
    neg, pos = h.a < 0, h.a > 0
    if not (neg.any() and pos.any()):
        return None
    if tau[neg].max() < tau[pos].min():
        orient = 1.0
    elif tau[pos].max() < tau[neg].min():
        orient = -1.0
    else:
        return None
    total = orient * float(h.a.sum())  # h(0): every discount factor is 1
    if total == 0:
        return 0.0
    lo, hi = (0.0, math.inf) if total > 0 else (_LO, 0.0)
    x = 0.0
    for _ in range(_NEWTON_STEPS):
        value, nxt = h.newton_step(x)
        value *= orient
        if value == 0:
            return x if _LO < x <= _MAX_HI else None
        if value > 0:
            lo = x
        else:
            hi = x
        if not lo < nxt < hi:
            if math.isinf(hi):
                return None
            nxt = 0.5 * (lo + hi)
        if abs(nxt - x) <= 1e-15 + 4 * _EPS * abs(nxt):
            return nxt if _LO < nxt <= _MAX_HI else None
        x = nxt
    return None


def _find_root(f: Callable[[float], float], what: str) -> float:
    """The root of a function with one sign change on (−1, ∞): bracket, then Brent."""
    lo, hi = _LO, 1.0
    f_lo = f(lo)
    while f(hi) * f_lo > 0:
        hi *= 4
        if hi > 1e9:
            raise InputError(
                "the flows have no rate of return (payments never balance the advances)",
                field="amount",
                record=what,
            )
    return float(brentq(f, lo, hi, xtol=1e-15, rtol=4 * _EPS, maxiter=500))


def _rate_root(a: np.ndarray, t: np.ndarray, f: np.ndarray | None, what: str) -> float:
    """The x > −1 with Σ a/((1 + f·x)(1 + x)^t) = 0: Newton where the root is unique, else
    Brent on the bracket (which raises InputError when there is none)."""
    h = _Discounted(
        np.asarray(a, dtype=float),
        np.asarray(t, dtype=float),
        np.zeros(len(a)) if f is None else np.asarray(f, dtype=float),
    )
    with np.errstate(over="ignore", under="ignore", divide="ignore", invalid="ignore"):
        root = _newton_root(h)
        return _find_root(h, what) if root is None else root


# --- periodic IRR, NPV, XIRR -------------------------------------------------------------


def npv(rate: float | Decimal, amounts: Sequence[int | float], start_period: int = 1) -> float:
    """Net present value: ``amounts[k]`` discounted by ``(1 + rate) ** -(k + start_period)``.

    ``rate`` is per period (a fraction); with the default ``start_period=1`` the first
    amount is one period away (as a spreadsheet's NPV); use 0 when it is today's flow.
    Units are those of ``amounts`` (cents in, cents out).
    """
    a = np.asarray(amounts, dtype=float)
    k = np.arange(start_period, start_period + a.size, dtype=float)
    if not a.all():  # a zero flow adds nothing, not 0 × inf = nan at a rate near −100 %
        k = k[a != 0]
        a = a[a != 0]
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return float(a @ np.power(1.0 + float(rate), -k))


def irr(amounts: Sequence[int | float]) -> float:
    """Periodic internal rate of return of equally spaced flows, ``amounts[0]`` now (fraction).

    Raises InputError when the flows do not change sign (there is no rate).
    """
    a = np.asarray(amounts, dtype=float)
    _check_signs(a, "cash flows")
    return _rate_root(a, np.arange(a.size, dtype=float), None, "cash flows")


def xirr(flows: Sequence[tuple[date, int]]) -> float:
    """Annual effective rate of irregular dated flows (fraction).

    Solves Σ a_k (1 + x) ** −(days from the first date / 365) = 0 (actual/365).
    """
    if not flows:
        raise InputError("no cash flows", field="amount", record="cash flows")
    dates, values = zip(*flows, strict=True)
    a = np.fromiter(map(float, values), dtype=float, count=len(values))
    _check_signs(a, "cash flows")
    days = ordinals(dates)
    return _rate_root(a, (days - days.min()) / 365.0, None, "cash flows")


# --- PBoC IRR method ---------------------------------------------------------------------

# Length in days of one period of each standard cycle, keyed by periods per year.
_STANDARD_PERIODS = {52: 7.0, 26: 14.0} | {n: 365 / n for n in (24, 12, 6, 4, 2, 1)}


def infer_periods_per_year(dates: Sequence[date]) -> int:
    """Periods per year of a dated flow pattern: the standard cycle nearest the median gap."""
    return _infer_cycle(ordinals(dates))


def _infer_cycle(days: np.ndarray) -> int:
    """:func:`infer_periods_per_year` on date ordinals."""
    distinct = np.unique(days)
    if distinct.size < 2:
        raise InputError("need flows on at least two dates", field="date", record="cash flows")
    median = float(np.median(np.diff(distinct)))
    return min(_STANDARD_PERIODS, key=lambda n: abs(np.log(_STANDARD_PERIODS[n] / median)))


def _cycle_positions(days: np.ndarray, periods_per_year: int) -> np.ndarray:
    """Position of each date (ordinals) on a cycle of ``periods_per_year`` that starts at the
    earliest one, in periods: whole months counted back from the date (month-end roll) plus
    odd days / (365/12) on month-based cycles; days / period length on the others."""
    first = int(days.min())
    if 12 % periods_per_year:
        if periods_per_year not in _STANDARD_PERIODS:
            known = ", ".join(str(n) for n in sorted(_STANDARD_PERIODS))
            message = f"must divide 12 or be one of {known}, got {periods_per_year}"
            raise InputError(message, field="periods_per_year")
        return (days - first) / _STANDARD_PERIODS[periods_per_year]
    month, day, length = month_parts(days)
    first_month = int(month_parts(np.array([first]))[0][0])
    starts = month_start_ordinals(np.array([first_month, first_month + 1, first_month + 2]))
    anchor = np.where(day == length, 31, day)  # count_back's default: month end ↦ month end
    months = month - first_month
    landing = starts[0] + np.minimum(anchor, starts[1] - starts[0]) - 1
    # Counting back `months` lands before `first`: one month fewer, landing in the next month.
    back = (months > 0) & (landing < first)
    later = starts[1] + np.minimum(anchor, starts[2] - starts[1]) - 1
    landing = np.where(back, later, landing)
    months = months - back
    return (months + (landing - first) / _AVG_MONTH_DAYS) / (12 // periods_per_year)


def irr_annualised(
    flows: Sequence[tuple[date, int]] | Sequence[int], periods_per_year: int | None = None
) -> IrrResult:
    """Annualised rate by the IRR method of PBoC announcement No. 3 (2021).

    ``flows`` are either equally spaced amounts (``periods_per_year`` required) or dated
    ``(date, cents)`` pairs, placed on the cycle inferred from their dates (or the given
    one); flows on the same period add up (a fee charged at drawdown nets off the advance).
    Dated flows that sit off the cycle by more than a quarter period raise InputError
    (use :func:`xirr` for irregular flows).
    """
    if len(flows) and isinstance(flows[0], tuple):
        dates, values = zip(*flows, strict=True)  # type: ignore[misc]
        days = ordinals(dates)
        n = periods_per_year or _infer_cycle(days)
        if n <= 0:
            raise InputError(f"must be > 0, got {n}", field="periods_per_year")
        positions = _cycle_positions(days, n)
        idx = np.round(positions).astype(np.int64)
        off = np.flatnonzero(np.abs(positions - idx) > 0.25)
        if off.size:
            k = int(off[0])
            raise InputError(
                f"{dates[k].isoformat()} is off the {n}-per-year cycle; use xirr",
                field="date",
                record=f"flow {k + 1}",
            )
        cents = np.fromiter(map(float, values), dtype=float, count=len(values))
        amounts = np.bincount(idx, weights=cents, minlength=int(idx.max()) + 1)
    else:
        if periods_per_year is None:
            raise InputError("undated flows need periods_per_year", field="periods_per_year")
        n = periods_per_year
        amounts = np.asarray(flows, dtype=float)
    if n <= 0:
        raise InputError(f"must be > 0, got {n}", field="periods_per_year")
    i = irr(amounts)
    return IrrResult(
        periodic_rate=_to_decimal(i),
        periods_per_year=int(n),
        nominal_annual_rate=_to_decimal(i * n),
        effective_annual_rate=_to_decimal((1.0 + i) ** n - 1.0),
    )


# --- Regulation Z, Appendix J ------------------------------------------------------------


@dataclass(frozen=True)
class _Unit:
    """A standard interval of Appendix J (b)(3)(iii): ``count`` × month / semimonth / week / day."""

    kind: str  # "month", "semimonth", "week", "day"
    count: int = 1

    @property
    def days(self) -> float:
        """Approximate length in days, to compare and average unit-periods."""
        base = {"month": _AVG_MONTH_DAYS, "semimonth": _AVG_MONTH_DAYS / 2, "week": 7.0, "day": 1.0}
        return base[self.kind] * self.count

    @property
    def label(self) -> str:
        if self.kind == "month" and self.count == 12:
            return "year"
        return self.kind if self.count == 1 else f"{self.count} {self.kind}s"

    @property
    def per_year(self) -> Fraction:
        """Unit-periods per year, Appendix J (b)(5): 12/m, 24, 52/w, 365."""
        per = {"month": 12, "semimonth": 24, "week": 52, "day": 365}
        return Fraction(per[self.kind], self.count)


def _is_month_end(d: date) -> bool:
    return d.day == days_in_month(d.year, d.month)


def _half_month_before(d: date) -> date:
    """``d`` minus one semimonth: day−15 in the month, or day+15 (capped) of the month before."""
    if d.day > 15:
        return date(d.year, d.month, d.day - 15)
    prev = add_months(date(d.year, d.month, 1), -1)
    return date(prev.year, prev.month, min(d.day + 15, days_in_month(prev.year, prev.month)))


def _series_anchor(dates: Sequence[date]) -> int:
    """The day of month the payments are due on; a short month's last day matches any later
    day (a series on the 30th is due Feb 28), Appendix J (b)(3)(iv)."""

    on_day = Counter(d.day for d in dates)
    month_end_days = Counter(d.day for d in dates if _is_month_end(d))

    def matches(anchor: int) -> int:
        return on_day[anchor] + sum(c for day, c in month_end_days.items() if day < anchor)

    return max(range(1, 32), key=lambda a: (matches(a), -a))


def _anchor(d: date, series: int) -> int:
    """Counting-back anchor for ``d``: the series day when ``d`` is on it, else its own day."""
    return series if d.day == series or (_is_month_end(d) and d.day < series) else d.day


def _classify(start: date, end: date, series: int) -> _Unit:
    """The standard interval that ``start`` → ``end`` spans, or its length in days."""
    anchor = _anchor(end, series)
    months = months_between(start, end, anchor)
    if months >= 1 and count_back(end, months, anchor) == start:
        return _Unit("month", months)
    if _half_month_before(end) == start or (start.day == 15 and _is_month_end(end) and months == 0):
        return _Unit("semimonth")
    days = (end - start).days
    if days % 7 == 0 and days > 0:
        return _Unit("week", days // 7)
    return _Unit("day", days)


def _standard_nearest(days: float) -> _Unit:
    """The whole standard unit of time nearest ``days``; the smaller one on a tie ((b)(4)(i)(B))."""
    candidates = [_Unit("week", w) for w in range(1, 5)] + [_Unit("semimonth")]
    candidates += [_Unit("month", m) for m in range(1, 13)]
    if days < 3.5:
        return _Unit("day")
    return min(candidates, key=lambda u: (abs(u.days - days), u.days))


def _unit_period(periods: list[_Unit]) -> _Unit:
    """Appendix J (b)(4)(i): the most frequent common period (≤ 1 year), the smaller on a tie;
    with no common period, the average period rounded to the nearest standard unit."""
    common = _most_common(Counter(periods))
    return common or _standard_nearest(sum(p.days for p in periods) / len(periods))


def _most_common(counts: Counter[_Unit]) -> _Unit | None:
    """The unit-period of (b)(4)(i) from period counts: the most frequent period of at most a
    year that occurs more than once (the smaller on a tie); None when there is none."""
    common = [
        (c, p)
        for p, c in counts.items()
        if c > 1 and p.days <= 366 and not (p.kind == "day" and p.count > 1)
    ]
    if not common:
        return None
    best = max(c for c, _ in common)
    return min((p for c, p in common if c == best), key=lambda u: u.days)


def _unit_periods_between(start: date, end: date, unit: _Unit, series: int) -> tuple[int, Fraction]:
    """Full unit-periods ``t`` counted back from ``end`` to ``start``, and the odd fraction ``f``.

    Appendix J (b)(5).
    """
    if unit.kind == "day":
        return (end - start).days, Fraction(0)
    if unit.kind == "week":
        days = (end - start).days
        return days // (7 * unit.count), Fraction(days % (7 * unit.count), 7 * unit.count)
    day = _anchor(end, series)
    months = months_between(start, end, day)
    if unit.kind == "semimonth":
        anchor = count_back(end, months, day)
        semis = 2 * months
        if _half_month_before(anchor) >= start:
            anchor, semis = _half_month_before(anchor), semis + 1
        return semis, Fraction((anchor - start).days, 15)
    rest_days = (count_back(end, months, day) - start).days
    if unit.count == 12:  # (b)(5)(v): years, then whole months / 12 or odd days / 365
        years, rest_months = divmod(months, 12)
        if rest_days == 0:
            return years, Fraction(rest_months, 12)
        return years, Fraction((count_back(end, 12 * years, day) - start).days, 365)
    if unit.count == 1:  # (b)(5)(ii): odd days / 30
        return months, Fraction(rest_days, 30)
    days = 30 * months + rest_days  # (b)(5)(iv): 30-day months, then divide by 30 × m
    return days // (30 * unit.count), Fraction(days % (30 * unit.count), 30 * unit.count)


def apr_actuarial(flows: Sequence[tuple[date, int]]) -> AprResult:
    """APR by the actuarial method of US Regulation Z, Appendix J (12 CFR 1026).

    ``flows``: ``(date, cents)``, negative = advance, positive = payment. The term starts at
    the first advance. The unit-period is the most common period between payments (and from
    the start to the first payment); each flow's time is full unit-periods counted back from
    its date plus an odd fraction (days/30 for months, /15 semimonths, /7·w weeks …); the
    unit-period rate ``i`` solves Σ A/((1+e·i)(1+i)^q) = Σ P/((1+f·i)(1+i)^t) and
    APR = i × unit-periods per year. A single advance with a single payment uses the term as
    the unit-period (12/months or 365/days per year) when it is at most a year.

    Payments due on one day of the month (month-end roll included), at most a year apart,
    after a single advance — every installment plan — get their times as arrays (full
    unit-periods 1, 2, … plus the first period's odd fraction); other patterns go date by
    date.
    """
    pairs = list(flows)
    dates, values = zip(*pairs, strict=True) if pairs else ((), ())
    cents = np.fromiter(map(int, values), dtype=np.int64, count=len(values))
    days = ordinals(dates)
    keep = cents != 0
    if not keep.any():
        raise InputError("no cash flows", field="amount", record="cash flows")
    cents, days = cents[keep], days[keep]
    _check_signs(cents, "cash flows")
    advance = cents < 0
    start_day = int(days[advance].min())
    early = np.flatnonzero(days < start_day)
    if early.size:
        k = int(early[0])
        raise InputError(
            f"{date.fromordinal(int(days[k])).isoformat()} is before the first advance "
            f"{date.fromordinal(start_day).isoformat()}",
            field="date",
            record=f"flow {k + 1}",
        )
    start = date.fromordinal(start_day)
    pay_days, pay_at = np.unique(days[~advance], return_inverse=True)
    adv_days, adv_at = np.unique(days[advance], return_inverse=True)
    paid = np.bincount(pay_at, weights=cents[~advance].astype(float))
    lent = np.bincount(adv_at, weights=-cents[advance].astype(float))

    end = date.fromordinal(int(pay_days[-1]))
    if adv_days.size == 1 and pay_days.size == 1 and end > start and end <= add_months(start, 12):
        # (b)(4)(ii): the term is the unit-period.
        months = months_between(start, end)
        if months and count_back(end, months) == start:
            per_year = Fraction(12, months)
        else:
            per_year = Fraction(365, (end - start).days)
        return _solve_apr(paid, np.ones(1), np.zeros(1), lent, "term", per_year)

    regular = _regular_times(start, pay_days) if adv_days.size == 1 else None
    if regular is not None:
        unit, t, f = regular
        return _solve_apr(paid, t, f, lent, unit.label, unit.per_year)
    pay_dates = [date.fromordinal(int(d)) for d in pay_days]
    adv_dates = [date.fromordinal(int(d)) for d in adv_days]
    unit, times = _dated_times(start, pay_dates, adv_dates)
    pay_t, pay_f = _time_arrays(times, pay_dates)
    adv_t, adv_f = _time_arrays(times, adv_dates)
    return _solve_apr(paid, pay_t, pay_f, lent, unit.label, unit.per_year, adv_t, adv_f)


def _dated_times(
    start: date, pay_dates: list[date], adv_dates: list[date]
) -> tuple[_Unit, dict[date, tuple[int, Fraction]]]:
    """The unit-period and each date's (full unit-periods, odd fraction), date by date."""
    series = _series_anchor(pay_dates)
    periods = [_classify(a, b, series) for a, b in pairwise(pay_dates)]
    periods += [_classify(a, b, series) for a, b in pairwise(adv_dates)]
    if pay_dates[0] > start:
        periods.append(_classify(start, pay_dates[0], series))
    unit = _unit_period(periods) if periods else _Unit("day")
    times = {d: _unit_periods_between(start, d, unit, series) for d in {*pay_dates, *adv_dates}}
    return unit, times


def _time_arrays(
    times: dict[date, tuple[int, Fraction]], dates: list[date]
) -> tuple[np.ndarray, np.ndarray]:
    """Full unit-periods and odd fractions of ``dates`` as float arrays."""
    t = np.array([float(times[d][0]) for d in dates])
    f = np.array([float(times[d][1]) for d in dates])
    return t, f


def _regular_times(
    start: date, pay_days: np.ndarray
) -> tuple[_Unit, np.ndarray, np.ndarray] | None:
    """Times of payments on a monthly series after one advance on ``start``, as arrays.

    Applies when every payment date (ordinals, sorted, distinct) is on the series day — the
    latest day of month among them, a shorter month's last day standing for it — at least a
    month apart, the first after ``start``, and the unit-period is 1–11 months. Then every
    gap is a whole number of months, and counting back from a payment m months after the
    first lands on the same day as counting back from the first: its time is the first's
    plus m months (in unit-periods). Returns None otherwise (the caller goes date by date).
    """
    if pay_days.size < 3 or pay_days[0] <= start.toordinal():
        return None
    month, day, length = month_parts(pay_days)
    series = int(day.max())
    gaps = np.diff(month)
    if not np.all((day == series) | ((day == length) & (day < series))) or gaps.min() < 1:
        return None
    first, last = date.fromordinal(int(pay_days[0])), date.fromordinal(int(pay_days[-1]))
    sizes, counts = np.unique(gaps, return_counts=True)
    periods = Counter({_Unit("month", int(m)): int(c) for m, c in zip(sizes, counts, strict=True)})
    periods[_classify(start, first, series)] += 1
    unit = _most_common(periods)
    if unit is None or unit.kind != "month" or unit.count >= 12:
        return None
    t0, f0 = _unit_periods_between(start, first, unit, series)
    offset = month - month[0]
    if unit.count == 1:  # (b)(5)(ii): months, then odd days / 30
        t = t0 + offset
        f = np.full(offset.size, float(f0))
        last_time = (int(t[-1]), f0)
    else:  # (b)(5)(iv): 30-day months, divided by 30 × m
        span = 30 * unit.count
        elapsed = int((t0 + f0) * span) + 30 * offset
        t, rest = np.divmod(elapsed, span)
        f = rest / span
        last_time = (int(t[-1]), Fraction(int(rest[-1]), span))
    if last_time != _unit_periods_between(start, last, unit, series):
        return None
    return unit, t.astype(float), f


def _solve_apr(
    paid: np.ndarray,
    pay_t: np.ndarray,
    pay_f: np.ndarray,
    lent: np.ndarray,
    label: str,
    per_year: Fraction,
    adv_t: np.ndarray | None = None,
    adv_f: np.ndarray | None = None,
) -> AprResult:
    """Solve the general equation (b)(8) for the unit-period rate, and annualise it.

    ``paid`` / ``lent``: payments and advances by date (cents, positive) with their full
    unit-periods ``t`` and odd fractions ``f``; advances default to the start (0, 0).
    """
    zeros = np.zeros(lent.size)
    a = np.concatenate((paid, -lent))
    t = np.concatenate((pay_t, zeros if adv_t is None else adv_t))
    f = np.concatenate((pay_f, zeros if adv_f is None else adv_f))
    i = _rate_root(a, t, f, "cash flows")
    per = Decimal(per_year.numerator) / Decimal(per_year.denominator)
    return AprResult(
        apr=_to_decimal(i * float(per_year)),
        unit_period=label,
        unit_periods_per_year=per,
        unit_period_rate=_to_decimal(i),
    )


def apr(
    flows: Sequence[tuple[date, int]],
    method: str = "actuarial",
    periods_per_year: int | None = None,
) -> AprResult | IrrResult:
    """The rate of dated ``(date, cents)`` flows by ``method``: ``"actuarial"`` (US Reg Z
    Appendix J, :func:`apr_actuarial`) or ``"irr"`` (PBoC 2021 No. 3, :func:`irr_annualised`).

    The library side of ``repayplan apr``; ``periods_per_year`` applies to ``irr`` only.
    """
    how = str(method).strip().lower()
    if how == "actuarial":
        return apr_actuarial(flows)
    if how == "irr":
        return irr_annualised(list(flows), periods_per_year)
    raise InputError(f"unknown method {method!r} (use actuarial or irr)", field="method")
