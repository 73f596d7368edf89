"""The HTTP API against a real uvicorn server on 127.0.0.1: the offer lifecycle end to end,
idempotency, approval for review plans, expiry, undo, the service answering while a run
holds the book, and bad input of every kind (a clear 4xx, nothing recorded)."""

from __future__ import annotations

import threading
import urllib.request
from datetime import UTC, datetime, timedelta

import duckdb
import pytest

from repayplan.offers.lifecycle import insert_offers
from repayplan.store.connection import connect
from repayplan.store.events import inbox_seq, read_events
from repayplan.store.publish import analyst_path, publish
from repayplan.store.runlock import run_lock

QUOTE = {
    "balance": "10000.00",
    "annual_rate_percent": "18",
    "remaining_term_months": 36,
    "monthly_income": "3000",
    "essential_expenses": "1500",
}
_used: set[str] = set()


def _loan(server, status: str = "delinquent") -> str:
    con = duckdb.connect(str(analyst_path(server.db)), read_only=True)
    try:
        ids = [
            r[0]
            for r in con.execute(
                "SELECT loan_id FROM loans WHERE status = ? ORDER BY loan_id", [status]
            ).fetchall()
        ]
    finally:
        con.close()
    loan = next(i for i in ids if i not in _used)
    _used.add(loan)
    return loan


def _hardship(server, loan_id: str, key: str, headers=None):
    status, _, body = server.request(
        "POST",
        f"/v1/loans/{loan_id}/hardship",
        {"reason": "job_loss", "income_now": "1500.00"},
        headers or server.auth("platform-a", key),
    )
    assert status == 201, body
    return body


def _settled(server) -> bool:
    """The writer has applied everything recorded (and published it)."""
    health = server.request("GET", "/v1/health")[2]
    return health["events_applied"] == health["events_recorded"]


def _offer_status(server, offer_id: str) -> str:
    return server.request("GET", f"/v1/offers/{offer_id}", headers=server.auth("platform-a"))[2][
        "status"
    ]


def test_quote_is_stateless_and_explains_its_options(server):
    before = inbox_seq(server.db)
    status, _headers, body = server.request("POST", "/v1/quotes", QUOTE)
    assert status == 200 and body["status"] in ("ok", "relaxed")
    assert body["expires_at"] > body["created_at"] and body["versions"]["engine"]
    alt = body["alternatives"][0]
    for key in (
        "first_payment",
        "total_paid",
        "apr_percent",
        "irr_annual_percent",
        "max_payment_to_income",
        "explanation",
        "installments",
    ):
        assert alt[key] not in (None, ""), key
    paid = sum(float(i["payment"]) for i in alt["installments"])
    assert f"{paid:.2f}" == alt["total_paid"]
    assert inbox_seq(server.db) == before  # nothing recorded
    # Inputs that cannot give any plan: an answer that says why, not an error.
    status, _, none = server.request(
        "POST", "/v1/quotes", {**QUOTE, "monthly_income": "1000", "essential_expenses": "1000"}
    )
    assert status == 200 and none["alternatives"] == [] and none["status"] == "manual_review"
    assert none["reasons"]


