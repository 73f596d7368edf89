"""The per-due-date payment record (``loan_month_truth``) of the imported loans an import
touched: :func:`payment_record` (pure numpy) and :func:`derive_payment_record` (in chunks).
"""

from __future__ import annotations

from decimal import Decimal

import duckdb
import numpy as np
import pyarrow as pa

from repayplan.store.importer.columns import MONTHS_CASE
from repayplan.store.importer.frames import append

#: An installment counts as paid when the payments received cover it to within this many
#: currency units (rounding by the lender's system must not look like a missed payment).
MISS_TOLERANCE = Decimal("1.00")
#: Loans whose payment record is derived and inserted at a time.
RECORD_CHUNK = 20_000
_DAY_BITS = 22  # payment keys: loan × 2²² + days since 1970 + 2²¹ (dates 1970 ± 5,700 years)


def derive_payment_record(con: duckdb.DuckDBPyConnection) -> None:
    """Write the per-due-date payment record (``loan_month_truth``) of the imported loans
    this import touched (``source = 'import'``; other loans keep theirs), from their
    contract installments and all their payments up to their ``as_of``, in chunks of
    :data:`RECORD_CHUNK` loans (see :func:`payment_record` for the rules).

    ``payment_to_income`` is the installment per month ÷ (usual monthly income × that
    month's seasonal factor), NaN without an income. The demo's unobserved truth is unknown
    for imported loans: ``shock`` is false and ``true_hazard`` NaN.
    """
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE record_loans AS
        SELECT CAST(row_number() OVER (ORDER BY loan_id) - 1 AS INTEGER) AS k, loan_id, as_of,
            status = 'closed' AS closed, CASE frequency {MONTHS_CASE} END AS months,
            CAST(monthly_income AS DOUBLE) AS income,
            coalesce(income_seasonality, list_resize([1.0], 12, 1.0)::DOUBLE[12]) AS season
        FROM loans l JOIN (SELECT DISTINCT loan_id FROM touched) USING (loan_id)
        LEFT JOIN borrowers b USING (borrower_id)
        WHERE l.source = 'import'"""
    )
    con.execute("DELETE FROM loan_month_truth WHERE loan_id IN (SELECT loan_id FROM record_loans)")
    # Sorted by loan (only) so that each chunk's read skips the other row groups.
    con.execute("SET preserve_insertion_order = true")
    try:
        con.execute(
            """CREATE OR REPLACE TEMP TABLE record_due AS
            SELECT r.k, c.due_date, CAST(c.payment * 100 AS BIGINT) AS cents
            FROM contract_installments c JOIN record_loans r USING (loan_id)
            WHERE c.due_date <= r.as_of ORDER BY r.k"""
        )
        con.execute(
            """CREATE OR REPLACE TEMP TABLE record_paid AS
            SELECT r.k, p.payment_date, CAST(p.amount * 100 AS BIGINT) AS cents
            FROM payments p JOIN record_loans r USING (loan_id)
            WHERE p.payment_date <= r.as_of ORDER BY r.k"""
        )
    finally:
        con.execute("SET preserve_insertion_order = false")
    total = con.execute("SELECT count(*) FROM record_loans").fetchall()[0][0]
    tolerance = int(MISS_TOLERANCE * 100)
    for first in range(0, total, RECORD_CHUNK):
        bounds = [first, first + RECORD_CHUNK]
        loans = con.sql(
            "SELECT * FROM record_loans WHERE k >= $1 AND k < $2 ORDER BY k", params=bounds
        ).to_arrow_table()
        due = con.execute(
            "SELECT k, due_date, cents FROM record_due WHERE k >= ? AND k < ? ORDER BY k, due_date",
            bounds,
        ).fetchnumpy()
        paid = con.execute(
            "SELECT k, payment_date, cents FROM record_paid WHERE k >= ? AND k < ? "
            "ORDER BY k, payment_date",
            bounds,
        ).fetchnumpy()
        rec = payment_record(
            due["k"].astype(np.int64) - first,
            due["due_date"].astype("datetime64[D]"),
            due["cents"].astype(np.int64),
            paid["k"].astype(np.int64) - first,
            paid["payment_date"].astype("datetime64[D]"),
            paid["cents"].astype(np.int64),
            loans["as_of"].to_numpy().astype("datetime64[D]"),
            loans["closed"].to_numpy(zero_copy_only=False).astype(bool),
            tolerance,
        )
        loan = rec["loan"]
        due_date = rec["due_date"]
        months = loans["months"].to_numpy(zero_copy_only=False).astype(np.float64)[loan]
        income = loans["income"].to_numpy(zero_copy_only=False).astype(np.float64)[loan]
        season = loans["season"].combine_chunks().flatten().to_numpy().reshape(-1, 12)
        calendar_month = due_date.astype("datetime64[M]").astype(np.int64) % 12
        base = income * season[loan, calendar_month]
        with np.errstate(divide="ignore", invalid="ignore"):
            pti = np.where(base > 0, rec["cents"] / 100 / months / base, np.nan)
        frame = pa.table(
            {
                "loan_id": loans["loan_id"].take(pa.array(loan)),
                "month": due_date.astype("datetime64[M]").astype("datetime64[D]"),
                "due_date": due_date,
                "payment_to_income": pti,
                "shock": np.zeros(loan.size, dtype=bool),
                "arrears_installments": rec["arrears"].astype(np.int32),
                "true_hazard": np.full(loan.size, np.nan),
                "missed": rec["missed"],
            }
        )
        append(con, frame, "loan_month_truth")
    for table in ("record_loans", "record_due", "record_paid"):
        con.execute(f"DROP TABLE {table}")


def payment_record(
    due_loan: np.ndarray,
    due_date: np.ndarray,
    due_cents: np.ndarray,
    paid_loan: np.ndarray,
    paid_date: np.ndarray,
    paid_cents: np.ndarray,
    as_of: np.ndarray,
    closed: np.ndarray,
    tolerance_cents: int = 100,
) -> dict[str, np.ndarray]:
    """The payment record of a set of loans: per installment due (up to each loan's as_of),
    the installments unpaid going in and whether it was missed.

    Inputs: installments ``due_loan`` (index into ``as_of`` / ``closed``), ``due_date``
    (``datetime64[D]``), ``due_cents``, sorted by loan then date, and no later than the
    loan's ``as_of``; payments received per loan and day ``paid_loan``, ``paid_date``,
    ``paid_cents`` (sorted the same way, several on one day allowed, none after the loan's
    ``as_of``).

    Payments settle installments oldest first. For installment ``k`` (due ``d_k``), what was
    received up to the day before ``d_{k+1}`` (up to ``as_of`` for the latest one) covers the
    first ``j`` installments whose cumulative amount it reaches to within
    ``tolerance_cents``; ``u_k = max(k − j, 0)`` installments are then unpaid.
    ``arrears = u_{k−1}`` (unpaid going in) and ``missed = u_k > u_{k−1}``: paying only the
    current installment while in arrears is not a new miss, and paying the arrears clears
    them (a cure). A ``closed`` loan's record stops at its last payment (a prepaid loan has
    no installments after it; one with no payment has none).

    Returns the kept installments' ``loan``, ``due_date``, ``cents``, and their ``arrears``
    (int64) and ``missed`` (bool), in input order.
    """
    due_loan = np.asarray(due_loan, dtype=np.int64)
    paid_loan = np.asarray(paid_loan, dtype=np.int64)
    due_date = np.asarray(due_date, dtype="datetime64[D]")
    paid_date = np.asarray(paid_date, dtype="datetime64[D]")
    due_cents = np.asarray(due_cents, dtype=np.int64)
    paid_cents = np.asarray(paid_cents, dtype=np.int64)
    n = len(as_of)
    # A closed loan stops at its last payment.
    last_pay = np.full(n, np.datetime64("NaT"), dtype="datetime64[D]")
    if paid_loan.size:
        last = np.r_[paid_loan[1:] != paid_loan[:-1], True]
        last_pay[paid_loan[last]] = paid_date[last]
    keep = ~np.asarray(closed, dtype=bool)[due_loan] | (due_date <= last_pay[due_loan])
    loan, date, cents = due_loan[keep], due_date[keep], due_cents[keep]
    if loan.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return {"loan": empty, "due_date": date, "cents": empty, "arrears": empty,
                "missed": np.zeros(0, dtype=bool)}  # fmt: skip
    first = np.r_[True, loan[1:] != loan[:-1]]
    group = np.cumsum(first) - 1
    start = np.flatnonzero(first)
    end = np.r_[start[1:], loan.size]
    position = np.arange(loan.size) - start[group] + 1  # 1-based installment in the record
    total = np.cumsum(cents)
    due_cum = total - (total - cents)[start][group]
    # Received by the day before the next due date (as_of for the last one).
    next_same = np.r_[~first[1:], False]
    window_end = np.where(
        next_same, np.r_[date[1:], date[-1:]] - np.timedelta64(1, "D"), as_of[loan]
    )
    day = np.int64(1) << _DAY_BITS
    key = paid_loan * day + (paid_date.astype(np.int64) + day // 2)
    received = np.r_[0, np.cumsum(paid_cents)]
    upto = np.searchsorted(key, loan * day + (window_end.astype(np.int64) + day // 2), "right")
    since = np.searchsorted(key, loan * day, "left")
    paid = received[upto] - received[since]
    # Installments covered: how many of the loan's cumulative amounts the payments reach,
    # searched in one sorted array (each loan's amounts shifted past the previous loan's).
    loan_total = due_cum[end - 1]
    shift = np.r_[0, np.cumsum(loan_total + tolerance_cents + 1)[:-1]]
    reach = np.minimum(paid + tolerance_cents, loan_total[group] + tolerance_cents)
    covered = np.searchsorted(due_cum + shift[group], reach + shift[group], "right") - start[group]
    unpaid = np.maximum(position - covered, 0)
    arrears = np.where(first, 0, np.r_[0, unpaid[:-1]])
    return {"loan": loan, "due_date": date, "cents": cents, "arrears": arrears,
            "missed": unpaid > arrears}  # fmt: skip
