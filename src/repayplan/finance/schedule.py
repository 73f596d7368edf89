"""Cent-exact repayment schedules: the balance recursion, the standard methods, a batch path.

One rule runs every schedule (lenders' systems do the same):

* interest of period k = round_half_even(balance_{k-1} × factor_k), in cents;
* a payment above balance + interest is capped there (prepayment is free);
* the last installment pays the remaining balance plus its interest, so that
  Σ principal parts = principal financed, to the cent.

:func:`build_schedule` only decides the planned payments (annuity, equal principal, flat,
interest-only grace, balloon) and hands them to :func:`schedule_from_payments` (flat interest,
charged on the original principal, is the one method with its own recursion).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from enum import StrEnum
from fractions import Fraction
from typing import Any

import numpy as np

from repayplan.errors import InputError
from repayplan.finance.calendar import Frequency, due_dates
from repayplan.finance.daycount import DayCount, exact_fraction, period_rate_fractions
from repayplan.finance.money import div_round_half_even, format_cents, round_fraction

#: Most installments of one schedule (100 years of monthly payments).
MAX_PERIODS = 1200
#: Highest nominal annual rate accepted, as a fraction (1000 %: above any lawful consumer
#: loan, so a larger figure is a typing mistake, not a loan).
MAX_ANNUAL_RATE = Fraction(10)

_INT64_MAX = np.iinfo(np.int64).max


@dataclass(frozen=True)
class Installment:
    """One installment; money in integer cents, ``balance`` is what is owed after it."""

    number: int
    due_date: date
    payment: int
    principal: int
    interest: int
    balance: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``due_date`` as ISO text, money as two-decimal strings (``"16.67"``)."""
        return {
            "number": self.number,
            "due_date": self.due_date.isoformat(),
            "payment": format_cents(self.payment),
            "principal": format_cents(self.principal),
            "interest": format_cents(self.interest),
            "balance": format_cents(self.balance),
        }


@dataclass(frozen=True)
class Schedule:
    """A repayment schedule: ``principal`` financed (cents) and its installments in order."""

    principal: int
    installments: tuple[Installment, ...]

    @property
    def total_interest(self) -> int:
        """Interest over the whole schedule, cents."""
        return sum(i.interest for i in self.installments)

    @property
    def total_paid(self) -> int:
        """Sum of all payments, cents (principal repaid + interest)."""
        return sum(i.payment for i in self.installments)

    @property
    def payments(self) -> list[int]:
        """The payment of each installment, cents."""
        return [i.payment for i in self.installments]

    @property
    def final_balance(self) -> int:
        """Balance left after the last installment (0 for a settled schedule), cents."""
        return self.installments[-1].balance if self.installments else self.principal

    def cash_flows(self, start: date) -> list[tuple[date, int]]:
        """Dated flows from the lender's view of the borrower: −principal on ``start``, then
        each payment — the input of :func:`~repayplan.finance.rates.apr_actuarial` / IRR."""
        return [(start, -self.principal)] + [(i.due_date, i.payment) for i in self.installments]

    def to_dict(self) -> dict[str, Any]:
        """``{"installments": [...], "total_interest", "total_paid"}``, money as "12.34" text."""
        return {
            "installments": [i.to_dict() for i in self.installments],
            "total_interest": format_cents(self.total_interest),
            "total_paid": format_cents(self.total_paid),
        }


class Method(StrEnum):
    """How the installments of :func:`build_schedule` are set."""

    ANNUITY = "annuity"
    EQUAL_PRINCIPAL = "equal-principal"
    FLAT = "flat"

    @classmethod
    def parse(cls, value: Method | str, *, field: str = "method") -> Method:
        """``value`` as a Method (``equal_principal`` accepted); InputError naming ``field``."""
        try:
            return cls(str(value).strip().lower().replace("_", "-"))
        except ValueError:
            known = ", ".join(m.value for m in cls)
            message = f"unknown method {value!r} (use one of {known})"
            raise InputError(message, field=field) from None


