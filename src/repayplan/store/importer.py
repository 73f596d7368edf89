"""``repayplan import``: a lender's own borrowers, loans and payments from CSV or Parquet.

The library function is :func:`import_files` (``import`` is a Python keyword). Three steps:

1. **Stage.** Each file is read once by DuckDB and written, typed (``TRY_CAST`` at read
   time), to a private staging database together with each row's 1-based ``row_number`` and
   the list of its field errors (types, ranges, dates, enums, the rate cap, the phone's
   format). Personal data is pseudonymised *in that same read*: the lender's borrower ids,
   names, national ids and phone numbers go through an HMAC function registered on the
   connection (:mod:`repayplan.store.pii`) before anything is materialised, so their
   plaintext exists only in the scan's in-flight vectors and never in a table, a spill file
   or the database file.
2. **Check across rows.** Duplicate ids in a file (all copies rejected), unknown borrowers
   and loans (neither in the database nor among the file's good rows), payments before
   their loan's origination. The good loans' contract terms, and the few days on which a
   loan has several payments (they get a ``seq``), are prepared in the staging database.
3. **Load, in one transaction**: borrowers and loans upserted by id (new rows inserted,
   stored rows that differ updated in place, identical rows not written), contract
   schedules built for new loans and loans whose terms changed (annuity, 30/360,
   month-based cycles, :data:`CONTRACT_CHUNK` loans at a time in numpy), payments upserted
   by ``(loan_id, payment_date, seq)`` (identical ones not written), the per-due-date
   payment record derived again for the imported loans whose contract, payments or
   ``as_of`` changed (:func:`_derive_payment_record`), one ``rejected_rows`` row per bad
   field and the ``imports`` row. Any failure rolls all of it back. Re-importing the same
   files leaves the portfolio tables unchanged and writes almost nothing.

**What touches disk.** Besides the database file (and its WAL): a private directory (mode
0700) beside the database, ``.<db name>.import-XXXX``, holding the staging database
``stage.duckdb`` and DuckDB's spill files; it is deleted when the import ends, whether it
succeeds or fails. It holds the staged rows (typed values, tokens, error reasons) and
intermediate join/sort/window state — never plaintext names, national ids, phone numbers or
lender borrower ids. DuckDB's buffer pool is capped at ``memory_limit`` (default
:data:`DEFAULT_MEMORY_LIMIT`); beyond it DuckDB spills there, and large inserts in the
transaction are written ahead to the database file (they only become visible at commit).
What must stay in memory grows with the book, not with the files: the primary-key indexes of
``borrowers`` and ``loans`` (about 90 MB at 1M loans). 512 MB suffices at 1M loans; 256 MB
does not.

Cost (2 cores shared with other jobs, CSV, ``benchmarks/import_scale.py``; the README's
store section has the figures): 100k loans + 80k borrowers + 2.27M payments in 20–30 s at
0.8 GB peak RSS; 1M loans + 0.8M borrowers + 22.7M payments in 2.5–4.5 minutes at 1.0 GB.
Re-importing the same 1M files takes about 2.5 minutes at 0.7 GB and writes nothing.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import numpy as np
import pyarrow as pa

from repayplan import progress
from repayplan.errors import InputError, scrub_errors, scrub_text
from repayplan.leftovers import claim_folder, sweep_folders
from repayplan.store.connection import DEFAULT_DB, connect
from repayplan.store.contract import schedule_rows
from repayplan.store.pii import Pseudonymiser, pseudonymiser_for
from repayplan.store.publish import publish
from repayplan.store.schema import FREQUENCY_MONTHS, PRODUCTS, SEGMENTS

#: Default regulatory cap on the annual rate, percent (the US 36 % MAPR benchmark).
DEFAULT_RATE_CAP_PERCENT = Decimal("36")
#: DuckDB's buffer-pool ceiling during an import; beyond it DuckDB spills to the private
#: temporary directory. Peak RSS is this plus Python, numpy and DuckDB's own overheads.
DEFAULT_MEMORY_LIMIT = "512MB"
#: An installment counts as paid when the payments received cover it to within this many
#: currency units (rounding by the lender's system must not look like a missed payment).
MISS_TOLERANCE = Decimal("1.00")
#: Loans whose contract schedules are built and inserted at a time (bounds numpy's memory).
CONTRACT_CHUNK = 20_000
#: Loans whose payment record is derived and inserted at a time.
RECORD_CHUNK = 20_000
_SIZE = re.compile(r"\d+(\.\d+)?\s*[KMGT]i?B", re.IGNORECASE)
_NEVER = np.iinfo(np.int64).max
_DAY_BITS = 22  # payment keys: loan × 2²² + days since 1970 + 2²¹ (dates 1970 ± 5,700 years)
_MAX_MONEY = "1000000000"  # one billion currency units: keeps contract arithmetic in int64
_MAX_RATE_PERCENT = 500  # balance × rate_e4 × 12 months stays below 2⁶³ (store.contract)

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
_TOKEN_KINDS = ("borrower", *_PII)
# "[1, 1.2, ...]", "1;1.2;..." or "1 1.2 ..." as a list of doubles (NULL where not numbers).
_SEASON = "TRY_CAST(regexp_split_to_array(trim(income_seasonality, '[] '), '[;,\\s]+') AS DOUBLE[])"
# What a malformed or unreadable file raises (an out-of-memory error is not the file's fault).
_UNREADABLE = (duckdb.InvalidInputException, duckdb.IOException, duckdb.ConversionException)
_ID = {"borrowers": "borrower_id", "loans": "loan_id", "payments": "loan_id"}
_KINDS = ("borrowers", "loans", "payments")
_MOST_OWED = (
    "TRY_CAST(principal AS DOUBLE) * pow(1 + TRY_CAST(annual_rate_percent AS DOUBLE) / 1200, "
    "greatest(TRY_CAST(term_months AS DOUBLE), 12))"
)
_MONTHS_CASE = " ".join(f"WHEN '{k}' THEN {v}" for k, v in FREQUENCY_MONTHS.items())


def _money(col: str, default: str | None = None) -> str:
    text = col if default is None else f"coalesce({col}, '{default}')"
    return f"TRY_CAST({text} AS DECIMAL(18,2)) AS {col}"


# The typed staging columns, computed from the text columns of the file (and, for
# borrowers, ``season`` and ``phone_ok``, computed from the plaintext in the same read).
_TYPED = {
    "borrowers": (
        "pii_borrower(borrower_id) AS borrower_id",
        "lower(segment) AS segment",
        _money("monthly_income"),
        _money("essential_expenses"),
        _money("other_debt_payments"),
        "season",
        "TRY_CAST(income_volatility AS DOUBLE) AS income_volatility",
        "pii_full_name(full_name) AS full_name_token",
        "pii_national_id(national_id) AS national_id_token",
        "pii_phone(phone) AS phone_token",
    ),
    "loans": (
        "loan_id",
        "pii_borrower(borrower_id) AS borrower_id",
        "lower(product) AS product",
        _money("principal"),
        "TRY_CAST(annual_rate_percent AS DECIMAL(7,4)) AS annual_rate_percent",
        "TRY_CAST(term_months AS INTEGER) AS term_months",
        "lower(coalesce(frequency, 'monthly')) AS frequency",
        "TRY_CAST(origination_date AS DATE) AS origination_date",
        _money("outstanding_principal"),
        _money("accrued_interest", "0"),
        _money("arrears_amount", "0"),
        _money("penalty_fees", "0"),
        "TRY_CAST(coalesce(days_past_due, '0') AS INTEGER) AS days_past_due",
    ),
    "payments": (
        "loan_id",
        "TRY_CAST(payment_date AS DATE) AS payment_date",
        _money("amount"),
        "TRY_CAST(due_date AS DATE) AS due_date",
    ),
}


@dataclass(frozen=True)
class ImportSummary:
    """Rows read, loaded and rejected per kind (``borrowers``, ``loans``, ``payments``), and
    the first rejections as ``(file, row, record, field, reason)``; ``seconds`` is the
    wall-clock time of the whole import."""

    import_id: str
    db: str
    read: dict[str, int] = field(default_factory=dict)
    loaded: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    rejections: list[tuple[str, int, str | None, str | None, str]] = field(default_factory=list)
    #: Field errors recorded in ``rejected_rows`` (a row may have several).
    rejection_rows_total: int = 0

    @property
    def rejections_not_listed(self) -> int:
        """Field errors in ``rejected_rows`` that :attr:`rejections` does not list."""
        return max(0, self.rejection_rows_total - len(self.rejections))

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
            "rejections_listed": len(self.rejections),
            "rejections_not_listed": self.rejections_not_listed,
        }


@scrub_errors
def import_files(
    db: str | Path = DEFAULT_DB,
    borrowers: str | Path | None = None,
    loans: str | Path | None = None,
    payments: str | Path | None = None,
    *,
    rate_cap_percent: Decimal | float | str = DEFAULT_RATE_CAP_PERCENT,
    as_of: date | None = None,
    memory_limit: str = DEFAULT_MEMORY_LIMIT,
) -> ImportSummary:
    """Validate and load the given files into ``db``; see the module docstring.

    ``rate_cap_percent``: loans above this annual rate (percent) are rejected. ``as_of``
    (default today): dates after it are rejected, and loans' remaining term and next due date
    refer to it. ``memory_limit``: DuckDB's buffer-pool ceiling (a DuckDB size such as
    ``"512MB"`` or ``"2GB"``). Raises :class:`InputError` for a missing file, an unknown
    format or a missing required column; bad rows never raise, they are recorded in
    ``rejected_rows``. Every error leaves scrubbed (:func:`repayplan.errors.scrub_errors`):
    DuckDB's messages quote the raw input line, which may hold personal data.
    """
    given = {"borrowers": borrowers, "loans": loans, "payments": payments}
    files = {k: Path(v) for k, v in given.items() if v is not None}
    if not files:
        raise InputError("give at least one of --borrowers, --loans, --payments", field="files")
    for kind, path in files.items():
        if not path.is_file():
            raise InputError("no such file", field=kind, record=str(path))
    if not _SIZE.fullmatch(memory_limit.strip()):
        raise InputError(
            f"not a memory size (like 512MB or 2GB): {memory_limit!r}", field="memory_limit"
        )
    try:
        cap = Decimal(str(rate_cap_percent).strip())
    except ArithmeticError:
        text = str(rate_cap_percent)[:40]
        raise InputError(f"not a number: {text!r}", field="rate_cap") from None
    if not cap.is_finite() or not 0 <= cap <= _MAX_RATE_PERCENT:
        raise InputError(
            f"must be a percentage from 0 to {_MAX_RATE_PERCENT}, got {str(rate_cap_percent)[:40]}",
            field="rate_cap",
        )
    cap = Decimal(format(cap, "f"))  # plain digits in the SQL (no exponent)
    as_of = as_of or date.today()
    started = time.perf_counter()
    import_id = f"imp-{datetime.now():%Y%m%d%H%M%S}-{uuid.uuid4().hex[:6]}"
    con = connect(db)
    try:
        with _private_workspace(con, db, memory_limit):
            pseudo = pseudonymiser_for(con, db)
            _register_tokens(con, pseudo)
            con.execute(
                "CREATE TABLE stage.errors (kind VARCHAR, row_number BIGINT, "
                "record_id VARCHAR, field VARCHAR, reason VARCHAR)"
            )
            read = {}
            steps = len(files) + 2
            for kind in _KINDS:
                if kind in files:
                    progress.report("import", len(read), steps)
                    read[kind] = _stage(con, kind, files[kind], cap, as_of)
                    _check_across_rows(con, kind)
            progress.report("import", len(read), steps)
            _prepare_load(con, files, as_of)
            progress.report("import", len(read) + 1, steps)
            loaded = _load(con, files, import_id, as_of)
            progress.report("import", steps, steps)
            rejected = dict(
                con.execute(
                    "SELECT kind, count(DISTINCT row_number) FROM stage.errors GROUP BY 1"
                ).fetchall()
            )
        if str(db) != ":memory:":  # the committed import, for analysts (store.publish)
            publish(db, import_id, con=con)
        first = con.execute(
            "SELECT source_file, row_number, record_id, field, reason FROM rejected_rows "
            "WHERE import_id = ? ORDER BY source_file, row_number LIMIT 20",
            [import_id],
        ).fetchall()
        total = con.execute(
            "SELECT count(*) FROM rejected_rows WHERE import_id = ?", [import_id]
        ).fetchall()[0][0]
        return ImportSummary(
            import_id=import_id,
            db=str(db),
            read=read,
            loaded=loaded,
            rejected={k: rejected.get(k, 0) for k in read},
            seconds=time.perf_counter() - started,
            rejections=first,
            rejection_rows_total=total,
        )
    finally:
        con.close()


@contextmanager
def _private_workspace(
    con: duckdb.DuckDBPyConnection, db: str | Path, memory_limit: str
) -> Iterator[Path]:
    """A mode-0700 directory beside ``db`` for the staging database (attached as ``stage``)
    and DuckDB's spill files, with the memory settings of an import; removed on exit."""
    parent = Path(tempfile.gettempdir()) if str(db) == ":memory:" else Path(db).resolve().parent
    prefix = f".{Path(str(db)).name}.import-"
    sweep_folders(parent, f"{prefix}*")  # killed imports' folders (their owner is gone)
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    claim_folder(work)
    quoted = str(work).replace("'", "''")
    try:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(f"SET temp_directory = '{quoted}'")
        # No statement of the import depends on the order of rows it does not sort.
        con.execute("SET preserve_insertion_order = false")
        con.execute(f"ATTACH '{quoted}/stage.duckdb' AS stage")
        yield work
    finally:
        try:
            con.execute("DETACH DATABASE IF EXISTS stage")
            for kind in _TOKEN_KINDS:
                with suppress(duckdb.Error):  # not registered: the import stopped before
                    con.remove_function(f"pii_{kind}")
        finally:
            shutil.rmtree(work, ignore_errors=True)


