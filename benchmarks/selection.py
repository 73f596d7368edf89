"""Benchmark portfolio selection: exact (CP-SAT) versus Lagrangian on generated portfolios.

Usage: ``.venv/bin/python benchmarks/selection.py [--sizes 1000,10000,100000] [--million]``.
Prints a table (time, peak memory, objective, LP bound, gap, feasibility) and stores the rows
as JSON under ``benchmarks/results/selection-<timestamp>.json``. Each (size, method) runs in
its own process so peak memory (ru_maxrss) belongs to that run alone.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import resource
import time
from pathlib import Path

import numpy as np
import pandas as pd

from repayplan.portfolio.limits import PortfolioLimits
from repayplan.portfolio.selection import select_plans

RESULTS = Path(__file__).parent / "results"
SEGMENTS = ("prime", "near_prime", "subprime", "thin_file")


def generate(n_loans: int, seed: int = 0) -> tuple[pd.DataFrame, PortfolioLimits]:
    """A synthetic portfolio: a keep row plus 1-4 restructuring alternatives per loan.

    Alternatives trade concession (currency units) and near-term collections for a lower
    expected loss; limits are set so that roughly a third of the unconstrained gain is allowed.
    """
    rng = np.random.default_rng(seed)
    n_alt = rng.integers(1, 5, n_loans)
    per_loan = 1 + n_alt
    n_rows = int(per_loan.sum())
    loan = np.repeat(np.arange(n_loans), per_loan)
    first = np.r_[0, np.cumsum(per_loan)[:-1]]
    k = np.arange(n_rows) - first[loan]
    is_keep = k == 0
    balance = np.round(rng.lognormal(9.0, 0.6, n_loans), 2)[loan]
    pd_keep = rng.beta(1.5, 12.0, n_loans)[loan]
    installment = np.round(balance / rng.integers(12, 60, n_loans)[loan], 2)
    concession = np.where(is_keep, 0.0, np.round(balance * rng.uniform(0.0, 0.12, n_rows), 2))
    cut = np.where(is_keep, 0.0, rng.uniform(0.1, 0.7, n_rows))
    expected_loss_keep = pd_keep * balance * 0.6
    value = np.round(
        balance * 0.08
        - expected_loss_keep * (1 - cut)
        - concession * rng.uniform(0.3, 0.9, n_rows),
        2,
    )
    paid = np.where(
        is_keep, installment * (1 - pd_keep), installment * rng.uniform(0.5, 1.0, n_rows)
    )
    collections = [np.round(paid * rng.uniform(0.95, 1.05, n_rows), 2) for _ in range(3)]
    frame = pd.DataFrame(
        {
            "loan_id": pd.Series(loan).map("L{:07d}".format),
            "candidate": np.where(is_keep, "keep", pd.Series(k).map("alt{}".format)),
            "segment": np.asarray(SEGMENTS)[rng.integers(0, len(SEGMENTS), n_loans)][loan],
            "value": value,
            "concession": concession,
            "collections_1": collections[0],
            "collections_2": collections[1],
            "collections_3": collections[2],
            "restructure": ~is_keep,
            "needs_review": ~is_keep & (rng.random(n_rows) < 0.3),
        }
    )
    keep_collect = [c[is_keep].sum() for c in collections]
    limits = PortfolioLimits(
        concession_budget=float(concession.sum() / (per_loan.mean() * 6)),
        collection_floors=tuple(float(0.97 * c) for c in keep_collect),
        segment_caps={"subprime": 0.25, "thin_file": 0.15, "near_prime": 0.35},
        review_capacity=max(1, n_loans // 20),
    )
    return frame, limits


def _run(n_loans: int, method: str, time_limit: float, queue: mp.Queue) -> None:
    frame, limits = generate(n_loans)
    started = time.perf_counter()
    result = select_plans(frame, limits, method=method, time_limit=time_limit)
    queue.put(
        {
            "n_loans": n_loans,
            "n_rows": len(frame),
            "method": result.method,
            "seconds": round(time.perf_counter() - started, 3),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            "objective": round(result.objective, 2),
            "bound": round(result.bound, 2),
            "gap": result.gap,
            "feasible": result.feasible,
            "iterations": result.stats["iterations"],
            "solver_status": result.stats["solver_status"],
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000,100000")
    parser.add_argument("--million", action="store_true", help="also run 1,000,000 loans")
    parser.add_argument("--exact-max", type=int, default=10000, help="largest size run exactly")
    parser.add_argument("--time-limit", type=float, default=60.0)
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")] + ([1_000_000] if args.million else [])
    rows = []
    ctx = mp.get_context("spawn")
    for n in sizes:
        methods = ["exact-cpsat", "lagrangian"] if n <= args.exact_max else ["lagrangian"]
        for method in methods:
            queue = ctx.Queue()
            proc = ctx.Process(target=_run, args=(n, method, args.time_limit, queue))
            proc.start()
            row = queue.get()
            proc.join()
            rows.append(row)
            print(
                f"{row['n_loans']:>9,} loans {row['n_rows']:>9,} rows  {row['method']:<12}"
                f" {row['seconds']:>8.2f} s {row['peak_rss_mib']:>8.0f} MiB"
                f"  gap {row['gap']:.2e}  feasible={row['feasible']}  {row['solver_status']}",
                flush=True,
            )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / f"selection-{time.strftime('%Y%m%dT%H%M%S')}.json"
    meta = {
        "machine": platform.machine(),
        "python": platform.python_version(),
        "cpus": mp.cpu_count(),
    }
    out.write_text(json.dumps({"meta": meta, "runs": rows}, indent=2))
    print(f"stored {out}")


if __name__ == "__main__":
    main()