def test_lifecycle_end_to_end_accept_book_undo(server):
    loan = _loan(server)
    made = _hardship(server, loan, "e2e-h")
    offer = next(o for o in made["offers"] if not o["needs_review"])
    oid = offer["offer_id"]
    # Read-your-writes: the offers are there before the writer applied them.
    listed = server.request("GET", f"/v1/loans/{loan}/offers", headers=server.auth("platform-a"))
    assert oid in {o["offer_id"] for o in listed[2]["offers"]}
    status, _, answer = server.request(
        "POST", f"/v1/offers/{oid}/accept", {}, server.auth("platform-a", "e2e-a")
    )
    assert status == 202 and answer["status"] == "accepted" and answer["booking"] == "pending"
    server.wait_for(lambda: _offer_status(server, oid) == "booked")
    server.wait_for(lambda: _settled(server))
    facts = server.request("GET", f"/v1/loans/{loan}", headers=server.auth("platform-a"))[2]
    assert facts["status"] == "restructured" and facts["contract_version"] == 1
    assert facts["installment"] == offer["first_payment"]
    siblings = server.request("GET", f"/v1/loans/{loan}/offers", headers=server.auth("platform-a"))
    assert {o["status"] for o in siblings[2]["offers"] if o["offer_id"] != oid} == {"cancelled"}
    # Undo needs a reviewer; it restores the contract before the booking.
    assert (
        server.request("POST", f"/v1/offers/{oid}/undo", {}, server.auth("platform-a", "e2e-u"))[0]
        == 403
    )
    status, _, undone = server.request(
        "POST",
        f"/v1/offers/{oid}/undo",
        {"note": "booked in error"},
        server.auth("reviewer-1", "e2e-u"),
    )
    assert status == 202 and undone["status"] == "undone"
    server.wait_for(lambda: _offer_status(server, oid) == "undone")
    server.wait_for(lambda: _settled(server))
    facts = server.request("GET", f"/v1/loans/{loan}", headers=server.auth("platform-a"))[2]
    assert facts["status"] == "delinquent" and facts["contract_version"] == 0
    con = duckdb.connect(str(analyst_path(server.db)), read_only=True)
    try:
        trail = con.execute(
            "SELECT from_status, to_status, actor FROM offer_transitions WHERE offer_id = ? "
            "ORDER BY changed_at, to_status",
            [oid],
        ).fetchall()
    finally:
        con.close()
    assert [(t[1], t[2]) for t in trail] == [
        ("offered", "platform-a"),
        ("accepted", "platform-a"),
        ("booked", "system"),
        ("undone", "reviewer-1"),
    ]


