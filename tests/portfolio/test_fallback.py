"""A delinquent loan that no optimised template can plan gets the next-best lawful
restructure (the HAMP waterfall, or a settlement) for review — never silently its contract."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from repayplan.plans.quote import case_from_record, quote
from repayplan.portfolio.candidates import generate_candidates
from repayplan.portfolio.compliance import check_compliance
from repayplan.portfolio.nightly_policy import NightlyPolicy

AS_OF = date(2026, 12, 2)
POLICY = NightlyPolicy(policy_id="test")

#: A seasonal earner a month behind on a short consumer loan: in the winter months the
#: contract takes well over the 40 % payment-to-income cap, and so would any plan that
#: repays within the term limits — every optimised template is infeasible.
SEASONAL = [0.546, 0.514, 0.636, 0.815, 0.985, 1.093, 1.164, 1.462, 1.661, 1.492, 1.025, 0.608]
RECORD = {
    "loan_id": "L-fallback",
    "borrower_id": "B-fallback",
    "product": "consumer_instalment",
    "frequency": "monthly",
    "status": "delinquent",
    "segment": "seasonal",
    "outstanding_principal": 471_437,
    "accrued_interest": 2_720,
    "arrears_amount": 35_403,
    "penalty_fees": 1_770,
    "monthly_income": 183_948,
    "essential_expenses": 84_380,
    "other_debt_payments": 11_690,
    "regular_payment": 35_403,
    "remaining_term": 14,
    "income_seasonality": SEASONAL,
    "hardship": None,
    "expected_recovery_date": None,
    "hardship_income_factor": None,
    "days_past_due": 26,
    "next_due_date": date(2026, 12, 6),
    "base_monthly_hazard": None,
    "as_of": AS_OF,
    "restructure_count": 0,
    "last_restructure_date": None,
    "annual_rate": Decimal("0.0810"),
}


def test_no_optimised_plan_but_a_lawful_fallback():
    case = case_from_record(RECORD, loan_id="L-fallback", as_of=AS_OF)
    assert not quote(case, POLICY.plan).alternatives  # nothing optimised is feasible

    result = generate_candidates(pd.DataFrame([RECORD]), AS_OF, POLICY, "F")
    cand = result.candidates.to_pandas().set_index("candidate")
    assert "waterfall" in cand.index
    assert result.failures.num_rows == 0  # offered, so not a manual review
    assert bool(cand.loc["waterfall", "needs_review"])

    plans = result.plans.filter(pc.equal(result.plans["alternative"], "waterfall"))
    assert plans["status"][0].as_py() == "relaxed"
    metrics = json.loads(plans["metrics"][0].as_py())
    # Above the cap, yet less than what the contract asks now (the overdue amounts included).
    assert metrics["burden_relief"] is True
    assert POLICY.plan.pti_cap < metrics["max_payment_to_income"] < metrics["contract_pti"]
    inst = result.installments.filter(pc.is_in(result.installments["plan_id"], plans["plan_id"]))
    assert check_compliance(plans, inst, POLICY.plan).num_rows == 0

    # Its expected outcome beats the contract's: less default risk, more value to the lender.
    pd_of = result.plans.to_pandas().set_index("alternative")["pd"]
    assert pd_of["waterfall"] < pd_of["keep"]
    assert cand.loc["waterfall", "value"] > cand.loc["keep", "value"]


def test_burden_relief_is_not_a_blank_cheque():
    """The compliance check refuses a plan over the cap that claims no relief, or a relief
    larger than the contract's own burden."""
    result = generate_candidates(pd.DataFrame([RECORD]), AS_OF, POLICY, "F")
    plans = result.plans.filter(pc.equal(result.plans["alternative"], "waterfall"))
    inst = result.installments.filter(pc.is_in(result.installments["plan_id"], plans["plan_id"]))
    metrics = json.loads(plans["metrics"][0].as_py())
    for tampered in (
        {k: v for k, v in metrics.items() if k != "burden_relief"},
        {**metrics, "contract_pti": metrics["max_payment_to_income"] - 0.01},
    ):
        frame = plans.to_pandas()
        frame["metrics"] = json.dumps(tampered)
        failed = check_compliance(
            pa.Table.from_pandas(frame, schema=plans.schema), inst, POLICY.plan
        )
        assert failed.num_rows == 1
        assert "affordability" in failed["reason"][0].as_py()