def schedule_from_payments(
    principal: int,
    rate_factors: Sequence[Decimal | Fraction],
    due_dates: Sequence[date],
    payments: Sequence[int],
    settle_last: bool = True,
) -> Schedule:
    """Run the balance recursion on planned ``payments`` (cents) and return the exact schedule.

    ``rate_factors[k]`` is period k's rate factor (a fraction of the balance; the exact value
    of a :class:`~repayplan.finance.daycount.RateFactor` is used). Interest =
    round_half_even(balance × factor); a payment above balance + interest is capped there;
    with ``settle_last`` the last installment pays balance + interest whatever was planned,
    so Σ principal parts == ``principal``. Without it the last balance may stay positive.
    """
    n = len(payments)
    if len(rate_factors) != n or len(due_dates) != n:
        raise InputError(
            f"rate_factors ({len(rate_factors)}), due_dates ({len(due_dates)}) and payments "
            f"({n}) must have the same length",
            field="payments",
        )
    if principal < 0:
        raise InputError(f"must be >= 0, got {principal}", field="principal")
    factors = _exact_factors(rate_factors)
    planned = [int(p) for p in payments]
    # Interest = round_half_even(balance × num / den) on exact integers, inlined: this loop
    # runs for every alternative of every loan of the nightly re-plan.
    balance = int(principal)
    rows: list[Installment] = []
    last = n - 1 if settle_last else n
    for k, (factor, pay, due_date) in enumerate(zip(factors, planned, due_dates, strict=True)):
        num, den = factor.numerator, factor.denominator
        if pay < 0 or num < 0:
            _raise_negative(k, pay, factor)
        interest, rest = divmod(balance * num, den)
        if 2 * rest > den or (2 * rest == den and interest & 1):
            interest += 1
        due = balance + interest
        if k == last or pay > due:
            pay = due
        balance = due - pay
        rows.append(Installment(k + 1, due_date, pay, pay - interest, interest, balance))
    return Schedule(principal=int(principal), installments=tuple(rows))


def _exact_factors(rate_factors: Sequence[Decimal | Fraction]) -> list[Fraction]:
    """The exact value of each factor; a repeat of the previous object is not converted again
    (a plan's factors are mostly one object, see ``period_rate_fractions``)."""
    out: list[Fraction] = []
    prev: object = None
    exact = Fraction(0)
    for f in rate_factors:
        if f is not prev:
            exact = f if type(f) is Fraction else exact_fraction(f)
            prev = f
        out.append(exact)
    return out


def _factor_runs(rate_factors: Sequence[Decimal | Fraction]) -> list[tuple[int, int, int]]:
    """Runs of equal factors as ``(numerator, denominator, length)``, in order."""
    runs: list[list[int]] = []
    prev: object = None
    for f in rate_factors:
        if f is prev:
            runs[-1][2] += 1
            continue
        prev = f
        exact = f if type(f) is Fraction else exact_fraction(f)
        key = [exact.numerator, exact.denominator, 1]
        if runs and runs[-1][:2] == key[:2]:
            runs[-1][2] += 1
        else:
            runs.append(key)
    return [(num, den, run) for num, den, run in runs]


def _raise_negative(k: int, pay: int, factor: Fraction) -> None:
    """InputError for period ``k`` (0-based), whose payment or factor is negative."""
    if pay < 0:
        raise InputError(f"must be >= 0, got {pay}", field="payment", record=f"period {k + 1}")
    raise InputError(f"must be >= 0, got {factor}", field="rate_factor", record=f"period {k + 1}")


