"""The event inbox: how the service records what borrowers and staff do while the nightly runs.

A service process (quote, accept, approve …) never opens the engine database. It appends
an event to the **inbox**, an SQLite file beside the engine (``<db>.events.sqlite``, WAL
journal, ``synchronous=FULL``), with :func:`record_event`: one short transaction, safe from
any number of processes and threads at once, durable when it returns, never waiting for a
nightly run or an import. The inbox is append-only (triggers refuse ``UPDATE``/``DELETE``).

Idempotency: an event may carry the caller's ``idempotency_key``. Recording the same key
with the same body again returns the first event (``duplicate=True``) and records nothing;
the same key with a different body raises :class:`IdempotencyConflict`. So a client's retry
is never recorded twice.

The single writer brings events into the engine with :func:`apply_events` (the nightly run
does it before it plans and again after it writes; ``repayplan apply-events`` does it on
demand): the events after the engine's watermark (the highest ``seq`` it holds) are inserted
into the engine table ``events`` — primary key ``event_id`` — and handed to the handlers
registered for their kind (:func:`register_event_handler`), all in one transaction. A crash
before the commit applies nothing; after it, the watermark says they are in. Each event is
applied exactly once.

Events hold pseudonymous ids and amounts only: payload keys that name personal data
(:data:`PERSONAL_KEYS`) are refused. Money is integer cents.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sqlite3
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from repayplan.errors import InputError

INBOX_SUFFIX = ".events.sqlite"
#: Payload keys refused because they would put personal data in the inbox.
PERSONAL_KEYS = frozenset({"full_name", "name", "national_id", "phone", "email", "address"})
_KIND = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
#: How long a recording waits for another process's recording to finish, milliseconds.
BUSY_TIMEOUT_MS = 30_000

_SCHEMA = (
    """CREATE TABLE IF NOT EXISTS events (
        seq INTEGER PRIMARY KEY AUTOINCREMENT,
        event_id TEXT NOT NULL UNIQUE,
        idempotency_key TEXT UNIQUE,
        kind TEXT NOT NULL,
        subject_id TEXT NOT NULL,
        actor TEXT,
        payload TEXT NOT NULL,
        body_hash TEXT NOT NULL,
        recorded_at TEXT NOT NULL
    )""",
    """CREATE TRIGGER IF NOT EXISTS events_no_update BEFORE UPDATE ON events
       BEGIN SELECT RAISE(ABORT, 'the event inbox is append-only'); END""",
    """CREATE TRIGGER IF NOT EXISTS events_no_delete BEFORE DELETE ON events
       BEGIN SELECT RAISE(ABORT, 'the event inbox is append-only'); END""",
)


class IdempotencyConflict(InputError):
    """The idempotency key was already used with a different body (HTTP 422)."""


@dataclass(frozen=True)
class Event:
    """One recorded event. ``seq``: its place in the inbox (1, 2, …); ``payload``: JSON
    object (money in integer cents); ``recorded_at``: UTC. ``duplicate``: this call found the
    event already recorded under its idempotency key and recorded nothing."""

    seq: int
    event_id: str
    kind: str
    subject_id: str
    payload: dict[str, Any]
    recorded_at: datetime
    idempotency_key: str | None = None
    actor: str | None = None
    duplicate: bool = False


@dataclass
class ApplySummary:
    """What :func:`apply_events` did: events applied now, per kind, the engine's watermark
    after it, and seconds taken."""

    applied: int
    kinds: dict[str, int]
    watermark: int
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "applied": self.applied,
            "kinds": self.kinds,
            "watermark": self.watermark,
            "seconds": round(self.seconds, 3),
        }


#: Handler: called inside the applying transaction with the writer's connection and the
#: events of its kind (Arrow: seq, event_id, kind, subject_id, actor, payload JSON text,
#: idempotency_key, recorded_at), in ``seq`` order: one call per run of consecutive events of
#: that kind, so events of different kinds are applied in the order they were recorded.
Handler = Callable[[duckdb.DuckDBPyConnection, pa.Table], None]
_HANDLERS: dict[str, Handler] = {}
#: The handlers repayplan itself ships (``repayplan.offers.handlers``): used for a kind with
#: no handler registered by :func:`register_event_handler`, which overrides them.
_DEFAULTS: dict[str, Handler] = {}
#: Modules imported before the first apply, so that the handlers they register (at import)
#: are there in every writer process — the nightly's included. Absent modules are skipped.
HANDLER_MODULES: list[str] = ["repayplan.offers.handlers"]
_loaded = False


def _load_handler_modules() -> None:
    global _loaded
    if _loaded:
        return
    import importlib

    for name in HANDLER_MODULES:
        try:
            importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if not (exc.name and name.startswith(exc.name)):
                raise
    _loaded = True


def register_event_handler(kind: str, handler: Handler) -> None:
    """Have ``handler`` apply the events of ``kind`` (replacing any earlier handler). Events
    of a kind with no handler are kept in ``events`` only."""
    _check_kind(kind)
    _HANDLERS[kind] = handler


def register_default_handler(kind: str, handler: Handler) -> None:
    """Have ``handler`` apply the events of ``kind`` unless a handler is registered for it
    with :func:`register_event_handler` (which takes precedence; unregistering it brings
    this one back). What modules in :data:`HANDLER_MODULES` call at import."""
    _check_kind(kind)
    _DEFAULTS[kind] = handler


def unregister_event_handler(kind: str) -> None:
    """Forget the handler of ``kind`` (if any)."""
    _HANDLERS.pop(kind, None)


def inbox_path(db: str | Path) -> Path:
    """The event inbox of ``db``: ``<db>.events.sqlite``."""
    return Path(f"{db}{INBOX_SUFFIX}")


def _check_kind(kind: str) -> None:
    if not isinstance(kind, str) or not _KIND.fullmatch(kind):
        raise InputError(
            "must be lower-case words joined by dots, like offer.accepted", field="kind"
        )


_local = threading.local()


class _Inbox:
    """A cached SQLite connection to one inbox (one per thread and process: SQLite
    connections are neither thread- nor fork-safe); ``close`` keeps it open for reuse."""

    def __init__(self, path: Path) -> None:
        self.pid = os.getpid()
        self.con = sqlite3.connect(
            path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=True
        )
        self.con.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        self.con.execute("PRAGMA journal_mode = WAL")
        self.con.execute("PRAGMA synchronous = FULL")  # durable when the commit returns
        for statement in _SCHEMA:
            self.con.execute(statement)

    def execute(self, sql: str, params: Any = ()) -> sqlite3.Cursor:
        return self.con.execute(sql, params)

    @property
    def in_transaction(self) -> bool:
        return self.con.in_transaction

    def close(self) -> None:
        if self.con.in_transaction:
            self.con.execute("ROLLBACK")


def _open(db: str | Path) -> _Inbox:
    if str(db) == ":memory:":
        raise InputError("an in-memory database has no event inbox", field="db")
    path = inbox_path(db).resolve()
    cache = getattr(_local, "inboxes", None)
    if cache is None:
        cache = _local.inboxes = {}
    inbox = cache.get(path)
    if inbox is None or inbox.pid != os.getpid() or not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        inbox = cache[path] = _Inbox(path)
    return inbox


def _canonical(kind: str, subject_id: str, payload: Mapping[str, Any]) -> tuple[str, str]:
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    body = json.dumps([kind, subject_id, json.loads(text)], sort_keys=True)
    return text, hashlib.sha256(body.encode()).hexdigest()


def _check_payload(payload: Mapping[str, Any]) -> None:
    def walk(value: Any, where: str) -> None:
        if isinstance(value, Mapping):
            for key, item in value.items():
                if str(key).lower() in PERSONAL_KEYS:
                    raise InputError(
                        "personal data is never recorded; send pseudonymous ids only",
                        field=f"payload.{where}{key}",
                    )
                walk(item, f"{where}{key}.")
        elif isinstance(value, list | tuple):
            for item in value:
                walk(item, where)

    if not isinstance(payload, Mapping):
        raise InputError("must be a JSON object", field="payload")
    walk(payload, "")


def record_event(
    db: str | Path,
    kind: str,
    subject_id: str,
    payload: Mapping[str, Any] | None = None,
    *,
    idempotency_key: str | None = None,
    actor: str | None = None,
) -> Event:
    """Append one event to ``db``'s inbox and return it (see the module docstring).

    ``kind``: dotted lower-case name (``offer.accepted``); ``subject_id``: the pseudonymous
    id it is about (an offer, a loan); ``payload``: JSON object (money in integer cents; no
    NaN or infinity), no personal data; ``idempotency_key``: the caller's key (a retry
    with the same key and body returns the first event; scope keys per caller, e.g.
    ``"<api key name>:<key>"``); ``actor``: who (an API key's name). Returns in about a
    millisecond; waits only for another recording, never for the engine database.
    """
    _check_kind(kind)
    if not isinstance(subject_id, str) or not subject_id.strip():
        raise InputError("must be a non-empty id", field="subject_id")
    payload = dict(payload or {})
    _check_payload(payload)
    try:
        text, body_hash = _canonical(kind, subject_id, payload)
    except (TypeError, ValueError) as exc:
        raise InputError(f"not JSON: {type(exc).__name__}", field="payload") from None
    con = _open(db)
    try:
        con.execute("BEGIN IMMEDIATE")
        try:
            if idempotency_key is not None:
                first = con.execute(
                    "SELECT * FROM events WHERE idempotency_key = ?", [idempotency_key]
                ).fetchone()
                if first is not None:
                    con.execute("COMMIT")
                    event = _event(first, duplicate=True)
                    if first[7] != body_hash:
                        raise IdempotencyConflict(
                            f"this key was used for another request (event {event.event_id})",
                            field="idempotency_key",
                        )
                    return event
            row = (
                uuid.uuid4().hex,
                idempotency_key,
                kind,
                subject_id,
                actor,
                text,
                body_hash,
                datetime.now(UTC).isoformat(timespec="microseconds"),
            )
            cur = con.execute(
                "INSERT INTO events (event_id, idempotency_key, kind, subject_id, actor, "
                "payload, body_hash, recorded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                row,
            )
            seq = cur.lastrowid
            con.execute("COMMIT")
        except BaseException:
            if con.in_transaction:
                con.execute("ROLLBACK")
            raise
    finally:
        con.close()
    return _event((seq, *row))


def _event(row: tuple, duplicate: bool = False) -> Event:
    seq, event_id, key, kind, subject_id, actor, payload, _hash, recorded_at = row
    return Event(
        seq=int(seq),
        event_id=event_id,
        kind=kind,
        subject_id=subject_id,
        payload=json.loads(payload),
        recorded_at=datetime.fromisoformat(recorded_at),
        idempotency_key=key,
        actor=actor,
        duplicate=duplicate,
    )


def find_event(db: str | Path, idempotency_key: str) -> Event | None:
    """The event recorded under ``idempotency_key``, if any (``duplicate=True``): a service
    answers a retry with it before checking anything else."""
    if not inbox_path(db).exists():
        return None
    con = _open(db)
    try:
        row = con.execute(
            "SELECT * FROM events WHERE idempotency_key = ?", [idempotency_key]
        ).fetchone()
    finally:
        con.close()
    return None if row is None else _event(row, duplicate=True)


def same_request(event: Event, kind: str, subject_id: str, payload: Mapping[str, Any]) -> bool:
    """Whether ``event`` records exactly this request (kind, subject and payload)."""
    try:
        text, _ = _canonical(kind, subject_id, dict(payload))
    except (TypeError, ValueError):
        return False
    return event.kind == kind and event.subject_id == subject_id and event.payload == json.loads(
        text
    )


def inbox_seq(db: str | Path) -> int:
    """The inbox's highest ``seq`` (0 when empty or absent)."""
    if not inbox_path(db).exists():
        return 0
    con = _open(db)
    try:
        return int(con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])
    finally:
        con.close()


