"""Rates from cash flows: APR (US Reg Z, Appendix J actuarial), IRR-annualised (PBoC 2021 No. 3),
periodic IRR, NPV and XIRR.

Flows are ``(date, cents)`` pairs seen from the lender: negative = money advanced to the
borrower, positive = money the borrower pays (installments *and* fees: every fee is a cost).
Roots are found with Brent's method on a bracket, in double precision (about 1e-13 relative,
far below the 4th decimal of a percent that any disclosure shows).
"""

from __future__ import annotations

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
from repayplan.finance.calendar import add_months, count_back, days_in_month, months_between

_AVG_MONTH_DAYS = 365 / 12


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


def _find_root(f: Callable[[float], float], what: str) -> float:
    """The root of a function decreasing in the rate, on (−1, ∞): bracket, then Brent."""
    lo, hi = -0.999999, 1.0
    f_lo = f(lo)
    while f(hi) * f_lo > 0:
        hi *= 4
        if hi > 1e9:
            raise InputError(
                "the flows have no rate of return (payments never balance the advances)",
                field="amount",
                record=what,
            )
    return float(brentq(f, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500))


def _check_signs(amounts: np.ndarray, what: str) -> None:
    """Both an advance (negative) and a payment (positive) must be present."""
    if not np.any(amounts < 0):
        message = "no advance (a negative amount) in the cash flows"
        raise InputError(message, field="amount", record=what)
    if not np.any(amounts > 0):
        message = "no payment (a positive amount) in the cash flows"
        raise InputError(message, field="amount", record=what)


# --- periodic IRR, NPV, XIRR -------------------------------------------------------------


def npv(rate: float | Decimal, amounts: Sequence[int | float], start_period: int = 1) -> float:
    """Net present value: ``amounts[k]`` discounted by ``(1 + rate) ** -(k + start_period)``.

    ``rate`` is per period (a fraction); with the default ``start_period=1`` the first
    amount is one period away (as a spreadsheet's NPV); use 0 when it is today's flow.
    Units are those of ``amounts`` (cents in, cents out).
    """
    a = np.asarray(amounts, dtype=float)
    k = np.arange(a.size) + start_period
    return float(np.sum(a * (1.0 + float(rate)) ** -k))


def irr(amounts: Sequence[int | float]) -> float:
    """Periodic internal rate of return of equally spaced flows, ``amounts[0]`` now (fraction).

    Raises InputError when the flows do not change sign (there is no rate).
    """
    a = np.asarray(amounts, dtype=float)
    _check_signs(a, "cash flows")
    k = np.arange(a.size)
    # Sign convention: the lender's advance is negative, so NPV falls as the rate rises
    # when the advance comes first; orient it so the root finder sees a decreasing function.
    orient = -1.0 if a[np.nonzero(a)[0][0]] > 0 else 1.0
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return _find_root(lambda i: orient * float(np.sum(a * (1.0 + i) ** -k)), "cash flows")


def xirr(flows: Sequence[tuple[date, int]]) -> float:
    """Annual effective rate of irregular dated flows (fraction).

    Solves Σ a_k (1 + x) ** −(days from the first date / 365) = 0 (actual/365).
    """
    if not flows:
        raise InputError("no cash flows", field="amount", record="cash flows")
    dates = [d for d, _ in flows]
    a = np.array([float(v) for _, v in flows])
    _check_signs(a, "cash flows")
    first = min(dates)
    t = np.array([(d - first).days / 365.0 for d in dates])
    order = np.argsort(t, kind="stable")
    orient = -1.0 if a[order][np.nonzero(a[order])[0][0]] > 0 else 1.0
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return _find_root(lambda x: orient * float(np.sum(a * (1.0 + x) ** -t)), "cash flows")


# --- PBoC IRR method ---------------------------------------------------------------------

# Length in days of one period of each standard cycle, keyed by periods per year.
_STANDARD_PERIODS = {52: 7.0, 26: 14.0} | {n: 365 / n for n in (24, 12, 6, 4, 2, 1)}


def infer_periods_per_year(dates: Sequence[date]) -> int:
    """Periods per year of a dated flow pattern: the standard cycle nearest the median gap."""
    distinct = sorted(set(dates))
    if len(distinct) < 2:
        raise InputError("need flows on at least two dates", field="date", record="cash flows")
    gaps = np.diff([d.toordinal() for d in distinct])
    median = float(np.median(gaps))
    return min(_STANDARD_PERIODS, key=lambda n: abs(np.log(_STANDARD_PERIODS[n] / median)))


