"""What the load reads, prepared in the staging database (:func:`prepare_load`), and the
upserts of borrowers, loans (with their contracts) and payments inside the load's
transaction.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb

from repayplan.store.importer.columns import MONTHS_CASE
from repayplan.store.importer.contracts import insert_contracts
from repayplan.store.importer.staging import good


def prepare_load(con: duckdb.DuckDBPyConnection, files: dict[str, Path], as_of: date) -> None:
    """What the transaction reads, prepared in the staging database (a transaction writes to
    one database only) from the staged rows and the committed portfolio: which good loans
    are already stored, which need their contract rebuilt (new, or terms changed) and whose
    ``as_of`` moves; the rebuilt loans' contract terms numbered for chunking; the few days
    on which a loan has several payments (they get a ``seq``); the loans of the payments."""
    if "loans" in files:
        terms = ("principal", "annual_rate_percent", "term_months", "origination_date")
        changed = " OR ".join(f"g.{t} IS DISTINCT FROM l.{t}" for t in terms)
        con.execute(
            f"""CREATE TABLE stage.loan_changes AS
            SELECT g.loan_id, l.loan_id IS NOT NULL AS stored,
                l.loan_id IS NULL OR {changed}
                    OR g.frequency IS DISTINCT FROM CAST(l.frequency AS VARCHAR) AS rebuild,
                l.as_of IS DISTINCT FROM $as_of AS moved
            FROM {good("loans")} g LEFT JOIN main.loans l USING (loan_id)""",
            {"as_of": as_of},
        )
        con.execute(
            "CREATE TABLE stage.contract_terms AS SELECT loan_id, "
            "row_number() OVER (ORDER BY row_number) - 1 AS k, "
            "CAST(principal * 100 AS BIGINT) AS principal, "
            "CAST(annual_rate_percent * 10000 AS BIGINT) AS rate_e4, "
            f"CASE frequency {MONTHS_CASE} END AS months, "
            "CAST(term_months AS BIGINT) AS term, origination_date AS start "
            f"FROM {good('loans')} SEMI JOIN "
            "(SELECT loan_id FROM stage.loan_changes WHERE rebuild) USING (loan_id) ORDER BY k"
        )
    if "payments" in files:
        # A hash aggregate finds the few keys with several payments; numbering only those
        # avoids sorting every payment (measured 3× faster on 22.7M payments).
        con.execute(
            "CREATE TABLE stage.payment_days AS SELECT loan_id, payment_date "
            f"FROM {good('payments')} GROUP BY ALL HAVING count(*) > 1"
        )
        con.execute(
            f"CREATE TABLE stage.payment_loans AS SELECT DISTINCT loan_id FROM {good('payments')}"
        )


def _payment_rows() -> str:
    """SQL for the good payments with their ``seq``: the order of a payment among the
    loan's payments of that day, as in the file (1 for almost all)."""
    rows = good("payments")
    return f"""(SELECT loan_id, payment_date, 1 AS seq, amount, due_date
        FROM {rows} ANTI JOIN stage.payment_days USING (loan_id, payment_date)
        UNION ALL
        SELECT loan_id, payment_date,
            CAST(row_number() OVER (PARTITION BY loan_id, payment_date ORDER BY row_number)
                 AS INTEGER),
            amount, due_date
        FROM {rows} SEMI JOIN stage.payment_days USING (loan_id, payment_date))"""