def _register_tokens(con: duckdb.DuckDBPyConnection, pseudo: Pseudonymiser) -> None:
    """SQL functions ``pii_borrower``, ``pii_full_name``, ``pii_national_id``, ``pii_phone``:
    VARCHAR → keyed token (NULL stays NULL), vectorised over Arrow batches."""
    for kind in _TOKEN_KINDS:
        con.create_function(
            f"pii_{kind}",
            _tokeniser(pseudo, kind),
            ["VARCHAR"],
            "VARCHAR",
            type="arrow",
            null_handling="special",
            side_effects=False,
        )


def _tokeniser(pseudo: Pseudonymiser, kind: str) -> Callable[[pa.ChunkedArray], pa.Array]:
    """The Arrow UDF body for one kind of personal value (one DuckDB vector per call)."""

    def tokens(values: pa.ChunkedArray) -> pa.Array:
        return pa.array(pseudo.tokens(kind, values.to_pylist()), pa.string())

    return tokens


def _source(kind: str, path: Path) -> str:
    suffix = "".join(path.suffixes).lower()
    if suffix.endswith((".parquet", ".pq")):
        return "read_parquet(?)"
    if suffix.endswith((".csv", ".csv.gz", ".txt")):
        return "read_csv(?, all_varchar = true, header = true)"
    raise InputError("unknown format; use .csv or .parquet", field=kind, record=str(path))


