"""``repayplan import``: a lender's own borrowers, loans and payments from CSV or Parquet.

The library function is :func:`import_files` (``import`` is a Python keyword). Files are read
by DuckDB as text into temporary tables (memory only, never the database file, so personal
data in them is never persisted), every row is validated in SQL (types, ranges, dates,
duplicates, references, the rate cap), personal data is pseudonymised, and the good rows are
upserted by id in one transaction together with one ``rejected_rows`` row per bad field.
Re-importing the same files leaves the portfolio tables unchanged. Loans get their contract
schedule built from their terms (annuity, 30/360, month-based cycles) in the same transaction.

Cost is linear in the rows: measured 100k loans + 80k borrowers + 2.27M payments (CSV) in
14 s, 1.7 GB peak RSS; DuckDB holds a transaction's writes in memory, so memory grows with
the size of one import (split very large books into several imports by loan range).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from repayplan.errors import InputError
from repayplan.store.connection import DEFAULT_DB, connect
from repayplan.store.contract import schedule_rows
from repayplan.store.pii import Pseudonymiser, pseudonymiser_for
from repayplan.store.schema import FREQUENCY_MONTHS, PRODUCTS, SEGMENTS

#: Default regulatory cap on the annual rate, percent (the US 36 % MAPR benchmark).
DEFAULT_RATE_CAP_PERCENT = Decimal("36")
_MAX_MONEY = "1000000000"  # one billion currency units: keeps contract arithmetic in int64

REQUIRED = {
    "borrowers": ("borrower_id", "monthly_income", "essential_expenses", "other_debt_payments"),
    "loans": (
        "loan_id",
        "borrower_id",
        "product",
        "principal",
        "annual_rate_percent",
        "term_months",
        "origination_date",
        "outstanding_principal",
    ),
    "payments": ("loan_id", "payment_date", "amount"),
}
OPTIONAL = {
    "borrowers": (
        "segment",
        "income_seasonality",
        "income_volatility",
        "full_name",
        "national_id",
        "phone",
    ),
    "loans": (
        "accrued_interest",
        "arrears_amount",
        "penalty_fees",
        "days_past_due",
        "frequency",
    ),
    "payments": ("due_date",),
}
_PII = ("full_name", "national_id", "phone")
# "[1, 1.2, ...]", "1;1.2;..." or "1 1.2 ..." as a list of doubles (NULL where not numbers).
_SEASON = "TRY_CAST(regexp_split_to_array(trim(income_seasonality, '[] '), '[;,\\s]+') AS DOUBLE[])"
#: Loans whose contract schedules are built and inserted at a time (bounds memory).
CONTRACT_CHUNK = 20_000


@dataclass(frozen=True)
class ImportSummary:
    """Rows read, loaded and rejected per kind (``borrowers``, ``loans``, ``payments``), and
    the first rejections as ``(file, row, record, field, reason)``."""

    import_id: str
    db: str
    read: dict[str, int] = field(default_factory=dict)
    loaded: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    rejections: list[tuple[str, int, str | None, str | None, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form (``repayplan import --json``)."""
        rows = sum(self.read.values())
        return {
            "import_id": self.import_id,
            "db": self.db,
            "read": self.read,
            "loaded": self.loaded,
            "rejected": self.rejected,
            "seconds": round(self.seconds, 3),
            "rows_per_second": round(rows / max(self.seconds, 1e-9)),
            "rejections": [
                dict(zip(("file", "row", "record", "field", "reason"), r, strict=True))
                for r in self.rejections
            ],
        }


