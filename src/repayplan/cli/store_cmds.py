"""CLI of the store: ``init-demo`` (a simulated portfolio) and ``import`` (a lender's files)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

import typer

from repayplan.cli.app import app, column, console, emit_json, err_console, parse_date
from repayplan.cli.app import table as new_table
from repayplan.errors import InputError
from repayplan.progress import terminal_progress
from repayplan.store.connection import DEFAULT_DB
from repayplan.store.demo import init_demo
from repayplan.store.importer import DEFAULT_RATE_CAP_PERCENT, import_files


def _parse_date(text: str | None, field: str) -> date | None:
    return parse_date(text, field)


@app.command("init-demo")
def init_demo_cmd(
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB file to (re)fill."),
    loans: int = typer.Option(10_000, "--loans", help="Number of loans to simulate."),
    seed: int = typer.Option(7, "--seed", help="Random seed (same seed, same portfolio)."),
    as_of: str = typer.Option(
        None, "--as-of", help="Date the balances refer to (YYYY-MM-DD); default today."
    ),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Build a realistic demo portfolio with payment history (replaces the portfolio data)."""
    summary = init_demo(db, loans=loans, seed=seed, as_of=_parse_date(as_of, "as_of"))
    if json_out:
        emit_json(summary.to_dict())
        return
    table = new_table(f"Demo portfolio in {summary.db} (as of {summary.as_of}, seed {seed})")
    table.add_column("table")
    table.add_column("rows", justify="right")
    for name, rows in summary.rows.items():
        table.add_row(name, f"{rows:,}")
    console.print(table)
    shares = ", ".join(f"{k} {v:.1%}" for k, v in summary.bucket_shares.items())
    console.print(f"Open loans by bucket: {shares}")
    statuses = ", ".join(f"{k} {v:.1%}" for k, v in summary.status_shares.items())
    console.print(f"Loans by status: {statuses}")
    console.print(f"Built in {summary.seconds:.1f} s")


@app.command("import")
def import_cmd(
    db: Path = typer.Option(DEFAULT_DB, "--db", help="DuckDB file to load into."),
    borrowers: Path = typer.Option(None, "--borrowers", help="Borrowers file (.csv or .parquet)."),
    loans: Path = typer.Option(None, "--loans", help="Loans file (.csv or .parquet)."),
    payments: Path = typer.Option(None, "--payments", help="Payments file (.csv or .parquet)."),
    rate_cap: str = typer.Option(
        str(DEFAULT_RATE_CAP_PERCENT),
        "--rate-cap",
        help="Reject loans above this annual rate (percent).",
    ),
    as_of: str = typer.Option(None, "--as-of", help="Import date (YYYY-MM-DD); default today."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Validate and load a lender's files; bad rows go to rejected_rows (library: import_files)."""
    try:
        cap = Decimal(rate_cap)
    except ArithmeticError:
        raise InputError(f"not a number: {rate_cap}", field="rate_cap") from None
    with terminal_progress(err_console, enabled=not json_out):
        summary = import_files(
            db, borrowers, loans, payments, rate_cap_percent=cap, as_of=_parse_date(as_of, "as_of")
        )
    if json_out:
        emit_json(summary.to_dict())
        return
    table = new_table(f"Import {summary.import_id} into {summary.db}")
    for col in ("file", "read", "loaded", "rejected"):
        column(table, col, numeric=col != "file")
    for kind, read in summary.read.items():
        table.add_row(
            kind, f"{read:,}", f"{summary.loaded.get(kind, 0):,}", f"{summary.rejected[kind]:,}"
        )
    console.print(table)
    if summary.rejections:
        rej = new_table("First rejected rows (all in table rejected_rows)")
        for col in ("file", "row", "record", "field", "reason"):
            column(rej, col, numeric=col == "row", prose=col == "reason")
        for file, *rest in summary.rejections:
            rej.add_row(Path(file).name, *(str(v) if v is not None else "" for v in rest))
        console.print(rej)
        if summary.rejections_not_listed:
            console.print(
                f"… and {summary.rejections_not_listed:,} more in rejected_rows "
                f"(import_id = '{summary.import_id}')"
            )