def _stage(con: duckdb.DuckDBPyConnection, kind: str, path: Path, cap: Decimal, as_of: date) -> int:
    """Read ``path`` once into ``stage.<kind>``: 1-based ``row_number``, the typed columns
    of :data:`_TYPED`, and ``errs`` (the row's field errors); copy the errors to
    ``stage.errors``. Checks the required columns first. Returns the rows read."""
    source = _source(kind, path)
    try:
        columns = [
            d[0] for d in con.execute(f"SELECT * FROM {source} LIMIT 0", [str(path)]).description
        ]
    except _UNREADABLE as exc:
        raise _unreadable(exc, kind, path) from None
    names = {c.strip().lower(): c for c in columns}
    missing = [c for c in REQUIRED[kind] if c not in names]
    if missing:
        raise InputError(
            "missing required column(s): " + ", ".join(missing), field=kind, record=str(path)
        )
    text = []
    for col in REQUIRED[kind] + OPTIONAL[kind]:
        if col in names:
            quoted = '"' + names[col].replace('"', '""') + '"'
            text.append(f"nullif(trim(CAST({quoted} AS VARCHAR)), '') AS {col}")
        else:
            text.append(f"CAST(NULL AS VARCHAR) AS {col}")
    if kind == "borrowers":
        text.append(f"{_SEASON} AS season")
    errs = ", ".join(
        f"CASE WHEN {cond} THEN {{'field': '{fld}', 'reason': {reason}}} END"
        for fld, cond, reason in _checks(kind, cap, as_of)
    )
    # A subquery, not a CTE: nothing between the scan and the token functions is
    # materialised, so plaintext personal data is never stored or spilled.
    con.execute("SET preserve_insertion_order = true")  # row_number() OVER () = file order
    try:
        con.execute(
            f"CREATE TABLE stage.{kind} AS SELECT row_number, {', '.join(_TYPED[kind])}, "
            f"list_filter([{errs}], lambda e: e IS NOT NULL) AS errs "
            f"FROM (SELECT row_number() OVER () AS row_number, {', '.join(text)} "
            f"FROM {source}) AS f",
            [str(path)],
        )
    except _UNREADABLE as exc:
        raise _unreadable(exc, kind, path) from None
    finally:
        con.execute("SET preserve_insertion_order = false")
    con.execute(
        f"INSERT INTO stage.errors SELECT '{kind}', row_number, {_ID[kind]}, e.field, e.reason "
        f"FROM (SELECT row_number, {_ID[kind]}, unnest(errs) AS e FROM stage.{kind} "
        "WHERE len(errs) > 0)"
    )
    return con.execute(f"SELECT count(*) FROM stage.{kind}").fetchall()[0][0]


