"""APR (Reg Z Appendix J), IRR-method rates (PBoC 2021 No. 3), IRR, NPV and XIRR."""

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from repayplan.errors import InputError
from repayplan.finance import (
    add_months,
    apr,
    apr_actuarial,
    build_schedule,
    irr,
    irr_annualised,
    npv,
    xirr,
)


def monthly(first: date, n: int, step: int = 1) -> list[date]:
    return [add_months(first, step * k) for k in range(n)]


def every(first: date, n: int, days: int) -> list[date]:
    return [first + timedelta(days=days * k) for k in range(n)]


def semimonthly(first: date, n: int) -> list[date]:
    out, d = [], first
    while len(out) < n:
        out.append(d)
        d = date(d.year, d.month, 16) if d.day == 1 else add_months(date(d.year, d.month, 1), 1)
    return out


def flows(advance: tuple[date, int], *payments: tuple[list[date], int]):
    rows = [(advance[0], -advance[1])]
    for dates, amount in payments:
        rows += [(d, amount) for d in dates]
    return rows


# 12 CFR 1026 (Regulation Z), Appendix J, paragraph (c) "Examples for the actuarial method";
# each expected APR is the one printed there (rounded to 2 decimals of a percent), with the
# unit-period the text uses. Amounts in cents.
APPENDIX_J = [
    # (c)(1)(i) monthly, regular first period: $5,000 on 1/10/78, 24 × $230 from 2/10/78.
    (
        "c1i",
        flows((date(1978, 1, 10), 500_000), (monthly(date(1978, 2, 10), 24), 23_000)),
        "9.69",
        "month",
    ),
    # (c)(1)(ii) monthly, long first period: $6,000 on 2/10/78, 36 × $200 from 4/1/78.
    (
        "c1ii",
        flows((date(1978, 2, 10), 600_000), (monthly(date(1978, 4, 1), 36), 20_000)),
        "11.82",
        "month",
    ),
    # (c)(1)(iii) semimonthly, short first period: $5,000 on 2/23/78, 24 × $219.17 from 3/1/78.
    (
        "c1iii",
        flows((date(1978, 2, 23), 500_000), (semimonthly(date(1978, 3, 1), 24), 21_917)),
        "10.34",
        "semimonth",
    ),
    # (c)(1)(iv) quarterly, long first period: $10,000 on 5/23/78, 40 × $385 from 10/1/78.
    (
        "c1iv",
        flows((date(1978, 5, 23), 1_000_000), (monthly(date(1978, 10, 1), 40, 3), 38_500)),
        "8.97",
        "3 months",
    ),
    # (c)(1)(v) weekly, long first period: $500 on 3/20/78, 30 × $17.60 from 4/21/78.
    (
        "c1v",
        flows((date(1978, 3, 20), 50_000), (every(date(1978, 4, 21), 30, 7), 1_760)),
        "14.96",
        "week",
    ),
    # (c)(2)(i) odd first payment: $5,000 on 1/10/78, $250 on 2/10/78, 23 × $230 from 3/10/78.
    (
        "c2i",
        flows(
            (date(1978, 1, 10), 500_000),
            ([date(1978, 2, 10)], 25_000),
            (monthly(date(1978, 3, 10), 23), 23_000),
        ),
        "10.08",
        "month",
    ),
    # (c)(2)(ii) every 4 weeks: $400 on 3/18/78, $39.50 on 4/20/78, 11 × $38.31 from 5/18/78.
    (
        "c2ii",
        flows(
            (date(1978, 3, 18), 40_000),
            ([date(1978, 4, 20)], 3_950),
            (every(date(1978, 5, 18), 11, 28), 3_831),
        ),
        "28.50",
        "4 weeks",
    ),
    # (c)(3)(i) odd final payment: $5,000 on 1/10/78, 23 × $230 from 2/10/78, then $280.
    (
        "c3i",
        flows(
            (date(1978, 1, 10), 500_000),
            (monthly(date(1978, 2, 10), 23), 23_000),
            ([date(1980, 1, 10)], 28_000),
        ),
        "10.50",
        "month",
    ),
    # (c)(3)(ii) every 2 weeks: $200 on 4/3/78, 19 × $9.50 from 4/11/78, then $30.
    (
        "c3ii",
        flows(
            (date(1978, 4, 3), 20_000),
            (every(date(1978, 4, 11), 19, 14), 950),
            ([date(1978, 4, 11) + timedelta(days=14 * 19)], 3_000),
        ),
        "12.22",
        "2 weeks",
    ),
    # (c)(4)(i) odd first and final payments: $5,000; $250; 22 × $230; $280.
    (
        "c4i",
        flows(
            (date(1978, 1, 10), 500_000),
            ([date(1978, 2, 10)], 25_000),
            (monthly(date(1978, 3, 10), 22), 23_000),
            ([date(1980, 1, 10)], 28_000),
        ),
        "10.90",
        "month",
    ),
    # (c)(4)(ii) every 2 months: $8,000 on 1/10/78; $449.36 on 3/1/78; 18 × $465; $200.
    (
        "c4ii",
        flows(
            (date(1978, 1, 10), 800_000),
            ([date(1978, 3, 1)], 44_936),
            (monthly(date(1978, 5, 1), 18, 2), 46_500),
            ([date(1981, 5, 1)], 20_000),
        ),
        "7.30",
        "2 months",
    ),
    # (c)(5)(i) single advance, single payment, term in days: $1,000 on 1/3/78, $1,080 on
    # 9/15/78 (255 days): i = 8 % per term, APR = 8 % × 365/255 = 11.45 %.
    ("c5i", flows((date(1978, 1, 3), 100_000), ([date(1978, 9, 15)], 108_000)), "11.45", "term"),
]