def import_files(
    db: str | Path = DEFAULT_DB,
    borrowers: str | Path | None = None,
    loans: str | Path | None = None,
    payments: str | Path | None = None,
    *,
    rate_cap_percent: Decimal | float | str = DEFAULT_RATE_CAP_PERCENT,
    as_of: date | None = None,
) -> ImportSummary:
    """Validate and load the given files into ``db``; see the module docstring.

    ``rate_cap_percent``: loans above this annual rate (percent) are rejected. ``as_of``
    (default today): dates after it are rejected, and loans' remaining term and next due date
    refer to it. Raises :class:`InputError` for a missing file, an unknown format or a
    missing required column; bad rows never raise, they are recorded in ``rejected_rows``.
    """
    files = {"borrowers": borrowers, "loans": loans, "payments": payments}
    files = {k: Path(v) for k, v in files.items() if v is not None}
    if not files:
        raise InputError("give at least one of --borrowers, --loans, --payments", field="files")
    for kind, path in files.items():
        if not path.is_file():
            raise InputError("no such file", field=kind, record=str(path))
    cap = Decimal(str(rate_cap_percent))
    as_of = as_of or date.today()
    started = time.perf_counter()
    import_id = f"imp-{datetime.now():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
    con = connect(db)
    try:
        pseudo = pseudonymiser_for(con, db)
        for kind, path in files.items():
            _stage(con, kind, path)
        if "borrowers" in files:
            _pseudonymise_borrowers(con, pseudo)
        if "loans" in files:
            _pseudonymise_column(con, pseudo, "stage_loans", "borrower_id")
        con.execute(
            "CREATE OR REPLACE TEMP TABLE errors (kind VARCHAR, row_number BIGINT, "
            "record_id VARCHAR, field VARCHAR, reason VARCHAR)"
        )
        # References are checked against these too; empty when that file is not given.
        con.execute(
            "CREATE OR REPLACE TEMP TABLE good_borrowers AS SELECT NULL::VARCHAR AS borrower_id "
            "WHERE false"
        )
        con.execute(
            "CREATE OR REPLACE TEMP TABLE good_loans AS SELECT NULL::VARCHAR AS loan_id, "
            "NULL::VARCHAR AS origination_date WHERE false"
        )
        read = {}
        for kind in ("borrowers", "loans", "payments"):
            if kind in files:
                read[kind] = con.execute(f"SELECT count(*) FROM stage_{kind}").fetchall()[0][0]
                _validate(con, kind, cap, as_of)
        loaded = _load(con, files, import_id, as_of)
        rejected = dict(
            con.execute("SELECT kind, count(DISTINCT row_number) FROM errors GROUP BY 1").fetchall()
        )
        first = con.execute(
            "SELECT source_file, row_number, record_id, field, reason FROM rejected_rows "
            "WHERE import_id = ? ORDER BY source_file, row_number LIMIT 20",
            [import_id],
        ).fetchall()
        return ImportSummary(
            import_id=import_id,
            db=str(db),
            read=read,
            loaded=loaded,
            rejected={k: rejected.get(k, 0) for k in read},
            seconds=time.perf_counter() - started,
            rejections=first,
        )
    finally:
        con.close()


def _stage(con: duckdb.DuckDBPyConnection, kind: str, path: Path) -> None:
    """Read ``path`` as text into ``stage_<kind>`` with a 1-based ``row_number`` and
    normalised column names; check the required columns are there."""
    suffix = "".join(path.suffixes).lower()
    if suffix.endswith((".parquet", ".pq")):
        source = "read_parquet(?)"
    elif suffix.endswith((".csv", ".csv.gz", ".txt")):
        source = "read_csv(?, all_varchar = true, header = true)"
    else:
        raise InputError("unknown format; use .csv or .parquet", field=kind, record=str(path))
    try:
        columns = [
            d[0] for d in con.execute(f"SELECT * FROM {source} LIMIT 0", [str(path)]).description
        ]
    except duckdb.Error as exc:
        raise InputError(f"cannot read the file ({exc})", field=kind, record=str(path)) from exc
    names = {c.strip().lower(): c for c in columns}
    missing = [c for c in REQUIRED[kind] if c not in names]
    if missing:
        raise InputError(
            "missing required column(s): " + ", ".join(missing), field=kind, record=str(path)
        )
    select = []
    for col in REQUIRED[kind] + OPTIONAL[kind]:
        if col in names:
            quoted = '"' + names[col].replace('"', '""') + '"'
            select.append(f"nullif(trim(CAST({quoted} AS VARCHAR)), '') AS {col}")
        else:
            select.append(f"CAST(NULL AS VARCHAR) AS {col}")
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE stage_{kind} AS SELECT row_number() OVER () AS row_number, "
        f"{', '.join(select)}, ? AS source_file FROM {source}",
        [str(path), str(path)],
    )