def _unreadable(exc: Exception, kind: str, path: Path) -> InputError:
    """The error for a file DuckDB cannot read, without the raw line DuckDB quotes."""
    text = str(exc)
    line = re.search(r"Line:?\s*(\d+)", text)
    where = f" (line {line.group(1)})" if line else ""
    if "utf-8" in text.lower() or "unicode" in text.lower():
        return InputError(
            f"not UTF-8 text{where}; save the file as UTF-8 CSV", field=kind, record=str(path)
        )
    return InputError(f"cannot read the file: {scrub_text(text)}", field=kind, record=str(path))


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
    # Through DECIMAL: a cast to an integer type would round 12.5 to 13 without a word.
    d = f"TRY_CAST({col} AS DECIMAL(38,10))"
    v = f"TRY_CAST({d} AS BIGINT)"
    checks = [
        (col, f"{col} IS NOT NULL AND ({d} IS NULL OR {d} <> trunc({d}))",
         f"'not a whole number: ' || left({col}, 40)"),
        (col, f"{d} = trunc({d}) AND {v} NOT BETWEEN {lo} AND {hi}",
         f"'must be between {lo} and {hi}, got ' || left({col}, 40)"),
    ]  # fmt: skip
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
    """``(field, failing condition, reason)`` in SQL over one row's text columns (the
    file's values, trimmed, empty as NULL) for every rule that needs no other row."""
    if kind == "borrowers":
        return [
            ("borrower_id", "borrower_id IS NULL", "'required'"),
            *_money_checks("monthly_income", positive=True, required=True),
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
            # On the plaintext, in the read that tokenises it; the reason never echoes it.
            ("phone",
             "phone IS NOT NULL AND length(regexp_replace(phone, '[^0-9]', '', 'g')) "
             "NOT BETWEEN 6 AND 15",
             "'not a phone number (6 to 15 digits)'"),
        ]  # fmt: skip
    if kind == "loans":
        rate = "TRY_CAST(annual_rate_percent AS DECIMAL(38,10))"
        accepted = ", ".join(FREQUENCY_MONTHS)
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
            ("annual_rate_percent", f"{rate} > {_MAX_RATE_PERCENT} AND {rate} <= {cap}",
             f"'rate ' || annual_rate_percent || '% is above {_MAX_RATE_PERCENT}%, the most "
             "the store handles'"),
            *_int_checks("term_months", 1, 600, required=True),
            *_date_checks("origination_date", as_of, required=True),
            *_money_checks("outstanding_principal", positive=False, required=True),
            # At most the principal with every month's interest capitalised over the term
            # (restructured loans legitimately owe a little more than they borrowed).
            ("outstanding_principal",
             f"TRY_CAST(outstanding_principal AS DOUBLE) > {_MOST_OWED} + 0.01",
             "'is more than the principal with all its interest capitalised over the term "
             f"(' || round({_MOST_OWED}, 2) || '): ' || left(outstanding_principal, 40)"),
            *_money_checks("accrued_interest", positive=False, required=False),
            *_money_checks("arrears_amount", positive=False, required=False),
            *_money_checks("penalty_fees", positive=False, required=False),
            *_int_checks("days_past_due", 0, 36500, required=False),
            ("frequency",
             f"frequency IS NOT NULL AND lower(frequency) NOT IN "
             f"({', '.join(repr(f) for f in FREQUENCY_MONTHS)})",
             "'unsupported frequency ' || left(frequency, 40) || '; the store keeps "
             f"month-based contracts: use one of {accepted}'"),
            ("term_months",
             "TRY_CAST(term_months AS BIGINT) % (CASE lower(coalesce(frequency, 'monthly')) "
             f"{_MONTHS_CASE} ELSE 1 END) <> 0",
             "'term of ' || term_months || ' months is not a whole number of ' "
             "|| coalesce(frequency, 'monthly') || ' periods'"),
        ]  # fmt: skip
    return [
        ("loan_id", "loan_id IS NULL", "'required'"),
        *_date_checks("payment_date", as_of, required=True),
        *_money_checks("amount", positive=True, required=True),
        ("due_date", "due_date IS NOT NULL AND TRY_CAST(due_date AS DATE) IS NULL",
         "'not a date (YYYY-MM-DD): ' || left(due_date, 40)"),
    ]  # fmt: skip


