"""Contract schedules for the imported loans that are new or whose terms changed, built in
numpy (:func:`repayplan.store.contract.schedule_rows`) a chunk of loans at a time.
"""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pyarrow as pa

from repayplan.store.contract import schedule_rows
from repayplan.store.importer.frames import append, money

#: Loans whose contract schedules are built and inserted at a time (bounds numpy's memory).
CONTRACT_CHUNK = 20_000
_NEVER = np.iinfo(np.int64).max


def insert_contracts(con: duckdb.DuckDBPyConnection, as_of: date) -> None:
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
        append(con, frame, "contract_installments")
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
        append(
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
