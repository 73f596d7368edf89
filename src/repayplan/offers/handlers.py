"""Event-inbox handlers of the offer lifecycle (``store.events`` imports this module in every
writer process before it applies events; see ``docs/concurrency.md``).

Kinds (the service records them; the writer applies them here, in the order recorded):

- ``offers.created`` (subject: loan id; payload ``{"offers": [...]}`` as
  :func:`~repayplan.offers.lifecycle.offers_from_quote` makes them) — stored as offered;
- ``offer.accepted`` / ``offer.approved`` / ``offer.rejected`` / ``offer.cancelled`` /
  ``offer.undone`` (subject: offer id; payload ``{"role": ..., "note": ...}``) — the
  transition, re-checked with :func:`~repayplan.offers.lifecycle.decide`; accepting a plan
  that needs no review, or approving one, books it; undo restores the contract;
- ``hardship.reported`` (subject: loan id; payload ``reason``, ``expected_recovery_date``,
  ``income_factor``, ``requested_on``) — a ``hardship_requests`` row, status ``open``.

An event the rules refuse (two services raced for one offer; an offer unknown to this
database) changes nothing and never fails the batch: it stays in ``events`` as a record.
"""

from __future__ import annotations

import json
import logging
from datetime import date

import duckdb
import pyarrow as pa

from repayplan.errors import InputError
from repayplan.offers.lifecycle import ACTION_OF, apply_action, insert_offers
from repayplan.store.events import register_default_handler

log = logging.getLogger(__name__)


def _rows(events: pa.Table) -> list[dict]:
    return events.to_pylist()


def on_offers_created(con: duckdb.DuckDBPyConnection, events: pa.Table) -> None:
    """Store the offers of each ``offers.created`` event."""
    for e in _rows(events):
        payload = json.loads(e["payload"])
        offers = payload.get("offers") or []
        if not isinstance(offers, list):
            continue
        try:
            insert_offers(
                con,
                offers,
                actor=e["actor"] or "service",
                event_id=e["event_id"],
                at=e["recorded_at"],
            )
        except (InputError, KeyError, TypeError, ValueError) as exc:
            log.warning("offers.created %s not stored: %s", e["event_id"], type(exc).__name__)


def on_offer_action(con: duckdb.DuckDBPyConnection, events: pa.Table) -> None:
    """Apply each offer action (accept, approve, reject, cancel, undo) in order."""
    for e in _rows(events):
        payload = json.loads(e["payload"])
        try:
            apply_action(
                con,
                e["subject_id"],
                ACTION_OF[e["kind"]],
                actor=e["actor"] or "unknown",
                role=str(payload.get("role") or ""),
                event_id=e["event_id"],
                at=e["recorded_at"],
                note=payload.get("note"),
            )
        except InputError as exc:  # refused by the rules: a record, not a failure
            log.info("%s %s refused: %s", e["kind"], e["event_id"], exc.reason)


def on_hardship(con: duckdb.DuckDBPyConnection, events: pa.Table) -> None:
    """A ``hardship_requests`` row (status ``open``) per reported hardship."""
    for e in _rows(events):
        p = json.loads(e["payload"])
        known = con.execute("SELECT count(*) FROM loans WHERE loan_id = ?", [e["subject_id"]])
        if not known.fetchone()[0]:
            continue
        factor = p.get("income_factor")
        if factor is None and p.get("income_now_cents") is not None:
            usual = con.execute(
                "SELECT b.monthly_income * 100, l.as_of FROM loans l JOIN borrowers b "
                "USING (borrower_id) WHERE l.loan_id = ?",
                [e["subject_id"]],
            ).fetchone()
            if usual is not None and usual[0]:
                factor = min(1.0, float(p["income_now_cents"]) / float(usual[0]))
            p.setdefault("requested_on", usual[1].isoformat() if usual else None)
        recovery = p.get("expected_recovery_date")
        con.execute(
            "INSERT INTO hardship_requests VALUES (?, ?, ?, ?, ?, ?, 'open') "
            "ON CONFLICT (request_id) DO NOTHING",
            [
                "H" + e["event_id"][:15],
                e["subject_id"],
                date.fromisoformat(p.get("requested_on") or e["recorded_at"].date().isoformat()),
                p.get("reason") or "other",
                date.fromisoformat(recovery) if recovery else None,
                factor,
            ],
        )


def register() -> None:
    """Register these handlers as the defaults of their kinds (done at import)."""
    register_default_handler("offers.created", on_offers_created)
    for kind in ACTION_OF:
        register_default_handler(kind, on_offer_action)
    register_default_handler("hardship.reported", on_hardship)


register()
