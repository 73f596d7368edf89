"""The chunk worker: candidate rows, exact plans and installments, failures — no DuckDB."""

from __future__ import annotations

from datetime import date

import numpy as np
import pandas as pd
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from repayplan.portfolio.candidates import ChunkResult, generate_candidates
from repayplan.portfolio.nightly_policy import NightlyPolicy, active_policy
from repayplan.store import connect, loans_for_planning

from .conftest import AS_OF

POLICY = NightlyPolicy(policy_id="test")


def _frame(db, n=12):
    con = connect(db)
    ids = [
        r[0]
        for r in con.execute(
            "SELECT loan_id FROM loans WHERE status IN ('active', 'delinquent') "
            f"AND remaining_term > 0 ORDER BY days_past_due DESC, loan_id LIMIT {n}"
        ).fetchall()
    ]
    return loans_for_planning(con, ids), active_policy(con)


def _check_tables(result: ChunkResult) -> None:
    cand = result.candidates.to_pandas()
    plans = result.plans.to_pandas()
    inst = result.installments.to_pandas()
    # One keep per planned loan; every candidate has a plan row and a schedule.
    assert (cand.groupby("loan_id")["candidate"].apply(lambda c: (c == "keep").sum()) == 1).all()
    assert set(cand["plan_id"]) == set(plans["plan_id"]) == set(inst["plan_id"])
    assert (cand.loc[cand["candidate"] == "keep", "concession"] == 0).all()
    assert (cand["concession"] >= 0).all()
    assert np.isfinite(cand[["value", "collections_1", "collections_2", "collections_3"]]).all(
        axis=None
    )
    assert (cand["restructure"] == (cand["candidate"] != "keep")).all()
    # Cent-exact: payment = principal + interest, last balance 0.
    assert (inst["payment"] == inst["principal"] + inst["interest"]).all()
    last = inst.sort_values("number").groupby("plan_id")["balance"].last()
    assert (last == 0).all()
    # Expected collections never exceed what is scheduled in those months.
    windows = pd.to_datetime([AS_OF, date(2025, 9, 30)])
    due = inst[
        (pd.to_datetime(inst["due_date"]) > windows[0])
        & (pd.to_datetime(inst["due_date"]) <= windows[1])
    ]
    scheduled = due.groupby("plan_id")["payment"].sum() / 100
    expected = cand.set_index("plan_id")[["collections_1", "collections_2", "collections_3"]]
    total = expected.sum(axis=1)
    assert (total <= scheduled.reindex(total.index, fill_value=0) + 1e-6).all()


def test_chunk_of_demo_loans(demo_db):
    frame, policy = _frame(demo_db)
    result = generate_candidates(frame, AS_OF, policy, "RUN")
    _check_tables(result)
    planned = set(result.candidates["loan_id"].to_pylist())
    failed = set(result.failures["loan_id"].to_pylist())
    assert planned | failed == set(frame["loan_id"])
    assert all(pid.startswith("RUN:") for pid in result.plans["plan_id"].to_pylist())
    # Delinquent loans get the arrears treatments.
    assert pc.sum(pc.equal(result.candidates["candidate"], "spread_arrears")).as_py() > 0


def test_bad_loan_is_recorded_and_the_chunk_goes_on(demo_db):
    frame, policy = _frame(demo_db, n=4)
    frame.loc[frame.index[1], "monthly_income"] = 0
    bad = frame.loc[frame.index[1], "loan_id"]
    result = generate_candidates(frame, AS_OF, policy, "RUN")
    failures = result.failures.to_pandas()
    row = failures[failures["loan_id"] == bad].iloc[0]
    assert row["stage"] == "input" and "monthly_income" in row["reason"]
    assert bad not in set(result.candidates["loan_id"].to_pylist())
    assert len(set(result.candidates["loan_id"].to_pylist())) >= 2


@settings(max_examples=12, deadline=None)
@given(
    balance=st.integers(50_000, 5_000_000),
    rate=st.sampled_from(["0.0499", "0.12", "0.2399", "0.3550"]),
    term=st.integers(6, 72),
    income=st.integers(150_000, 1_200_000),
    arrears=st.integers(0, 80_000),
    hardship=st.sampled_from([None, "job_loss", "business_downturn"]),
)
def test_random_loans_give_consistent_tables(balance, rate, term, income, arrears, hardship):
    from decimal import Decimal

    row = {
        "loan_id": "L-h",
        "borrower_id": "B",
        "product": "consumer_instalment",
        "frequency": "monthly",
        "status": "active",
        "segment": "salaried",
        "outstanding_principal": balance,
        "accrued_interest": 0,
        "arrears_amount": arrears,
        "penalty_fees": 0,
        "monthly_income": income,
        "essential_expenses": income // 3,
        "other_debt_payments": 0,
        "regular_payment": None,
        "annual_rate": Decimal(rate),
        "remaining_term": term,
        "income_seasonality": [1.0] * 12,
        "hardship": hardship,
        "expected_recovery_date": date(2025, 10, 31) if hardship else None,
        "hardship_income_factor": 0.6 if hardship else None,
        "days_past_due": 0,
        "next_due_date": date(2025, 7, 15),
        "base_monthly_hazard": None,
    }
    result = generate_candidates(pd.DataFrame([row]), AS_OF, POLICY, "H")
    assert result.failures.num_rows <= 1
    _check_tables(result)
