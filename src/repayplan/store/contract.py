"""Vectorised, cent-exact contract arithmetic for many loans at once (numpy int64).

The store builds contractual schedules for up to millions of loans, so nothing here loops
over loans in Python; loops run over periods only. Conventions match ``repayplan.finance``:
month-based cycles, 30/360 period rates (annual × months/12), half-even rounding to the cent,
month-end roll with the origination day as anchor (Jan 31 → Feb 28/29 → Mar 31), and the
last installment settles the balance so every schedule reconciles to the cent.

Rates are carried as integers ``rate_e4`` = annual percent × 10⁴ (``12.3456 %`` → 123456),
exactly the store's ``DECIMAL(7,4)``. Overflow limit: ``balance × rate_e4 × months`` must stay
below 2⁶³ ≈ 9.2·10¹⁸, i.e. balances up to 10¹¹ cents (one billion currency units) at rates
up to 100 % on yearly cycles; the importer enforces both bounds.
"""

from __future__ import annotations

import numpy as np

#: Denominator of the period rate: annual percent × 10⁴ × months / (100 × 10⁴ × 12).
RATE_DEN = 12_000_000

_EPOCH_MONTH = np.datetime64("1970-01", "M")


def half_even_div(num: np.ndarray, den: np.ndarray | int) -> np.ndarray:
    """``num / den`` rounded half-to-even, exactly, for int64 arrays (``den`` > 0)."""
    num = np.asarray(num, dtype=np.int64)
    q, r = np.divmod(num, den)
    twice = 2 * r
    up = (twice > den) | ((twice == den) & (q % 2 == 1))
    return q + up


def month_index(dates: np.ndarray) -> np.ndarray:
    """Months since 1970-01 of each ``datetime64[D]`` date (int64)."""
    return (dates.astype("datetime64[M]") - _EPOCH_MONTH).astype(np.int64)


def day_in_month(months: np.ndarray, anchor_day: np.ndarray) -> np.ndarray:
    """The date in month ``months`` (months since 1970-01) on ``anchor_day``, rolled back to
    the month's last day when the month is shorter (``datetime64[D]``)."""
    start = (_EPOCH_MONTH + months).astype("datetime64[D]")
    end = (_EPOCH_MONTH + months + 1).astype("datetime64[D]")
    days = (end - start).astype(np.int64)
    return start + (np.minimum(anchor_day, days) - 1)


def add_months(dates: np.ndarray, months: np.ndarray, anchor_day: np.ndarray) -> np.ndarray:
    """``dates`` moved by ``months`` calendar months, on ``anchor_day`` (month-end roll)."""
    return day_in_month(month_index(dates) + months, anchor_day)


def period_interest(balance: np.ndarray, rate_e4: np.ndarray, months: np.ndarray) -> np.ndarray:
    """Interest in cents on ``balance`` (cents) for one period of ``months`` months, 30/360."""
    return half_even_div(balance * rate_e4 * months, RATE_DEN)


def annuity_payment(
    balance: np.ndarray, rate_e4: np.ndarray, months: np.ndarray, periods: np.ndarray
) -> np.ndarray:
    """Level installment in cents that repays ``balance`` over ``periods`` periods.

    Computed in floating point and rounded half-even to the cent: the payment is a contract
    term, and the exact recursion in :func:`schedule_rows` absorbs the rounding in the last
    installment. A zero rate gives ``balance / periods``.
    """
    b = np.asarray(balance, dtype=np.float64)
    n = np.maximum(np.asarray(periods, dtype=np.float64), 1.0)
    r = np.asarray(rate_e4, dtype=np.float64) * np.asarray(months, dtype=np.float64) / RATE_DEN
    with np.errstate(divide="ignore", invalid="ignore"):
        level = np.where(r > 0, b * r / (1.0 - (1.0 + r) ** (-n)), b / n)
    return np.rint(level).astype(np.int64)


def schedule_rows(
    balance: np.ndarray,
    rate_e4: np.ndarray,
    months: np.ndarray,
    periods: np.ndarray,
    start: np.ndarray,
    anchor_day: np.ndarray,
    payment: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Annuity schedules of many loans, flattened to rows.

    Loan ``i`` borrows ``balance[i]`` cents on ``start[i]`` and pays ``periods[i]``
    installments every ``months[i]`` months (first one period after ``start``); ``payment``
    defaults to :func:`annuity_payment`. Returns columns ``loan`` (index into the inputs),
    ``number``, ``due_date``, ``payment``, ``principal``, ``interest``, ``balance`` (cents,
    balance after the installment); rows are grouped by installment number.
    """
    balance = np.asarray(balance, dtype=np.int64).copy()
    rate_e4 = np.asarray(rate_e4, dtype=np.int64)
    months = np.asarray(months, dtype=np.int64)
    periods = np.asarray(periods, dtype=np.int64)
    if payment is None:
        payment = annuity_payment(balance, rate_e4, months, periods)
    start_month = month_index(np.asarray(start, dtype="datetime64[D]"))
    out: dict[str, list[np.ndarray]] = {
        k: [] for k in ("loan", "number", "due_date", "payment", "principal", "interest", "balance")
    }
    for k in range(1, int(periods.max(initial=0)) + 1):
        idx = np.flatnonzero(periods >= k)
        bal = balance[idx]
        interest = period_interest(bal, rate_e4[idx], months[idx])
        last = periods[idx] == k
        # Never let an installment below the interest grow the balance, and settle at the end.
        principal = np.where(last, bal, np.clip(payment[idx] - interest, 0, bal))
        balance[idx] = bal - principal
        out["loan"].append(idx)
        out["number"].append(np.full(idx.size, k, dtype=np.int64))
        out["due_date"].append(day_in_month(start_month[idx] + k * months[idx], anchor_day[idx]))
        out["payment"].append(principal + interest)
        out["principal"].append(principal)
        out["interest"].append(interest)
        out["balance"].append(balance[idx])
    if not out["loan"]:
        return {k: np.empty(0, dtype="datetime64[D]" if k == "due_date" else np.int64) for k in out}
    return {k: np.concatenate(v) for k, v in out.items()}