def _write_rows(
    con: duckdb.DuckDBPyConnection, table: str, key: str, columns: tuple[str, ...]
) -> None:
    """Write the temporary table ``incoming`` (``columns`` of ``table`` plus ``stored``)
    into ``table``: stored rows that differ are updated in place, new rows inserted, and
    identical rows left alone (so re-importing the same file writes nothing).

    In place, not ``INSERT … ON CONFLICT DO UPDATE`` (which ran out of memory re-importing
    1M loans under a 512 MB limit) nor delete + insert of the same keys (the primary-key
    index then holds both): a plain ``UPDATE`` of non-key columns leaves the index alone.
    """
    values = [c for c in columns if c != key]
    # Column by column: comparing whole rows as structs crashes DuckDB 2.0 on the
    # DOUBLE[12] seasonality column.
    differs = " OR ".join(f"t.{c} IS DISTINCT FROM i.{c}" for c in values)
    con.execute(
        f"UPDATE {table} t SET {', '.join(f'{c} = i.{c}' for c in values)} FROM incoming i "
        f"WHERE t.{key} = i.{key} AND i.stored AND ({differs})"
    )
    con.execute(
        f"INSERT INTO {table} ({', '.join(columns)}) SELECT {', '.join(columns)} "
        "FROM incoming WHERE NOT stored"
    )
    con.execute("DROP TABLE incoming")


_BORROWER_COLUMNS = (
    "borrower_id", "segment", "monthly_income", "essential_expenses", "other_debt_payments",
    "income_seasonality", "income_volatility", "full_name_token", "national_id_token",
    "phone_token", "source",
)  # fmt: skip


_LOAN_COLUMNS = (
    "loan_id", "borrower_id", "product", "principal", "annual_rate_percent", "term_months",
    "frequency", "origination_date", "outstanding_principal", "accrued_interest",
    "arrears_amount", "penalty_fees", "days_past_due", "delinquency_bucket", "status",
    "restructure_count", "last_restructure_date", "cure_count", "regular_payment",
    "remaining_term", "next_due_date", "as_of", "source",
)  # fmt: skip


def upsert_borrowers(con: duckdb.DuckDBPyConnection) -> int:
    """Upsert the good borrowers by id; a stored one keeps its segment, seasonality,
    volatility and personal-data tokens where the file leaves them empty. Returns the
    number of good rows."""
    # The identity and personal-data columns were tokenised when the file was read.
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE incoming AS
        SELECT g.borrower_id, coalesce(g.segment::segment, b.segment) AS segment,
            g.monthly_income, g.essential_expenses, g.other_debt_payments,
            coalesce(CAST(list_transform(g.season, lambda x: x / list_avg(g.season))
                          AS DOUBLE[12]), b.income_seasonality) AS income_seasonality,
            coalesce(g.income_volatility, b.income_volatility) AS income_volatility,
            coalesce(g.full_name_token, b.full_name_token) AS full_name_token,
            coalesce(g.national_id_token, b.national_id_token) AS national_id_token,
            coalesce(g.phone_token, b.phone_token) AS phone_token, 'import' AS source,
            b.borrower_id IS NOT NULL AS stored
        FROM {good("borrowers")} g LEFT JOIN borrowers b USING (borrower_id)"""
    )
    loaded = con.execute("SELECT count(*) FROM incoming").fetchall()[0][0]
    _write_rows(con, "borrowers", "borrower_id", _BORROWER_COLUMNS)
    return loaded


def upsert_loans(con: duckdb.DuckDBPyConnection, as_of: date) -> int:
    """Upsert the good loans by id, rebuilding the contracts of new loans and of loans
    whose terms changed. A stored loan keeps its restructure and cure history (an active
    one that was restructured stays ``restructured``). Returns the number of good rows."""
    insert_contracts(con, as_of)
    # The contract figures of loans whose contract is kept: unchanged when as_of is, else
    # recounted from the stored schedule.
    con.execute(
        """INSERT INTO contract_summary
        SELECT loan_id, regular_payment, remaining_term, next_due_date FROM loans
        WHERE loan_id IN (SELECT loan_id FROM stage.loan_changes
                          WHERE stored AND NOT rebuild AND NOT moved)"""
    )
    con.execute(
        """INSERT INTO contract_summary
        SELECT loan_id, arg_min(payment, number), count(*) FILTER (WHERE due_date > $as_of),
            min(due_date) FILTER (WHERE due_date > $as_of)
        FROM contract_installments
        WHERE loan_id IN (SELECT loan_id FROM stage.loan_changes
                          WHERE stored AND NOT rebuild AND moved)
        GROUP BY loan_id""",
        {"as_of": as_of},
    )
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE incoming AS
        WITH g AS (
            SELECT *, CASE WHEN outstanding_principal + accrued_interest + arrears_amount
                                + penalty_fees = 0 THEN 'closed'
                           WHEN days_past_due >= 180 THEN 'defaulted'
                           WHEN days_past_due > 0 THEN 'delinquent'
                           ELSE 'active' END::loan_status AS new_status
            FROM {good("loans")})
        SELECT g.loan_id, g.borrower_id, g.product::product AS product, g.principal,
            g.annual_rate_percent, g.term_months, g.frequency::frequency AS frequency,
            g.origination_date, g.outstanding_principal, g.accrued_interest, g.arrears_amount,
            g.penalty_fees, g.days_past_due, bucket_of(g.days_past_due) AS delinquency_bucket,
            CASE WHEN g.new_status = 'active' AND l.restructure_count > 0
                 THEN 'restructured'::loan_status ELSE g.new_status END AS status,
            coalesce(l.restructure_count, 0) AS restructure_count, l.last_restructure_date,
            coalesce(l.cure_count, 0) AS cure_count, c.regular_payment, c.remaining_term,
            c.next_due_date, CAST($as_of AS DATE) AS as_of, 'import' AS source,
            l.loan_id IS NOT NULL AS stored
        FROM g LEFT JOIN contract_summary c USING (loan_id)
        LEFT JOIN loans l USING (loan_id)""",
        {"as_of": as_of},
    )
    loaded = con.execute("SELECT count(*) FROM incoming").fetchall()[0][0]
    _write_rows(con, "loans", "loan_id", _LOAN_COLUMNS)
    con.execute("DROP TABLE contract_summary")
    return loaded


