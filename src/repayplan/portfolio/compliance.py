"""Compliance re-check of every chosen plan before it is written.

Each chosen plan is checked again on its stored cent-exact schedule (independently of how it
was built):

- ``reconcile``: every installment is principal + interest, the balance ends at 0.00, and
  the principal repaid is at least the amount the plan amortises (plus forborne principal)
  — to the cent (a holiday's capitalised interest is repaid as principal later);
- ``rate_cap``: the annualised rate by the IRR method (PBoC 2021 No. 3: periodic IRR × periods
  per year) is at most ``rate_cap``;
- ``affordability``: the largest payment-to-income ratio is at most ``pti_cap``, unless the
  plan prices its shortfall (soft affordability) and reports it, or it is a fallback that
  relieves the burden (``"burden_relief": true``: its ratio is below the contract's
  ``contract_pti``, on a loan past due or in hardship);
- ``yield_floor``: the NPV of the payments at the hurdle is at least ``(1 − max_concession)``
  × the exposure (a cent of tolerance per installment for rounding).

The ``keep`` plan is the contract in force, not a new offer: it is checked for
reconciliation only. Failures come back as rows ``loan_id``, ``plan_id``, ``stage``
(``compliance``), ``reason``; the flow then keeps the contract for that loan.
"""

from __future__ import annotations

import json
from decimal import Decimal

import numpy as np
import pandas as pd
import pyarrow as pa

from repayplan.finance import irr_annualised
from repayplan.plans.case import Policy
from repayplan.portfolio.selection import KEEP

COMPLIANCE_SCHEMA = pa.schema(
    [
        ("loan_id", pa.string()),
        ("plan_id", pa.string()),
        ("stage", pa.string()),
        ("reason", pa.string()),
    ]
)
#: Tolerance of the ratio checks (the plans layer enforces them on exact schedules; this only
#: absorbs float noise).
_RATIO_TOLERANCE = 1e-9


def _reconciliation(plans: pd.DataFrame, inst: pd.DataFrame) -> pd.Series:
    """Reason per plan_id whose schedule does not reconcile to the cent (else absent)."""
    inst = inst.sort_values(["plan_id", "number"], kind="stable")
    split = inst["payment"] != inst["principal"] + inst["interest"]
    grouped = inst.assign(split=split).groupby("plan_id", sort=False)
    summary = grouped.agg(
        split=("split", "any"),
        last_balance=("balance", "last"),
        repaid=("principal", "sum"),
    )
    expected = plans.set_index("plan_id")["principal"] + plans.set_index("plan_id")[
        "forborne_principal"
    ].where(plans.set_index("plan_id")["alternative"] != KEEP, 0)
    reasons = {}
    for plan_id, row in summary.iterrows():
        problems = []
        if row["split"]:
            problems.append("an installment is not principal + interest")
        if row["last_balance"] != 0:
            problems.append(f"the last balance is {row['last_balance'] / 100:.2f}, not 0.00")
        if row["repaid"] < expected.get(plan_id, row["repaid"]):
            problems.append(
                f"principal repaid {row['repaid'] / 100:.2f} is less than the "
                f"{expected[plan_id] / 100:.2f} amortised"
            )
        if problems:
            reasons[plan_id] = "reconcile: " + "; ".join(problems)
    return pd.Series(reasons, dtype=object)


def _contract_pti(metrics: str | None) -> float:
    """The contract's ratio a burden-relief fallback undercuts (NaN for any other plan)."""
    if not metrics or '"burden_relief": true' not in metrics:
        return float("nan")
    return float(json.loads(metrics).get("contract_pti", "nan"))


def check_compliance(plans: pa.Table, installments: pa.Table, policy: Policy) -> pa.Table:
    """Re-check the chosen ``plans`` (rows of ``candidates.PLAN_SCHEMA``) on their
    ``installments``; return one row per failing plan (``COMPLIANCE_SCHEMA``), every failed
    rule in its reason."""
    frame = plans.select(
        [
            "plan_id",
            "loan_id",
            "alternative",
            "principal",
            "exposure",
            "npv",
            "max_pti",
            "shortfall",
            "periods_per_year",
            "forborne_principal",
            "term_periods",
            "metrics",
        ]
    ).to_pandas()
    inst = installments.to_pandas()
    reasons: dict[str, list[str]] = {pid: [] for pid in frame["plan_id"]}
    for plan_id, text in _reconciliation(frame, inst).items():
        reasons[plan_id].append(text)

    offers = frame[frame["alternative"] != KEEP]
    pti = offers["max_pti"].astype(float)
    # astype: on an empty run map() keeps the text dtype, which cannot be compared.
    relief = offers["metrics"].map(_contract_pti).astype(float)
    unaffordable = (
        (pti.isna() | (pti > float(policy.pti_cap) + _RATIO_TOLERANCE))
        & (offers["shortfall"] <= 0)
        & ~(pti < relief)
    )
    for plan_id, ratio in zip(offers["plan_id"][unaffordable], pti[unaffordable], strict=True):
        shown = "a payment with no income" if np.isnan(ratio) else f"{ratio:.4f}"
        reasons[plan_id].append(
            f"affordability: payment-to-income {shown} above the {policy.pti_cap} cap"
        )
    # A settlement forgives by design, and a fallback that passed the NPV test against the
    # contract may concede more than the yield floor: their floor is the settlement discount.
    npv_tested = offers["metrics"].str.contains('"npv_test": true', regex=False, na=False)
    concession = np.where(
        (offers["alternative"] == "settlement") | npv_tested,
        float(policy.settlement_discount),
        float(policy.max_concession),
    )
    floor = (1 - concession) * offers["exposure"] - offers["term_periods"]
    for plan_id, npv, need in zip(
        offers["plan_id"][offers["npv"] < floor],
        offers["npv"][offers["npv"] < floor],
        floor[offers["npv"] < floor],
        strict=True,
    ):
        reasons[plan_id].append(
            f"yield_floor: NPV {npv / 100:.2f} below the floor {need / 100:.2f}"
        )
    payments = inst[inst["plan_id"].isin(offers["plan_id"])].sort_values(
        ["plan_id", "number"], kind="stable"
    )
    per_plan = payments.groupby("plan_id", sort=False)["payment"].apply(list)
    cap = Decimal(policy.rate_cap)
    for plan_id, principal, ppy in zip(
        offers["plan_id"], offers["principal"], offers["periods_per_year"], strict=True
    ):
        if plan_id not in per_plan.index:
            reasons[plan_id].append("reconcile: the plan has no installments")
            continue
        rate = irr_annualised([-int(principal), *per_plan[plan_id]], periods_per_year=int(ppy))
        if rate.nominal_annual_rate > cap + Decimal("1e-9"):
            reasons[plan_id].append(
                f"rate_cap: IRR-method rate {float(rate.nominal_annual_rate) * 100:.4f}% "
                f"above the {float(cap) * 100:g}% cap"
            )
    failing = [(pid, "; ".join(r)) for pid, r in reasons.items() if r]
    loan_of = dict(zip(frame["plan_id"], frame["loan_id"], strict=True))
    return pa.table(
        {
            "loan_id": [loan_of[pid] for pid, _ in failing],
            "plan_id": [pid for pid, _ in failing],
            "stage": ["compliance"] * len(failing),
            "reason": [text for _, text in failing],
        },
        schema=COMPLIANCE_SCHEMA,
    )
