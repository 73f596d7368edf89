from __future__ import annotations

from datetime import date
from decimal import ROUND_HALF_EVEN, Decimal

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from repayplan.store.contract import add_months, half_even_div, schedule_rows


@settings(max_examples=200, deadline=None)
@given(st.integers(0, 10**15), st.integers(1, 10**8))
def test_half_even_div_matches_decimal(num, den):
    expected = int((Decimal(num) / Decimal(den)).quantize(Decimal(1), rounding=ROUND_HALF_EVEN))
    assert int(half_even_div(np.array([num]), den)[0]) == expected


def test_month_end_roll_keeps_the_anchor():
    start = np.array(["2024-01-31"] * 3, dtype="datetime64[D]")
    got = add_months(start, np.array([1, 2, 13]), np.array([31, 31, 31]))
    assert got.tolist() == [date(2024, 2, 29), date(2024, 3, 31), date(2025, 2, 28)]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(100, 10**9), st.integers(0, 360_000), st.sampled_from([1, 3, 12]),
                  st.integers(1, 40)),
        min_size=1, max_size=8,
    )
)  # fmt: skip
def test_schedules_reconcile_to_the_cent(loans):
    bal, rate, months, periods = (np.array(c, dtype=np.int64) for c in zip(*loans, strict=True))
    start = np.full(len(loans), np.datetime64("2025-01-31"))
    rows = schedule_rows(bal, rate, months, periods, start, np.full(len(loans), 31))
    for i in range(len(loans)):
        mine = rows["loan"] == i
        assert mine.sum() == periods[i]
        assert rows["principal"][mine].sum() == bal[i]
        assert (rows["payment"][mine] == rows["principal"][mine] + rows["interest"][mine]).all()
        assert rows["balance"][mine][-1] == 0
        assert (rows["balance"][mine] >= 0).all()
