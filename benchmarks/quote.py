"""Time whole quotes: ``quote_many`` on N generated loans, five alternatives each.

    .venv/bin/python benchmarks/quote.py [--loans 200] [--baseline-loans 20] [--repeat 1] [--json]

Every loan is planned as the nightly flow plans it (``quote_many(cases, solver="fast")``):
each alternative solved, made cent-exact, re-checked, measured and explained. The loans are
``benchmarks/solvers.generate_cases`` with arrears and penalty fees added, so each quote
offers five alternatives (lowest installment, balanced, lowest cost, spread arrears,
re-amortise; hardship loans swap lowest cost for holiday and graduated). Reports wall and
CPU milliseconds per loan (CPU time is this process's own, steady on a shared machine). The
baseline, measured in the same run on the first ``--baseline-loans`` loans, is the same quotes on
PuLP + CBC. Prints ms per loan and the ratio; the result is also written to
``benchmarks/results/quote-<UTC time>.json``. ``by_status`` times each loan's quote on its
own (CPU ms, the best of ``--repeat`` runs) and averages them by status: ``relaxed`` loans
are the delinquent ones that walk the declared relaxations.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from collections import Counter
from dataclasses import replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from repayplan.plans.case import LoanCase, Policy
from repayplan.plans.quote import quote_many
from solvers import generate_cases

RESULTS = Path(__file__).parent / "results"
BASELINE = "pulp-cbc"


def quote_cases(n: int, seed: int = 0) -> list[LoanCase]:
    """``generate_cases`` with arrears (0.5–3 installments' worth) and penalty fees, so every
    quote carries the arrears alternatives too."""
    rng = np.random.default_rng(seed + 1)
    out = []
    for case in generate_cases(n, seed):
        monthly = case.outstanding_principal // case.remaining_term
        out.append(
            replace(
                case,
                arrears=int(monthly * rng.uniform(0.5, 3.0)),
                penalty_fees=int(rng.integers(0, 10_000)),
            )
        )
    return out


def timed(cases: list[LoanCase], solver: str, policy: Policy) -> tuple[float, float, list]:
    """(wall ms per loan, CPU ms per loan, quotes) of ``quote_many`` on ``cases``. CPU time
    is this process's alone, so it holds on a machine shared with other work."""
    started, cpu = time.perf_counter(), time.process_time()
    quotes = quote_many(cases, policy, solver=solver)
    n = len(cases)
    wall = 1000 * (time.perf_counter() - started) / n
    return wall, 1000 * (time.process_time() - cpu) / n, quotes


def by_status(cases: list[LoanCase], quotes: list, policy: Policy, repeat: int) -> dict:
    """CPU ms per loan of ``quote`` (solver ``fast``), each loan timed on its own (best of
    ``repeat``), averaged by the status of its quote; with the slowest loan's time."""
    times: dict[str, list[float]] = {}
    for case, result in zip(cases, quotes, strict=True):
        best = float("inf")
        for _ in range(repeat):
            cpu = time.process_time()
            quote_many([case], policy, solver="fast")
            best = min(best, time.process_time() - cpu)
        times.setdefault(result.status, []).append(1000 * best)
    return {
        status: {
            "loans": len(ms),
            "cpu_ms_per_loan": round(float(np.mean(ms)), 3),
            "max_cpu_ms": round(float(np.max(ms)), 3),
        }
        for status, ms in sorted(times.items())
    }


def benchmark(loans: int, baseline_loans: int, repeat: int = 1) -> dict:
    """Run both and summarise (see the module docstring)."""
    policy = Policy()
    cases = quote_cases(loans)
    quote_many(cases[:3], policy)  # import solvers and warm caches outside the timing
    fast_ms, fast_cpu, fast = timed(cases, "fast", policy)
    statuses = by_status(cases, fast, policy, repeat)
    base_n = max(1, min(baseline_loans, loans))
    base_ms, base_cpu, base = timed(cases[:base_n], BASELINE, policy)
    fast_sub_ms, _, _ = timed(cases[:base_n], "fast", policy)
    diffs = [
        abs(a.objective - b.objective) / max(1.0, abs(b.objective))
        for qa, qb in zip(fast[:base_n], base, strict=True)
        for a, b in zip(qa.alternatives, qb.alternatives, strict=False)
        if a.name == b.name and a.objective is not None and b.objective is not None
    ]
    return {
        "loans": loans,
        "solver": "fast",
        "ms_per_loan": round(fast_ms, 3),
        "cpu_ms_per_loan": round(fast_cpu, 3),
        "alternatives_per_loan": round(sum(len(q.alternatives) for q in fast) / loans, 2),
        "statuses": dict(Counter(q.status for q in fast)),
        "by_status": statuses,
        "baseline": {
            "solver": BASELINE,
            "loans": base_n,
            "ms_per_loan": round(base_ms, 3),
            "cpu_ms_per_loan": round(base_cpu, 3),
            "fast_ms_per_loan_same_loans": round(fast_sub_ms, 3),
            "speedup": round(base_ms / fast_sub_ms, 2),
            "max_rel_objective_diff": max(diffs) if diffs else None,
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1min": os.getloadavg()[0],
        },
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=200)
    parser.add_argument("--baseline-loans", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=1, help="runs per loan for by_status")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = benchmark(args.loans, args.baseline_loans, args.repeat)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(result["created"]).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"quote-{stamp}.json").write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result, indent=2))
        return
    b = result["baseline"]
    print(
        f"{result['loans']} loans, {result['alternatives_per_loan']} alternatives each, "
        f"statuses {result['statuses']}"
    )
    print(
        f"quote_many fast     {result['ms_per_loan']:8.2f} ms/loan "
        f"({result['cpu_ms_per_loan']:.2f} CPU ms/loan)"
    )
    for status, row in result["by_status"].items():
        print(
            f"  {status:<14} {row['cpu_ms_per_loan']:8.2f} CPU ms/loan on {row['loans']} loans "
            f"(slowest {row['max_cpu_ms']:.1f})"
        )
    print(
        f"baseline {b['solver']:<10} {b['ms_per_loan']:8.2f} ms/loan on {b['loans']} loans "
        f"(fast on the same: {b['fast_ms_per_loan_same_loans']:.2f}; ×{b['speedup']}; "
        f"max rel objective diff {b['max_rel_objective_diff']})"
    )


if __name__ == "__main__":
    main()
