"""CLI of nightly re-planning: ``replan`` (run the flow now) and ``serve`` (a schedule)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from repayplan.cli.app import app, column, console, emit_json, err_console, parse_date
from repayplan.cli.app import table as new_table
from repayplan.errors import InputError
from repayplan.flows.run import replan
from repayplan.portfolio.replan import DEFAULT_CHUNK_SIZE, RunSummary
from repayplan.progress import terminal_progress
from repayplan.store.connection import DEFAULT_DB
from repayplan.store.publish import analyst_path


def _date(text: str | None) -> date:
    return parse_date(text, "as_of") or date.today()


def print_summary(summary: RunSummary) -> None:
    """A run summary as readable tables."""
    table = new_table(f"Run {summary.run_id} as of {summary.as_of} — {summary.status}")
    column(table, "what")
    column(table, "value", numeric=True)
    for key, value in summary.counts.items():
        if not isinstance(value, dict):
            table.add_row(key, f"{value:,}" if isinstance(value, int) else str(value))
    sel = summary.selection
    table.add_row("selection", str(sel.get("method")))
    table.add_row("objective (value)", f"{sel.get('objective') or 0:,.2f}")
    table.add_row("LP bound", f"{sel.get('bound') or 0:,.2f}")
    table.add_row("gap", f"{sel.get('gap') or 0:.2e}")
    for stage, seconds in summary.timings.items():
        table.add_row(f"seconds: {stage}", f"{seconds:.2f}")
    console.print(table)
    for reason in sel.get("reasons") or []:
        console.print(f"limit relaxed: {reason}")
    if summary.message:
        console.print(summary.message)
    if summary.report:
        console.print(f"Morning report: [bold]{summary.report}[/bold]")
    console.print(
        f"Results published to {analyst_path(summary.db)} (read-only copy for analysts): "
        "tables runs, plans, plan_installments, replan_triggers, plan_failures; views "
        "latest_plan, plan_adherence, early_warning."
    )


@app.command("replan")
def replan_cmd(
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB portfolio file."),
    as_of: str = typer.Option(None, "--as-of", help="Run date (YYYY-MM-DD); default today."),
    runner: str = typer.Option("threads", "--runner", help="threads | processes | dask."),
    workers: int = typer.Option(2, "--workers", help="Parallel workers (threads/processes)."),
    chunk_size: int = typer.Option(DEFAULT_CHUNK_SIZE, "--chunk-size", help="Loans per task."),
    scope: str = typer.Option("triggered", "--scope", help="triggered | all (every open loan)."),
    inbox: Path = typer.Option(None, "--inbox", help="Folder of arrivals to import first."),
    dask_address: str = typer.Option(
        None, "--dask-address", help="Remote Dask scheduler (tcp://host:8786) for --runner dask."
    ),
    wait: float = typer.Option(
        0.0, "--wait", help="Seconds to wait for a run in progress (default: refuse at once)."
    ),
    prefect: bool = typer.Option(
        True,
        "--prefect/--no-prefect",
        help="Run as the Prefect flow (default; a temporary Prefect server is started when "
        "PREFECT_API_URL is unset) or as plain calls: no server, nothing in Prefect's UI.",
    ),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Re-plan the portfolio now: triggers, candidates in chunks, selection under the
    portfolio limits, compliance, one transaction (re-running a date replaces its results).
    One run at a time per portfolio: a second waits (--wait) or is refused."""
    if not Path(db).exists():
        raise InputError("no such database file", field="db", record=str(db))
    with terminal_progress(err_console, enabled=not json_out):
        summary = replan(
            db,
            _date(as_of),
            runner=runner,
            workers=workers,
            chunk_size=chunk_size,
            inbox=inbox,
            scope=scope,
            dask_address=dask_address,
            wait_s=wait,
            prefect=prefect,
        )
    if json_out:
        emit_json(summary.to_dict())
    else:
        print_summary(summary)


@app.command("serve")
def serve_cmd(
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB portfolio file."),
    cron: str = typer.Option("0 2 * * *", "--cron", help="Schedule (cron, server time zone)."),
    runner: str = typer.Option("processes", "--runner", help="threads | processes | dask."),
    workers: int = typer.Option(2, "--workers", help="Parallel workers."),
    scope: str = typer.Option("triggered", "--scope", help="triggered | all."),
) -> None:
    """Register the nightly schedule on the Prefect server at PREFECT_API_URL and run it."""
    from repayplan.prefect_env import configure

    configure()
    from repayplan.flows.nightly import serve

    serve(str(Path(db).resolve()), cron=cron, runner=runner, workers=workers, scope=scope)