def test_idempotency_keys(server):
    loan = _loan(server)
    first = _hardship(server, loan, "idem-h")
    again = _hardship(server, loan, "idem-h")
    assert again == first  # the same key and body: the first answer
    recorded = inbox_seq(server.db)
    status, _, problem = server.request(
        "POST",
        f"/v1/loans/{loan}/hardship",
        {"reason": "illness", "income_now": "1500.00"},
        server.auth("platform-a", "idem-h"),
    )
    assert status == 422 and problem["field"] == "Idempotency-Key"
    oid = next(o for o in first["offers"] if not o["needs_review"])["offer_id"]
    status, _, problem = server.request(
        "POST", f"/v1/offers/{oid}/accept", {}, server.auth("platform-a")
    )
    assert status == 400 and problem["field"] == "Idempotency-Key"
    assert problem["title"] and problem["status"] == 400
    assert inbox_seq(server.db) == recorded
    one = server.request("POST", f"/v1/offers/{oid}/accept", {}, server.auth("platform-a", "k"))
    two = server.request("POST", f"/v1/offers/{oid}/accept", {}, server.auth("platform-a", "k"))
    assert two[2] == one[2] and two[1].get("idempotent-replayed") == "true"
    assert len(read_events(server.db, subject_id=oid)) == 1
    # The same key while the first request is still being answered: 409.
    other = _loan(server)
    results = []

    def fire():
        results.append(
            server.request(
                "POST",
                f"/v1/loans/{other}/hardship",
                {"reason": "job_loss", "income_now": "900.00"},
                server.auth("platform-a", "race"),
            )[0]
        )

    threads = [threading.Thread(target=fire) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert 201 in results and 409 in results, results
    assert len(read_events(server.db, subject_id=other, kind="hardship.reported")) == 1


def test_a_review_plan_needs_a_reviewer_and_a_second_pending_request_is_refused(server):
    loan = _loan(server)
    made = _hardship(server, loan, "rev-h")
    review = next(o for o in made["offers"] if o["needs_review"])
    plain = next(o for o in made["offers"] if not o["needs_review"])
    status, _, answer = server.request(
        "POST", f"/v1/offers/{review['offer_id']}/accept", {}, server.auth("platform-a", "rev-a")
    )
    assert status == 202 and answer["booking"] is None
    status, _, problem = server.request(
        "POST", f"/v1/offers/{plain['offer_id']}/accept", {}, server.auth("platform-a", "rev-b")
    )
    assert status == 409 and review["offer_id"] in problem["detail"]
    assert (
        server.request(
            "POST", f"/v1/offers/{review['offer_id']}/approve", {}, server.auth("platform-a", "x")
        )[0]
        == 403
    )
    server.wait_for(lambda: _offer_status(server, review["offer_id"]) == "accepted")
    status, _, answer = server.request(
        "POST", f"/v1/offers/{review['offer_id']}/approve", {}, server.auth("reviewer-1", "rev-c")
    )
    assert status == 202 and answer["booking"] == "pending"
    server.wait_for(lambda: _offer_status(server, review["offer_id"]) == "booked")


def test_expired_offers_cannot_be_accepted(server):
    loan = _loan(server, "active")
    made = _hardship(server, loan, "exp-h")
    server.wait_for(lambda: _offer_status(server, made["offers"][0]["offer_id"]) == "offered")
    past = datetime.now(UTC).replace(tzinfo=None)
    stale = {
        "offer_id": "Oexpired00000001",
        "loan_id": loan,
        "batch_id": "old-batch",
        "source": "hardship",
        "alternative": "reamortise",
        "as_of": "2025-06-30",
        "contract_version": 0,
        "created_at": (past - timedelta(days=9)).isoformat(),
        "expires_at": (past - timedelta(days=2)).isoformat(),
        "needs_review": False,
        "annual_rate_percent": "10",
        "frequency": "monthly",
        "term_periods": 1,
        "first_payment_cents": 100,
        "max_payment_cents": 100,
        "total_paid_cents": 100,
        "total_interest_cents": 0,
        "engine_version": "test",
        "installments": [[1, "2025-07-30", 100, 100, 0, 0]],
    }
    con = connect(server.db)
    try:
        con.execute("BEGIN TRANSACTION")
        insert_offers(con, [stale], actor="test")
        con.execute("COMMIT")
        publish(server.db, "test", con=con)
    finally:
        con.close()
    status, _, problem = server.request(
        "POST", "/v1/offers/Oexpired00000001/accept", {}, server.auth("platform-a", "exp-a")
    )
    assert status == 409 and "expired" in problem["detail"]


def test_the_service_answers_while_a_run_holds_the_book(server):
    loan = _loan(server)
    with run_lock(server.db, "20250630-deadbeef"):
        made = _hardship(server, loan, "run-h")
        oid = next(o for o in made["offers"] if not o["needs_review"])["offer_id"]
        status, _, _answer = server.request(
            "POST", f"/v1/offers/{oid}/accept", {}, server.auth("platform-a", "run-a")
        )
        assert status == 202
        health = server.request("GET", "/v1/health")[2]
        assert health["run_in_progress"] and health["events_recorded"] > health["events_applied"]
        got = server.request("GET", f"/v1/offers/{oid}", headers=server.auth("platform-a"))[2]
        assert (got["status"], got["booking"]) == ("accepted", "pending")
    server.wait_for(lambda: _offer_status(server, oid) == "booked")


BAD_QUOTES = [
    ({**QUOTE, "balance": "-5"}, "balance"),
    ({**QUOTE, "balance": "10.001"}, "balance"),
    ({**QUOTE, "balance": "ten"}, "balance"),
    ({**QUOTE, "annual_rate_percent": "1000"}, "annual_rate_percent"),
    ({**QUOTE, "remaining_term_months": 0}, "remaining_term_months"),
    ({**QUOTE, "hardship": "bored"}, "hardship"),
    ({**QUOTE, "start_date": "2025-02-30"}, "start_date"),
    ({**QUOTE, "hardship_income_factor": 2}, "hardship_income_factor"),
    ({**QUOTE, "surprise": 1}, "surprise"),
    ({k: v for k, v in QUOTE.items() if k != "monthly_income"}, "monthly_income"),
]


@pytest.mark.parametrize(("body", "field"), BAD_QUOTES)
def test_bad_quote_input_names_the_field(server, body, field):
    status, headers, problem = server.request("POST", "/v1/quotes", body)
    assert status == 422 and headers["content-type"] == "application/problem+json"
    assert problem["field"] == field and problem["detail"].startswith(field)


def test_bad_requests_are_clear_4xx_and_record_nothing(server):
    loan = _loan(server)
    link = server.request("POST", f"/v1/loans/{loan}/borrower-link", {}, server.auth("platform-a"))[
        2
    ]
    other = _loan(server)
    before = inbox_seq(server.db)
    borrower = {"X-Borrower-Token": link["token"], "Idempotency-Key": "b"}
    cases = [
        ("POST", "/v1/quotes", None, {}, b"{not json", 422, None),
        ("GET", f"/v1/loans/{loan}/offers", None, {}, None, 401, "Authorization"),
        (
            "GET",
            f"/v1/loans/{loan}/offers",
            None,
            {"Authorization": "Bearer rp_nope"},
            None,
            401,
            "Authorization",
        ),
        (
            "GET",
            f"/v1/loans/{loan}/offers",
            None,
            {"X-Borrower-Token": "abc.def"},
            None,
            401,
            "X-Borrower-Token",
        ),
        ("GET", f"/v1/loans/{other}/offers", None, borrower, None, 403, "loan_id"),
        ("POST", f"/v1/loans/{loan}/borrower-link", {}, borrower, None, 403, "Authorization"),
        (
            "GET",
            "/v1/loans/L99999999/offers",
            None,
            server.auth("platform-a"),
            None,
            404,
            "loan_id",
        ),
        (
            "POST",
            "/v1/offers/Onope/accept",
            {},
            server.auth("platform-a", "z"),
            None,
            404,
            "offer_id",
        ),
        (
            "POST",
            f"/v1/loans/{loan}/hardship",
            {"reason": "bored", "income_now": "1"},
            borrower,
            None,
            422,
            "reason",
        ),
        (
            "POST",
            f"/v1/loans/{loan}/hardship",
            {"reason": "illness", "income_now": "-1"},
            borrower,
            None,
            422,
            "income_now",
        ),
        (
            "POST",
            f"/v1/loans/{loan}/hardship",
            {"reason": "illness", "income_now": "1", "expected_recovery_date": "2020-01-01"},
            borrower,
            None,
            422,
            "expected_recovery_date",
        ),
        (
            "POST",
            f"/v1/loans/{loan}/prepayments:preview",
            {"amount": "0", "date": "2025-07-30"},
            borrower,
            None,
            422,
            "amount",
        ),
        (
            "POST",
            f"/v1/loans/{loan}/prepayments:preview",
            {"amount": "99999999", "date": "2025-07-30"},
            borrower,
            None,
            422,
            "amount",
        ),
        (
            "POST",
            f"/v1/loans/{loan}/prepayments:preview",
            {"amount": "10", "date": "2020-01-01"},
            borrower,
            None,
            422,
            "date",
        ),
        ("GET", "/v1/nothing-here", None, {}, None, 404, None),
    ]
    for method, path, body, headers, raw, want, field in cases:
        status, got_headers, problem = server.request(method, path, body, headers, raw=raw)
        assert status == want, (path, problem)
        assert got_headers["content-type"] == "application/problem+json", path
        assert problem["status"] == want and problem["detail"]
        if field:
            assert problem.get("field") == field, (path, problem)
    assert inbox_seq(server.db) == before


def test_prepayment_preview_and_openapi(server):
    loan = _loan(server, "active")
    facts = server.request("GET", f"/v1/loans/{loan}", headers=server.auth("platform-a"))[2]
    status, _, preview = server.request(
        "POST",
        f"/v1/loans/{loan}/prepayments:preview",
        {"amount": "500.00", "date": facts["next_due_date"]},
        server.auth("platform-a"),
    )
    assert status == 200 and preview["penalty"] == "0.00"
    shorter, lower = preview["options"]
    assert shorter["installments_left"] <= preview["contract"]["installments_left"]
    assert float(lower["installment"]) < float(preview["contract"]["installment"])
    assert float(shorter["interest_saved"]) >= float(lower["interest_saved"]) > 0
    spec = server.request("GET", "/openapi.json")[2]
    for path in (
        "/v1/quotes",
        "/v1/loans/{loan_id}/offers",
        "/v1/offers/{offer_id}/accept",
        "/v1/offers/{offer_id}/approve",
        "/v1/offers/{offer_id}/reject",
        "/v1/offers/{offer_id}/undo",
        "/v1/loans/{loan_id}/prepayments:preview",
        "/v1/loans/{loan_id}/hardship",
    ):
        assert path in spec["paths"], path
    with urllib.request.urlopen(server.url + "/docs") as page:  # offline, from the package
        text = page.read().decode()
    assert "/openapi.json" in text and "cdn" not in text.lower()


def test_no_personal_data_or_tokens_in_the_log(server):
    text = server.log.read_text()
    assert "Traceback" not in text
    assert "X-Borrower-Token" not in text and "rp_" not in text