def _good(kind: str, columns: str = "*") -> str:
    """SQL for the rows of ``stage.<kind>`` with no error so far."""
    return (
        f"(SELECT {columns} FROM stage.{kind} WHERE row_number NOT IN "
        f"(SELECT row_number FROM stage.errors WHERE kind = '{kind}'))"
    )


def _check_across_rows(con: duckdb.DuckDBPyConnection, kind: str) -> None:
    """Add the errors that need other rows: duplicate ids in the file, references to
    borrowers / loans neither in the database nor among the file's good rows, payments
    before their loan's origination."""
    rid = _ID[kind]
    if kind != "payments":
        # Which of two rows with one id is right cannot be known: reject them all.
        con.execute(
            f"INSERT INTO stage.errors SELECT '{kind}', row_number, {rid}, '{rid}', "
            f"'duplicate {rid}: appears ' || n || ' times in this file' FROM (SELECT "
            f"row_number, {rid}, count(*) OVER (PARTITION BY {rid}) AS n FROM stage.{kind} "
            f"WHERE {rid} IS NOT NULL) WHERE n > 1"
        )
    if kind == "loans":
        in_file = (
            "AND s.borrower_id NOT IN " + _good("borrowers", "borrower_id")
            if _staged(con, "borrowers")
            else ""
        )
        con.execute(
            "INSERT INTO stage.errors SELECT 'loans', s.row_number, s.loan_id, 'borrower_id', "
            "'unknown borrower (not in the database nor in the borrowers file)' "
            "FROM stage.loans s WHERE s.borrower_id IS NOT NULL "
            f"AND s.borrower_id NOT IN (SELECT borrower_id FROM main.borrowers) {in_file}"
        )
    if kind == "payments":
        # The file's loan replaces the database's: its origination date is the one to check.
        file_loans = (
            _good("loans", "loan_id, origination_date")
            if _staged(con, "loans")
            else "(SELECT NULL::VARCHAR AS loan_id, NULL::DATE AS origination_date WHERE false)"
        )
        con.execute(
            f"""INSERT INTO stage.errors
            SELECT 'payments', row_number, loan_id, e.field, e.reason FROM (
                SELECT s.row_number, s.loan_id, unnest(list_filter([
                    CASE WHEN g.loan_id IS NULL AND l.loan_id IS NULL THEN
                        {{'field': 'loan_id', 'reason':
                          'unknown loan (not in the database nor in the loans file)'}} END,
                    CASE WHEN s.payment_date < coalesce(g.origination_date, l.origination_date)
                        THEN {{'field': 'payment_date', 'reason':
                          'is before the loan was originated: ' || s.payment_date}} END],
                    lambda e: e IS NOT NULL)) AS e
                FROM stage.payments s
                LEFT JOIN {file_loans} g USING (loan_id)
                LEFT JOIN (SELECT loan_id, origination_date FROM main.loans) l USING (loan_id)
                WHERE s.loan_id IS NOT NULL AND len(s.errs) = 0)"""
        )


