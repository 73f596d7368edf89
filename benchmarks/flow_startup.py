"""The nightly flow's fixed cost: an empty run and a small run, before and after, side by side.

    .venv/bin/python benchmarks/flow_startup.py [--before main] [--loans 200]
        [--runner processes] [--repeat 1] [--json]

Each run is a fresh ``python`` process that imports ``repayplan``, calls
``repayplan.flows.run.replan`` once and exits, as ``repayplan replan`` does; its wall time from
process start to exit is the figure a person waits for. Two portfolios: *empty* (a database
with no loans: nothing to plan) and *small* (a ``--loans`` demo book, ``--scope triggered``).
Three set-ups: *temporary* (no ``PREFECT_API_URL``: the run starts its own temporary Prefect
server, as on a laptop), *server* (``PREFECT_API_URL`` names a server already running, as in
production) and *plain* (``replan(prefect=False)``, ``repayplan replan --no-prefect``: the same
steps without Prefect; after only — its ratio is against the before's *temporary* run).
The *before* code is the source tree of the git ref ``--before`` (a temporary
``git worktree``), the *after* code this checkout's ``src``; the same databases, the same
machine, the same run. While each run goes, its process tree is sampled with ``ps`` and the
Prefect servers (``uvicorn … prefect.server``) started under it are counted: one at most
(the run's own temporary one), none with ``server``.

The before tree gets one line of this branch (``portfolio/compliance.py``: an empty run
crashed in the compliance check on an empty frame) so that it can finish an empty run.

Results go to ``benchmarks/results/flow-startup-<UTC time>.json`` (``rows``: the side-by-side
table, the fastest of ``--repeat`` runs each; ``runs``: every run); printed: seconds per run,
the after/before ratio, servers started, peak RSS of the flow process and its stages.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = Path(__file__).parent / "results"
AS_OF = date(2025, 6, 30)

_CHILD = r"""
import json, resource, sys, time
from datetime import date
from pathlib import Path
from repayplan.flows.run import replan
tic = time.perf_counter()
extra = {"prefect": False} if sys.argv[5] == "plain" else {}
s = replan(Path(sys.argv[1]), date.fromisoformat(sys.argv[2]), runner=sys.argv[3],
           workers=int(sys.argv[4]), scope="triggered", **extra)