def _pseudonymise_column(
    con: duckdb.DuckDBPyConnection,
    pseudo: Pseudonymiser,
    table: str,
    column: str,
    kind: str = "borrower",
) -> None:
    values = con.execute(f"SELECT row_number, {column} FROM {table}").fetchnumpy()
    tokens = pa.table(
        {"row_number": values["row_number"], "token": pseudo.tokens(kind, values[column].tolist())}
    )
    con.register("tokens_frame", tokens)
    con.execute(
        f"UPDATE {table} t SET {column} = k.token FROM tokens_frame k "
        "WHERE t.row_number = k.row_number"
    )
    con.unregister("tokens_frame")


def _pseudonymise_borrowers(con: duckdb.DuckDBPyConnection, pseudo: Pseudonymiser) -> None:
    # The phone's format can only be checked on the plaintext, so before it is tokenised.
    con.execute(
        "ALTER TABLE stage_borrowers ADD COLUMN phone_ok BOOLEAN; "
        "UPDATE stage_borrowers SET phone_ok = phone IS NULL "
        "OR length(regexp_replace(phone, '[^0-9]', '', 'g')) BETWEEN 6 AND 15"
    )
    con.execute(f"ALTER TABLE stage_borrowers ADD COLUMN season DOUBLE[]; "
                f"UPDATE stage_borrowers SET season = {_SEASON}")  # fmt: skip
    _pseudonymise_column(con, pseudo, "stage_borrowers", "borrower_id")
    for col in _PII:
        _pseudonymise_column(con, pseudo, "stage_borrowers", col, col)


def _money_checks(col: str, *, positive: bool, required: bool) -> list[tuple[str, str, str]]:
    v = f"TRY_CAST({col} AS DECIMAL(38,10))"
    checks = [
        (col, f"{col} IS NOT NULL AND {v} IS NULL", f"'not a number: ' || left({col}, 40)"),
        (col, f"{v} <> round({v}, 2)", f"'more than 2 decimals: ' || left({col}, 40)"),
        (col, f"{v} < 0" if not positive else f"{v} <= 0",
         f"'must be {'positive' if positive else 'zero or more'}, got ' || {col}"),
        (col, f"{v} > {_MAX_MONEY}", f"'too large (max {_MAX_MONEY}): ' || {col}"),
    ]  # fmt: skip
    if required:
        checks.insert(0, (col, f"{col} IS NULL", "'required'"))
    return checks


def _int_checks(col: str, lo: int, hi: int, *, required: bool) -> list[tuple[str, str, str]]:
    v = f"TRY_CAST({col} AS BIGINT)"
    checks = [
        (col, f"{col} IS NOT NULL AND {v} IS NULL", f"'not a whole number: ' || left({col}, 40)"),
        (col, f"{v} NOT BETWEEN {lo} AND {hi}", f"'must be between {lo} and {hi}, got ' || {col}"),
    ]
    if required:
        checks.insert(0, (col, f"{col} IS NULL", "'required'"))
    return checks


def _date_checks(col: str, as_of: date, *, required: bool) -> list[tuple[str, str, str]]:
    v = f"TRY_CAST({col} AS DATE)"
    checks = [
        (col, f"{col} IS NOT NULL AND {v} IS NULL",
         f"'not a date (YYYY-MM-DD): ' || left({col}, 40)"),
        (col, f"{v} > DATE '{as_of.isoformat()}'", f"'is after the as-of date {as_of}: ' || {col}"),
        (col, f"{v} < DATE '1900-01-01'", f"'is before 1900: ' || {col}"),
    ]  # fmt: skip
    if required:
        checks.insert(0, (col, f"{col} IS NULL", "'required'"))
    return checks