def _staged(con: duckdb.DuckDBPyConnection, kind: str) -> bool:
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'stage' AND table_name = ?",
            [kind],
        ).fetchall()[0][0]
    )


def _prepare_load(con: duckdb.DuckDBPyConnection, files: dict[str, Path], as_of: date) -> None:
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
            FROM {_good("loans")} g LEFT JOIN main.loans l USING (loan_id)""",
            {"as_of": as_of},
        )
        con.execute(
            "CREATE TABLE stage.contract_terms AS SELECT loan_id, "
            "row_number() OVER (ORDER BY row_number) - 1 AS k, "
            "CAST(principal * 100 AS BIGINT) AS principal, "
            "CAST(annual_rate_percent * 10000 AS BIGINT) AS rate_e4, "
            f"CASE frequency {_MONTHS_CASE} END AS months, "
            "CAST(term_months AS BIGINT) AS term, origination_date AS start "
            f"FROM {_good('loans')} SEMI JOIN "
            "(SELECT loan_id FROM stage.loan_changes WHERE rebuild) USING (loan_id) ORDER BY k"
        )
    if "payments" in files:
        # A hash aggregate finds the few keys with several payments; numbering only those
        # avoids sorting every payment (measured 3× faster on 22.7M payments).
        con.execute(
            "CREATE TABLE stage.payment_days AS SELECT loan_id, payment_date "
            f"FROM {_good('payments')} GROUP BY ALL HAVING count(*) > 1"
        )
        con.execute(
            f"CREATE TABLE stage.payment_loans AS SELECT DISTINCT loan_id FROM {_good('payments')}"
        )


def _payment_rows() -> str:
    """SQL for the good payments with their ``seq``: the order of a payment among the
    loan's payments of that day, as in the file (1 for almost all)."""
    good = _good("payments")
    return f"""(SELECT loan_id, payment_date, 1 AS seq, amount, due_date
        FROM {good} ANTI JOIN stage.payment_days USING (loan_id, payment_date)
        UNION ALL
        SELECT loan_id, payment_date,
            CAST(row_number() OVER (PARTITION BY loan_id, payment_date ORDER BY row_number)
                 AS INTEGER),
            amount, due_date
        FROM {good} SEMI JOIN stage.payment_days USING (loan_id, payment_date))"""


