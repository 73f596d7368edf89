"""Benchmark the whole nightly flow on generated portfolios: time per stage and peak memory.

Usage: ``.venv/bin/python benchmarks/nightly_scale.py [--sizes 10000,100000] [--million]
[--runner processes] [--workers 2] [--scope all]``.

For each size: build a demo portfolio of that many loans (``store.init_demo``) and fit the
risk model on it (``risk.pd_model.fit``), timed apart from the flow; then run the real
Prefect flow (``repayplan.flows.run.replan``) once with ``--scope all`` (every open loan fully
re-planned, several alternatives each) or ``triggered``. The build and the flow each run in
a fresh process so that peak RSS (``ru_maxrss`` of that process and of its largest worker
process) belongs to the flow alone. Prints a table with seconds per stage, seconds per
re-planned loan and the linearity ratio (seconds per loan against the smallest size; about
1 means cost grows linearly), and stores the rows as JSON under
``benchmarks/results/nightly-<timestamp>.json``.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import tempfile
import time
from datetime import UTC, date, datetime
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
AS_OF = date(2025, 6, 30)


def _peaks() -> dict[str, int]:
    """Peak RSS (MiB) of this process and of its largest child process."""
    return {
        "self": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "child": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
    }


def build_portfolio(db: Path, loans: int, queue: mp.Queue) -> None:
    """Demo portfolio and risk model (its own process: its memory is not the flow's)."""
    from repayplan.risk import pd_model
    from repayplan.store import init_demo

    tic = time.perf_counter()
    init_demo(db, loans=loans, seed=7, as_of=AS_OF)
    build = time.perf_counter() - tic
    tic = time.perf_counter()
    model = pd_model.fit(db)  # the flow scores with it, as a real night does
    queue.put(
        {
            "build_seconds": round(build, 2),
            "risk_fit_seconds": round(time.perf_counter() - tic, 2),
            "risk_model": model.model_id,
            "peak_rss_mib_build": _peaks()["self"],
        }
    )


def run_flow(db: Path, runner: str, workers: int, scope: str, queue: mp.Queue) -> None:
    """One run of the real flow over ``db``; its time, counts and peak memory."""
    from repayplan.flows.run import replan

    tic = time.perf_counter()
    summary = replan(db, AS_OF, runner=runner, workers=workers, scope=scope)
    total = time.perf_counter() - tic
    peaks = _peaks()
    queue.put(
        {
            "runner": runner,
            "workers": workers,
            "scope": scope,
            "flow_seconds": round(total, 2),
            "loans_replanned": summary.counts["loans_replanned"],
            "candidates": summary.counts["candidates"],
            "failures": summary.counts["failures"],
            "manual_review": summary.counts.get("manual_review", 0),
            "timings": {k: round(v, 2) for k, v in summary.timings.items()},
            "selection_method": summary.selection["method"],
            "selection_gap": summary.selection["gap"],
            "peak_rss_mib_flow_process": peaks["self"],
            "peak_rss_mib_largest_worker": peaks["child"],
        }
    )


def _in_process(target, *args) -> dict:
    ctx = mp.get_context("spawn")
    queue = ctx.Queue()
    proc = ctx.Process(target=target, args=(*args, queue))
    proc.start()
    row = queue.get()
    proc.join()
    return row


def run_size(loans: int, runner: str, workers: int, scope: str) -> dict:
    """Build a portfolio of ``loans`` loans, then re-plan it, each in a fresh process."""
    with tempfile.TemporaryDirectory(dir=RESULTS.parent) as tmp:
        db = Path(tmp) / "bench.duckdb"
        row = {"loans": loans, **_in_process(build_portfolio, db, loans)}
        row.update(_in_process(run_flow, db, runner, workers, scope))
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--million", action="store_true", help="add 1,000,000 loans")
    parser.add_argument("--runner", default="processes")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--scope", default="all", choices=("all", "triggered"))
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] + ([1_000_000] if args.million else [])
    rows = []
    for size in sizes:
        row = run_size(size, args.runner, args.workers, args.scope)
        rows.append(row)
        base = rows[0]["flow_seconds"] / max(rows[0]["loans_replanned"], 1)
        per_loan = row["flow_seconds"] / max(row["loans_replanned"], 1)
        row["seconds_per_loan"] = round(per_loan, 4)
        row["linearity_vs_smallest"] = round(per_loan / base, 3)
        print(
            f"{row['loans']:>9,} loans  {row['loans_replanned']:>9,} re-planned  "
            f"{row['candidates']:>9,} candidates  flow {row['flow_seconds']:>9.1f} s  "
            f"({row['seconds_per_loan'] * 1000:.1f} ms/loan, x{row['linearity_vs_smallest']})  "
            f"peak RSS flow {row['peak_rss_mib_flow_process']} MiB, "
            f"worker {row['peak_rss_mib_largest_worker']} MiB  stages {row['timings']}",
            flush=True,
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"nightly-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    machine = {"python": platform.python_version(), "cpus": mp.cpu_count()}
    out.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))
    print(f"results: {out}")


if __name__ == "__main__":
    main()
