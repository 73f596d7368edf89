"""CLI of the quote service: ``serve-api`` (FastAPI + uvicorn, the borrower page included)
and ``api-key`` (a hashed key for a platform or a person)."""

from __future__ import annotations

from pathlib import Path

import typer

from repayplan.cli.app import app, console, emit_json
from repayplan.errors import InputError
from repayplan.offers.keys import create_api_key
from repayplan.store.connection import DEFAULT_DB
from repayplan.store.publish import analyst_path, publish


def _existing(db: Path) -> Path:
    if not Path(db).exists():
        raise InputError("no such database file", field="db", record=str(db))
    return db


@app.command("serve-api")
def serve_api(
    db: Path = typer.Option(DEFAULT_DB, "--db", help="Engine DuckDB file."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on."),
    port: int = typer.Option(8000, help="Port to listen on."),
    apply_interval: float = typer.Option(
        1.0, help="Seconds between applying recorded events when no run holds the book (0: never)."
    ),
) -> None:
    """Serve the quote and offer API under /v1 (OpenAPI at /docs) and the borrower page at
    /borrower/ (library: repayplan.service.app.create_app)."""
    if not 1 <= port <= 65535:
        raise InputError(f"must be 1 to 65535, got {port}", field="--port")
    if not apply_interval >= 0:
        raise InputError("must be 0 or more seconds", field="--apply-interval")
    _existing(db)
    if not analyst_path(db).exists():
        publish(db, "serve-api")
    import uvicorn

    from repayplan.service.app import create_app

    console.print(
        f"Serving {db}: API http://{host}:{port}/v1 (docs http://{host}:{port}/docs), "
        f"borrower page http://{host}:{port}/borrower/",
        highlight=False,
    )
    uvicorn.run(
        create_app(db, apply_interval_s=apply_interval), host=host, port=port, log_level="warning"
    )


@app.command("api-key")
def api_key(
    name: str = typer.Argument(..., help="Who the key is for (a platform or a person)."),
    db: Path = typer.Option(DEFAULT_DB, "--db", help="Engine DuckDB file."),
    role: str = typer.Option("platform", help="platform|reviewer"),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Make an API key for the service; it is printed once, only its hash is stored
    (library: repayplan.offers.keys.create_api_key)."""
    key = create_api_key(_existing(db), name, role)
    if json_out:
        emit_json({"name": name, "role": role, "key": key})
        return
    console.print(f"API key for {name} ({role}) — shown once, keep it safe:", highlight=False)
    console.print(key, highlight=False, markup=False)
