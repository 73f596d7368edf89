"""CLI of the morning report: ``repayplan report`` (a thin shell over
:func:`repayplan.report.report`)."""

from __future__ import annotations

from pathlib import Path

import typer

from repayplan.cli.app import app, console, emit_json
from repayplan.store.connection import DEFAULT_DB


@app.command("report")
def report_cmd(
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB portfolio file (read only)."),
    run_id: str = typer.Option(None, "--run-id", help="The run to report on."),
    latest: bool = typer.Option(
        False, "--latest", help="The newest finished run (the default without --run-id)."
    ),
    out: Path = typer.Option(
        None, "--out", help="Folder for the HTML file (default: reports/ beside the database)."
    ),
    currency: str = typer.Option(
        None, "--currency", help="Currency label (default: store_meta.currency, else EUR)."
    ),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Write the morning report of a nightly run: one self-contained HTML file (opens from
    the file system, no network) with what the run decided, why, and what it is expected
    to do."""
    from repayplan.report import report

    result = report(db, run_id=run_id, latest=latest, out=out, currency=currency)
    if json_out:
        emit_json(result.to_dict())
        return
    f = result.figures
    console.print(
        f"Run {result.run_id} as of {result.as_of} ({result.status}): "
        f"{f['loans_restructured']:,} restructured of {f['loans_replanned']:,} re-planned, "
        f"concession {f['concession']:,.2f} {f['currency']}."
    )
    console.print(f"Morning report: [bold]{result.path}[/bold]", soft_wrap=True)
