"""Load test of the quote service, bounded in time, on 127.0.0.1, with the nightly running.

    .venv/bin/python benchmarks/service_load.py [--loans 2000] [--seconds 10] \
        [--clients 1,8,32] [--workdir /tmp/service-load] [--json]

Builds a demo portfolio, starts ``repayplan serve-api`` on a free port and a nightly run
(``repayplan replan --scope all``, restarted if it ends before the measurements do), waits
until the run holds the portfolio's run lock, then sends ``POST /v1/quotes`` from 1, 8 and
32 concurrent clients (threads, one keep-alive connection each, a different borrower per
request) for ``--seconds`` each — after a baseline of 1 and 8 clients with no run
(``--baseline-seconds`` each). Reports quotes per second and p50 / p99 latency per level,
errors, and the share of each level's time the nightly was running; writes
``benchmarks/results/service-<UTC time>.json``. Client, server and nightly share the
machine's cores, so the figures are a floor for a dedicated server.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import random
import socket
import subprocess
import sys
import threading
import time
from datetime import UTC, date, datetime
from pathlib import Path

RESULTS = Path(__file__).parent / "results"
AS_OF = date(2025, 6, 30)


def _port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _body(rng: random.Random) -> bytes:
    income = rng.randint(2500, 9000)
    return json.dumps(
        {
            "balance": f"{rng.randint(3000, 40000)}.00",
            "annual_rate_percent": str(rng.choice([7.5, 12, 18, 24])),
            "remaining_term_months": rng.choice([12, 24, 36, 60]),
            "monthly_income": str(income),
            "essential_expenses": str(int(income * rng.uniform(0.3, 0.6))),
            "other_debt": str(rng.randint(0, 300)),
            "arrears": str(rng.choice([0, 0, 250, 800])),
        }
    ).encode()


def _client(port: int, stop: float, seed: int, out: list, errors: list) -> None:
    rng = random.Random(seed)
    con = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    while time.monotonic() < stop:
        body = _body(rng)
        tic = time.perf_counter()
        try:
            con.request("POST", "/v1/quotes", body, {"Content-Type": "application/json"})
            resp = con.getresponse()
            resp.read()
            ok = resp.status == 200
        except (OSError, http.client.HTTPException):
            ok = False
            con.close()
            con = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        (out if ok else errors).append(time.perf_counter() - tic)
    con.close()


def _pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))] * 1000 if values else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--loans", type=int, default=2000)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--clients", default="1,8,32")
    ap.add_argument(
        "--baseline-clients",
        default="1,8",
        help="levels measured first with no nightly running (the baseline)",
    )
    ap.add_argument("--baseline-seconds", type=float, default=5.0, help="0: no baseline")
    ap.add_argument("--workdir", default="/tmp/service-load")
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    levels = [int(c) for c in args.clients.split(",")]
    baseline = [int(c) for c in args.baseline_clients.split(",") if c]

    from repayplan.store import init_demo
    from repayplan.store.runlock import run_in_progress

    work = Path(args.workdir)
    work.mkdir(parents=True, exist_ok=True)
    db = work / "portfolio.duckdb"
    if not db.exists():
        init_demo(db, loans=args.loans, seed=11, as_of=AS_OF)
    env = {
        **os.environ,
        "PREFECT_HOME": str(work / ".prefect"),
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "DO_NOT_TRACK": "1",
    }
    port = _port()
    cli = [sys.executable, "-m", "repayplan.cli"]
    server = subprocess.Popen(
        [*cli, "serve-api", "--db", str(db), "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=(work / "server.log").open("w"),
    )
    nightly_cmd = [
        *cli,
        "replan",
        "--db",
        str(db),
        "--as-of",
        AS_OF.isoformat(),
        "--scope",
        "all",
        "--workers",
        "2",
        "--json",
    ]
    nightly: subprocess.Popen | None = None
    runs = 0

    def ensure_nightly() -> None:
        nonlocal nightly, runs
        if nightly is None or nightly.poll() is not None:
            nightly = subprocess.Popen(
                nightly_cmd,
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=(work / f"nightly-{runs}.log").open("w"),
            )
            runs += 1

    results = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                c.request("GET", "/v1/health")
                if c.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.2)
        plan = [("idle", c, args.baseline_seconds) for c in baseline if args.baseline_seconds]
        plan += [("nightly", c, args.seconds) for c in levels]
        for phase, clients, seconds in plan:
            if phase == "nightly":
                ensure_nightly()
                deadline = time.monotonic() + 180
                while run_in_progress(db) is None and time.monotonic() < deadline:
                    time.sleep(0.2)
            ok: list[float] = []
            errors: list[float] = []
            running = [0, 0]
            stop = time.monotonic() + seconds

            def watch(stop: float = stop, running: list = running) -> None:
                while time.monotonic() < stop:
                    running[0] += run_in_progress(db) is not None
                    running[1] += 1
                    time.sleep(0.25)

            threads = [threading.Thread(target=watch)]
            threads += [
                threading.Thread(target=_client, args=(port, stop, 1000 * clients + i, ok, errors))
                for i in range(clients)
            ]
            tic = time.perf_counter()
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            wall = time.perf_counter() - tic
            results.append(
                {
                    "phase": phase,
                    "clients": clients,
                    "seconds": round(wall, 2),
                    "quotes": len(ok),
                    "errors": len(errors),
                    "quotes_per_s": round(len(ok) / wall, 1),
                    "p50_ms": round(_pct(ok, 0.50), 1),
                    "p99_ms": round(_pct(ok, 0.99), 1),
                    "nightly_running_share": round(running[0] / max(running[1], 1), 2),
                }
            )
    finally:
        server.terminate()
        server.wait(timeout=30)
        if nightly is not None and nightly.poll() is None:
            nightly.wait(timeout=600)
    record = {
        "benchmark": "service_load",
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "loans": args.loans,
        "seconds_per_level": args.seconds,
        "nightly_runs_started": runs,
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "python": platform.python_version(),
        "rows": results,
    }
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"service-{datetime.now(UTC):%Y%m%dT%H%M%SZ}.json"
    out.write_text(json.dumps(record, indent=2) + "\n")
    if args.json:
        print(json.dumps(record, indent=2))
        return
    print(
        f"{'phase':>7} {'clients':>7} {'quotes/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'errors':>6} {'nightly':>7}"
    )
    for r in results:
        print(
            f"{r['phase']:>7} {r['clients']:>7} {r['quotes_per_s']:>9} {r['p50_ms']:>8} "
            f"{r['p99_ms']:>8} {r['errors']:>6} {r['nightly_running_share']:>7.0%}"
        )
    print(f"written to {out}")


if __name__ == "__main__":
    main()
