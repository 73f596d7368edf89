"""The published copy: what analysts, dashboards and the service read.

After every write that changes what people look at (a nightly run's results, an import, the
demo build, applied events), the writer copies the engine database into a new file and
swaps it in with one atomic ``rename``:

- ``<stem>.analyst.duckdb`` beside the engine file (``data/portfolio.analyst.duckdb``) is
  always the last committed state. A reader that holds it open keeps reading the file it
  opened — never a half-written one — and sees the new state when it reconnects. Nothing
  ever writes to a published file, so no reader can block a writer or be blocked.
- ``<stem>.snapshots/`` keeps the last :data:`DEFAULT_KEEP_SNAPSHOTS` copies, one file
  per publication (``20260301T020512Z-nightly-20260301-ab12cd34.duckdb``), for audit: the
  state as people saw it then (``ATTACH … (READ_ONLY)``). The analyst file is a hard link
  to the newest snapshot, so keeping them costs no extra disk for the newest.
- The copy is written in DuckDB storage version :data:`PUBLISHED_STORAGE_VERSION`, which the
  DuckDB command line on the package index (``duckdb-cli`` 1.5.6) opens; the engine file,
  written by DuckDB 2.0, it cannot.

The copy is made by the writer's own connection while it holds the engine file, so it is a
consistent committed state: engine files are created in the published storage version
(``store.connection``), so the copy is the engine file's bytes after a ``CHECKPOINT``
(about a second per GB); an engine file in a newer version (made before this design) is
copied with ``COPY FROM DATABASE`` into a new file instead (seconds per 100 MB). Either way
it carries the schema (ENUM types, primary keys, macros, analyst views) and every table.
``store_meta`` in the copy says when and why it was published (``published_at``,
``published_reason``, ``published_schema``).
A killed publication leaves only a temporary ``.tmp-*`` file, removed by the next one.
"""

from __future__ import annotations

import os
import shutil
import time
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from repayplan.errors import InputError
from repayplan.store.connection import STORAGE_VERSION

#: Storage version of the published files: readable by DuckDB 1.5.x (the CLI on the package
#: index) and by DuckDB 2.0.
PUBLISHED_STORAGE_VERSION = STORAGE_VERSION
#: The storage number in a DuckDB file header of that version (1.5 writes 68; 2.0's own is 69).
MAX_PUBLISHED_STORAGE_NUMBER = 68
#: Snapshots kept by default (each is a full copy of the database).
DEFAULT_KEEP_SNAPSHOTS = 7
#: Environment variable that overrides :data:`DEFAULT_KEEP_SNAPSHOTS`.
KEEP_ENV = "REPAYPLAN_KEEP_SNAPSHOTS"
_STAMP = "%Y%m%dT%H%M%S%fZ"


def _stem(db: str | Path) -> Path:
    db = Path(db)
    return db.with_suffix("") if db.suffix == ".duckdb" else db


def analyst_path(db: str | Path) -> Path:
    """The published copy of ``db``: ``<stem>.analyst.duckdb`` beside it."""
    stem = _stem(db)
    return stem.with_name(stem.name + ".analyst.duckdb")


def snapshot_dir(db: str | Path) -> Path:
    """The folder of ``db``'s snapshots: ``<stem>.snapshots``."""
    stem = _stem(db)
    return stem.with_name(stem.name + ".snapshots")


@dataclass(frozen=True)
class Published:
    """One publication: the analyst file, the snapshot it links to (None when snapshots are
    off), when (UTC), why, and how long the copy took (seconds) and its size (bytes)."""

    path: Path
    snapshot: Path | None
    published_at: datetime
    reason: str
    seconds: float
    bytes: int


@dataclass(frozen=True)
class Snapshot:
    """A kept publication: its file, when it was published (UTC) and why."""

    path: Path
    published_at: datetime
    reason: str


def keep_snapshots() -> int:
    """How many snapshots publications keep (``REPAYPLAN_KEEP_SNAPSHOTS`` or the default)."""
    text = os.environ.get(KEEP_ENV)
    if text is None:
        return DEFAULT_KEEP_SNAPSHOTS
    if not text.strip().isdigit():
        raise InputError(f"not a whole number: {text!r}", field=KEEP_ENV)
    return int(text)