def read_events(
    db: str | Path, *, after_seq: int = 0, subject_id: str | None = None, kind: str | None = None
) -> list[Event]:
    """The inbox's events after ``after_seq`` (applied or not), optionally of one subject or
    kind, in ``seq`` order — what the service reads back to answer from its own records."""
    if not inbox_path(db).exists():
        return []
    con = _open(db)
    try:
        sql = "SELECT * FROM events WHERE seq > ?"
        params: list[Any] = [after_seq]
        if subject_id is not None:
            sql += " AND subject_id = ?"
            params.append(subject_id)
        if kind is not None:
            sql += " AND kind = ?"
            params.append(kind)
        return [_event(r) for r in con.execute(sql + " ORDER BY seq", params).fetchall()]
    finally:
        con.close()


def watermark(con: duckdb.DuckDBPyConnection) -> int:
    """The highest inbox ``seq`` applied to the engine database of ``con`` (0: none)."""
    return int(con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])


_ARROW = pa.schema(
    [
        ("seq", pa.int64()),
        ("event_id", pa.string()),
        ("idempotency_key", pa.string()),
        ("kind", pa.string()),
        ("subject_id", pa.string()),
        ("actor", pa.string()),
        ("payload", pa.string()),
        ("recorded_at", pa.timestamp("us")),  # UTC, naive
    ]
)


