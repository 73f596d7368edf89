"""Arrivals: files dropped in the inbox are validated and imported by the nightly run, and a
new loan in arrears is re-planned the same night."""

from __future__ import annotations

import json

import duckdb
import pytest

from repayplan.flows.run import replan

from .conftest import AS_OF

pytestmark = pytest.mark.flows

# ruff: noqa: E501  (CSV fixtures read best unwrapped)

BORROWERS = """borrower_id,monthly_income,essential_expenses,other_debt_payments,segment,full_name
NEW-B1,3800,1500,120,salaried,Ada Byron
NEW-B2,-1,1500,0,salaried,Bad Income
"""
LOANS = """loan_id,borrower_id,product,principal,annual_rate_percent,term_months,origination_date,outstanding_principal,arrears_amount,days_past_due
NEW-L1,NEW-B1,car,18000,8.9,60,2024-01-31,14200,820.50,40
NEW-L2,NEW-B2,car,18000,8.9,60,2024-01-31,14200,,0
"""
PAYMENTS = """loan_id,payment_date,amount
NEW-L1,2024-02-29,372.77
NEW-L1,2024-03-31,372.77
"""


def test_inbox_files_are_imported_then_replanned(demo_db, tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    for name, text in (("borrowers", BORROWERS), ("loans", LOANS), ("payments", PAYMENTS)):
        (inbox / f"{name}.csv").write_text(text)

    summary = replan(demo_db, AS_OF, runner="threads", workers=2, inbox=inbox)

    con = duckdb.connect(str(demo_db), read_only=True)
    try:
        loaded = con.execute(
            "SELECT loan_id FROM loans WHERE loan_id LIKE 'NEW-%' ORDER BY 1"
        ).fetchall()
        rejected = con.execute(
            "SELECT DISTINCT field FROM rejected_rows WHERE source_file LIKE '%borrowers.csv'"
        ).fetchall()
        reasons = con.execute(
            "SELECT reasons FROM replan_triggers WHERE run_id = ? AND loan_id = 'NEW-L1'",
            [summary.run_id],
        ).fetchall()
        chosen = con.execute(
            "SELECT count(*) FROM plans WHERE run_id = ? AND loan_id = 'NEW-L1' AND chosen",
            [summary.run_id],
        ).fetchone()[0]
        counts = json.loads(
            con.execute("SELECT counts FROM runs WHERE run_id = ?", [summary.run_id]).fetchone()[0]
        )
    finally:
        con.close()
    # The good loan went in; the bad borrower (and so its loan) were rejected, by field.
    assert loaded == [("NEW-L1",)]
    assert ("monthly_income",) in rejected
    assert counts["arrivals"]["loaded"]["loans"] == 1
    # In arrears on arrival: triggered and re-planned in the same run.
    assert reasons and "new_arrears" in reasons[0][0]
    assert chosen == 1
