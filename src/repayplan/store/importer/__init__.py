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
   ``as_of`` changed (:func:`derive_payment_record`), one ``rejected_rows`` row per bad
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
Re-importing the same 1M files takes about 2.5 minutes at 0.7 GB and writes nothi

**The modules, in the order of the pipeline** (each imports only those above it):

- :mod:`~repayplan.store.importer.columns` — the files' columns (required, optional) and
  the typed staging columns computed from their text;
- :mod:`~repayplan.store.importer.tokenise` — personal data to keyed tokens, as SQL
  functions the read calls;
- :mod:`~repayplan.store.importer.staging` — the private workspace and the staging
  database, and the SQL for a kind's good staged rows;
- :mod:`~repayplan.store.importer.validate` — the field rules checked in the read, and
  step 2: the checks across rows;
- :mod:`~repayplan.store.importer.read` — step 1: one read of a file, typed, tokenised
  and checked;
- :mod:`~repayplan.store.importer.frames` — Arrow arrays and tables into DuckDB;
- :mod:`~repayplan.store.importer.contracts` — contract schedules of new and changed loans;
- :mod:`~repayplan.store.importer.upsert` — what the load needs, prepared in the staging
  database, and the upserts of borrowers, loans and payments;
- :mod:`~repayplan.store.importer.record` — the per-due-date payment record;
- :mod:`~repayplan.store.importer.load` — step 3: the one transaction;
- :mod:`~repayplan.store.importer.pipeline` — :func:`import_files`, the steps in order, and
  :class:`ImportSummary`.
"""

from repayplan.store.importer.columns import OPTIONAL, REQUIRED
from repayplan.store.importer.contracts import CONTRACT_CHUNK
from repayplan.store.importer.frames import money
from repayplan.store.importer.pipeline import (
    DEFAULT_MEMORY_LIMIT,
    DEFAULT_RATE_CAP_PERCENT,
    ImportSummary,
    import_files,
)
from repayplan.store.importer.record import MISS_TOLERANCE, RECORD_CHUNK, payment_record

__all__ = [
    "CONTRACT_CHUNK",
    "DEFAULT_MEMORY_LIMIT",
    "DEFAULT_RATE_CAP_PERCENT",
    "MISS_TOLERANCE",
    "OPTIONAL",
    "RECORD_CHUNK",
    "REQUIRED",
    "ImportSummary",
    "import_files",
    "money",
    "payment_record",
]