def _enum_check(col: str, values: tuple[str, ...]) -> tuple[str, str, str]:
    allowed = ", ".join(f"'{v}'" for v in values)
    return (
        col,
        f"{col} IS NOT NULL AND lower({col}) NOT IN ({allowed})",
        f"'unknown {col} ' || left({col}, 40) || '; use one of {', '.join(values)}'",
    )


def _checks(kind: str, cap: Decimal, as_of: date) -> list[tuple[str, str, str]]:
    """``(field, failing condition, reason)`` in SQL over ``stage_<kind>`` for every rule."""
    if kind == "borrowers":
        return [
            ("borrower_id", "borrower_id IS NULL", "'required'"),
            *_money_checks("monthly_income", positive=False, required=True),
            *_money_checks("essential_expenses", positive=False, required=True),
            *_money_checks("other_debt_payments", positive=False, required=True),
            _enum_check("segment", SEGMENTS),
            ("income_seasonality",
             "income_seasonality IS NOT NULL AND (len(season) IS DISTINCT FROM 12 "
             "OR list_min(season) < 0 OR list_count(season) < 12 "
             "OR abs(list_avg(season) - 1) > 0.1)",
             "'needs 12 non-negative monthly factors (Jan..Dec) averaging 1'"),
            ("income_volatility",
             "income_volatility IS NOT NULL AND NOT coalesce(TRY_CAST(income_volatility AS DOUBLE) "
             "BETWEEN 0 AND 3, false)",
             "'must be a number between 0 and 3 (sd of log monthly income)'"),
            ("phone", "NOT phone_ok", "'not a phone number (6 to 15 digits)'"),
        ]  # fmt: skip
    if kind == "loans":
        rate = "TRY_CAST(annual_rate_percent AS DECIMAL(38,10))"
        months = " ".join(f"WHEN '{k}' THEN {v}" for k, v in FREQUENCY_MONTHS.items())
        return [
            ("loan_id", "loan_id IS NULL", "'required'"),
            ("borrower_id", "borrower_id IS NULL", "'required'"),
            ("product", "product IS NULL", "'required'"),
            _enum_check("product", PRODUCTS),
            *_money_checks("principal", positive=True, required=True),
            ("annual_rate_percent", "annual_rate_percent IS NULL", "'required'"),
            ("annual_rate_percent", f"annual_rate_percent IS NOT NULL AND {rate} IS NULL",
             "'not a number: ' || left(annual_rate_percent, 40)"),
            ("annual_rate_percent", f"{rate} <> round({rate}, 4)", "'more than 4 decimals'"),
            ("annual_rate_percent", f"{rate} < 0", "'must be zero or more'"),
            ("annual_rate_percent", f"{rate} > {cap}",
             f"'rate ' || annual_rate_percent || '% is above the cap of {cap}%'"),
            *_int_checks("term_months", 1, 600, required=True),
            *_date_checks("origination_date", as_of, required=True),
            *_money_checks("outstanding_principal", positive=False, required=True),
            *_money_checks("accrued_interest", positive=False, required=False),
            *_money_checks("arrears_amount", positive=False, required=False),
            *_money_checks("penalty_fees", positive=False, required=False),
            *_int_checks("days_past_due", 0, 36500, required=False),
            _enum_check("frequency", tuple(FREQUENCY_MONTHS)),
            ("term_months",
             "TRY_CAST(term_months AS BIGINT) % (CASE lower(coalesce(frequency, 'monthly')) "
             f"{months} ELSE 1 END) <> 0",
             "'term of ' || term_months || ' months is not a whole number of ' "
             "|| coalesce(frequency, 'monthly') || ' periods'"),
            ("borrower_id",
             "borrower_id IS NOT NULL AND borrower_id NOT IN (SELECT borrower_id FROM borrowers) "
             "AND borrower_id NOT IN (SELECT borrower_id FROM good_borrowers)",
             "'unknown borrower (not in the database nor in the borrowers file)'"),
        ]  # fmt: skip
    return [
        ("loan_id", "loan_id IS NULL", "'required'"),
        *_date_checks("payment_date", as_of, required=True),
        *_money_checks("amount", positive=True, required=True),
        ("due_date", "due_date IS NOT NULL AND TRY_CAST(due_date AS DATE) IS NULL",
         "'not a date (YYYY-MM-DD): ' || left(due_date, 40)"),
        ("loan_id",
         "loan_id IS NOT NULL AND loan_id NOT IN (SELECT loan_id FROM loans) "
         "AND loan_id NOT IN (SELECT loan_id FROM good_loans)",
         "'unknown loan (not in the database nor in the loans file)'"),
        ("payment_date",
         "TRY_CAST(payment_date AS DATE) < (SELECT min(d) FROM (SELECT origination_date AS d "
         "FROM loans l WHERE l.loan_id = s.loan_id UNION ALL SELECT TRY_CAST(origination_date "
         "AS DATE) FROM good_loans g WHERE g.loan_id = s.loan_id))",
         "'is before the loan was originated: ' || payment_date"),
    ]  # fmt: skip