def upsert_payments(con: duckdb.DuckDBPyConnection) -> int:
    """Upsert the good payments by ``(loan_id, payment_date, seq)``: a stored payment with
    that key and the same amount and due date is left alone, one that differs is replaced.
    Adds the loans with new or changed payments to ``touched``. Returns the good rows."""
    overlap = con.execute(
        "SELECT count(*) FROM payments WHERE loan_id IN (SELECT loan_id FROM stage.payment_loans)"
    ).fetchall()[0][0]
    if not overlap:  # nothing stored for these loans (a first import): a plain bulk insert
        loaded = _rowcount(
            con.execute(
                "INSERT INTO payments SELECT loan_id, payment_date, seq, amount, due_date, "
                f"NULL, 'import' FROM {_payment_rows()}"
            )
        )
        con.execute("INSERT INTO touched SELECT loan_id FROM stage.payment_loans")
        return loaded
    loaded = con.execute(f"SELECT count(*) FROM {_payment_rows()}").fetchall()[0][0]
    con.execute(
        f"""CREATE OR REPLACE TEMP TABLE incoming AS
        SELECT r.* FROM {_payment_rows()} r
        WHERE NOT EXISTS (
            SELECT 1 FROM payments p WHERE p.loan_id = r.loan_id
              AND p.payment_date = r.payment_date AND p.seq = r.seq
              AND p.amount = r.amount AND p.due_date IS NOT DISTINCT FROM r.due_date)"""
    )
    con.execute(
        """DELETE FROM payments p USING incoming r WHERE p.loan_id = r.loan_id
        AND p.payment_date = r.payment_date AND p.seq = r.seq"""
    )
    con.execute(
        "INSERT INTO payments SELECT loan_id, payment_date, seq, amount, due_date, NULL, "
        "'import' FROM incoming"
    )
    con.execute("INSERT INTO touched SELECT DISTINCT loan_id FROM incoming")
    con.execute("DROP TABLE incoming")
    return loaded


def _rowcount(cursor: duckdb.DuckDBPyConnection) -> int:
    """Rows an INSERT / DELETE reported changing."""
    row = cursor.fetchone()
    return int(row[0]) if row else 0