@pytest.mark.parametrize(
    ("case", "cash", "expected", "unit"), APPENDIX_J, ids=[c[0] for c in APPENDIX_J]
)
def test_appendix_j_examples(case, cash, expected, unit):
    result = apr_actuarial(cash)
    assert result.unit_period == unit
    assert round(result.apr * 100, 2) == Decimal(expected)


def test_single_payment_of_whole_months_uses_12_over_months():
    # 6 months to the day: unit-period = the term, 2 per year; i = 5 % → APR 10 %.
    result = apr_actuarial([(date(2024, 1, 15), -100_000), (date(2024, 7, 15), 105_000)])
    assert result.unit_period == "term" and result.unit_periods_per_year == 2
    assert result.apr == Decimal("0.1")


def test_month_end_payments_are_whole_months():
    # Payments on the last day of each month: months count last day to last day
    # (Appendix J (b)(3)(iv)), so the APR is the plain monthly rate × 12.
    s = build_schedule(1_000_000, Decimal("0.12"), 12, start=date(2024, 1, 31))
    result = apr_actuarial(s.cash_flows(date(2024, 1, 31)))
    assert result.unit_period == "month"
    assert float(result.apr) == pytest.approx(0.12, abs=2e-5)


def test_apr_input_errors_name_the_field():
    with pytest.raises(InputError, match="no payment") as err:
        apr_actuarial([(date(2024, 1, 1), -100)])
    assert err.value.field == "amount"
    with pytest.raises(InputError, match="before the first advance") as err:
        apr_actuarial([(date(2024, 1, 1), 50), (date(2024, 2, 1), -100), (date(2024, 3, 1), 60)])
    assert err.value.field == "date"
    with pytest.raises(InputError, match="method"):
        apr([(date(2024, 1, 1), -100), (date(2024, 2, 1), 101)], method="simple")


def test_irr_method_equal_installments_10000_over_12_months():
    # PBoC announcement No. 3 (2021) rule: IRR per period × 12 is the annualised rate; a
    # 10,000 yuan loan repaid in 12 equal monthly installments of 888.49 (= 10,000 at 1 % a
    # month, P·r/(1−(1+r)^−12)) therefore discloses 12.00 %; effective (1.01)^12 − 1 = 12.68 %.
    result = irr_annualised([-1_000_000] + [88_849] * 12, periods_per_year=12)
    assert round(result.nominal_annual_rate * 100, 2) == Decimal("12.00")
    assert round(result.effective_annual_rate * 100, 2) == Decimal("12.68")
    assert result.periods_per_year == 12