_ID = {"borrowers": "borrower_id", "loans": "loan_id", "payments": "loan_id"}


def _validate(con: duckdb.DuckDBPyConnection, kind: str, cap: Decimal, as_of: date) -> None:
    """Fill ``errors`` for ``stage_<kind>`` and create ``good_<kind>`` from the clean rows."""
    rid = _ID[kind]
    parts = [
        f"SELECT '{kind}', row_number, {rid}, '{fld}', {reason} FROM stage_{kind} s WHERE {cond}"
        for fld, cond, reason in _checks(kind, cap, as_of)
    ]
    if kind != "payments":
        # Which of two rows with one id is right cannot be known: reject them all.
        parts.append(
            f"SELECT '{kind}', row_number, {rid}, '{rid}', 'duplicate {rid}: appears ' || n || "
            f"' times in this file' FROM (SELECT row_number, {rid}, count(*) OVER "
            f"(PARTITION BY {rid}) AS n FROM stage_{kind} WHERE {rid} IS NOT NULL) WHERE n > 1"
        )
    con.execute("INSERT INTO errors " + " UNION ALL ".join(parts))
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE good_{kind} AS SELECT * FROM stage_{kind} WHERE row_number "
        f"NOT IN (SELECT row_number FROM errors WHERE kind = '{kind}')"
    )


def _load(
    con: duckdb.DuckDBPyConnection, files: dict[str, Path], import_id: str, as_of: date
) -> dict[str, int]:
    """Upsert the good rows and record the bad ones, all in one transaction."""
    loaded = {}
    con.execute("BEGIN TRANSACTION")
    try:
        if "borrowers" in files:
            loaded["borrowers"] = _upsert_borrowers(con)
        if "loans" in files:
            loaded["loans"] = _upsert_loans(con, as_of)
        if "payments" in files:
            loaded["payments"] = _upsert_payments(con)
        con.execute(
            "INSERT INTO rejected_rows SELECT ?, NULL, s.source_file, e.row_number, e.record_id, "
            "e.field, e.reason, current_timestamp FROM errors e JOIN ("
            + " UNION ALL ".join(
                f"SELECT DISTINCT '{k}' AS kind, source_file FROM stage_{k}" for k in files
            )
            + ") s USING (kind) ORDER BY e.kind, e.row_number",
            [import_id],
        )
        con.execute(
            "INSERT INTO imports VALUES (?, current_timestamp, current_timestamp, ?, ?)",
            [import_id, json.dumps({k: str(v) for k, v in files.items()}), json.dumps(loaded)],
        )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return loaded