def apply_events(
    db: str | Path,
    *,
    con: duckdb.DuckDBPyConnection | None = None,
    applied_by: str = "apply-events",
    publish: bool | None = None,
    limit: int | None = None,
) -> ApplySummary:
    """Apply the inbox's new events to the engine database ``db`` exactly once (see the
    module docstring). ``con``: the caller's writer connection (the nightly's); without it
    the engine is opened (waiting for other writers) and, when something was applied, the
    result published (``publish`` overrides). ``applied_by``: recorded per event (a run id).
    ``limit``: apply at most this many (oldest first)."""
    tic = time.perf_counter()
    _load_handler_modules()
    own = con is None
    if own:
        from repayplan.store.connection import connect

        con = connect(db)
    try:
        have = watermark(con)
        rows = _pending_rows(db, have, limit)
        kinds: dict[str, int] = {}
        if rows:
            table = pa.table(
                {
                    name: [r[i] for r in rows]
                    for i, name in enumerate(
                        (
                            "seq",
                            "event_id",
                            "idempotency_key",
                            "kind",
                            "subject_id",
                            "actor",
                            "payload",
                            "recorded_at",
                        )
                    )
                },
                schema=_ARROW,
            )
            con.execute("BEGIN TRANSACTION")
            try:
                con.register("events_in", table)
                con.execute(
                    "INSERT INTO events SELECT event_id, seq, idempotency_key, kind, subject_id, "
                    "actor, payload::JSON, recorded_at, ?, ? FROM events_in "
                    "ON CONFLICT (event_id) DO NOTHING",
                    [datetime.now(UTC).replace(tzinfo=None), applied_by],
                )
                con.unregister("events_in")
                # Runs of consecutive events of one kind, in seq order: an offer created
                # and accepted in the same batch is created first.
                kind_list = table["kind"].to_pylist()
                start = 0
                for end in range(1, len(kind_list) + 1):
                    if end < len(kind_list) and kind_list[end] == kind_list[start]:
                        continue
                    kind = kind_list[start]
                    part = table.slice(start, end - start)
                    kinds[kind] = kinds.get(kind, 0) + part.num_rows
                    handler = _HANDLERS.get(kind) or _DEFAULTS.get(kind)
                    if handler is not None:
                        handler(con, part)
                    start = end
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
        summary = ApplySummary(
            applied=len(rows), kinds=kinds, watermark=watermark(con), seconds=0.0
        )
        if publish if publish is not None else own and rows:
            from repayplan.store.publish import publish as publish_copy

            publish_copy(db, f"events-{summary.watermark}", con=con)
    finally:
        if own:
            con.close()
    summary.seconds = time.perf_counter() - tic
    return summary


def _pending_rows(db: str | Path, after: int, limit: int | None) -> list[tuple]:
    if not inbox_path(db).exists():
        return []
    con = _open(db)
    try:
        sql = (
            "SELECT seq, event_id, idempotency_key, kind, subject_id, actor, payload, "
            "recorded_at FROM events WHERE seq > ? ORDER BY seq"
        )
        params: list[Any] = [after]
        if limit is not None:
            sql += " LIMIT ?"
            params.append(int(limit))
        rows = con.execute(sql, params).fetchall()
    finally:
        con.close()
    return [(*r[:7], datetime.fromisoformat(r[7]).replace(tzinfo=None)) for r in rows]


def pending_count(db: str | Path, con: duckdb.DuckDBPyConnection) -> int:
    """How many inbox events ``con``'s engine database has not applied yet."""
    if not inbox_path(db).exists():
        return 0
    inbox = _open(db)
    try:
        return int(
            inbox.execute("SELECT count(*) FROM events WHERE seq > ?", [watermark(con)]).fetchone()[
                0
            ]
        )
    finally:
        inbox.close()