def _load(
    con: duckdb.DuckDBPyConnection, files: dict[str, Path], import_id: str, as_of: date
) -> dict[str, int]:
    """Upsert the good rows, derive the payment record and record the bad rows, all in one
    transaction."""
    loaded = {}
    con.execute("BEGIN TRANSACTION")
    try:
        if "borrowers" in files:
            loaded["borrowers"] = _upsert_borrowers(con)
        if "loans" in files:
            loaded["loans"] = _upsert_loans(con, as_of)
        con.execute("CREATE OR REPLACE TEMP TABLE touched (loan_id VARCHAR)")
        if "loans" in files:
            con.execute(
                "INSERT INTO touched SELECT loan_id FROM stage.loan_changes WHERE rebuild OR moved"
            )
        if "payments" in files:
            loaded["payments"] = _upsert_payments(con)
        _derive_payment_record(con)
        con.execute("DROP TABLE touched")
        sources = " UNION ALL ".join(f"SELECT '{k}' AS kind, ? AS source_file" for k in files)
        con.execute(
            "INSERT INTO rejected_rows SELECT ?, NULL, s.source_file, e.row_number, e.record_id, "
            f"e.field, e.reason, current_timestamp FROM stage.errors e JOIN ({sources}) s "
            "USING (kind) ORDER BY e.kind, e.row_number",
            [import_id, *(str(p) for p in files.values())],
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


def _upsert_borrowers(con: duckdb.DuckDBPyConnection) -> int:
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
        FROM {_good("borrowers")} g LEFT JOIN borrowers b USING (borrower_id)"""
    )
    loaded = con.execute("SELECT count(*) FROM incoming").fetchall()[0][0]
    _write_rows(con, "borrowers", "borrower_id", _BORROWER_COLUMNS)
    return loaded


def _rowcount(cursor: duckdb.DuckDBPyConnection) -> int:
    """Rows an INSERT / DELETE reported changing."""
    row = cursor.fetchone()
    return int(row[0]) if row else 0


def _insert_contracts(con: duckdb.DuckDBPyConnection, as_of: date) -> None:
    """Replace the contract schedules of the good loans by ones built from their terms,
    :data:`CONTRACT_CHUNK` loans at a time (numpy holds one chunk; the inserted rows are
    written ahead to the database file as the transaction grows). Each loan's installment,
    installments due after ``as_of`` and next due date go to the temporary table
    ``contract_summary`` on the way (no second pass over the schedules)."""
    con.execute(
        "DELETE FROM contract_installments WHERE loan_id IN "
        "(SELECT loan_id FROM stage.loan_changes WHERE stored AND rebuild)"
    )
    con.execute(
        "CREATE OR REPLACE TEMP TABLE contract_summary (loan_id VARCHAR, "
        "regular_payment DECIMAL(18,2), remaining_term INTEGER, next_due_date DATE)"
    )
    after = np.datetime64(as_of, "D")
    total = con.execute("SELECT count(*) FROM stage.contract_terms").fetchall()[0][0]
    for first in range(0, total, CONTRACT_CHUNK):
        terms = con.execute(
            "SELECT * FROM stage.contract_terms WHERE k >= ? AND k < ? ORDER BY k",
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
                "number": rows["number"].astype(np.int32),
                "due_date": rows["due_date"],
                **{c: money(rows[c]) for c in ("payment", "principal", "interest", "balance")},
            }
        )
        _append(con, frame, "contract_installments")
        # Installment 1 holds each loan's installment; the next due date is the earliest
        # one after as_of (NaT when none is left).
        n = len(start)
        regular = np.zeros(n, dtype=np.int64)
        one = rows["number"] == 1
        regular[rows["loan"][one]] = rows["payment"][one]
        ahead = rows["due_date"] > after
        remaining = np.bincount(rows["loan"][ahead], minlength=n)
        earliest = np.full(n, _NEVER, dtype=np.int64)
        np.minimum.at(earliest, rows["loan"][ahead], rows["due_date"][ahead].astype(np.int64))
        next_due = earliest.astype("datetime64[D]")
        next_due[earliest == _NEVER] = np.datetime64("NaT")
        _append(
            con,
            pa.table(
                {
                    "loan_id": ids,
                    "regular_payment": money(regular),
                    "remaining_term": remaining.astype(np.int32),
                    "next_due_date": next_due,
                }
            ),
            "contract_summary",
        )


def money(cents: np.ndarray) -> pa.Array:
    """Integer cents as an Arrow ``decimal64(18, 2)`` array: the same 64-bit integers
    reinterpreted, so DuckDB stores them as ``DECIMAL(18,2)`` with no arithmetic."""
    cents = np.ascontiguousarray(cents, dtype=np.int64)
    return pa.Array.from_buffers(pa.decimal64(18, 2), len(cents), [None, pa.py_buffer(cents)])


def _upsert_loans(con: duckdb.DuckDBPyConnection, as_of: date) -> int:
    """Upsert the good loans by id, rebuilding the contracts of new loans and of loans
    whose terms changed. A stored loan keeps its restructure and cure history (an active
    one that was restructured stays ``restructured``). Returns the number of good rows."""
    _insert_contracts(con, as_of)
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
            FROM {_good("loans")})
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


def _upsert_payments(con: duckdb.DuckDBPyConnection) -> int:
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


def _derive_payment_record(con: duckdb.DuckDBPyConnection) -> None:
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
            status = 'closed' AS closed, CASE frequency {_MONTHS_CASE} END AS months,
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
        _append(con, frame, "loan_month_truth")
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


def _append(
    con: duckdb.DuckDBPyConnection, frame: pa.Table, table: str, columns: str | None = None
) -> None:
    """Insert ``frame`` (its columns projected by ``columns``, SQL) into ``table``.

    Through a relation, not a registered view: inside a transaction DuckDB keeps every
    registered Python object alive until commit, which made memory grow with the import.
    """
    relation = con.from_arrow(frame)
    if columns is not None:
        relation = relation.project(columns)
    relation.insert_into(table)
