"""CLI of sharing the portfolio: ``publish`` (the analysts' copy), ``snapshots`` (kept copies
for audit) and ``apply-events`` (the service's event inbox into the engine)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from repayplan.cli.app import app, console, emit_json
from repayplan.errors import InputError
from repayplan.store.connection import DEFAULT_DB
from repayplan.store.events import apply_events
from repayplan.store.publish import analyst_recipe, list_snapshots, publish


def _existing(db: Path) -> Path:
    if not Path(db).exists():
        raise InputError("no such database file", field="db", record=str(db))
    return db


@app.command("publish")
def publish_cmd(
    db: Path = typer.Option(DEFAULT_DB, "--db", help="Engine DuckDB file."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Publish the engine's committed state as the analysts' read-only copy (library:
    store.publish.publish); runs, imports and event applies do it themselves."""
    done = publish(_existing(db), "manual")
    if json_out:
        emit_json(
            {
                "path": str(done.path),
                "snapshot": str(done.snapshot) if done.snapshot else None,
                "published_at": done.published_at.isoformat(),
                "seconds": round(done.seconds, 3),
                "bytes": done.bytes,
            }
        )
        return
    console.print(f"Published {done.path} ({done.bytes / 1e6:.1f} MB) in {done.seconds:.2f} s")
    console.print(analyst_recipe(db), highlight=False, markup=False)


@app.command("snapshots")
def snapshots_cmd(
    db: Path = typer.Option(DEFAULT_DB, "--db", help="Engine DuckDB file."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """The kept published copies, oldest first (library: store.publish.list_snapshots)."""
    kept = list_snapshots(db)
    if json_out:
        emit_json(
            [
                {
                    "path": str(s.path),
                    "published_at": s.published_at.isoformat(),
                    "reason": s.reason,
                }
                for s in kept
            ]
        )
        return
    table = Table(title=f"Snapshots of {db}")
    table.add_column("published at (UTC)")
    table.add_column("reason")
    table.add_column("file")
    for snap in kept:
        table.add_row(snap.published_at.isoformat(timespec="seconds"), snap.reason, str(snap.path))
    console.print(table)


@app.command("apply-events")
def apply_events_cmd(
    db: Path = typer.Option(DEFAULT_DB, "--db", help="Engine DuckDB file."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Apply the service's recorded events to the engine, each once, and publish (library:
    store.events.apply_events); the nightly run does it too."""
    summary = apply_events(_existing(db))
    if json_out:
        emit_json(summary.to_dict())
        return
    kinds = ", ".join(f"{k} {n}" for k, n in summary.kinds.items()) or "none new"
    console.print(
        f"Applied {summary.applied} events ({kinds}); watermark {summary.watermark}; "
        f"{summary.seconds:.2f} s"
    )
