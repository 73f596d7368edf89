"""Money as integer cents, and the one rounding rule used everywhere: half-even.

Amounts enter as currency units (``"12.34"``, ``Decimal``, ``int`` or ``float``) and become
integer cents at the boundary; everything inside works on cents, and rates multiply cents
through exact rational arithmetic (:func:`div_round_half_even`), so no binary float ever
decides a rounding.
"""

from __future__ import annotations

from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from fractions import Fraction
from typing import TypeVar, overload

import numpy as np

from repayplan.errors import InputError

CENT = Decimal("0.01")
#: Largest amount accepted anywhere, currency units (a trillion: far above any loan, and
#: small enough that cents stay exact in Decimal and int64 arithmetic).
MAX_UNITS = Decimal(10) ** 12

_IntArray = TypeVar("_IntArray", bound=np.ndarray)


def to_cents(
    amount: Decimal | str | int | float, *, field: str = "amount", exact: bool = False
) -> int:
    """Convert an amount in currency units to integer cents, rounding half-even.

    ``"12.345"`` → 1234, ``12`` → 1200, ``0.125`` → 12. A float goes through its shortest
    ``repr`` (``0.1`` is read as ``"0.1"``), never through its binary value. With ``exact``
    (what a person types), more than two decimals is refused instead of rounded. Raises
    :class:`InputError` naming ``field`` for text that is not a finite number, or whose size
    exceeds :data:`MAX_UNITS`.
    """
    if isinstance(amount, bool):
        raise InputError(f"not an amount: {amount!r}", field=field)
    if isinstance(amount, int):
        if abs(amount) > MAX_UNITS:
            raise InputError(f"too large (at most {MAX_UNITS:,.0f}): {amount}", field=field)
        return amount * 100
    try:
        text = repr(amount) if isinstance(amount, float) else amount
        value = Decimal(text.strip() if isinstance(text, str) else text)
    except (InvalidOperation, TypeError, ValueError):
        raise InputError(f"not an amount: {str(amount)[:40]!r}", field=field) from None
    if not value.is_finite():
        raise InputError(f"not a finite amount: {str(amount)[:40]!r}", field=field)
    if abs(value) > MAX_UNITS:
        raise InputError(f"too large (at most {MAX_UNITS:,.0f}): {value:.3g}", field=field)
    if exact and value != value.quantize(CENT, rounding=ROUND_HALF_EVEN):
        raise InputError(f"more than 2 decimals: {str(amount)[:40]}", field=field)
    return int(value.scaleb(2).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def cents_to_decimal(cents: int) -> Decimal:
    """Integer cents as a two-decimal ``Decimal`` in currency units: 1234 → ``Decimal("12.34")``."""
    return Decimal(int(cents)).scaleb(-2)


def format_cents(cents: int) -> str:
    """Integer cents as text with exactly two decimals: 1667 → ``"16.67"``, -5 → ``"-0.05"``."""
    return f"{cents_to_decimal(cents):.2f}"


def round_half_even(x: Decimal, quantum: Decimal = CENT) -> Decimal:
    """Round ``x`` to a multiple of ``quantum`` (0.01 by default), ties to even.

    Uses ``Decimal.quantize`` for powers of ten; any other quantum (0.05, 25) is handled as
    ``quantum × round(x / quantum)``.
    """
    if quantum.as_tuple().digits == (1,):
        return x.quantize(quantum, rounding=ROUND_HALF_EVEN)
    steps = (x / quantum).quantize(Decimal(1), rounding=ROUND_HALF_EVEN)
    return steps * quantum


@overload
def div_round_half_even(num: int, den: int) -> int: ...
@overload
def div_round_half_even(num: _IntArray, den: int | _IntArray) -> _IntArray: ...
def div_round_half_even(num, den):
    """``num / den`` rounded half-even to an integer, computed exactly in integers.

    Works on Python ints (arbitrary size) and, element-wise, on numpy integer arrays
    (vectorised; the caller keeps ``num`` inside the dtype's range). ``den`` must be
    non-zero; a negative ``den`` is allowed.
    """
    if isinstance(num, np.ndarray) or isinstance(den, np.ndarray):
        num = np.asarray(num)
        den = np.asarray(den)
        if np.any(den == 0):
            raise ZeroDivisionError("div_round_half_even: zero denominator")
        sign = np.where(den < 0, -1, 1).astype(num.dtype)
        num, den = num * sign, den * sign
        q, r = np.divmod(num, den)  # floor division: 0 <= r < den
        twice = 2 * r
        up = (twice > den) | ((twice == den) & (q % 2 == 1))
        return q + up.astype(q.dtype)
    num, den = int(num), int(den)
    if den == 0:
        raise ZeroDivisionError("div_round_half_even: zero denominator")
    if den < 0:
        num, den = -num, -den
    q, r = divmod(num, den)
    twice = 2 * r
    if twice > den or (twice == den and q % 2 == 1):
        q += 1
    return q


def round_fraction(x: Fraction) -> int:
    """An exact rational rounded half-even to an integer (e.g. interest in cents)."""
    return div_round_half_even(x.numerator, x.denominator)