def _safe_reason(reason: str) -> str:
    cleaned = "".join(c if c.isalnum() or c in "-_" else "-" for c in reason)[:60]
    return cleaned.strip("-") or "publish"


def publish(
    db: str | Path,
    reason: str = "publish",
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    keep: int | None = None,
) -> Published:
    """Publish the committed state of the engine database ``db`` (see the module docstring).

    ``con``: the caller's open writer connection to ``db`` (its transaction must be
    committed); without it the engine is opened (waiting for other writers). ``reason``
    names the publication (a run id, an import id). ``keep``: snapshots to keep (default
    :func:`keep_snapshots`; 0 keeps none, only the analyst file).
    """
    if str(db) == ":memory:":
        raise InputError("an in-memory database has no published copy", field="db")
    keep = keep_snapshots() if keep is None else keep
    own = con is None
    if own:
        from repayplan.store.connection import connect

        con = connect(db)
    try:
        return _publish(con, Path(db), reason, keep)
    finally:
        if own:
            con.close()


def _publish(con: duckdb.DuckDBPyConnection, db: Path, reason: str, keep: int) -> Published:
    tic = time.perf_counter()
    now = datetime.now(UTC)
    target = analyst_path(db)
    folder = snapshot_dir(db) if keep > 0 else target.parent
    folder.mkdir(parents=True, exist_ok=True)
    _remove_leftovers(folder)
    _remove_leftovers(target.parent)
    tmp = folder / f".tmp-{uuid.uuid4().hex}.duckdb"
    schema = con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchone()[0]
    meta = {
        "published_at": now.isoformat(timespec="microseconds"),
        "published_reason": reason,
        "published_schema": str(schema),
    }
    # Recorded in the engine first, so the copy carries them (and the engine says what it
    # last published).
    con.executemany(
        "INSERT INTO store_meta VALUES (?, ?) "
        "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
        list(meta.items()),
    )
    method = "file" if _readable_version(db) else "copy"
    if method == "file":
        try:
            _copy_file(con, db, tmp)
        except (duckdb.Error, OSError):
            tmp.unlink(missing_ok=True)
            method = "copy"
    if method == "copy":
        _copy_database(con, tmp)
    os.chmod(tmp, 0o444)
    _fsync(tmp)
    snapshot = None
    if keep > 0:
        snapshot = folder / f"{now.strftime(_STAMP)}-{_safe_reason(reason)}.duckdb"
        os.rename(tmp, snapshot)
        link = target.with_name(f".{target.name}.{uuid.uuid4().hex}.tmp")
        try:
            os.link(snapshot, link)  # no second copy of the newest state
        except OSError:  # a file system without hard links
            shutil.copyfile(snapshot, link)
        os.replace(link, target)
        _prune(folder, keep)
    else:
        os.replace(tmp, target)
    _fsync(target.parent)
    return Published(
        path=target,
        snapshot=snapshot,
        published_at=now,
        reason=reason,
        seconds=time.perf_counter() - tic,
        bytes=target.stat().st_size,
    )


def _readable_version(db: Path) -> bool:
    """Whether the engine file's storage is one the published copy may have as it is
    (created in :data:`repayplan.store.connection.STORAGE_VERSION` or older)."""
    try:
        with open(db, "rb") as f:
            header = f.read(20)
    except OSError:
        return False
    if header[8:12] != b"DUCK":
        return False
    return int.from_bytes(header[12:20], "little") <= MAX_PUBLISHED_STORAGE_NUMBER


def _copy_file(con: duckdb.DuckDBPyConnection, db: Path, tmp: Path) -> None:
    """The fast path: checkpoint the engine (everything committed is in the main file), pin
    it with an open transaction (no checkpoint can rewrite the file meanwhile; this process
    holds the file, so no other process can write it) and copy its bytes. The copy is then
    opened once to check it before it is published."""
    con.execute("CHECKPOINT")
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("SELECT count(*) FROM schema_migrations").fetchall()
        shutil.copyfile(db, tmp)
    finally:
        con.execute("COMMIT")
    check = duckdb.connect(str(tmp), read_only=True)
    try:
        check.execute("SELECT count(*) FROM schema_migrations").fetchall()
    finally:
        check.close()


