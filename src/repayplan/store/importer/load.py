"""Step 3, load: the good rows upserted, the payment record derived, the bad rows and the
``imports`` row recorded, all in one transaction.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import duckdb

from repayplan.store.importer.record import derive_payment_record
from repayplan.store.importer.upsert import upsert_borrowers, upsert_loans, upsert_payments


def load(
    con: duckdb.DuckDBPyConnection, files: dict[str, Path], import_id: str, as_of: date
) -> dict[str, int]:
    """Upsert the good rows, derive the payment record and record the bad rows, all in one
    transaction."""
    loaded = {}
    con.execute("BEGIN TRANSACTION")
    try:
        if "borrowers" in files:
            loaded["borrowers"] = upsert_borrowers(con)
        if "loans" in files:
            loaded["loans"] = upsert_loans(con, as_of)
        con.execute("CREATE OR REPLACE TEMP TABLE touched (loan_id VARCHAR)")
        if "loans" in files:
            con.execute(
                "INSERT INTO touched SELECT loan_id FROM stage.loan_changes WHERE rebuild OR moved"
            )
        if "payments" in files:
            loaded["payments"] = upsert_payments(con)
        derive_payment_record(con)
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