def annuity_installment(
    principal: int, rate_factors: Sequence[Fraction], balloon: int = 0, multiple: int = 1
) -> int:
    """The level installment (cents) that amortises ``principal`` down to ``balloon``.

    A = (P − balloon·v_n) / Σ_k v_k with v_k = Π_{j≤k} (1 + r_j)^−1, computed exactly and
    rounded half-even to a multiple of ``multiple`` cents.
    """
    if not rate_factors:
        raise InputError("no amortising periods", field="periods")
    # Σ_k v_k and v_n as integer ratios N / M and V / M, run by run of equal factors from the
    # last period back: a run of L factors u/d (D = d + u) maps N / M to
    # (d^L·N + d·(D^L − d^L)/u·M) / (D^L·M) — the geometric sum in closed form, exact, with
    # no gcd on the way (one run = the textbook r / (1 − (1 + r)^−n)).
    total, scale, kept = 0, 1, 1  # N, M, V
    for num, den, run in reversed(_factor_runs(rate_factors)):
        if den + num == 0:
            raise ZeroDivisionError("a rate factor of -1 discounts by 1/0")
        grown, held = (den + num) ** run, den**run
        if num:
            total = held * total + den * ((grown - held) // num) * scale
        else:
            total += run * scale
        scale *= grown
        kept *= held
    return multiple * div_round_half_even(principal * scale - balloon * kept, total * multiple)


def build_schedule(
    principal: int,
    annual_rate: Decimal | Fraction | str,
    periods: int,
    frequency: Frequency | str = Frequency.MONTHLY,
    start: date | None = None,
    day_count: DayCount | str = DayCount.THIRTY_360,
    method: Method | str = Method.ANNUITY,
    installment_multiple: int = 1,
    grace_periods: int = 0,
    balloon: int = 0,
) -> Schedule:
    """A standard schedule for ``principal`` cents at ``annual_rate`` (a fraction) over ``periods``.

    The first ``grace_periods`` installments pay interest only; the others amortise:

    * ``annuity`` — a level installment (:func:`annuity_installment`) rounded half-even to
      ``installment_multiple`` cents (1 = 0.01, 100 = whole units);
    * ``equal-principal`` — principal part round(P / n) (rounded to ``installment_multiple``)
      plus the period's interest;
    * ``flat`` — interest round(P × annual / periods-per-year) every period on the original
      principal (P × annual / 12 monthly), principal part round(P / n), the installment
      rounded to ``installment_multiple``.

    ``balloon`` (cents) is left for the last installment to pay on top. The last installment
    always settles the balance (with its interest). ``start`` defaults to today; due dates
    are :func:`~repayplan.finance.calendar.due_dates`.
    """
    freq = Frequency.parse(frequency)
    dc = DayCount.parse(day_count)
    how = Method.parse(method)
    rate = _check_inputs(
        principal, annual_rate, periods, installment_multiple, grace_periods, balloon
    )
    start = start or date.today()
    try:
        dates = due_dates(start, periods, freq)
    except (OverflowError, ValueError):  # a due date after 9999-12-31
        raise InputError(
            f"{periods} {freq.value} periods from {start} end after the year 9999", field="start"
        ) from None
    amortising = periods - grace_periods
    if how is Method.FLAT:
        return _flat_schedule(
            principal, rate, freq, dates, installment_multiple, grace_periods, balloon
        )
    factors = period_rate_fractions(rate, start, dates, dc, freq)
    grace = [round_fraction(principal * f) for f in factors[:grace_periods]]
    if how is Method.ANNUITY:
        amortising_factors = factors[grace_periods:]
        level = annuity_installment(principal, amortising_factors, balloon, installment_multiple)
        if level <= 0 and principal > balloon:
            raise InputError(
                f"{installment_multiple} cents is too coarse: the installment rounds to 0",
                field="installment_multiple",
            )
        payments = grace + [level] * amortising
    else:
        part = installment_multiple * div_round_half_even(
            principal - balloon, amortising * installment_multiple
        )
        payments = grace[:]
        for k in range(amortising):
            balance = principal - k * part
            payments.append(part + round_fraction(max(balance, 0) * factors[grace_periods + k]))
    return schedule_from_payments(principal, factors, dates, payments, settle_last=True)


def _check_inputs(
    principal: int,
    annual_rate: Decimal | Fraction | str,
    periods: int,
    multiple: int,
    grace: int,
    balloon: int,
) -> Fraction:
    """Validate build_schedule's numbers; return the annual rate as an exact fraction."""
    if principal <= 0:
        raise InputError(f"must be > 0, got {format_cents(principal)}", field="principal")
    if periods <= 0:
        raise InputError(f"must be >= 1, got {periods}", field="periods")
    if periods > MAX_PERIODS:
        raise InputError(f"must be at most {MAX_PERIODS}, got {periods}", field="periods")
    try:
        rate = exact_fraction(annual_rate)
    except (ValueError, ArithmeticError, TypeError):
        raise InputError(f"not a rate: {str(annual_rate)[:40]!r}", field="annual_rate") from None
    if rate < 0:
        raise InputError(f"must be >= 0, got {float(rate) * 100:g} %", field="annual_rate")
    if rate > MAX_ANNUAL_RATE:
        raise InputError(
            f"must be at most {MAX_ANNUAL_RATE * 100} %, got {float(rate) * 100:.6g} %",
            field="annual_rate",
        )
    if multiple <= 0:
        raise InputError(f"must be > 0 cents, got {multiple}", field="installment_multiple")
    if not 0 <= grace < periods:
        raise InputError(
            f"must be between 0 and periods - 1 ({periods - 1}), got {grace}", field="grace_periods"
        )
    if not 0 <= balloon <= principal:
        raise InputError(
            f"must be between 0 and the principal, got {format_cents(balloon)}", field="balloon"
        )
    return rate


def _flat_schedule(
    principal: int,
    rate: Fraction,
    freq: Frequency,
    dates: list[date],
    multiple: int,
    grace: int,
    balloon: int,
) -> Schedule:
    """Flat interest: the same interest every period, on the original principal."""
    interest = round_fraction(principal * rate / freq.periods_per_year)
    amortising = len(dates) - grace
    part = div_round_half_even(principal - balloon, amortising)
    level = multiple * div_round_half_even(part + interest, multiple)
    balance = principal
    rows: list[Installment] = []
    for k, due in enumerate(dates):
        if k == len(dates) - 1:
            pay = balance + interest
        elif k < grace:
            pay = interest
        else:
            pay = min(level, balance + interest)
        balance -= pay - interest
        rows.append(Installment(k + 1, due, pay, pay - interest, interest, balance))
    return Schedule(principal=principal, installments=tuple(rows))


def amortise_batch(
    balances: np.ndarray,
    rate_num: np.ndarray,
    rate_den: int,
    payments: np.ndarray,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The balance recursion of :func:`schedule_from_payments` for many loans at once.

    ``balances`` (n,) opening balances in cents; period factors as exact rationals
    ``rate_num[i, t] / rate_den`` (n, T); planned ``payments`` (n, T) cents. Returns int64
    ``(interest, balance, payment)``, each (n, T): interest = round_half_even(balance ×
    rate_num / rate_den), payments capped at balance + interest, the last column settling
    the balance — equal to :func:`schedule_from_payments` to the cent.

    Overflow: everything is int64, so every balance × rate_num must stay below 2**63 ≈ 9.2e18
    (e.g. balances up to 10^12 cents with rate_num up to 9.2e6); this is checked per period
    and raises OverflowError rather than wrapping. Cost is O(n·T), vectorised over loans.
    """
    bal = np.asarray(balances, dtype=np.int64).copy()
    num = np.asarray(rate_num, dtype=np.int64)
    planned = np.asarray(payments, dtype=np.int64)
    n, horizon = planned.shape
    if bal.shape != (n,) or num.shape != (n, horizon):
        raise ValueError(
            f"shapes disagree: balances {bal.shape}, rate_num {num.shape}, payments {planned.shape}"
        )
    if rate_den <= 0 or np.any(num < 0) or np.any(planned < 0) or np.any(bal < 0):
        raise ValueError("rate_den must be > 0; balances, rate_num and payments must be >= 0")
    interest = np.empty((n, horizon), dtype=np.int64)
    balance = np.empty((n, horizon), dtype=np.int64)
    paid = np.empty((n, horizon), dtype=np.int64)
    for t in range(horizon):
        col = num[:, t]
        if n and int(bal.max()) * int(col.max()) > _INT64_MAX:
            raise OverflowError(f"balance × rate_num exceeds int64 in period {t + 1}")
        interest[:, t] = div_round_half_even(bal * col, rate_den)
        due = bal + interest[:, t]
        paid[:, t] = due if t == horizon - 1 else np.minimum(planned[:, t], due)
        bal = due - paid[:, t]
        balance[:, t] = bal
    return interest, balance, paid


def factors_as_ratio(rate_factors: Sequence[Decimal | Fraction]) -> tuple[np.ndarray, int]:
    """Period factors as int64 numerators over one common denominator, for :func:`amortise_batch`.

    Raises OverflowError when the common denominator or a numerator does not fit int64.
    """
    fracs = [exact_fraction(f) for f in rate_factors]
    den = 1
    for f in fracs:
        den = den * f.denominator // np.gcd(den, f.denominator)
    nums = [f.numerator * (den // f.denominator) for f in fracs]
    if den > _INT64_MAX or any(abs(x) > _INT64_MAX for x in nums):
        raise OverflowError("rate factors need a common denominator beyond int64")
    return np.array(nums, dtype=np.int64), int(den)