def test_irr_method_counts_fees_as_cost():
    # The PBoC rule counts every fee: 10,000 in 12 installments of principal 833.33 plus a
    # "0.6 % per month" fee of 60 has a nominal fee rate of 7.2 % but an IRR-method rate of
    # 13.03 % (periodic IRR 1.0862 %), the figure such disclosures must show.
    amounts = [-1_000_000] + [83_333 + 6_000] * 11 + [83_337 + 6_000]
    result = irr_annualised(amounts, periods_per_year=12)
    assert round(result.nominal_annual_rate * 100, 2) == Decimal("13.03")
    # A fee deducted at drawdown is a flow on day 0: it nets off the advance.
    dated = [(date(2024, 1, 1), -1_000_000), (date(2024, 1, 1), 10_000)] + [
        (d, 88_849) for d in monthly(date(2024, 2, 1), 12)
    ]
    with_fee = irr_annualised(dated)
    assert with_fee.periods_per_year == 12
    assert with_fee.nominal_annual_rate > Decimal("0.1385")


def test_irr_dated_flows_off_cycle_are_refused():
    dated = [(date(2024, 1, 1), -1000), (date(2024, 2, 1), 500), (date(2024, 3, 20), 520)]
    with pytest.raises(InputError, match="xirr"):
        irr_annualised(dated, periods_per_year=12)


def test_excel_reference_values():
    # Microsoft Support, IRR function example: -70,000 then 12,000 … 26,000 → 8.66 %;
    # the first four years → -2.12 %.
    cash = [-70_000, 12_000, 15_000, 18_000, 21_000, 26_000]
    assert irr(cash) == pytest.approx(0.086631, abs=1e-6)
    assert irr(cash[:5]) == pytest.approx(-0.021245, abs=1e-6)
    # Microsoft Support, NPV function example 1: 10 %, -10,000 (end of year 1), 3,000,
    # 4,200, 6,800 → 1,188.44.
    assert npv(0.10, [-10_000, 3_000, 4_200, 6_800]) == pytest.approx(1188.44, abs=0.005)
    assert npv(Decimal("0.10"), [100], start_period=0) == 100
    # Microsoft Support, XIRR function example: → 0.373362535 (37.34 %).
    x = xirr(
        [
            (date(2008, 1, 1), -10_000),
            (date(2008, 3, 1), 2_750),
            (date(2008, 10, 30), 4_250),
            (date(2009, 2, 15), 3_250),
            (date(2009, 4, 1), 2_750),
        ]
    )
    assert x == pytest.approx(0.373362535, abs=1e-8)


def test_irr_without_sign_change_is_an_input_error():
    with pytest.raises(InputError):
        irr([100, 100])


plain_annuities = st.fixed_dictionaries(
    {
        "principal": st.integers(100_000, 100_000_000),
        "rate_bp": st.integers(0, 3_600),
        "periods": st.integers(2, 120),
        "start": st.dates(date(2000, 1, 1), date(2040, 12, 28)),
    }
)


@settings(max_examples=60, deadline=None)
@given(plain_annuities)
def test_apr_and_irr_of_a_plain_annuity_equal_its_rate(loan):
    """Monthly 30/360 annuity, no odd period: APR (Appendix J) and the IRR-method nominal rate
    both return the contract rate, up to the cent rounding of the installments."""
    rate = Decimal(loan["rate_bp"]) / 10_000
    s = build_schedule(loan["principal"], rate, loan["periods"], "monthly", loan["start"])
    cash = s.cash_flows(loan["start"])
    # Rounding each payment by ≤ ½ cent moves the rate by at most this much.
    tolerance = 12 * loan["periods"] / s.principal + 1e-9
    result = apr_actuarial(cash)
    assert result.unit_period == "month"
    assert float(result.apr) == pytest.approx(float(rate), abs=tolerance)
    nominal = irr_annualised(cash).nominal_annual_rate
    assert float(nominal) == pytest.approx(float(rate), abs=tolerance)
    assert float(irr_annualised([-s.principal, *s.payments], 12).periodic_rate) == (
        pytest.approx(float(rate) / 12, abs=tolerance / 12)
    )
