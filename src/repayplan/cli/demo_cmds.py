"""CLI of the demo: ``repayplan demo`` (what ``make demo`` runs)."""

from __future__ import annotations

from pathlib import Path

import typer

from repayplan.cli.app import app, console, emit_json, err_console
from repayplan.cli.portfolio_cmds import print_summary
from repayplan.demo import demo, service_hint
from repayplan.progress import terminal_progress
from repayplan.store.connection import DEFAULT_DB
from repayplan.store.publish import analyst_recipe


@app.command("demo")
def demo_cmd(
    db: Path = typer.Option(DEFAULT_DB, "--db", help="Demo database (replaced)."),
    loans: int = typer.Option(10_000, "--loans", help="Number of loans to simulate."),
    seed: int = typer.Option(7, "--seed", help="Random seed."),
    runner: str = typer.Option("processes", "--runner", help="threads | processes | dask."),
    workers: int = typer.Option(2, "--workers", help="Parallel workers."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Build the demo portfolio, fit the risk model, re-plan it once, show where to look."""
    with terminal_progress(err_console, enabled=not json_out):
        result = demo(db, loans=loans, seed=seed, runner=runner, workers=workers)
    if json_out:
        emit_json(result.to_dict())
        return
    console.print(f"Demo portfolio: {result.loans:,} loans as of {result.as_of} in {result.db}")
    console.print(f"Risk model: {result.risk_model}")
    print_summary(result.run)
    console.print()
    console.print(analyst_recipe(result.db), highlight=False, markup=False)
    console.print()
    for query in result.queries:
        console.print(query, highlight=False, markup=False)
        console.print()
    if result.run.report:
        console.print(
            f"The morning report of this run (open it in a browser): "
            f"[bold]{Path(result.run.report).resolve()}[/bold]",
            soft_wrap=True,
        )
    console.print()
    console.print(service_hint(result.db), highlight=False, markup=False, soft_wrap=True)
