"""Read functions the other layers use: one loan (or a chunk of loans) in code units.

Money comes back in integer cents, rates as ``Decimal`` fractions, the seasonality as 12
floats (January first). ``remaining_term`` and ``regular_payment`` describe the contract in
force; ``hardship`` is the reason of the loan's latest open or approved hardship request.
"""

from __future__ import annotations

from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from repayplan.errors import InputError

_CENTS = (
    "outstanding_principal",
    "accrued_interest",
    "arrears_amount",
    "penalty_fees",
    "monthly_income",
    "essential_expenses",
    "other_debt_payments",
    "regular_payment",
)

_SQL = f"""
WITH wanted AS (SELECT loan_id FROM wanted_frame),
hardship AS (
    SELECT loan_id, reason::VARCHAR AS hardship, expected_recovery_date,
           income_factor AS hardship_income_factor
    FROM hardship_requests
    WHERE status IN ('open', 'approved') AND loan_id IN (SELECT loan_id FROM wanted)
    QUALIFY row_number() OVER (PARTITION BY loan_id ORDER BY requested_on DESC, request_id DESC)
        = 1),
score AS (
    SELECT loan_id, monthly_hazard AS base_monthly_hazard FROM risk_scores
    WHERE loan_id IN (SELECT loan_id FROM wanted)
    QUALIFY row_number() OVER (PARTITION BY loan_id ORDER BY scored_at DESC) = 1)
SELECT l.loan_id, l.borrower_id, l.product::VARCHAR AS product, l.frequency::VARCHAR AS frequency,
       l.status::VARCHAR AS status, b.segment::VARCHAR AS segment,
       {", ".join(f"CAST(coalesce({c}, 0) * 100 AS BIGINT) AS {c}" for c in _CENTS)},
       CAST(l.annual_rate_percent AS VARCHAR) AS annual_rate_percent,
       coalesce(l.remaining_term, 0) AS remaining_term,
       coalesce(b.income_seasonality, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
           AS income_seasonality,
       h.hardship, h.expected_recovery_date, h.hardship_income_factor,
       l.days_past_due, l.next_due_date, s.base_monthly_hazard, l.as_of,
       l.restructure_count, l.last_restructure_date
FROM loans l JOIN wanted USING (loan_id)
LEFT JOIN borrowers b USING (borrower_id)
LEFT JOIN hardship h USING (loan_id)
LEFT JOIN score s USING (loan_id)
ORDER BY l.loan_id
"""


_DATES = ("expected_recovery_date", "next_due_date", "as_of", "last_restructure_date")
# Columns that can be missing (besides the dates): object columns holding None there.
_NULLABLE = ("segment", "hardship", "hardship_income_factor", "base_monthly_hazard")


def loans_for_planning(con: duckdb.DuckDBPyConnection, loan_ids: Sequence[str]) -> pd.DataFrame:
    """One row per known loan of ``loan_ids`` (unknown ids are left out), in loan-id order.

    Missing values are None, never NaN or NaT: dates are ``datetime.date`` objects (object
    columns), and ``segment``, ``hardship``, ``hardship_income_factor`` and
    ``base_monthly_hazard`` are object columns holding None where unknown, so
    ``frame.to_dict("records")`` gives plain Python values a ``LoanCase`` accepts.

    Columns: ``loan_id``, ``borrower_id``, ``product``, ``frequency``, ``status``,
    ``segment``; cents (int) ``outstanding_principal``, ``accrued_interest``,
    ``arrears_amount``, ``penalty_fees``, ``monthly_income``, ``essential_expenses``,
    ``other_debt_payments``, ``regular_payment``; ``annual_rate`` (Decimal fraction),
    ``remaining_term`` (periods), ``income_seasonality`` (list of 12 floats), ``hardship``
    (reason or None), ``expected_recovery_date``, ``hardship_income_factor``,
    ``days_past_due``, ``next_due_date``, ``base_monthly_hazard`` (latest risk score or
    None), ``as_of``, ``restructure_count``, ``last_restructure_date``.
    """
    con.register("wanted_frame", pa.table({"loan_id": pa.array(list(loan_ids), pa.string())}))
    try:
        frame = con.execute(_SQL).df()
    finally:
        con.unregister("wanted_frame")
    frame["annual_rate"] = [Decimal(p) / 100 for p in frame.pop("annual_rate_percent")]
    frame["income_seasonality"] = [list(map(float, s)) for s in frame["income_seasonality"]]
    for name in _DATES:
        dates = frame[name]
        frame[name] = pd.Series(dates.dt.date, index=frame.index, dtype=object).where(
            dates.notna(), None
        )
    for name in _NULLABLE:
        values = frame[name]
        frame[name] = values.astype(object).where(values.notna(), None)
    return frame


def loan_for_planning(con: duckdb.DuckDBPyConnection, loan_id: str) -> dict[str, Any]:
    """The columns of :func:`loans_for_planning` for one loan, as plain Python values
    (dates as ``datetime.date``, missing values as None); InputError if the loan is unknown."""
    frame = loans_for_planning(con, [loan_id])
    if frame.empty:
        raise InputError("no such loan in the portfolio", field="loan_id", record=f"loan {loan_id}")
    return frame.to_dict("records")[0]
