"""Solve the same N generated loans with every solver strategy and compare.

    .venv/bin/python benchmarks/solvers.py --loans 200 [--json] [--template balanced]

Per strategy: milliseconds per loan (model transfer + solve, the LP already built), speed-up
against PuLP + CBC measured in the same run, and the largest relative objective difference
against PuLP + CBC over the loans both solved to optimality. Inexact strategies (PDLP,
CP-SAT on integer cents) run on the first ``--slow-loans`` loans under ``--time-limit``
seconds each, so the run stays short; their rows say how many loans they got and solved
(``refused``: MILPs over a strategy's declared size, not timed).
The result is also written to ``benchmarks/results/solvers-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import numpy as np

from repayplan.plans.case import LoanCase, Policy
from repayplan.plans.lp import LinearProgram
from repayplan.plans.model import build_program
from repayplan.plans.strategies import get_strategy, strategy_names

REFERENCE = "pulp-cbc"
RESULTS = Path(__file__).parent / "results"


def generate_cases(n: int, seed: int = 0) -> list[LoanCase]:
    """``n`` plausible consumer loans (cents, fractions): balances 5k–60k, rates 3–25 %,
    36–120 months left, incomes that afford them, some seasonal, some in hardship."""
    rng = np.random.default_rng(seed)
    cases = []
    for i in range(n):
        balance = int(rng.integers(500_000, 6_000_000))
        term = int(rng.integers(36, 121))
        rate = Decimal(int(rng.integers(300, 2500))) / Decimal(10_000)
        income = int(balance / term * rng.uniform(4.0, 10.0))
        season = np.ones(12)
        if rng.random() < 0.3:
            season = 1.0 + 0.3 * np.sin(np.arange(12) / 12 * 2 * np.pi + rng.uniform(0, 6))
        hardship = rng.random() < 0.2
        cases.append(
            LoanCase(
                outstanding_principal=balance,
                annual_rate=rate,
                remaining_term=term,
                monthly_income=income,
                essential_expenses=int(income * rng.uniform(0.2, 0.45)),
                other_debt=int(income * rng.uniform(0.0, 0.1)),
                income_seasonality=tuple(float(f) for f in season / season.mean()),
                hardship="job_loss" if hardship else None,
                hardship_income_factor=0.7 if hardship else 1.0,
                recovery_months=6 if hardship else None,
                start=date(2025, 1, 15),
                loan_id=f"bench-{i}",
            )
        )
    return cases


def run_strategy(
    name: str, lps: list[LinearProgram], time_limit: float, threads: int = 1
) -> tuple[float, list[float | None]]:
    """(ms per loan it takes, objective per loan or None when not optimal or refused).

    A strategy that declines a program (a MILP over its declared size) is not timed on it."""
    strategy = get_strategy(name)
    taken = [i for i, lp in enumerate(lps) if strategy.supports(lp)]
    if not taken:
        return float("nan"), [None] * len(lps)
    strategy.solve(lps[taken[0]], time_limit)  # load the library and warm caches untimed
    started = time.perf_counter()
    if threads > 1:
        solutions = strategy.solve_batch([lps[i] for i in taken], threads=threads)
    else:
        solutions = [strategy.solve(lps[i], time_limit) for i in taken]
    elapsed = time.perf_counter() - started
    objectives: list[float | None] = [None] * len(lps)
    for i, sol in zip(taken, solutions, strict=True):
        objectives[i] = sol.objective if sol.ok else None
    return 1000 * elapsed / len(taken), objectives


def max_rel_diff(objectives: list[float | None], reference: list[float | None]) -> float | None:
    """Largest |a − b| / max(1, |b|) over loans both solved; None when there are none."""
    pairs = [(a, b) for a, b in zip(objectives, reference, strict=False) if a is not None and b]
    if not pairs:
        return None
    return max(abs(a - b) / max(1.0, abs(b)) for a, b in pairs)


def benchmark(loans: int, template: str, slow_loans: int, time_limit: float, threads: int) -> dict:
    """Run every strategy on the same loans; the JSON-ready result."""
    policy = Policy()
    lps = [build_program(case, policy, template).lp for case in generate_cases(loans)]
    ref_ms, ref_obj = run_strategy(REFERENCE, lps, time_limit)
    rows = []
    runs = [(name, 1) for name in strategy_names()]
    if threads > 1:
        runs += [(name, threads) for name in ("fast", "highs-direct")]
    for name, n_threads in runs:
        strategy = get_strategy(name)
        subset = lps if strategy.capabilities.exact else lps[:slow_loans]
        if not any(strategy.supports(lp) for lp in subset):
            continue
        if name == REFERENCE and n_threads == 1:
            ms, objectives = ref_ms, ref_obj
        else:
            ms, objectives = run_strategy(name, subset, time_limit, n_threads)
        rows.append(
            {
                "name": name if n_threads == 1 else f"{name} (threads={n_threads})",
                "ms_per_loan": round(ms, 3),
                "speedup_vs_pulp_cbc": round(ref_ms / ms, 2),
                "max_rel_objective_diff": max_rel_diff(objectives, ref_obj[: len(subset)]),
                "exact": strategy.capabilities.exact,
                "loans": len(subset),
                "refused": sum(not strategy.supports(lp) for lp in subset),
                "solved": sum(o is not None for o in objectives),
            }
        )
    exact_rows = [
        r
        for r in rows
        if r["exact"] and r["name"] != REFERENCE and (r["max_rel_objective_diff"] or 0) <= 1e-6
    ]
    fastest = min(exact_rows, key=lambda r: r["ms_per_loan"]) if exact_rows else None
    return {
        "strategies": rows,
        "loans": loans,
        "template": template,
        "rows_per_lp": float(np.mean([lp.num_rows for lp in lps])),
        "vars_per_lp": float(np.mean([lp.num_vars for lp in lps])),
        "fastest_exact": fastest["name"] if fastest else None,
        "fastest_exact_speedup": fastest["speedup_vs_pulp_cbc"] if fastest else None,
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "load_average_1min": os.getloadavg()[0],
        },
        "created": datetime.now(UTC).isoformat(timespec="seconds"),
    }


def print_table(result: dict) -> None:
    """A plain table of the result."""
    print(
        f"{result['loans']} loans, template {result['template']}, "
        f"~{result['rows_per_lp']:.0f} rows × {result['vars_per_lp']:.0f} vars per LP"
    )
    print(f"{'strategy':<28}{'ms/loan':>10}{'speedup':>10}{'max rel diff':>14}{'solved':>10}")
    for r in result["strategies"]:
        diff = r["max_rel_objective_diff"]
        diff_s = "n/a" if diff is None else f"{diff:.1e}"
        solved = f"{r['solved']}/{r['loans']}"
        print(
            f"{r['name']:<28}{r['ms_per_loan']:>10.3f}{r['speedup_vs_pulp_cbc']:>9.1f}×"
            f"{diff_s:>14}{solved:>10}"
        )
    print(f"fastest exact: {result['fastest_exact']} ({result['fastest_exact_speedup']}×)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loans", type=int, default=200)
    parser.add_argument("--template", default="balanced")
    parser.add_argument("--slow-loans", type=int, default=20)
    parser.add_argument("--time-limit", type=float, default=2.0)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    result = benchmark(args.loans, args.template, args.slow_loans, args.time_limit, args.threads)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = datetime.fromisoformat(result["created"]).strftime("%Y%m%dT%H%M%SZ")
    (RESULTS / f"solvers-{stamp}.json").write_text(json.dumps(result, indent=2))
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        print_table(result)


if __name__ == "__main__":
    main()