def _upsert_borrowers(con: duckdb.DuckDBPyConnection) -> int:
    con.execute(
        """INSERT INTO borrowers
        SELECT borrower_id, lower(segment)::segment,
               CAST(monthly_income AS DECIMAL(18,2)), CAST(essential_expenses AS DECIMAL(18,2)),
               CAST(other_debt_payments AS DECIMAL(18,2)),
               CAST(list_transform(season, lambda x: x / list_avg(season)) AS DOUBLE[12]),
               CAST(income_volatility AS DOUBLE), full_name, national_id, phone, 'import'
        FROM good_borrowers
        ON CONFLICT (borrower_id) DO UPDATE SET
            segment = coalesce(excluded.segment, borrowers.segment),
            monthly_income = excluded.monthly_income,
            essential_expenses = excluded.essential_expenses,
            other_debt_payments = excluded.other_debt_payments,
            income_seasonality =
                coalesce(excluded.income_seasonality, borrowers.income_seasonality),
            income_volatility = coalesce(excluded.income_volatility, borrowers.income_volatility),
            full_name_token = coalesce(excluded.full_name_token, borrowers.full_name_token),
            national_id_token = coalesce(excluded.national_id_token, borrowers.national_id_token),
            phone_token = coalesce(excluded.phone_token, borrowers.phone_token),
            source = excluded.source"""
    )  # the PII columns of good_borrowers already hold tokens
    return con.execute("SELECT count(*) FROM good_borrowers").fetchall()[0][0]


def _insert_contracts(con: duckdb.DuckDBPyConnection) -> None:
    """Replace the contract schedules of the good loans by ones built from their terms,
    :data:`CONTRACT_CHUNK` loans at a time (the numpy side stays small; DuckDB still holds
    the whole transaction, about 0.6 GB per 100k loans)."""
    months_case = " ".join(f"WHEN '{k}' THEN {v}" for k, v in FREQUENCY_MONTHS.items())
    con.execute(
        "DELETE FROM contract_installments WHERE loan_id IN (SELECT loan_id FROM good_loans)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE contract_terms AS SELECT loan_id, "
        "row_number() OVER (ORDER BY row_number) - 1 AS k, "
        "CAST(CAST(principal AS DECIMAL(18,2)) * 100 AS BIGINT) AS principal, "
        "CAST(CAST(annual_rate_percent AS DECIMAL(7,4)) * 10000 AS BIGINT) AS rate_e4, "
        f"CASE lower(coalesce(frequency, 'monthly')) {months_case} END AS months, "
        "CAST(term_months AS BIGINT) AS term, CAST(origination_date AS DATE) AS start "
        "FROM good_loans"
    )
    total = con.execute("SELECT count(*) FROM contract_terms").fetchall()[0][0]
    for first in range(0, total, CONTRACT_CHUNK):
        terms = con.execute(
            "SELECT * FROM contract_terms WHERE k >= ? AND k < ? ORDER BY k",
            [first, first + CONTRACT_CHUNK],
        ).fetchnumpy()
        start = terms["start"].astype("datetime64[D]")
        anchor = (start - start.astype("datetime64[M]").astype("datetime64[D]")).astype(np.int64)
        rows = schedule_rows(
            terms["principal"], terms["rate_e4"], terms["months"],
            terms["term"] // terms["months"], start, anchor + 1,
        )  # fmt: skip
        ids = pa.array(terms["loan_id"].astype(object), pa.string())
        frame = pa.table(
            {
                "loan_id": ids.take(pa.array(rows["loan"])),
                **{c: rows[c] for c in ("number", "due_date", "payment", "principal")},
                **{c: rows[c] for c in ("interest", "balance")},
            }
        )
        con.register("contract_frame", frame)
        try:
            con.execute(
                """INSERT INTO contract_installments SELECT loan_id, number, due_date,
                money_of_cents(payment), money_of_cents(principal), money_of_cents(interest),
                money_of_cents(balance) FROM contract_frame"""
            )
        finally:
            con.unregister("contract_frame")


