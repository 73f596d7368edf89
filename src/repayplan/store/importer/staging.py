"""The import's private workspace (the staging database ``stage`` and DuckDB's spill files)
and the SQL over the staged rows that every later step reads.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb

from repayplan.leftovers import claim_folder, sweep_folders
from repayplan.store.importer.tokenise import unregister_tokens


@contextmanager
def private_workspace(
    con: duckdb.DuckDBPyConnection, db: str | Path, memory_limit: str
) -> Iterator[Path]:
    """A mode-0700 directory beside ``db`` for the staging database (attached as ``stage``)
    and DuckDB's spill files, with the memory settings of an import; removed on exit, and
    the token functions (:mod:`.tokenise`) with it."""
    parent = Path(tempfile.gettempdir()) if str(db) == ":memory:" else Path(db).resolve().parent
    prefix = f".{Path(str(db)).name}.import-"
    sweep_folders(parent, f"{prefix}*")  # killed imports' folders (their owner is gone)
    work = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    claim_folder(work)
    quoted = str(work).replace("'", "''")
    try:
        con.execute(f"SET memory_limit = '{memory_limit}'")
        con.execute(f"SET temp_directory = '{quoted}'")
        # No statement of the import depends on the order of rows it does not sort.
        con.execute("SET preserve_insertion_order = false")
        con.execute(f"ATTACH '{quoted}/stage.duckdb' AS stage")
        yield work
    finally:
        try:
            con.execute("DETACH DATABASE IF EXISTS stage")
            unregister_tokens(con)
        finally:
            shutil.rmtree(work, ignore_errors=True)


def good(kind: str, columns: str = "*") -> str:
    """SQL for the rows of ``stage.<kind>`` with no error so far."""
    return (
        f"(SELECT {columns} FROM stage.{kind} WHERE row_number NOT IN "
        f"(SELECT row_number FROM stage.errors WHERE kind = '{kind}'))"
    )


def staged(con: duckdb.DuckDBPyConnection, kind: str) -> bool:
    """Whether this import staged a file of ``kind`` (``stage.<kind>`` exists)."""
    return bool(
        con.execute(
            "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'stage' AND table_name = ?",
            [kind],
        ).fetchall()[0][0]
    )
