"""Side by side: the store of the commit before the concurrency work ("old": one DuckDB file)
against this tree ("new": private engine file + published read-only copy + event inbox), on
the same work, back to back in one session.

Usage: ``.venv/bin/python benchmarks/store_concurrency.py --base DIR [--import-loans 100000]
[--nightly-loans 10000] [--workdir /tmp/repayplan-store-bench] [--rounds 1]``

``--base``: a checkout of the old code (``git archive <commit> | tar -x -C DIR``); its
``src`` is put first on ``PYTHONPATH`` for the "old" steps. Each step runs in its own
process. Steps, per code version:

1. **import**: ``import_files`` of a demo book of ``--import-loans`` loans exported to CSV
   (``benchmarks/import_scale.py``'s layout) into a fresh database — wall seconds, which for
   "new" include publishing the copy;
2. **nightly**: ``replan`` (threads, 2 workers, triggered loans) of a ``--nightly-loans``
   demo book (built by each version, same seed) — wall seconds, the write and publish
   stages;
3. **analyst query**: connect + four README queries, median of 5, on what each version gives
   analysts (old: the engine file; new: the published copy, from Python DuckDB 2.0 and from
   the ``duckdb-cli`` 1.5.6 binary), and whether a reader can open it while a writer holds
   the engine;
4. **events** (new only): ``record_event`` latency (p50/p99 over 500) and ``apply_events``.

Prints a table and stores JSON under ``benchmarks/results/store-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

HERE = Path(__file__).resolve().parent
NEW_SRC = HERE.parent / "src"
RESULTS = HERE / "results"
AS_OF = date(2026, 11, 23)
QUERIES = (
    "SELECT delinquency_bucket, sum(loans) AS loans, sum(outstanding_principal) AS balance "
    "FROM portfolio_status GROUP BY ALL ORDER BY delinquency_bucket",
    "SELECT b.segment, l.product, avg((l.days_past_due > 30)::INT) AS dpd30_rate, "
    "count(*) AS loans FROM loans l JOIN borrowers b USING (borrower_id) "
    "WHERE l.status <> 'closed' GROUP BY ALL ORDER BY dpd30_rate DESC",
    "SELECT alternative, count(*), avg(plan_first_payment / contract_payment) AS "
    "payment_ratio, sum(plan_minus_contract_total) AS extra_paid FROM plan_vs_contract "
    "GROUP BY alternative",
    "SELECT * FROM run_summary ORDER BY started_at DESC LIMIT 10",
)


def _child(src: Path, step: str, *args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": str(src)}
    out = subprocess.run(
        [sys.executable, __file__, "--child", step, *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{step} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


# --- child steps (run with the code under test first on sys.path) ---------------------------


def step_build(db: str, loans: str, export_dir: str) -> dict:
    from repayplan.store import init_demo

    tic = time.perf_counter()
    init_demo(db, loans=int(loans), seed=7, as_of=AS_OF)
    built = time.perf_counter() - tic
    if export_dir:
        sys.path.insert(0, str(HERE))
        from import_scale import export_demo

        export_demo(Path(db), Path(export_dir), "csv")
    return {"seconds": built}


def step_import(db: str, folder: str) -> dict:
    import repayplan
    from repayplan.store import import_files

    files = {k: Path(folder) / f"{k}.csv" for k in ("borrowers", "loans", "payments")}
    tic = time.perf_counter()
    summary = import_files(db, **files, as_of=AS_OF)
    wall = time.perf_counter() - tic
    return {
        "code": repayplan.__file__,
        "seconds": wall,
        "importer_seconds": summary.seconds,
        "loaded": summary.loaded,
        "engine_mb": Path(db).stat().st_size / 1e6,
    }


def step_nightly(db: str) -> dict:
    import repayplan
    from repayplan.flows.run import replan

    tic = time.perf_counter()
    summary = replan(db, AS_OF, runner="threads", workers=2)
    wall = time.perf_counter() - tic
    return {
        "code": repayplan.__file__,
        "seconds": wall,
        "status": summary.status,
        "loans_replanned": summary.counts.get("loans_replanned"),
        "write_s": summary.timings.get("write"),
        "publish_s": summary.timings.get("publish"),
        "candidates_s": summary.timings.get("candidates"),
    }


def step_query(path: str) -> dict:
    import duckdb

    times = []
    for _ in range(5):
        tic = time.perf_counter()
        con = duckdb.connect(path, read_only=True)
        for sql in QUERIES:
            con.execute(sql).fetchall()
        con.close()
        times.append(time.perf_counter() - tic)
    return {"median_ms": statistics.median(times) * 1000, "mb": Path(path).stat().st_size / 1e6}


def step_open_during_write(db: str, path: str) -> dict:
    """Hold the engine as a writer (another process), then try to open ``path`` read-only."""
    import duckdb

    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb,sys,time; c=duckdb.connect(sys.argv[1]); "
            "print('held', flush=True); time.sleep(30)",
            db,
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    holder.stdout.readline()
    try:
        tic = time.perf_counter()
        con = duckdb.connect(path, read_only=True)
        con.execute(QUERIES[0]).fetchall()
        con.close()
        return {"opens": True, "ms": (time.perf_counter() - tic) * 1000}
    except duckdb.Error as exc:
        return {"opens": False, "error": str(exc).splitlines()[0][:120]}
    finally:
        holder.kill()
        holder.wait()


def step_events(db: str) -> dict:
    from repayplan.store.events import apply_events, record_event

    lat = []
    for i in range(500):
        tic = time.perf_counter()
        record_event(db, "offer.accepted", f"o{i}", {"cents": i}, idempotency_key=f"k{i}")
        lat.append(time.perf_counter() - tic)
    lat.sort()
    tic = time.perf_counter()
    applied = apply_events(db)
    return {
        "record_p50_ms": lat[len(lat) // 2] * 1000,
        "record_p99_ms": lat[int(len(lat) * 0.99)] * 1000,
        "apply_500_s": time.perf_counter() - tic,
        "applied": applied.applied,
    }


def step_cli_query(path: str) -> dict:
    cli = Path(sys.executable).parent / "duckdb"
    times = []
    for _ in range(5):
        tic = time.perf_counter()
        out = subprocess.run(
            [str(cli), "-readonly", path, "-c", ";\n".join(QUERIES)], capture_output=True
        )
        times.append(time.perf_counter() - tic)
    return {"median_ms": statistics.median(times) * 1000, "rc": out.returncode}


STEPS = {
    "build": step_build,
    "import": step_import,
    "nightly": step_nightly,
    "query": step_query,
    "open_during_write": step_open_during_write,
    "events": step_events,
    "cli_query": step_cli_query,
}


# --- driver ---------------------------------------------------------------------------------


def _fresh(path: Path) -> None:
    stem = path.with_suffix("")
    for p in path.parent.glob(stem.name + "*"):
        shutil.rmtree(p) if p.is_dir() else p.unlink()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--child", nargs="+")
    parser.add_argument("--base", type=Path)
    parser.add_argument("--import-loans", type=int, default=100_000)
    parser.add_argument("--nightly-loans", type=int, default=10_000)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/repayplan-store-bench"))
    args = parser.parse_args()
    if args.child:
        print(json.dumps(STEPS[args.child[0]](*args.child[1:])))
        return
    if args.base is None:
        parser.error("--base DIR (the old code) is required")
    old_src = args.base.resolve() / "src"
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    versions = {"old": old_src, "new": NEW_SRC}
    result: dict = {"when": datetime.now(UTC).isoformat(), "sizes": vars(args) | {}}
    result["sizes"] = {"import_loans": args.import_loans, "nightly_loans": args.nightly_loans}

    files = work / f"files-{args.import_loans}"
    if not (files / "payments.csv").exists():
        src_db = work / f"src-{args.import_loans}.duckdb"
        _fresh(src_db)
        _child(old_src, "build", str(src_db), str(args.import_loans), str(files))

    for label, src in versions.items():
        db = work / label / "imported.duckdb"
        db.parent.mkdir(exist_ok=True)
        _fresh(db)
        result[f"import_{label}"] = _child(src, "import", str(db), str(files))
        print(label, "import", result[f"import_{label}"], flush=True)
    for label, src in versions.items():
        # Each version builds its own book (same seed: the same loans), so the new one's
        # engine file is what the new code creates.
        db = work / label / "portfolio.duckdb"
        _fresh(db)
        result[f"build_{label}"] = _child(src, "build", str(db), str(args.nightly_loans), "")
        result[f"nightly_{label}"] = _child(src, "nightly", str(db))
        print(label, "nightly", result[f"nightly_{label}"], flush=True)
    old_db = work / "old" / "portfolio.duckdb"
    new_db = work / "new" / "portfolio.duckdb"
    new_copy = work / "new" / "portfolio.analyst.duckdb"
    result["query_old_engine"] = _child(NEW_SRC, "query", str(old_db))
    result["query_new_copy"] = _child(NEW_SRC, "query", str(new_copy))
    result["query_new_copy_cli"] = _child(NEW_SRC, "cli_query", str(new_copy))
    result["open_old_during_write"] = _child(NEW_SRC, "open_during_write", str(old_db), str(old_db))
    result["open_new_during_write"] = _child(
        NEW_SRC, "open_during_write", str(new_db), str(new_copy)
    )
    result["events_new"] = _child(NEW_SRC, "events", str(new_db))
    for key in (
        "query_old_engine",
        "query_new_copy",
        "query_new_copy_cli",
        "open_old_during_write",
        "open_new_during_write",
        "events_new",
    ):
        print(key, result[key], flush=True)
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"store-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(result, indent=2, default=str))
    print("stored", out)


if __name__ == "__main__":
    main()
