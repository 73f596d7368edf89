"""Opening the portfolio database: one call creates the file and brings its schema up to date.

The file named by ``--db`` is the **engine database**: private to repayplan's writers (the
nightly run, imports, the demo build, the event applier). Analysts, dashboards and the
service read the **published copy** instead (:mod:`repayplan.store.publish`), which no writer
ever opens, so a connection left open there never blocks a write.

DuckDB lets one process hold the engine file at a time. Writers therefore queue: when
another writer holds the file, :func:`connect` waits (polling, up to ``wait_s`` seconds;
default :data:`DEFAULT_WRITER_WAIT_S`, or ``REPAYPLAN_WRITER_WAIT_S``) instead of failing at
once, and names the holder's process when it gives up. See ``docs/concurrency.md``.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import duckdb

from repayplan.errors import InputError
from repayplan.store.schema import migrate

#: Where the CLI and the demo put the portfolio unless told otherwise.
DEFAULT_DB = Path("data/portfolio.duckdb")
#: How long a writer waits for another writer to release the engine file, seconds. Writers
#: hold it for seconds to minutes (a nightly's final write, an import), never a whole run.
DEFAULT_WRITER_WAIT_S = 900.0
#: Environment variable that overrides :data:`DEFAULT_WRITER_WAIT_S` (seconds).
WAIT_ENV = "REPAYPLAN_WRITER_WAIT_S"
#: DuckDB storage version new engine files are created in: the newest that the DuckDB
#: command line on the package index (``duckdb-cli`` 1.5.6) reads, so that a published copy
#: can be a plain copy of the engine file (``store.publish``). DuckDB 2.0 keeps writing a
#: file in the version it was created with.
STORAGE_VERSION = "v1.5.0"

_PID = re.compile(r"PID (\d+)")


def writer_wait_s() -> float:
    """The writers' wait for the engine file, seconds (``REPAYPLAN_WRITER_WAIT_S`` or the
    default)."""
    text = os.environ.get(WAIT_ENV)
    if text is None:
        return DEFAULT_WRITER_WAIT_S
    try:
        value = float(text)
    except ValueError:
        raise InputError(f"not a number of seconds: {text!r}", field=WAIT_ENV) from None
    if not value >= 0:  # also refuses NaN
        raise InputError("must be 0 or more seconds", field=WAIT_ENV)
    return value


def _is_lock_conflict(exc: duckdb.Error) -> bool:
    text = str(exc)
    return "lock" in text.lower() and ("Conflicting" in text or "Could not set lock" in text)


def connect(
    db_path: str | Path = DEFAULT_DB,
    *,
    read_only: bool = False,
    wait_s: float | None = None,
) -> duckdb.DuckDBPyConnection:
    """Open (creating it and its folder if needed) the DuckDB portfolio at ``db_path`` and apply
    any pending schema migrations. ``":memory:"`` gives a private in-memory portfolio.

    While another process holds the file, wait for it up to ``wait_s`` seconds (default
    :func:`writer_wait_s`; 0 fails at once), then raise an :class:`InputError` naming the
    holder's process id. In the same process a second connection shares the open database.
    """
    target = str(db_path)
    if target != ":memory:":
        path = Path(target)
        if read_only and not path.exists():
            raise InputError("no such database file", field="db", record=target)
        path.parent.mkdir(parents=True, exist_ok=True)
        if not read_only and not path.exists():
            _create(path)
    budget = writer_wait_s() if wait_s is None else wait_s
    deadline = time.monotonic() + budget
    pause = 0.05
    while True:
        try:
            con = duckdb.connect(target, read_only=read_only)
            break
        except duckdb.IOException as exc:
            if not _is_lock_conflict(exc) or time.monotonic() >= deadline:
                raise InputError(_open_failure(exc, budget), field="db", record=target) from exc
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 1.0)
    # Library calls and the CLI print their own summaries; DuckDB's bar would interleave.
    con.execute("SET enable_progress_bar = false")
    if not read_only:
        migrate(con)
    return con


def _create(path: Path) -> None:
    """Create an empty engine file in :data:`STORAGE_VERSION` (two processes creating it
    at once: the second finds it there)."""
    quoted = str(path).replace("'", "''")
    con = duckdb.connect(":memory:")
    try:
        con.execute(f"ATTACH '{quoted}' AS engine_file (STORAGE_VERSION '{STORAGE_VERSION}')")
        con.execute("DETACH engine_file")
    except duckdb.Error:
        if not path.exists():
            raise
    finally:
        con.close()


def _open_failure(exc: duckdb.Error, waited_s: float) -> str:
    """The message for a file that could not be opened: who holds it and what to do."""
    if not _is_lock_conflict(exc):
        return f"cannot open the database ({exc})"
    pid = _PID.search(str(exc))
    holder = f"process {pid.group(1)}" if pid else "another process"
    return (
        f"cannot open the database: {holder} holds it (waited {waited_s:g} s). Writers "
        "(a nightly run, an import) hold it for a short while and are waited for; a "
        "connection left open on this engine file blocks them — analysts and dashboards "
        "open the published copy instead (repayplan publish prints its path; see "
        "docs/concurrency.md)"
    )
