"""The offer lifecycle in the store: offers recorded by the service are applied by the writer;
booking replaces the contract (earlier versions kept); undo restores it exactly; a plan that
needs review is booked only after a second person approves it; the nightly's roll-forward,
tracking and cool-down use the booked contract."""

from __future__ import annotations

from datetime import date, datetime, timedelta

import duckdb
import pytest

from repayplan.offers.lifecycle import (
    OfferConflict,
    OfferForbidden,
    OfferState,
    decide,
    expire_offers,
)
from repayplan.offers.quotes import hardship_offers
from repayplan.portfolio.nightly_policy import active_policy
from repayplan.portfolio.triggers import select_for_replanning, update_delinquency
from repayplan.store.connection import connect
from repayplan.store.events import apply_events, record_event

_LOAN_COLUMNS = "* EXCLUDE (source)"


def _delinquent(db) -> str:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(
            "SELECT loan_id FROM loans WHERE days_past_due > 0 AND status = 'delinquent' "
            "ORDER BY loan_id LIMIT 1"
        ).fetchone()[0]
    finally:
        con.close()


def _state(db, loan_id):
    con = duckdb.connect(str(db), read_only=True)
    try:
        loan = con.execute(f"SELECT {_LOAN_COLUMNS} FROM loans WHERE loan_id = ?", [loan_id])
        return (
            loan.fetchone(),
            con.execute(
                "SELECT * FROM contract_installments WHERE loan_id = ? ORDER BY number", [loan_id]
            ).fetchall(),
        )
    finally:
        con.close()


def _q(db, sql, params=()):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def _offers(db, loan_id, review: bool):
    made = hardship_offers(db, loan_id, reason="job_loss", income_now_cents=150_000)
    record_event(db, "offers.created", loan_id, {"offers": made.offers}, actor="platform-a")
    return made, next(o for o in made.offers if o["needs_review"] is review)


def test_booking_replaces_the_contract_and_undo_restores_it_exactly(book):
    loan_id = _delinquent(book)
    before = _state(book, loan_id)
    _, offer = _offers(book, loan_id, review=False)
    record_event(
        book,
        "offer.accepted",
        offer["offer_id"],
        {"role": "borrower"},
        actor=f"borrower:{loan_id}",
        idempotency_key="b:1",
    )
    assert apply_events(book).applied == 2
    loan, contract = _state(book, loan_id)
    assert [(r[1], r[2], int(r[3] * 100)) for r in contract] == [
        (n, date.fromisoformat(d), p) for n, d, p, *_ in offer["installments"]
    ]
    cols = [r[0] for r in _q(book, "SELECT column_name FROM (DESCRIBE SELECT * FROM loans)")]
    row = dict(zip([c for c in cols if c != "source"], loan, strict=True))
    assert row["status"] == "restructured" and row["days_past_due"] == 0
    assert row["arrears_amount"] == 0 and row["delinquency_bucket"] == "current"
    assert row["restructure_count"] == before[0][cols.index("restructure_count")] + 1
    assert row["regular_payment"] * 100 == offer["first_payment_cents"]
    # Audit: offered → accepted → booked; the siblings cancelled; versions 0 and 1 kept.
    trail = _q(
        book,
        "SELECT from_status, to_status, actor FROM offer_transitions "
        "WHERE offer_id = ? ORDER BY changed_at, to_status",
        [offer["offer_id"]],
    )
    assert [t[1] for t in trail] == ["offered", "accepted", "booked"]
    assert trail[1][2] == f"borrower:{loan_id}"
    siblings = _q(
        book,
        "SELECT DISTINCT status FROM offer_status WHERE loan_id = ? AND offer_id <> ?",
        [loan_id, offer["offer_id"]],
    )
    assert siblings == [("cancelled",)]
    versions = _q(
        book,
        "SELECT version, event FROM contract_versions WHERE loan_id = ? "
        "ORDER BY recorded_at, version",
        [loan_id],
    )
    assert versions == [(0, "superseded"), (1, "booked")]

    # The nightly's roll-forward, tracking and cool-down use the booked contract.
    con = connect(book)
    try:
        later = offer["installments"][1][1]
        update_delinquency(con, date.fromisoformat(later))
        arrears = con.execute(
            "SELECT arrears_amount, status::VARCHAR FROM loans WHERE loan_id = ?", [loan_id]
        ).fetchone()
        due = sum(i[2] for i in offer["installments"][:2])
        assert (int(arrears[0] * 100), arrears[1]) == (due, "restructured")
        track = con.execute(
            "SELECT installments_due, in_force, offer_id FROM plan_adherence WHERE loan_id = ?",
            [loan_id],
        ).fetchone()
        assert track == (2, True, offer["offer_id"])
        assert (
            con.execute(
                "SELECT count(*) FROM early_warning WHERE loan_id = ?", [loan_id]
            ).fetchone()[0]
            == 1
        )
        triggers = select_for_replanning(con, date.fromisoformat(later), active_policy(con))
        mine = triggers[triggers["loan_id"] == loan_id].iloc[0]
        assert "off_track" in mine["reasons"] and not mine["eligible"]
        assert mine["ineligible_reason"].startswith("in cool-down")
    finally:
        con.close()

    # Undo (a reviewer): the contract before the booking, exactly.
    record_event(book, "offer.undone", offer["offer_id"], {"role": "reviewer"}, actor="rev-1")
    apply_events(book)
    assert _state(book, loan_id) == before
    assert _q(book, "SELECT status FROM offer_status WHERE offer_id = ?", [offer["offer_id"]]) == [
        ("undone",)
    ]
    assert _q(
        book, "SELECT count(*) FROM plan_adherence WHERE loan_id = ? AND in_force", [loan_id]
    ) == [(0,)]


