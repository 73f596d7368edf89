"""Time the finance layer's hot functions against the straightforward versions they replaced.

    .venv/bin/python benchmarks/finance.py [--json] [--quick]

For each function and plan length: milliseconds per call of the current implementation
(``repayplan.finance``) and of a reference kept in this file — the pre-optimisation code:
Appendix J times date by date with Brent's method, IRR by Brent, the annuity as a loop over
Fractions, the schedule recursion through ``exact_fraction`` / ``div_round_half_even`` — with
the speed-up and the largest difference between the two (rates: absolute, fractions; money:
cents). Plans are `build_schedule` annuities (7.25 %, 30/360 unless named, start on a month's
31st so the month-end roll is exercised). Timings are the best of several repeats, both sides
in the same run. The result is also written to ``benchmarks/results/finance.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import numpy as np
from scipy.optimize import brentq

from repayplan.finance import (
    annuity_installment,
    apr_actuarial,
    build_schedule,
    irr,
    irr_annualised,
    npv,
    period_rate_factors,
    period_rate_fractions,
    rates,
    schedule_from_payments,
)
from repayplan.finance.calendar import count_back, months_between
from repayplan.finance.daycount import exact_fraction
from repayplan.finance.money import div_round_half_even, round_fraction
from repayplan.finance.schedule import Installment, Schedule

RESULTS = Path(__file__).parent / "results"
RATE = Decimal("0.0725")
START = date(2024, 1, 31)
ROUNDED = {"apr_actuarial", "irr_annualised (dated)"}  # Decimal results with 12 decimals

# --- the references: the code before the fast paths --------------------------------------


def _brent(f: Callable[[float], float]) -> float:
    lo, hi = -0.999999, 1.0
    f_lo = f(lo)
    while f(hi) * f_lo > 0:
        hi *= 4
    return float(brentq(f, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=500))


def _series_anchor(dates: list[date]) -> int:
    def matches(anchor: int) -> int:
        return sum(d.day == anchor or (rates._is_month_end(d) and d.day < anchor) for d in dates)

    return max(range(1, 32), key=lambda a: (matches(a), -a))


def reference_apr(flows: list[tuple[date, int]]) -> float:
    """Unit-period rate: Appendix J times date by date, Brent on the plain discounted sum."""
    rows = [(d, int(v)) for d, v in flows if int(v) != 0]
    start = min(d for d, v in rows if v < 0)
    pays = sorted((d, v) for d, v in rows if v > 0)
    advs = sorted((d, -v) for d, v in rows if v < 0)
    pay_dates = sorted({d for d, _ in pays})
    adv_dates = sorted({d for d, _ in advs})
    series = _series_anchor(pay_dates)
    periods = [rates._classify(a, b, series) for a, b in pairwise(pay_dates)]
    periods += [rates._classify(a, b, series) for a, b in pairwise(adv_dates)]
    if pay_dates[0] > start:
        periods.append(rates._classify(start, pay_dates[0], series))
    unit = rates._unit_period(periods)
    times = {
        d: rates._unit_periods_between(start, d, unit, series) for d in {*pay_dates, *adv_dates}
    }

    def side(rows: list[tuple[date, int]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        amount = np.array([float(v) for _, v in rows])
        t = np.array([float(times[d][0]) for d, _ in rows])
        f = np.array([float(times[d][1]) for d, _ in rows])
        return amount, t, f

    pa, pt, pf = side(pays)
    aa, at, af = side(advs)

    @np.errstate(over="ignore", divide="ignore", invalid="ignore")
    def gap(i: float) -> float:
        paid = np.sum(pa / ((1.0 + pf * i) * (1.0 + i) ** pt))
        lent = np.sum(aa / ((1.0 + af * i) * (1.0 + i) ** at))
        return float(paid - lent)

    return _brent(gap)


def reference_irr(amounts: list[int]) -> float:
    a = np.asarray(amounts, dtype=float)
    a_nz, k = a[a != 0], np.arange(a.size)[a != 0]
    with np.errstate(over="ignore", divide="ignore", invalid="ignore"):
        return _brent(lambda i: float(np.sum(a_nz * (1.0 + i) ** -k)))


def reference_dated_irr(flows: list[tuple[date, int]]) -> float:
    """PBoC IRR of dated monthly flows: positions date by date, then Brent."""
    first = min(d for d, _ in flows)
    idx = []
    for d, _ in flows:
        months = months_between(first, d)
        odd = (count_back(d, months) - first).days
        idx.append(round(months + odd / (365 / 12)))
    amounts = np.zeros(max(idx) + 1)
    np.add.at(amounts, idx, [float(v) for _, v in flows])
    return reference_irr(amounts.tolist())


def reference_npv(rate: float, amounts: list[int]) -> float:
    return sum(v * (1.0 + rate) ** -(k + 1) for k, v in enumerate(amounts))


def reference_annuity(principal: int, factors: list[Fraction]) -> int:
    discount, annuity = Fraction(1), Fraction(0)
    for r in factors:
        discount /= 1 + exact_fraction(r)
        annuity += discount
    return round_fraction(principal * 1 / annuity)


def reference_schedule(
    principal: int, factors: list[Decimal], dates: list[date], payments: list[int]
) -> Schedule:
    exact = [exact_fraction(f) for f in factors]
    balance, rows = principal, []
    for k in range(len(payments)):
        planned = int(payments[k])
        factor = exact[k]
        if planned < 0 or factor < 0:
            raise ValueError("negative")
        interest = div_round_half_even(balance * factor.numerator, factor.denominator)
        due = balance + interest
        pay = due if k == len(payments) - 1 else min(planned, due)
        balance = due - pay
        rows.append(Installment(k + 1, dates[k], pay, pay - interest, interest, balance))
    return Schedule(principal=principal, installments=tuple(rows))


# --- timing ------------------------------------------------------------------------------


def best_ms(fn: Callable[[], object], budget_s: float) -> float:
    """Best milliseconds per call over 5 repeats of a loop sized to ~budget_s / 5."""
    fn()
    start = time.perf_counter()
    fn()
    once = max(time.perf_counter() - start, 1e-6)
    number = max(1, int(budget_s / 5 / once))
    times = []
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return 1e3 * min(times)


def specs(n: int) -> list[tuple[str, Callable[[], object], Callable[[], object]]]:
    """(function, current call, reference call) on one ``n``-month plan."""
    s = build_schedule(25_000_000, RATE, n, "monthly", START)
    flows = s.cash_flows(START)
    dates = [i.due_date for i in s.installments]
    amounts = [-s.principal, *s.payments]
    fractions = period_rate_fractions(RATE, START, dates)
    fractions365 = period_rate_fractions(RATE, START, dates, "actual/365")
    decimals = period_rate_factors(RATE, START, dates)
    h = float(RATE) / 12
    return [
        (
            "apr_actuarial",
            lambda: float(apr_actuarial(flows).unit_period_rate),
            lambda: reference_apr(flows),
        ),
        ("irr", lambda: irr(amounts), lambda: reference_irr(amounts)),
        (
            "irr_annualised (dated)",
            lambda: float(irr_annualised(flows, 12).periodic_rate),
            lambda: reference_dated_irr(flows),
        ),
        ("npv", lambda: npv(h, s.payments), lambda: reference_npv(h, s.payments)),
        (
            "annuity_installment 30/360",
            lambda: annuity_installment(s.principal, fractions),
            lambda: reference_annuity(s.principal, fractions),
        ),
        (
            "annuity_installment actual/365",
            lambda: annuity_installment(s.principal, fractions365),
            lambda: reference_annuity(s.principal, fractions365),
        ),
        (
            "schedule_from_payments",
            lambda: schedule_from_payments(s.principal, decimals, dates, s.payments),
            lambda: reference_schedule(s.principal, decimals, dates, s.payments),
        ),
    ]


def cases(quick: bool) -> list[dict]:
    """One row per (function, plan length): current vs reference, and their largest gap."""
    rows = []
    budget = 0.1 if quick else 0.5
    for n in [36, 120] if quick else [36, 60, 120, 240, 480]:
        for name, fast, ref in specs(n):
            fast_ms, ref_ms = best_ms(fast, budget), best_ms(ref, budget)
            got, want = fast(), ref()
            if isinstance(got, Schedule) and isinstance(want, Schedule):
                diff = float(max(abs(a - b) for a, b in _money(got, want)))
            elif name in ROUNDED:  # results carry 12 decimals: round the reference alike
                diff = abs(float(got) - round(float(want), 12))
            else:
                diff = abs(float(got) - float(want))
            rows.append(
                {
                    "function": name,
                    "periods": n,
                    "ms": round(fast_ms, 4),
                    "reference_ms": round(ref_ms, 4),
                    "speedup": round(ref_ms / fast_ms, 1),
                    "max_abs_diff": diff,
                }
            )
    return rows


def _money(a: Schedule, b: Schedule) -> list[tuple[int, int]]:
    pairs = []
    for x, y in zip(a.installments, b.installments, strict=True):
        pairs += [(x.payment, y.payment), (x.interest, y.interest), (x.balance, y.balance)]
    return pairs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.add_argument("--quick", action="store_true", help="36 and 120 periods, short loops")
    args = parser.parse_args()
    rows = cases(args.quick)
    result = {
        "run_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average": list(os.getloadavg()),
        },
        "plan": {"rate": str(RATE), "start": START.isoformat(), "schedule": "annuity, 30/360"},
        "rows": rows,
    }
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "finance.json").write_text(json.dumps(result, indent=2) + "\n")
    if args.json:
        print(json.dumps(result, indent=2))
        return
    print(
        f"{'function':32} {'n':>4} {'ms':>9} {'reference ms':>13} {'speed-up':>9} {'max diff':>9}"
    )
    for r in rows:
        print(
            f"{r['function']:32} {r['periods']:>4} {r['ms']:>9.4f} {r['reference_ms']:>13.4f} "
            f"{r['speedup']:>8.1f}× {r['max_abs_diff']:>9.2g}"
        )
    print(f"load average {result['machine']['load_average']}; written to results/finance.json")


if __name__ == "__main__":
    main()