print("RESULT " + json.dumps({
    "replan_s": round(time.perf_counter() - tic, 2),
    "loans_replanned": s.counts["loans_replanned"],
    "candidates": s.counts.get("candidates", 0),
    "timings": {k: round(v, 2) for k, v in s.timings.items()},
    "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
}), flush=True)
"""

_FIX = (
    'relief = offers["metrics"].map(_contract_pti)\n',
    'relief = offers["metrics"].map(_contract_pti).astype(float)\n',
)


def _tree(root: int) -> list[tuple[int, str]]:
    out = subprocess.run(
        ["ps", "-eo", "pid=,ppid=,args="], capture_output=True, text=True, check=False
    ).stdout
    kids: dict[int, list[tuple[int, str]]] = {}
    for line in out.splitlines():
        parts = line.split(None, 2)
        if len(parts) == 3:
            kids.setdefault(int(parts[1]), []).append((int(parts[0]), parts[2]))
    found, todo = [], [root]
    while todo:
        for pid, args in kids.get(todo.pop(), []):
            found.append((pid, args))
            todo.append(pid)
    return found


def one_run(
    src: Path, db: Path, runner: str, workers: int, env: dict[str, str], setup: str
) -> dict:
    """One ``replan`` in a fresh process on the code under ``src``; wall seconds, servers."""
    servers: set[int] = set()
    env = {**env, "PYTHONPATH": str(src)}
    tic = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-c", _CHILD, str(db), AS_OF.isoformat(), runner, str(workers), setup],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=db.parent,
    )

    def watch() -> None:
        while proc.poll() is None:
            servers.update(p for p, a in _tree(proc.pid) if "uvicorn" in a and "prefect" in a)
            time.sleep(0.25)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    out, _ = proc.communicate()
    wall = time.perf_counter() - tic
    watcher.join()
    row: dict = {"wall_s": round(wall, 2), "rc": proc.returncode, "servers_started": len(servers)}
    for line in out.splitlines():
        if line.startswith("RESULT "):
            row.update(json.loads(line[7:]))
    return row


def _before_tree(ref: str, into: Path) -> Path:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", str(into), ref],
        check=True,
        capture_output=True,
    )
    compliance = into / "src/repayplan/portfolio/compliance.py"
    text = compliance.read_text()
    if _FIX[1] not in text:
        compliance.write_text(text.replace(_FIX[0], _FIX[1]))
    return into / "src"


def _databases(folder: Path, loans: int) -> dict[str, Path]:
    from repayplan.store import init_demo
    from repayplan.store.connection import connect

    empty = folder / "empty.duckdb"
    connect(empty).close()
    small = folder / "small.duckdb"
    init_demo(small, loans=loans, seed=5, as_of=AS_OF)
    return {"empty": empty, "small": small}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--before", default=None, help="git ref of the before code (default: merge-base with main)"
    )
    parser.add_argument("--loans", type=int, default=200)
    parser.add_argument("--runner", default="processes")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--setups", default="temporary,server,plain")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.before is None:
        args.before = subprocess.run(
            ["git", "-C", str(ROOT), "merge-base", "HEAD", "main"],
            capture_output=True, text=True, check=True,
        ).stdout.strip()  # fmt: skip
    sys.path.insert(0, str(ROOT / "src"))
    from repayplan.prefect_env import api_server, configure

    rows = []
    with tempfile.TemporaryDirectory(dir=RESULTS.parent) as tmp:
        tmp_path = Path(tmp)
        configure(tmp_path / ".prefect")
        base_env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
        base_env["PREFECT_HOME"] = os.environ["PREFECT_HOME"]
        trees = {"before": _before_tree(args.before, tmp_path / "before"), "after": ROOT / "src"}
        try:
            dbs = _databases(tmp_path, args.loans)
            for setup in args.setups.split(","):
                if setup == "server":
                    ctx = api_server()
                    url = ctx.__enter__()
                    env = {**base_env, "PREFECT_API_URL": url}
                else:
                    ctx, env = None, base_env
                try:
                    for portfolio, db in dbs.items():
                        for _ in range(args.repeat):
                            for code, src in trees.items():
                                # A copy per run: every run starts from the same book.
                                run_db = tmp_path / f"run-{code}-{db.name}"
                                shutil.copy(db, run_db)
                                if setup == "plain" and code == "before":
                                    continue  # the before code has no run without Prefect
                                row = one_run(src, run_db, args.runner, args.workers, env, setup)
                                row.update(setup=setup, portfolio=portfolio, code=code)
                                rows.append(row)
                                run_db.unlink(missing_ok=True)
                                if not args.json:
                                    print(
                                        f"{setup:>9} {portfolio:>5} {code:>6}: "
                                        f"{row['wall_s']:6.1f} s wall, "
                                        f"{row.get('replan_s', float('nan')):6.1f} s in replan, "
                                        f"{row['servers_started']} servers, "
                                        f"{row.get('loans_replanned', '-')} loans, "
                                        f"peak {row.get('peak_rss_mib', '-')} MiB, rc {row['rc']} "
                                        f"stages {row.get('timings')}",
                                        flush=True,
                                    )
                finally:
                    if ctx is not None:
                        ctx.__exit__(None, None, None)
        finally:
            subprocess.run(
                ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(tmp_path / "before")],
                check=False,
                capture_output=True,
            )
    summary = []
    for setup in args.setups.split(","):
        for portfolio in ("empty", "small"):
            walls = {
                code: min(
                    (
                        r["wall_s"]
                        for r in rows
                        if r["setup"] == setup and r["portfolio"] == portfolio and r["code"] == code
                    ),
                    default=None,
                )
                for code in ("before", "after")
            }
            # Without Prefect there is no before: compared with the before's temporary setup.
            base = walls["before"]
            if base is None:
                base = next(
                    (s["before_s"] for s in summary
                     if s["setup"] == "temporary" and s["portfolio"] == portfolio),
                    None,
                )  # fmt: skip
            summary.append(
                {
                    "setup": setup,
                    "portfolio": portfolio,
                    "before_s": walls["before"],
                    "after_s": walls["after"],
                    "after_over_before": (
                        round(walls["after"] / base, 3) if base and walls["after"] else None
                    ),
                }
            )
    load = os.getloadavg()
    machine = {"python": platform.python_version(), "cpus": os.cpu_count(), "load_average": load}
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"flow-startup-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    # "rows": the side-by-side summary (what the docs show); "runs": every run in full.
    payload = {"machine": machine, "args": vars(args), "rows": summary, "runs": rows}
    out.write_text(json.dumps(payload, indent=2))
    if args.json:
        print(json.dumps(payload, indent=2))
    else:
        print("\n| setup | portfolio | before s | after s | after / before |")
        print("|---|---|---|---|---|")
        for s in summary:
            print(
                f"| {s['setup']} | {s['portfolio']} | {s['before_s']} | {s['after_s']} | "
                f"{s['after_over_before']} |"
            )
        print(f"load average {load[0]:.1f}; results: {out}")


if __name__ == "__main__":
    main()
