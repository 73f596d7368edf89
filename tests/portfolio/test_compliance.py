"""Compliance re-check of chosen plans on their cent-exact schedules."""

from __future__ import annotations

from dataclasses import replace
from decimal import Decimal

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from repayplan.portfolio.candidates import generate_candidates
from repayplan.portfolio.compliance import check_compliance
from repayplan.portfolio.nightly_policy import active_policy
from repayplan.store import connect, loans_for_planning

from .conftest import AS_OF


@pytest.fixture(scope="module")
def chunk(demo_db_master):
    con = connect(demo_db_master)
    ids = [
        r[0]
        for r in con.execute(
            "SELECT loan_id FROM loans WHERE status <> 'closed' ORDER BY loan_id LIMIT 15"
        ).fetchall()
    ]
    policy = active_policy(con)
    result = generate_candidates(loans_for_planning(con, ids), AS_OF, policy, "C")
    con.close()
    return result, policy


def test_generated_plans_pass(chunk):
    result, policy = chunk
    failed = check_compliance(result.plans, result.installments, policy.plan)
    assert failed.num_rows == 0


def test_tampered_schedule_fails_reconciliation(chunk):
    result, policy = chunk
    target = result.plans["plan_id"][1].as_py()
    inst = result.installments.to_pandas()
    row = inst.index[inst["plan_id"] == target][0]
    inst.loc[row, "payment"] += 1  # one cent more than principal + interest
    failed = check_compliance(
        result.plans, pa.Table.from_pandas(inst, preserve_index=False), policy.plan
    ).to_pandas()
    assert failed["plan_id"].tolist() == [target]
    assert failed["reason"].iloc[0].startswith("reconcile: an installment is not")
    assert failed["stage"].iloc[0] == "compliance"


def test_rate_cap_affordability_and_yield_floor(chunk):
    result, policy = chunk
    offers = pc.sum(pc.not_equal(result.plans["alternative"], "keep")).as_py()
    strict = replace(policy.plan, rate_cap=Decimal("0.01"), pti_cap=Decimal("0.0001"))
    failed = check_compliance(result.plans, result.installments, strict).to_pandas()
    assert len(failed) == offers  # every offer, and no keep plan (the contract in force)
    assert failed["reason"].str.contains("rate_cap: IRR-method rate").all()
    assert failed["reason"].str.contains("affordability").all()
    # Settlements and NPV-tested fallbacks are held to the settlement discount instead.
    no_concession = replace(
        policy.plan, max_concession=Decimal("-10"), settlement_discount=Decimal("-10")
    )
    failed = check_compliance(result.plans, result.installments, no_concession).to_pandas()
    assert failed["reason"].str.contains("yield_floor").all() and len(failed) == offers
