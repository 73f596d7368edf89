"""API keys for the service's lender endpoints: one per platform or person, so that the
audit (``offer_transitions.actor``) names who did what.

A key is 32 random bytes (``rp_`` + 64 hex digits), shown once when it is made; the store
keeps only its SHA-256 (``api_keys.key_sha256``). A fast hash is enough here because the key
is random with 256 bits of entropy — there is no dictionary to try, unlike a password — and
it keeps checking a key per request at microseconds. Roles: ``platform`` (a lending
platform acting for its borrowers: quotes, offers, accept, hardship, prepayment preview)
and ``reviewer`` (a person at the lender: approve, reject, undo).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from repayplan.errors import InputError
from repayplan.store.schema import API_KEY_ROLES

_NAME = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")


def key_hash(key: str) -> str:
    """The SHA-256 (hex) under which ``key`` is stored."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_api_key(db: str | Path, name: str, role: str = "platform") -> str:
    """Make a key for ``name`` (lower-case letters, digits, ``_.-``) with ``role`` in the
    engine database, publish, and return the key — the only time it is seen."""
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise InputError("must be 1-63 lower-case letters, digits, '_', '.' or '-'", field="name")
    if role not in API_KEY_ROLES:
        raise InputError(f"unknown role; use one of {', '.join(API_KEY_ROLES)}", field="role")
    from repayplan.store.connection import connect
    from repayplan.store.publish import publish

    key = "rp_" + secrets.token_hex(32)
    con = connect(db)
    try:
        if con.execute("SELECT count(*) FROM api_keys WHERE name = ?", [name]).fetchone()[0]:
            raise InputError("a key with this name exists already", field="name", record=name)
        con.execute(
            "INSERT INTO api_keys VALUES (?, ?, ?, ?, NULL)",
            [name, role, key_hash(key), datetime.now(UTC).replace(tzinfo=None)],
        )
        if str(db) != ":memory:":
            publish(db, "api-key", con=con)
    finally:
        con.close()
    return key


def lookup_key(con: duckdb.DuckDBPyConnection, key: str) -> tuple[str, str] | None:
    """(name, role) of an unrevoked ``key`` in ``con``'s database, else None."""
    row = con.execute(
        "SELECT name, role::VARCHAR FROM api_keys WHERE key_sha256 = ? AND revoked_at IS NULL",
        [key_hash(key)],
    ).fetchone()
    return (row[0], row[1]) if row else None
