"""The service's read of the offer lifecycle: the published copy, plus the service's own
events the writer has not applied yet (read-your-writes).

The published copy (``store.publish``) is the last state a writer committed; events in the
inbox after its watermark are replayed on top of it with the same rules the writer applies
(:func:`~repayplan.offers.lifecycle.decide`). An accepted plan that the writer has not
booked yet shows ``status: accepted`` with ``booking: "pending"``; once applied and
published it shows ``booked``.
"""

from __future__ import annotations

import copy
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

from repayplan.errors import InputError
from repayplan.offers.keys import key_hash
from repayplan.offers.lifecycle import (
    ACTION_OF,
    OfferNotFound,
    OfferState,
    decide,
    effective_status,
    offers_of_loan,
)
from repayplan.store.events import read_events
from repayplan.store.publish import analyst_path


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class Reader:
    """Cached read-only connection to ``db``'s published copy, reopened when a newer copy
    is swapped in; thread-safe (one cursor at a time)."""

    def __init__(self, db: str | Path):
        self.db = Path(db)
        self._lock = threading.Lock()
        self._con: duckdb.DuckDBPyConnection | None = None
        self._ino: tuple[int, int] | None = None
        self._keys: dict[str, tuple[str, str]] = {}

    def _identity(self) -> tuple[int, int] | None:
        try:
            st = os.stat(analyst_path(self.db))
        except FileNotFoundError:
            return None
        return (st.st_ino, st.st_mtime_ns)

    @contextmanager
    def cursor(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A cursor on the newest published copy (InputError when none is published)."""
        with self._lock:
            ident = self._identity()
            if ident is None:
                raise InputError(
                    "nothing published yet: run `repayplan publish --db DB`", field="db"
                )
            if self._con is None or ident != self._ino:
                if self._con is not None:
                    self._con.close()
                self._con = duckdb.connect(str(analyst_path(self.db)), read_only=True)
                self._ino = ident
                self._keys = {
                    h: (n, r)
                    for n, r, h in self._con.execute(
                        "SELECT name, role::VARCHAR, key_sha256 FROM api_keys "
                        "WHERE revoked_at IS NULL"
                    ).fetchall()
                }
            yield self._con

    def key(self, key: str) -> tuple[str, str] | None:
        """(name, role) of an API key, from the published copy."""
        with self.cursor():
            return self._keys.get(key_hash(key))

    def watermark(self) -> int:
        """The inbox ``seq`` the published copy has applied."""
        with self.cursor() as con:
            return int(con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            if self._con is not None:
                self._con.close()
                self._con = None


def _state(o: dict[str, Any]) -> OfferState:
    return OfferState(
        offer_id=o["offer_id"],
        loan_id=o["loan_id"],
        status=o["recorded_status"],
        needs_review=o["needs_review"],
        expires_at=datetime.fromisoformat(o["expires_at"]),
        accepted_by=o.get("accepted_by"),
        contract_version=o["contract_version"],
    )


def loan_offers(reader: Reader, loan_id: str, *, now: datetime | None = None) -> list[dict]:
    """The loan's offers as the service answers them (newest first): the published state
    with the pending events replayed; each has ``status`` (expiry applied) and ``booking``
    (``pending`` while the writer has not booked an accepted/approved plan yet)."""
    now = now or _now()
    with reader.cursor() as con:
        known = con.execute("SELECT count(*) FROM loans WHERE loan_id = ?", [loan_id])
        if not known.fetchone()[0]:
            raise InputError("no such loan", field="loan_id", record=f"loan {loan_id}")
        offers = offers_of_loan(con, loan_id)
        accepted = dict(
            con.execute(
                """SELECT t.offer_id, arg_max(t.actor, t.changed_at) FROM offer_transitions t
                   JOIN offers o USING (offer_id) WHERE o.loan_id = ? AND t.to_status = 'accepted'
                   GROUP BY t.offer_id""",
                [loan_id],
            ).fetchall()
        )
        wm = int(con.execute("SELECT coalesce(max(seq), 0) FROM events").fetchone()[0])
        version = con.execute(
            """SELECT version FROM contract_versions WHERE loan_id = ?
               AND event IN ('booked', 'restored') ORDER BY recorded_at DESC, version DESC
               LIMIT 1""",
            [loan_id],
        ).fetchone()
    by_id: dict[str, dict[str, Any]] = {}
    for o in offers:
        o["recorded_status"] = o["status"]
        o["accepted_by"] = accepted.get(o["offer_id"])
        o["booking"] = None
        by_id[o["offer_id"]] = o
    _replay(by_id, loan_id, wm, reader.db, now, version[0] if version else 0)
    out = sorted(by_id.values(), key=lambda o: (o["created_at"], o["offer_id"]), reverse=True)
    for o in out:
        o["status"] = effective_status(
            o["recorded_status"], datetime.fromisoformat(o["expires_at"]), now
        )
    return out


def _replay(
    by_id: dict[str, dict[str, Any]],
    loan_id: str,
    watermark: int,
    db: Path,
    now: datetime,
    version: int,
) -> None:
    """Apply the pending events of ``loan_id``'s offers on top of the published state."""
    for e in read_events(db, after_seq=watermark):
        if e.kind == "offers.created" and e.subject_id == loan_id:
            batch = [copy.deepcopy(o) for o in e.payload.get("offers", [])]
            for o in by_id.values():
                if o["recorded_status"] == "offered" and o["batch_id"] not in {
                    b["batch_id"] for b in batch
                }:
                    o["recorded_status"] = "cancelled"
            for o in batch:
                o.update(recorded_status="offered", accepted_by=None, booking=None)
                o.setdefault("status_at", e.recorded_at.isoformat())
                by_id.setdefault(o["offer_id"], o)
        elif e.kind in ACTION_OF and e.subject_id in by_id:
            o = by_id[e.subject_id]
            action = ACTION_OF[e.kind]
            pending = next(
                (
                    x["offer_id"]
                    for x in by_id.values()
                    if x["offer_id"] != o["offer_id"]
                    and x["recorded_status"] in ("accepted", "approved")
                ),
                None,
            )
            try:
                to = decide(
                    _state(o),
                    action,
                    actor=e.actor or "",
                    role=str(e.payload.get("role") or ""),
                    now=e.recorded_at.replace(tzinfo=None),
                    pending_other=pending if action == "accept" else None,
                    current_version=version if action == "accept" else None,
                )
            except InputError:
                continue
            o["recorded_status"] = to
            if to == "accepted":
                o["accepted_by"] = e.actor
            o["booking"] = (
                "pending"
                if to == "approved" or (to == "accepted" and not o["needs_review"])
                else "undo pending"
                if to == "undone"
                else None
            )


def find_offer(reader: Reader, offer_id: str, loan_id: str | None = None) -> dict[str, Any]:
    """One offer as :func:`loan_offers` gives it (OfferNotFound when unknown)."""
    if loan_id is None:
        with reader.cursor() as con:
            row = con.execute("SELECT loan_id FROM offers WHERE offer_id = ?", [offer_id])
            found = row.fetchone()
        if found is not None:
            loan_id = found[0]
        else:
            for e in read_events(reader.db, after_seq=reader.watermark(), kind="offers.created"):
                if any(o.get("offer_id") == offer_id for o in e.payload.get("offers", [])):
                    loan_id = e.subject_id
    if loan_id is not None:
        for o in loan_offers(reader, loan_id):
            if o["offer_id"] == offer_id:
                return o
    raise OfferNotFound("no such offer", field="offer_id", record=f"offer {offer_id}")


def pending_other(offers: list[dict[str, Any]], offer_id: str) -> str | None:
    """Another of these offers accepted or approved and not yet booked."""
    return next(
        (
            o["offer_id"]
            for o in offers
            if o["offer_id"] != offer_id and o["recorded_status"] in ("accepted", "approved")
        ),
        None,
    )


def state_of(offer: dict[str, Any]) -> OfferState:
    """The :class:`OfferState` of a viewed offer."""
    return _state(offer)


def contract_version(reader: Reader, loan_id: str) -> int:
    """The loan's contract version in the published copy."""
    with reader.cursor() as con:
        row = con.execute(
            """SELECT version FROM contract_versions WHERE loan_id = ?
               AND event IN ('booked', 'restored') ORDER BY recorded_at DESC, version DESC
               LIMIT 1""",
            [loan_id],
        ).fetchone()
    return int(row[0]) if row else 0
