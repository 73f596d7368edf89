"""Keyed pseudonymisation of personal data (names, national ids, phone numbers, borrower ids).

Nothing personal is stored in plaintext: each value becomes ``HMAC-SHA256(key, kind | value)``
(hex), so the same person gets the same token on every import (joins and de-duplication still
work) while the value cannot be recovered or guessed by hashing candidates without the key.

The key comes from the environment variable ``REPAYPLAN_PII_KEY`` (at least 16 characters).
When it is unset, a random 256-bit key is generated once per database and kept beside it in
``<database>.pii-key`` with permissions 0600, so the demo needs no set-up. A fingerprint of the
key is kept in ``store_meta``; opening a database with a different key is refused, because its
tokens would no longer match the stored ones.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
from collections.abc import Iterable
from pathlib import Path

import duckdb

from repayplan.errors import InputError

ENV_VAR = "REPAYPLAN_PII_KEY"
KEY_FILE_SUFFIX = ".pii-key"
_MIN_KEY_CHARS = 16
_KINDS = ("borrower", "full_name", "national_id", "phone")
# In-memory databases live as long as the process: one key per process keeps their tokens stable.
_MEMORY_KEY = secrets.token_bytes(32)


def key_file_for(db_path: str | Path) -> Path:
    """The key file kept beside ``db_path`` when ``REPAYPLAN_PII_KEY`` is unset."""
    return Path(f"{db_path}{KEY_FILE_SUFFIX}")


def load_key(db_path: str | Path, *, create: bool = True) -> bytes | None:
    """The pseudonymisation key: from ``REPAYPLAN_PII_KEY``, else the database's key file
    (created with mode 0600 on first use; with ``create`` false a missing file gives None).
    An in-memory database gets a fresh random key."""
    env = os.environ.get(ENV_VAR)
    if env is not None:
        if len(env) < _MIN_KEY_CHARS:
            raise InputError(f"must be at least {_MIN_KEY_CHARS} characters", field=ENV_VAR)
        return env.encode()
    if str(db_path) == ":memory:":
        return _MEMORY_KEY
    path = key_file_for(db_path)
    if not create and not path.exists():
        return None
    try:
        # O_EXCL: two processes starting at once cannot both write a key.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & 0o077:
            raise InputError(
                f"key file is readable by others (mode {mode:o}); run chmod 600 on it",
                field=ENV_VAR,
                record=str(path),
            ) from None
        return bytes.fromhex(path.read_text().strip())
    with os.fdopen(fd, "w") as handle:
        handle.write(secrets.token_hex(32) + "\n")
    return bytes.fromhex(path.read_text().strip())


def _normalise(kind: str, value: str) -> str:
    # Spelling variants of one person's data must give one token.
    if kind == "full_name":
        return " ".join(value.split()).casefold()
    if kind == "national_id":
        return re.sub(r"[\s\-./]", "", value).upper()
    if kind == "phone":
        digits = re.sub(r"\D", "", value)
        return ("+" if value.strip().startswith("+") else "") + digits
    return value.strip()


class Pseudonymiser:
    """Turns personal values into keyed tokens. ``borrower`` tokens are ``B`` + 20 hex digits
    (80 bits: collision-free for any real portfolio); the others 32 hex digits."""

    def __init__(self, key: bytes):
        self._key = key

    @property
    def fingerprint(self) -> str:
        """A short public check value of the key (not the key)."""
        return hmac.new(self._key, b"repayplan key check", hashlib.sha256).hexdigest()[:16]

    def tokens(self, kind: str, values: Iterable[object]) -> list[str | None]:
        """Token per value (None and empty strings stay None), in input order."""
        if kind not in _KINDS:
            raise ValueError(f"unknown personal-data kind {kind!r}")
        prefix = kind.encode() + b"|"
        key = self._key
        out: list[str | None] = []
        cache: dict[str, str] = {}
        for value in values:
            if value is None or (isinstance(value, float) and value != value):
                out.append(None)
                continue
            text = _normalise(kind, str(value))
            if not text:
                out.append(None)
                continue
            token = cache.get(text)
            if token is None:
                digest = hmac.new(key, prefix + text.encode(), hashlib.sha256).hexdigest()
                token = "B" + digest[:20] if kind == "borrower" else digest[:32]
                cache[text] = token
            out.append(token)
        return out


def pseudonymiser_for(con: duckdb.DuckDBPyConnection, db_path: str | Path) -> Pseudonymiser:
    """The pseudonymiser for this database, checking (or recording, on first use) the key's
    fingerprint in ``store_meta`` so that tokens made with another key never mix in."""
    rows = con.execute("SELECT value FROM store_meta WHERE key = 'pii_key_fingerprint'").fetchall()
    key = load_key(db_path, create=not rows)  # a new key file only for a new database
    if key is None:
        raise InputError(
            f"this database was pseudonymised with a key that is not here; set {ENV_VAR} "
            f"or restore {key_file_for(db_path).name} (no new key was written)",
            field=ENV_VAR,
            record=str(db_path),
        )
    pseudo = Pseudonymiser(key)
    if not rows:
        con.execute(
            "INSERT INTO store_meta VALUES ('pii_key_fingerprint', ?)", [pseudo.fingerprint]
        )
    elif rows[0][0] != pseudo.fingerprint:
        raise InputError(
            "this database was pseudonymised with another key; set the original "
            f"{ENV_VAR} (or restore {key_file_for(db_path).name})",
            field=ENV_VAR,
            record=str(db_path),
        )
    return pseudo
