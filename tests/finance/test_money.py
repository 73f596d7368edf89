"""Money: cents at the boundary, half-even rounding, exact integer division."""

from decimal import Decimal
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repayplan.errors import InputError
from repayplan.finance import cents_to_decimal, div_round_half_even, round_half_even, to_cents
from repayplan.finance.money import format_cents


@pytest.mark.parametrize(
    ("amount", "cents"),
    [
        ("12.345", 1234),  # tie → even
        ("12.355", 1236),
        ("0.125", 12),
        ("-0.125", -12),
        (12, 1200),
        (0.1, 10),  # the float's repr "0.1", not its binary value
        (Decimal("99.995"), 10000),
        ("1e3", 100000),
    ],
)
def test_to_cents(amount, cents):
    assert to_cents(amount) == cents


@pytest.mark.parametrize("bad", ["abc", "", "NaN", "inf", True])
def test_to_cents_rejects_non_amounts_naming_the_field(bad):
    with pytest.raises(InputError, match="principal"):
        to_cents(bad, field="principal")


def test_cents_to_decimal_and_format():
    assert cents_to_decimal(1234) == Decimal("12.34")
    assert str(cents_to_decimal(1200)) == "12.00"
    assert format_cents(1667) == "16.67"
    assert format_cents(-5) == "-0.05"


def test_round_half_even_quanta():
    assert round_half_even(Decimal("2.675")) == Decimal("2.68")
    assert round_half_even(Decimal("2.665")) == Decimal("2.66")
    assert round_half_even(Decimal("12.5"), Decimal("1")) == Decimal("12")
    assert round_half_even(Decimal("0.075"), Decimal("0.05")) == Decimal("0.10")  # 1.5 steps → 2


@pytest.mark.parametrize(
    ("num", "den", "q"),
    [(5, 2, 2), (7, 2, 4), (-5, 2, -2), (-7, 2, -4), (1, 3, 0), (2, 3, 1), (5, -2, -2)],
)
def test_div_round_half_even_ints(num, den, q):
    assert div_round_half_even(num, den) == q


def test_div_round_half_even_zero_denominator():
    with pytest.raises(ZeroDivisionError):
        div_round_half_even(1, 0)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(-(10**15), 10**15), min_size=1, max_size=30),
    st.integers(1, 10**6),
)
def test_div_round_half_even_matches_exact_rounding_vectorised(nums, den):
    expected = [round(Fraction(n, den)) for n in nums]  # Python's round is half-even
    assert [div_round_half_even(n, den) for n in nums] == expected
    got = div_round_half_even(np.array(nums, dtype=np.int64), den)
    assert got.dtype == np.int64
    assert got.tolist() == expected
