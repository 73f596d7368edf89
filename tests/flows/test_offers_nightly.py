"""The nightly closes the loop: it offers the plans it chose, and the next night tracks a
booked loan against its booked contract (roll-forward, tracking, cool-down, triggers)."""

from __future__ import annotations

from datetime import date

import duckdb
import pytest

from repayplan.flows.run import replan
from repayplan.store.events import apply_events, record_event

from .conftest import AS_OF

pytestmark = pytest.mark.flows
LATER = date(2025, 8, 31)  # no payment arrives after AS_OF


def _read(db, sql, params=()):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, list(params)).fetchall()
    finally:
        con.close()


def test_the_next_night_tracks_a_booked_loan_against_its_booked_contract(demo_db):
    first = replan(demo_db, AS_OF, runner="threads", workers=2)
    assert first.counts["offers_created"] > 0
    offers = _read(
        demo_db,
        "SELECT o.offer_id, o.loan_id, o.needs_review, o.run_id, o.engine_version, o.policy_id "
        "FROM offer_status o WHERE o.source = 'nightly' AND o.status = 'offered' "
        "ORDER BY o.needs_review, o.loan_id",
    )
    assert len(offers) == first.counts["offers_created"]
    assert {o[3] for o in offers} == {first.run_id} and all(o[4] and o[5] for o in offers)
    offer_id, loan_id, needs_review, *_ = offers[0]
    assert not needs_review
    record_event(demo_db, "offer.accepted", offer_id, {"role": "platform"}, actor="platform-a")
    assert apply_events(demo_db).applied == 1
    booked = _read(
        demo_db,
        "SELECT due_date, payment FROM offer_installments WHERE offer_id = ? ORDER BY number",
        [offer_id],
    )
    second = replan(demo_db, LATER, runner="threads", workers=2)
    assert second.status in ("succeeded", "partial")
    # Roll-forward on the booked contract: every installment due by LATER is in arrears.
    due = sum(p for d, p in booked if d <= LATER)
    loan = _read(
        demo_db,
        "SELECT arrears_amount, status::VARCHAR, restructure_count, as_of FROM loans "
        "WHERE loan_id = ?",
        [loan_id],
    )[0]
    assert loan[0] == due and loan[1] == "restructured" and loan[3] == LATER
    # Tracking measures the booked contract; the missed installments warn, and cool-down
    # keeps the loan from being re-planned so soon after its restructure.
    track = _read(
        demo_db,
        "SELECT in_force, offer_id, installments_due, installments_missed FROM plan_adherence "
        "WHERE loan_id = ?",
        [loan_id],
    )[0]
    assert track[:2] == (True, offer_id)
    assert track[2] == sum(1 for d, _ in booked if d <= LATER) == track[3] > 0
    trigger = _read(
        demo_db,
        "SELECT reasons, eligible, ineligible_reason FROM replan_triggers "
        "WHERE run_id = ? AND loan_id = ?",
        [second.run_id, loan_id],
    )[0]
    assert "off_track" in trigger[0] and not trigger[1]
    assert trigger[2].startswith("in cool-down")
    # The first night's offers still open are superseded by the second night's.
    stale = _read(
        demo_db,
        "SELECT count(*) FILTER (WHERE status = 'offered'), count(*) FROM offer_status "
        "WHERE run_id = ? AND loan_id IN (SELECT loan_id FROM offers WHERE run_id = ?)",
        [first.run_id, second.run_id],
    )[0]
    assert stale[0] == 0
