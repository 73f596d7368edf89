"""Delinquency roll-forward, re-planning triggers and eligibility on a real DuckDB demo."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

import pytest

from repayplan.errors import InputError
from repayplan.portfolio.nightly_policy import active_policy, policy_from_parameters
from repayplan.portfolio.triggers import select_for_replanning, update_delinquency
from repayplan.store import connect

from .conftest import AS_OF


def test_every_open_loan_is_listed_with_reasons(demo_db):
    con = connect(demo_db)
    policy = active_policy(con)
    frame = select_for_replanning(con, AS_OF, policy)
    open_loans = con.execute(
        "SELECT count(*) FROM loans WHERE status IN ('active','delinquent','restructured')"
    ).fetchone()[0]
    assert len(frame) == open_loans
    assert frame["loan_id"].is_unique
    triggered = frame[frame["reasons"].map(len) > 0]
    assert len(triggered) > 0
    # Eligible means triggered and no ineligibility reason.
    assert not frame.loc[frame["reasons"].map(len) == 0, "eligible"].any()
    assert frame.loc[frame["eligible"], "ineligible_reason"].isna().all()
    # Past-due, non-restructured loans are all triggered on a first run.
    dpd = dict(con.execute("SELECT loan_id, days_past_due FROM loans").fetchall())
    status = dict(zip(frame["loan_id"], frame["status"], strict=True))
    for loan_id, reasons in zip(frame["loan_id"], frame["reasons"], strict=True):
        if dpd[loan_id] > 0 and status[loan_id] != "restructured":
            assert "new_arrears" in reasons


def test_hardship_request_and_eligibility_rules(demo_db):
    con = connect(demo_db)
    policy = active_policy(con)
    ids = [
        r[0]
        for r in con.execute(
            "SELECT loan_id FROM loans WHERE status = 'active' ORDER BY loan_id LIMIT 3"
        ).fetchall()
    ]
    for n, loan_id in enumerate(ids):
        con.execute(
            "INSERT INTO hardship_requests VALUES (?, ?, ?, 'job_loss', NULL, 0.5, 'open')",
            [f"H-test-{n}", loan_id, AS_OF],
        )
    con.execute("UPDATE loans SET restructure_count = 2 WHERE loan_id = ?", [ids[1]])
    con.execute(
        "UPDATE loans SET restructure_count = 1, last_restructure_date = ? WHERE loan_id = ?",
        [date(2025, 3, 1), ids[2]],
    )
    frame = select_for_replanning(con, AS_OF, policy).set_index("loan_id")
    assert "hardship_request" in frame.loc[ids[0], "reasons"]
    assert frame.loc[ids[0], "eligible"]
    assert not frame.loc[ids[1], "eligible"]
    assert "policy maximum 2" in frame.loc[ids[1], "ineligible_reason"]
    assert not frame.loc[ids[2], "eligible"]
    assert frame.loc[ids[2], "ineligible_reason"] == "in cool-down until 2025-09-01"


def test_scope_all_and_unknown_scope(demo_db):
    con = connect(demo_db)
    policy = active_policy(con)
    frame = select_for_replanning(con, AS_OF, policy, scope="all")
    assert frame["reasons"].map(lambda r: "all" in r).all()
    with pytest.raises(InputError, match="scope"):
        select_for_replanning(con, AS_OF, policy, scope="some")


def test_income_drop_threshold(demo_db):
    con = connect(demo_db)
    policy = active_policy(con)
    strict = replace(policy, income_drop_threshold=0.0)
    loose = replace(policy, income_drop_threshold=0.99)

    def count(p):
        return (
            select_for_replanning(con, AS_OF, p)["reasons"].map(lambda r: "income_drop" in r).sum()
        )

    assert count(strict) >= count(policy) >= count(loose) == 0


def test_delinquency_roll_forward_is_idempotent_and_counts_days(demo_db):
    con = connect(demo_db)
    assert update_delinquency(con, AS_OF) == 0  # balances already refer to AS_OF
    current = [
        r[0]
        for r in con.execute(
            "SELECT loan_id FROM loans WHERE status = 'active' AND days_past_due = 0 "
            "AND next_due_date <= DATE '2025-07-31' ORDER BY loan_id LIMIT 5"
        ).fetchall()
    ]
    later = date(2025, 8, 31)
    rolled = update_delinquency(con, later)
    assert rolled > 0
    assert update_delinquency(con, later) == 0
    for loan_id in current:
        dpd, bucket, status, as_of, arrears = con.execute(
            "SELECT days_past_due, delinquency_bucket::VARCHAR, status::VARCHAR, as_of, "
            "arrears_amount FROM loans WHERE loan_id = ?",
            [loan_id],
        ).fetchone()
        assert as_of == later
        # No payment arrived after AS_OF, so the installment due in July is unpaid.
        assert dpd > 30 and status == "delinquent" and arrears > 0
        assert bucket == ("dpd_31_60" if dpd <= 60 else "dpd_61_90")


def test_payment_arrival_cures(demo_db):
    con = connect(demo_db)
    loan_id, due, payment = con.execute(
        "SELECT c.loan_id, c.due_date, c.payment FROM contract_installments c "
        "JOIN loans l USING (loan_id) WHERE l.status = 'active' AND l.days_past_due = 0 "
        "AND c.due_date > l.as_of ORDER BY c.loan_id, c.number LIMIT 1"
    ).fetchone()
    con.execute(
        "INSERT INTO payments VALUES (?, ?, 1, ?, ?, NULL, 'test')", [loan_id, due, payment, due]
    )
    update_delinquency(con, due)
    assert con.execute(
        "SELECT days_past_due, arrears_amount FROM loans WHERE loan_id = ?", [loan_id]
    ).fetchone() == (0, 0)


def test_bad_policy_parameter_names_the_key():
    with pytest.raises(InputError, match="policy p1"):
        policy_from_parameters("p1", {"hurdle_rate": "five percent"})
