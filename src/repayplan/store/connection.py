"""Opening the portfolio database: one call creates the file and brings its schema up to date."""

from __future__ import annotations

from pathlib import Path

import duckdb

from repayplan.errors import InputError
from repayplan.store.schema import migrate

#: Where the CLI and the demo put the portfolio unless told otherwise.
DEFAULT_DB = Path("data/portfolio.duckdb")


def connect(
    db_path: str | Path = DEFAULT_DB, *, read_only: bool = False
) -> duckdb.DuckDBPyConnection:
    """Open (creating it and its folder if needed) the DuckDB portfolio at ``db_path`` and apply
    any pending schema migrations. ``":memory:"`` gives a private in-memory portfolio.

    DuckDB allows one writing process per file: a second process cannot open it, not even
    read-only, while a writer holds it; that is reported as an :class:`InputError`.
    """
    target = str(db_path)
    if target != ":memory:":
        path = Path(target)
        if read_only and not path.exists():
            raise InputError("no such database file", field="db", record=target)
        path.parent.mkdir(parents=True, exist_ok=True)
    try:
        con = duckdb.connect(target, read_only=read_only)
    except duckdb.IOException as exc:
        raise InputError(f"cannot open the database ({exc})", field="db", record=target) from exc
    # Library calls and the CLI print their own summaries; DuckDB's bar would interleave.
    con.execute("SET enable_progress_bar = false")
    if not read_only:
        migrate(con)
    return con