def test_a_plan_that_needs_review_is_booked_only_after_a_second_person_approves(book):
    loan_id = _delinquent(book)
    before = _state(book, loan_id)
    _, offer = _offers(book, loan_id, review=True)
    oid = offer["offer_id"]
    record_event(book, "offer.accepted", oid, {"role": "platform"}, actor="platform-a")
    # The same person cannot approve (refused by the writer, nothing changes) ...
    record_event(book, "offer.approved", oid, {"role": "platform"}, actor="platform-a")
    apply_events(book)
    assert _q(book, "SELECT status FROM offer_status WHERE offer_id = ?", [oid]) == [("accepted",)]
    assert _state(book, loan_id) == before
    # ... a reviewer can.
    record_event(book, "offer.approved", oid, {"role": "reviewer"}, actor="rev-1")
    apply_events(book)
    trail = _q(
        book,
        "SELECT to_status, actor FROM offer_transitions WHERE offer_id = ? "
        "ORDER BY changed_at, to_status",
        [oid],
    )
    assert trail == [
        ("offered", "platform-a"),
        ("accepted", "platform-a"),
        ("approved", "rev-1"),
        ("booked", "system"),
    ]
    assert _state(book, loan_id) != before


def test_expired_offers_cannot_be_accepted_and_expiry_is_audited(book):
    loan_id = _delinquent(book)
    _, offer = _offers(book, loan_id, review=False)
    apply_events(book)
    con = connect(book)
    try:
        n = expire_offers(con, datetime.now() + timedelta(days=8))
        assert n >= 1
    finally:
        con.close()
    record_event(book, "offer.accepted", offer["offer_id"], {"role": "borrower"}, actor="b")
    apply_events(book)
    assert _q(
        book, "SELECT recorded_status FROM offer_status WHERE offer_id = ?", [offer["offer_id"]]
    ) == [("expired",)]


def _st(**kw) -> OfferState:
    base = dict(
        offer_id="O1",
        loan_id="L1",
        status="offered",
        needs_review=False,
        expires_at=datetime(2030, 1, 1),
    )
    return OfferState(**{**base, **kw})


NOW = datetime(2029, 1, 1)


def test_rules():
    assert decide(_st(), "accept", actor="b", role="borrower", now=NOW) == "accepted"
    with pytest.raises(OfferForbidden):
        decide(_st(), "approve", actor="b", role="borrower", now=NOW)
    with pytest.raises(OfferConflict, match="expired"):
        decide(_st(expires_at=datetime(2028, 1, 1)), "accept", actor="b", role="borrower", now=NOW)
    with pytest.raises(OfferConflict, match="already has offer O2"):
        decide(_st(), "accept", actor="b", role="borrower", now=NOW, pending_other="O2")
    with pytest.raises(OfferConflict, match="contract changed"):
        decide(_st(), "accept", actor="b", role="platform", now=NOW, current_version=1)
    accepted = _st(status="accepted", needs_review=True, accepted_by="r")
    with pytest.raises(OfferConflict, match="cannot also approve"):
        decide(accepted, "approve", actor="r", role="reviewer", now=NOW)
    assert decide(accepted, "approve", actor="s", role="reviewer", now=NOW) == "approved"
    with pytest.raises(OfferConflict, match="needs no approval"):
        decide(_st(status="accepted"), "approve", actor="s", role="reviewer", now=NOW)
    with pytest.raises(OfferConflict, match="only a booked plan"):
        decide(_st(), "undo", actor="s", role="reviewer", now=NOW)
    assert decide(_st(status="booked"), "undo", actor="s", role="reviewer", now=NOW) == "undone"
    with pytest.raises(OfferConflict):
        decide(_st(status="booked"), "reject", actor="s", role="reviewer", now=NOW)