def _upsert_loans(con: duckdb.DuckDBPyConnection, as_of: date) -> int:
    _insert_contracts(con)
    con.execute(
        """INSERT INTO loans
        WITH g AS (
            SELECT loan_id, borrower_id, lower(product)::product AS product,
                CAST(principal AS DECIMAL(18,2)) AS principal,
                CAST(annual_rate_percent AS DECIMAL(7,4)) AS rate,
                CAST(term_months AS INTEGER) AS term_months,
                lower(coalesce(frequency, 'monthly'))::frequency AS frequency,
                CAST(origination_date AS DATE) AS origination_date,
                CAST(outstanding_principal AS DECIMAL(18,2)) AS outstanding,
                CAST(coalesce(accrued_interest, '0') AS DECIMAL(18,2)) AS accrued,
                CAST(coalesce(arrears_amount, '0') AS DECIMAL(18,2)) AS arrears,
                CAST(coalesce(penalty_fees, '0') AS DECIMAL(18,2)) AS fees,
                CAST(coalesce(days_past_due, '0') AS INTEGER) AS dpd
            FROM good_loans),
        c AS (
            SELECT loan_id, arg_min(payment, number) AS regular_payment,
                count(*) FILTER (WHERE due_date > $as_of) AS remaining,
                min(due_date) FILTER (WHERE due_date > $as_of) AS next_due
            FROM contract_installments WHERE loan_id IN (SELECT loan_id FROM g) GROUP BY loan_id)
        SELECT g.loan_id, borrower_id, product, principal, rate, term_months, frequency,
            origination_date, outstanding, accrued, arrears, fees, dpd, bucket_of(dpd),
            CASE WHEN outstanding + accrued + arrears + fees = 0 THEN 'closed'
                 WHEN dpd >= 180 THEN 'defaulted' WHEN dpd > 0 THEN 'delinquent'
                 ELSE 'active' END::loan_status,
            0, NULL, 0, c.regular_payment, c.remaining, c.next_due, $as_of, 'import'
        FROM g LEFT JOIN c USING (loan_id)
        ON CONFLICT (loan_id) DO UPDATE SET
            borrower_id = excluded.borrower_id, product = excluded.product,
            principal = excluded.principal, annual_rate_percent = excluded.annual_rate_percent,
            term_months = excluded.term_months, frequency = excluded.frequency,
            origination_date = excluded.origination_date,
            outstanding_principal = excluded.outstanding_principal,
            accrued_interest = excluded.accrued_interest, arrears_amount = excluded.arrears_amount,
            penalty_fees = excluded.penalty_fees, days_past_due = excluded.days_past_due,
            delinquency_bucket = excluded.delinquency_bucket, status = CASE
                WHEN excluded.status = 'active' AND loans.restructure_count > 0
                THEN 'restructured'::loan_status ELSE excluded.status END,
            regular_payment = excluded.regular_payment, remaining_term = excluded.remaining_term,
            next_due_date = excluded.next_due_date, as_of = excluded.as_of,
            source = excluded.source""",
        {"as_of": as_of},
    )
    return con.execute("SELECT count(*) FROM good_loans").fetchall()[0][0]


def _upsert_payments(con: duckdb.DuckDBPyConnection) -> int:
    # Several payments on one day are told apart by their order in the file (seq).
    con.execute(
        """CREATE OR REPLACE TEMP TABLE payment_rows AS
        SELECT loan_id, CAST(payment_date AS DATE) AS payment_date,
            CAST(row_number() OVER (PARTITION BY loan_id, payment_date ORDER BY row_number)
                 AS INTEGER) AS seq,
            CAST(amount AS DECIMAL(18,2)) AS amount, CAST(due_date AS DATE) AS due_date
        FROM good_payments"""
    )
    con.execute(
        """DELETE FROM payments p USING payment_rows r WHERE p.loan_id = r.loan_id
        AND p.payment_date = r.payment_date AND p.seq = r.seq"""
    )
    con.execute(
        "INSERT INTO payments SELECT loan_id, payment_date, seq, amount, due_date, NULL, 'import' "
        "FROM payment_rows"
    )
    return con.execute("SELECT count(*) FROM payment_rows").fetchall()[0][0]
