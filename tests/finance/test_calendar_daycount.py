"""Calendars (month-end roll, cycles) and day counts, including Feb 29 and month ends."""

from datetime import date, timedelta
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repayplan.errors import InputError
from repayplan.finance import (
    DayCount,
    Frequency,
    add_months,
    day_count_fraction,
    due_dates,
    months_between,
    period_rate_factors,
    period_rate_fractions,
    year_fraction,
)


def test_month_end_roll_keeps_the_anchor():
    jan31 = date(2024, 1, 31)
    assert add_months(jan31, 1) == date(2024, 2, 29)  # leap year
    assert add_months(jan31, 2) == date(2024, 3, 31)  # anchor kept, not Mar 29
    assert add_months(date(2023, 1, 31), 1) == date(2023, 2, 28)
    assert add_months(date(2024, 2, 29), 12) == date(2025, 2, 28)
    assert add_months(date(2024, 3, 31), -1) == date(2024, 2, 29)
    assert add_months(date(2024, 2, 29), 1, anchor_day=31) == date(2024, 3, 31)


def test_monthly_due_dates_roll_from_jan_31():
    assert due_dates(date(2024, 1, 31), 4, "monthly") == [
        date(2024, 2, 29),
        date(2024, 3, 31),
        date(2024, 4, 30),
        date(2024, 5, 31),
    ]


@pytest.mark.parametrize(
    ("freq", "expected"),
    [
        ("weekly", [date(2024, 1, 8), date(2024, 1, 15)]),
        ("biweekly", [date(2024, 1, 15), date(2024, 1, 29)]),
        ("bimonthly", [date(2024, 3, 1), date(2024, 5, 1)]),
        ("quarterly", [date(2024, 4, 1), date(2024, 7, 1)]),
        ("semiannual", [date(2024, 7, 1), date(2025, 1, 1)]),
        ("yearly", [date(2025, 1, 1), date(2026, 1, 1)]),
        ("semimonthly", [date(2024, 1, 16), date(2024, 2, 1)]),
    ],
)
def test_due_dates_per_cycle(freq, expected):
    assert due_dates(date(2024, 1, 1), 2, freq) == expected


def test_semimonthly_first_date_is_at_least_half_a_month_away():
    # Jan 20 + half a month = Feb 5 → the next 1st/16th is Feb 16.
    assert due_dates(date(2024, 1, 20), 3, "semimonthly") == [
        date(2024, 2, 16),
        date(2024, 3, 1),
        date(2024, 3, 16),
    ]
    assert due_dates(date(2024, 2, 16), 1, Frequency.SEMIMONTHLY) == [date(2024, 3, 1)]


def test_frequency_properties_and_parse():
    assert [f.periods_per_year for f in Frequency] == [52, 26, 24, 12, 6, 4, 2, 1]
    assert Frequency.QUARTERLY.months == 3
    assert Frequency.WEEKLY.months is None
    assert Frequency.parse("Monthly") is Frequency.MONTHLY
    with pytest.raises(InputError, match="frequency"):
        Frequency.parse("fortnightly-ish")


def test_day_count_parse_aliases_and_errors():
    assert DayCount.parse("ACT/365") is DayCount.ACTUAL_365
    assert DayCount.parse("act/act") is DayCount.ACTUAL_ACTUAL
    with pytest.raises(InputError, match="day_count"):
        DayCount.parse("30/365")


def test_thirty_360_month_ends():
    # US 30/360 (bond basis): the 31st counts as the 30th; February is not adjusted.
    assert year_fraction(date(2024, 1, 31), date(2024, 3, 31), "30/360") == Fraction(60, 360)
    assert year_fraction(date(2024, 1, 30), date(2024, 2, 29), "30/360") == Fraction(29, 360)
    assert year_fraction(date(2024, 2, 15), date(2024, 3, 15), "30/360") == Fraction(30, 360)


def test_actual_365_counts_feb_29():
    assert year_fraction(date(2024, 2, 1), date(2024, 3, 1), "actual/365") == Fraction(29, 365)
    assert year_fraction(date(2023, 2, 1), date(2023, 3, 1), "actual/365") == Fraction(28, 365)


def test_actual_actual_isda_example():
    # ISDA "EMU and market conventions" (1998), actual/actual (ISDA) example:
    # 1 Nov 2003 → 1 May 2004 = 61/365 + 121/366 = 0.497724380567...
    frac = year_fraction(date(2003, 11, 1), date(2004, 5, 1), "actual/actual")
    assert frac == Fraction(61, 365) + Fraction(121, 366)
    assert float(day_count_fraction(date(2003, 11, 1), date(2004, 5, 1), "act/act")) == (
        pytest.approx(0.497724380567, abs=1e-12)
    )


def test_monthly_30_360_factor_is_annual_over_12_even_across_month_ends():
    dates = due_dates(date(2024, 1, 31), 3, "monthly")  # Feb 29, Mar 31, Apr 30
    assert period_rate_fractions("0.12", date(2024, 1, 31), dates) == [Fraction(1, 100)] * 3
    quarterly = due_dates(date(2024, 1, 1), 2, "quarterly")
    assert (
        period_rate_fractions("0.12", date(2024, 1, 1), quarterly, "30/360", "quarterly")
        == [Fraction(3, 100)] * 2
    )


def test_odd_first_period_uses_the_30_360_fraction():
    factors = period_rate_fractions("0.12", date(2024, 1, 10), [date(2024, 3, 1)], "30/360")
    assert factors == [Fraction(12, 100) * Fraction(51, 360)]


def test_actual_365_factor_and_rate_factor_exactness():
    dates = [date(2024, 2, 1), date(2024, 3, 1)]
    factors = period_rate_factors("0.0365", date(2024, 1, 1), dates, "actual/365")
    assert [f.exact for f in factors] == [Fraction(31, 10000), Fraction(29, 10000)]
    assert float(factors[0]) == pytest.approx(0.0031)


def test_due_dates_must_not_go_backwards():
    with pytest.raises(InputError, match="due_dates"):
        period_rate_fractions("0.1", date(2024, 2, 1), [date(2024, 1, 1)])


@settings(max_examples=150, deadline=None)
@given(st.dates(date(1990, 1, 1), date(2090, 12, 31)), st.integers(0, 400))
def test_months_between_inverts_add_months(d, k):
    assert months_between(d, add_months(d, k)) == k


@settings(max_examples=100, deadline=None)
@given(st.dates(date(1990, 1, 1), date(2090, 12, 31)), st.integers(1, 800))
def test_actual_actual_is_additive_and_365_is_days(d, days):
    end = d + timedelta(days=days)
    mid = d + timedelta(days=days // 2)
    assert year_fraction(d, end, "actual/actual") == year_fraction(
        d, mid, "actual/actual"
    ) + year_fraction(mid, end, "actual/actual")
    assert year_fraction(d, end, "actual/365") == Fraction(days, 365)
