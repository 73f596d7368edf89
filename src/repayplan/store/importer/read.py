"""Step 1, stage: each file read once into ``stage.<kind>``, typed (:mod:`.columns`),
tokenised (:mod:`.tokenise`) and checked field by field (:mod:`.validate`) in that one read.
"""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb

from repayplan.errors import InputError, scrub_text
from repayplan.store.importer.columns import ID, OPTIONAL, REQUIRED, SEASON, TYPED
from repayplan.store.importer.validate import row_checks

# What a malformed or unreadable file raises (an out-of-memory error is not the file's fault).
_UNREADABLE = (duckdb.InvalidInputException, duckdb.IOException, duckdb.ConversionException)


def _source(kind: str, path: Path) -> str:
    suffix = "".join(path.suffixes).lower()
    if suffix.endswith((".parquet", ".pq")):
        return "read_parquet(?)"
    if suffix.endswith((".csv", ".csv.gz", ".txt")):
        return "read_csv(?, all_varchar = true, header = true)"
    raise InputError("unknown format; use .csv or .parquet", field=kind, record=str(path))


def stage_file(
    con: duckdb.DuckDBPyConnection, kind: str, path: Path, cap: Decimal, as_of: date
) -> int:
    """Read ``path`` once into ``stage.<kind>``: 1-based ``row_number``, the typed columns
    of :data:`TYPED`, and ``errs`` (the row's field errors); copy the errors to
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
        text.append(f"{SEASON} AS season")
    errs = ", ".join(
        f"CASE WHEN {cond} THEN {{'field': '{fld}', 'reason': {reason}}} END"
        for fld, cond, reason in row_checks(kind, cap, as_of)
    )
    # A subquery, not a CTE: nothing between the scan and the token functions is
    # materialised, so plaintext personal data is never stored or spilled.
    con.execute("SET preserve_insertion_order = true")  # row_number() OVER () = file order
    try:
        con.execute(
            f"CREATE TABLE stage.{kind} AS SELECT row_number, {', '.join(TYPED[kind])}, "
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
        f"INSERT INTO stage.errors SELECT '{kind}', row_number, {ID[kind]}, e.field, e.reason "
        f"FROM (SELECT row_number, {ID[kind]}, unnest(errs) AS e FROM stage.{kind} "
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