def _period_index(first: date, d: date, periods_per_year: int) -> float:
    """Position of ``d`` on a cycle of ``periods_per_year`` starting at ``first``, in periods."""
    if 12 % periods_per_year == 0:
        months = months_between(first, d)
        odd_days = (count_back(d, months) - first).days
        return (months + odd_days / _AVG_MONTH_DAYS) / (12 // periods_per_year)
    return (d - first).days / _STANDARD_PERIODS[periods_per_year]


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
    if flows and isinstance(flows[0], tuple):
        dated = list(flows)  # type: ignore[arg-type]
        n = periods_per_year or infer_periods_per_year([d for d, _ in dated])
        first = min(d for d, _ in dated)
        positions = [_period_index(first, d, n) for d, _ in dated]
        idx = [round(p) for p in positions]
        for k, (p, i) in enumerate(zip(positions, idx, strict=True)):
            if abs(p - i) > 0.25:
                raise InputError(
                    f"{dated[k][0].isoformat()} is off the {n}-per-year cycle; use xirr",
                    field="date",
                    record=f"flow {k + 1}",
                )
        amounts = np.zeros(max(idx) + 1)
        np.add.at(amounts, idx, [float(v) for _, v in dated])
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

    def matches(anchor: int) -> int:
        return sum(d.day == anchor or (_is_month_end(d) and d.day < anchor) for d in dates)

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
    counts = Counter(p for p in periods if p.days <= 366 and not (p.kind == "day" and p.count > 1))
    common = [(c, p) for p, c in counts.items() if c > 1]
    if common:
        best = max(c for c, _ in common)
        return min((p for c, p in common if c == best), key=lambda u: u.days)
    return _standard_nearest(sum(p.days for p in periods) / len(periods))


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
    """
    rows = [(d, int(v)) for d, v in flows if int(v) != 0]
    if not rows:
        raise InputError("no cash flows", field="amount", record="cash flows")
    _check_signs(np.array([v for _, v in rows], dtype=float), "cash flows")
    start = min(d for d, v in rows if v < 0)
    for k, (d, _) in enumerate(rows):
        if d < start:
            raise InputError(
                f"{d.isoformat()} is before the first advance {start.isoformat()}",
                field="date",
                record=f"flow {k + 1}",
            )
    pays = sorted((d, v) for d, v in rows if v > 0)
    advs = sorted((d, -v) for d, v in rows if v < 0)
    pay_dates = sorted({d for d, _ in pays})
    adv_dates = sorted({d for d, _ in advs})

    end = pay_dates[-1]
    single = len(adv_dates) == 1 and len(pay_dates) == 1 and end > start
    if single and end <= add_months(start, 12):  # (b)(4)(ii): the term is the unit-period
        months = months_between(start, end)
        if months and count_back(end, months) == start:
            per_year = Fraction(12, months)
        else:
            per_year = Fraction(365, (end - start).days)
        times = {start: (0, Fraction(0)), end: (1, Fraction(0))}
        return _solve_apr(advs, pays, times, "term", per_year)

    series = _series_anchor(pay_dates)
    periods = [_classify(a, b, series) for a, b in pairwise(pay_dates)]
    periods += [_classify(a, b, series) for a, b in pairwise(adv_dates)]
    if pay_dates[0] > start:
        periods.append(_classify(start, pay_dates[0], series))
    unit = _unit_period(periods) if periods else _Unit("day")
    times = {d: _unit_periods_between(start, d, unit, series) for d in {*pay_dates, *adv_dates}}
    return _solve_apr(advs, pays, times, unit.label, unit.per_year)


def _solve_apr(
    advances: list[tuple[date, int]],
    payments: list[tuple[date, int]],
    times: dict[date, tuple[int, Fraction]],
    label: str,
    per_year: Fraction,
) -> AprResult:
    """Solve the general equation (b)(8) for the unit-period rate, and annualise it."""

    def side(rows: list[tuple[date, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        amount = np.array([float(v) for _, v in rows])
        t = np.array([float(times[d][0]) for d, _ in rows])
        f = np.array([float(times[d][1]) for d, _ in rows])
        return amount, t, f

    pa, pt, pf = side(payments)
    aa, at, af = side(advances)

    @np.errstate(over="ignore", divide="ignore", invalid="ignore")
    def gap(i: float) -> float:
        paid = np.sum(pa / ((1.0 + pf * i) * (1.0 + i) ** pt))
        lent = np.sum(aa / ((1.0 + af * i) * (1.0 + i) ** at))
        return float(paid - lent)

    i = _find_root(gap, "cash flows")
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
