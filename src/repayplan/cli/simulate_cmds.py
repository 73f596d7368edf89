"""``repayplan simulate``: a thin shell over :func:`repayplan.simulate.simulate`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from repayplan.cli.app import app, console, emit_json
from repayplan.errors import InputError
from repayplan.simulate import SimulationReport, simulate
from repayplan.store.connection import DEFAULT_DB


def _ints(text: str, name: str) -> tuple[int, ...]:
    try:
        values = tuple(int(part) for part in text.split(","))
    except ValueError:
        raise InputError(f"not comma-separated whole numbers: {text!r}", field=name) from None
    return values


def _budgets(text: str | None) -> list[float] | str | None:
    if text is None or text == "auto":
        return text
    try:
        values = [float(part) for part in text.split(",")]
    except ValueError:
        raise InputError(
            f"not 'auto' or comma-separated amounts: {text!r}", field="frontier"
        ) from None
    if any(not (v >= 0 and v < float("inf")) for v in values):
        raise InputError("budgets must be finite amounts >= 0", field="frontier")
    return values


def _pct(row: dict) -> str:
    return f"{row['estimate'] * 100:.1f} [{row['ci_low'] * 100:.1f}, {row['ci_high'] * 100:.1f}]"


def print_report(report: SimulationReport) -> None:
    """The policy comparison (whole book) as a table: levels with 95 % intervals, percent."""
    h = report.horizons
    table = Table(
        title=f"{report.sim_id}: {report.loans:,} loans × {report.paths} paths "
        f"({report.behaviour} behaviour), as of {report.as_of} — % of loans or exposure"
    )
    columns = [("policy", None, None)]
    columns += [(f"charge-off {m}m", "charge_off", m) for m in h]
    columns += [(f"90+ DPD {h[0]}m", "dpd90", h[0]), ("cure 12m", "cure_rate", 12)]
    columns += [("lender NPV", "lender_npv", None), ("concession", "concession", None)]
    for title, *_ in columns:
        table.add_column(title, justify="right" if title != "policy" else "left")
    levels = [r for r in report.rows if r["versus"] is None and r["segment"] == "all"]
    seen = []
    for r in levels:
        key = (r["policy"], r["concession_budget"])
        if key not in seen:
            seen.append(key)
    for policy, budget in seen:
        label = policy if budget is None else f"{policy} @ {budget:,.0f}"
        cells = [label]
        for _, metric, horizon in columns[1:]:
            match = [
                r for r in levels
                if r["policy"] == policy and r["concession_budget"] == budget
                and r["metric"] == metric and (horizon is None or r["horizon_months"] == horizon)
            ]  # fmt: skip
            cells.append(_pct(match[0]) if match else "–")
        table.add_row(*cells)
    console.print(table)
    cuts = [
        r for r in report.rows
        if r["metric"] == "charge_off_cut" and r["segment"] == "all"
        and r["concession_budget"] is None and r["horizon_months"] == h[0]
    ]  # fmt: skip
    for r in cuts:
        console.print(
            f"{r['policy']} vs {r['versus']}: {h[0]}-month charge-off cut {_pct(r)} %",
            highlight=False,
        )
    console.print(
        f"Stored as {report.sim_id} in simulation_runs / simulation_results "
        f"({sum(report.timings.values()) - report.timings.get('total', 0):.1f} s)."
    )


@app.command("simulate")
def simulate_cmd(
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB portfolio file."),
    policies: str = typer.Option(
        "contract,waterfall,nightly",
        "--policies",
        help="contract, waterfall, nightly, optimize or template names, comma-separated.",
    ),
    loans: str = typer.Option(
        None, "--loans", help="run | triggered | distressed | all (default: run with nightly)."
    ),
    run_id: str = typer.Option(None, "--run-id", help="Nightly run to simulate (latest)."),
    sample: int = typer.Option(None, "--sample", help="Simulate a seeded sample of N loans."),
    paths: int = typer.Option(200, "--paths", help="Monte Carlo paths."),
    horizon: str = typer.Option("12,24", "--horizon", help="Reporting horizons, months."),
    seed: int = typer.Option(0, "--seed", help="Random seed (common to every policy)."),
    behaviour: str = typer.Option("truth", "--behaviour", help="truth (demo) | fitted."),
    frontier: str = typer.Option(
        None, "--frontier", help="Concession budgets for the optimiser's frontier, or auto."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Simulate what each policy's plans lead to: charge-off, 90+ DPD, cures, lender NPV,
    with paired 95 % intervals (library: simulate)."""
    names = [p.strip() for p in policies.split(",") if p.strip()]
    report = simulate(
        db,
        names,
        loans=loans,
        run_id=run_id,
        sample=sample,
        paths=paths,
        horizons=_ints(horizon, "horizon"),
        seed=seed,
        behaviour=behaviour,
        frontier=_budgets(frontier),
    )
    if as_json:
        emit_json(report.to_dict())
    else:
        print_report(report)