def _copy_database(con: duckdb.DuckDBPyConnection, tmp: Path) -> None:
    """The general path (an engine file in a newer storage version): a new file in
    :data:`PUBLISHED_STORAGE_VERSION` filled by ``COPY FROM DATABASE``."""
    source = con.execute("SELECT current_database()").fetchone()[0]
    quoted = str(tmp).replace("'", "''")
    con.execute(
        f"ATTACH '{quoted}' AS published_copy (STORAGE_VERSION '{PUBLISHED_STORAGE_VERSION}')"
    )
    try:
        con.execute(f'COPY FROM DATABASE "{source}" TO published_copy')
    finally:
        con.execute("DETACH published_copy")


def _remove_leftovers(folder: Path) -> None:
    """Temporary files of publications that were killed (no publication runs beside this
    one: the caller holds the engine file)."""
    for path in folder.glob(".tmp-*.duckdb*"):
        path.unlink(missing_ok=True)
    for path in folder.glob(".*.analyst.duckdb.*.tmp"):
        path.unlink(missing_ok=True)


def _prune(folder: Path, keep: int) -> None:
    for old in list_snapshots_in(folder)[:-keep]:
        old.path.unlink(missing_ok=True)  # a reader that has it open keeps reading it


def _fsync(path: Path) -> None:
    """Flush ``path`` to disk: a file's contents, or a directory's entries (a rename)."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def list_snapshots_in(folder: Path) -> list[Snapshot]:
    """The snapshots in ``folder``, oldest first."""
    found = []
    for path in folder.glob("*.duckdb") if folder.is_dir() else []:
        stamp, _, reason = path.stem.partition("-")
        try:
            when = datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC)
        except ValueError:
            continue
        found.append(Snapshot(path=path, published_at=when, reason=reason))
    return sorted(found, key=lambda s: s.published_at)


def list_snapshots(db: str | Path) -> list[Snapshot]:
    """The kept snapshots of ``db``, oldest first."""
    return list_snapshots_in(snapshot_dir(db))


def snapshot_at(db: str | Path, when: datetime) -> Snapshot:
    """The snapshot that was current at ``when`` (the last one published at or before it;
    a naive ``when`` is taken as UTC). Raises :class:`InputError` when none is that old."""
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    earlier = [s for s in list_snapshots(db) if s.published_at <= when]
    if not earlier:
        raise InputError(
            f"no snapshot kept from {when.isoformat()} or earlier", field="when", record=str(db)
        )
    return earlier[-1]


def connect_published(
    db: str | Path, snapshot: str | Path | None = None
) -> duckdb.DuckDBPyConnection:
    """A read-only connection to the published copy of ``db`` (or to ``snapshot``): what an
    analyst or the service opens. It never blocks a writer; close and reconnect to see a
    newer publication."""
    path = Path(snapshot) if snapshot is not None else analyst_path(db)
    if not path.exists():
        raise InputError(
            "nothing published yet: run `repayplan publish --db DB` (or any import or run)",
            field="db",
            record=str(path),
        )
    return duckdb.connect(str(path), read_only=True)


def connect_reader(db: str | Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection for library readers: the published copy when there is one,
    else the engine file itself (read-only, which a writer must then wait for)."""
    if analyst_path(db).exists():
        return connect_published(db)
    from repayplan.store.connection import connect

    return connect(db, read_only=True)


def analyst_recipe(db: str | Path) -> str:
    """How an analyst connects to ``db``'s published copy (DuckDB CLI and Python), as text
    to print."""
    path = analyst_path(db)
    return (
        f"Analysts: open the read-only published copy {path} (never the engine file {db}):\n"
        f"  DuckDB CLI:  duckdb -readonly {path}\n"
        f"               (pip install duckdb-cli==1.5.6, or .venv/bin/duckdb here)\n"
        f"  Python:      duckdb.connect('{path}', read_only=True)\n"
        "It is the last committed state, swapped in whole after each run, import or event "
        "apply; reconnect to see a newer one. Older states: "
        f"{snapshot_dir(db)}/ (docs/concurrency.md)."
    )
