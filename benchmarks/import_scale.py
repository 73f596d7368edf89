"""Benchmark ``repayplan import`` at scale: throughput (rows/s) and peak memory per size.

Usage: ``.venv/bin/python benchmarks/import_scale.py [--sizes 100000,1000000]
[--workdir /tmp/repayplan-import-scale] [--format csv|parquet] [--reuse] [--repeat]``.

For each size N, in its own process (so peak RSS belongs to that step alone):

1. **demo**: ``store.init_demo`` builds a demo book of N loans (seed 7, as of 2026-11-23, the
   figures in the README's demo section), timed and measured on its own;
   **export**: DuckDB ``COPY`` writes its borrowers, loans and payments to
   ``<workdir>/<N>/{borrowers,loans,payments}.<format>`` in the importer's column layout
   (:func:`export_demo`). Both are skipped with ``--reuse`` when the files are there.
2. **import**: ``store.import_files`` loads the three files into a fresh database, with the
   default memory settings of the importer.
3. **repeat** (``--repeat``): the same files imported again into that database (the no-op
   upsert), timed and measured in a fresh process.

Peak RSS is ``ru_maxrss`` of the step's process (MiB). Prints one line per step and stores
the rows as JSON under ``benchmarks/results/import-<UTC time>.json``. The same figure for the
CLI: ``/usr/bin/time -v repayplan import --db X --borrowers B --loans L --payments P``
("Maximum resident set size").
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import platform
import resource
import shutil
import time
from collections.abc import Callable
from datetime import UTC, date, datetime
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
AS_OF = date(2026, 11, 23)
SEED = 7
KINDS = ("borrowers", "loans", "payments")

_EXPORT = {
    "borrowers": """SELECT borrower_id, monthly_income, essential_expenses, other_debt_payments,
        segment, array_to_string(list_transform(income_seasonality,
            lambda x: round(x, 6)::VARCHAR), ';') AS income_seasonality,
        round(income_volatility, 6) AS income_volatility,
        'Borrower ' || substr(borrower_id, 2, 8) AS full_name,
        'ID-' || substr(borrower_id, 10, 10) AS national_id,
        '+1 555 ' || lpad(CAST(hash(borrower_id) % 10000000 AS VARCHAR), 7, '0') AS phone
        FROM borrowers ORDER BY borrower_id""",
    "loans": """SELECT loan_id, borrower_id, product, principal, annual_rate_percent,
        term_months, origination_date, outstanding_principal, accrued_interest, arrears_amount,
        penalty_fees, days_past_due, frequency FROM loans ORDER BY loan_id""",
    "payments": """SELECT loan_id, payment_date, amount, due_date FROM payments
        ORDER BY loan_id, payment_date, seq""",
}


def export_demo(db: Path, out_dir: Path, fmt: str = "csv") -> dict[str, Path]:
    """Write the demo book in ``db`` as import files (one per kind) under ``out_dir``.

    Columns are the importer's (README, "Importing a lender's data"): the borrowers'
    seasonality as 12 ``;``-separated factors, money with 2 decimals, dates ``YYYY-MM-DD``.
    The demo keeps no personal data, so names, national ids and phone numbers are made up
    from the borrower id (the import must tokenise four values per borrower, as with a
    real book). The demo's borrower ids are already pseudonyms; the import tokenises them
    again.
    """
    import duckdb

    out_dir.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute("SET memory_limit = '512MB'")  # the sorts spill rather than fill memory
        con.execute("SET preserve_insertion_order = true")
        paths = {}
        for kind, sql in _EXPORT.items():
            path = out_dir / f"{kind}.{fmt}"
            options = "(HEADER, DELIMITER ',')" if fmt == "csv" else "(FORMAT parquet)"
            con.execute(f"COPY ({sql}) TO '{path}' {options}")
            paths[kind] = path
        return paths
    finally:
        con.close()


def _rss_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)


def _demo_step(loans: int, out_dir: Path, fmt: str, queue: mp.Queue) -> None:
    from repayplan.store import init_demo

    out_dir.mkdir(parents=True, exist_ok=True)
    tic = time.perf_counter()
    summary = init_demo(out_dir / "demo.duckdb", loans=loans, seed=SEED, as_of=AS_OF)
    build = time.perf_counter() - tic
    rows = sum(summary.rows.values())
    queue.put(
        {
            "step": "demo",
            "loans": loans,
            "seconds": round(build, 2),
            "rows": rows,
            "rows_per_second": round(rows / build),
            "peak_rss_mib": _rss_mib(),
        }
    )


def _export_step(loans: int, out_dir: Path, fmt: str, queue: mp.Queue) -> None:
    db = out_dir / "demo.duckdb"
    tic = time.perf_counter()
    paths = export_demo(db, out_dir, fmt)
    seconds = time.perf_counter() - tic
    queue.put(
        {
            "step": "export",
            "loans": loans,
            "format": fmt,
            "seconds": round(seconds, 2),
            "rows": 0,
            "rows_per_second": 0,
            "file_mib": {k: round(p.stat().st_size / 2**20) for k, p in paths.items()},
            "peak_rss_mib": _rss_mib(),
        }
    )
    for extra in (db, Path(f"{db}.pii-key"), Path(f"{db}.wal")):
        extra.unlink(missing_ok=True)


def _import_step(step: str, loans: int, out_dir: Path, fmt: str, queue: mp.Queue) -> None:
    from repayplan.store import import_files

    db = out_dir / "import.duckdb"
    if step == "import":
        for old in (db, Path(f"{db}.wal"), Path(f"{db}.pii-key")):
            old.unlink(missing_ok=True)
    files = {k: out_dir / f"{k}.{fmt}" for k in KINDS}
    tic = time.perf_counter()
    summary = import_files(db, **files, as_of=AS_OF)
    seconds = time.perf_counter() - tic
    rows = sum(summary.read.values())
    queue.put(
        {
            "step": step,
            "loans": loans,
            "format": fmt,
            "seconds": round(seconds, 2),
            "rows": rows,
            "read": summary.read,
            "loaded": summary.loaded,
            "rejected": summary.rejected,
            "rows_per_second": round(rows / seconds),
            "peak_rss_mib": _rss_mib(),
            "db_mib": round(db.stat().st_size / 2**20),
        }
    )


def _run(target: Callable[..., None], *args: object) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    row = queue.get()
    proc.join()
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100000")
    parser.add_argument("--workdir", default="/tmp/repayplan-import-scale")
    parser.add_argument("--format", default="csv", choices=("csv", "parquet"))
    parser.add_argument("--reuse", action="store_true", help="reuse exported files if present")
    parser.add_argument("--repeat", action="store_true", help="also time a re-import")
    parser.add_argument("--keep", action="store_true", help="keep the files and databases")
    args = parser.parse_args()
    rows = []
    for size in (int(s) for s in args.sizes.split(",")):
        out_dir = Path(args.workdir) / str(size)
        have = all((out_dir / f"{k}.{args.format}").exists() for k in KINDS)
        steps = [] if args.reuse and have else [("demo", _demo_step), ("export", _export_step)]
        steps.append(("import", _import_step))
        if args.repeat:
            steps.append(("repeat", _import_step))
        for step, target in steps:
            if step == "demo":
                shutil.rmtree(out_dir, ignore_errors=True)
            if step in ("demo", "export"):
                row = _run(target, size, out_dir, args.format)
            else:
                row = _run(target, step, size, out_dir, args.format)
            rows.append(row)
            print(
                f"{size:>9,} loans  {step:<7} {row['rows']:>11,} rows  {row['seconds']:>8.1f} s  "
                f"{row['rows_per_second']:>9,} rows/s  peak RSS {row['peak_rss_mib']:>6,} MiB",
                flush=True,
            )
        if not args.keep:
            for name in ("import.duckdb", "import.duckdb.wal", "import.duckdb.pii-key"):
                (out_dir / name).unlink(missing_ok=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"import-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    machine = {
        "python": platform.python_version(),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
    }
    out.write_text(json.dumps({"machine": machine, "as_of": str(AS_OF), "rows": rows}, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
