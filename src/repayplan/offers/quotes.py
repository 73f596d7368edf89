"""Fresh offers for a stored loan when its borrower reports a hardship — at once, without
waiting for the nightly — planned on the nightly's own path (``portfolio.stored_plan.plan``)
with the reported reason, expected recovery and income now."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from repayplan.errors import InputError
from repayplan.offers.lifecycle import DEFAULT_TTL, current_version, offers_from_quote
from repayplan.plans.alternative import Quote
from repayplan.portfolio.stored_plan import plan
from repayplan.store.publish import connect_reader
from repayplan.store.queries import loan_for_planning
from repayplan.store.schema import HARDSHIP_REASONS

#: Reasons that steer the plan templates (``other`` plans like no stated reason).
_PLANNED = ("job_loss", "illness", "business_downturn", "seasonal")


@dataclass(frozen=True)
class HardshipOffers:
    """The quote, the offers made of it (JSON-ready dicts in cents) and the hardship as it
    is recorded (``hardship.reported`` payload)."""

    quote: Quote
    offers: list[dict[str, Any]]
    hardship: dict[str, Any]


def hardship_offers(
    db: str | Path,
    loan_id: str,
    *,
    reason: str,
    income_now_cents: int,
    expected_recovery: date | None = None,
    ttl: timedelta = DEFAULT_TTL,
    solver: str = "fast",
) -> HardshipOffers:
    """Plan loan ``loan_id`` (read from the published copy of ``db``) under the reported
    hardship and make offers of the alternatives (``keep`` left out)."""
    rec = f"loan {loan_id}"
    if reason not in HARDSHIP_REASONS:
        raise InputError(
            f"unknown reason; use one of {', '.join(HARDSHIP_REASONS)}", field="reason", record=rec
        )
    if not isinstance(income_now_cents, int) or income_now_cents < 0:
        raise InputError("must be 0 or more", field="income_now", record=rec)
    con = connect_reader(db)
    try:
        record = loan_for_planning(con, loan_id)
        version = current_version(con, loan_id)
        policy = con.execute("SELECT policy_id FROM policy_versions WHERE active LIMIT 1")
        policy_id = (policy.fetchone() or [None])[0]
        model = con.execute("SELECT max(model_id) FROM risk_models WHERE active").fetchone()[0]
    finally:
        con.close()
    if record["status"] == "closed":
        raise InputError("the loan is closed", field="loan_id", record=rec)
    if expected_recovery is not None and expected_recovery <= record["as_of"]:
        raise InputError(
            f"must be after the loan's as_of {record['as_of']}",
            field="expected_recovery_date",
            record=rec,
        )
    usual = int(record["monthly_income"] or 0)
    factor = 1.0 if usual <= 0 else min(1.0, income_now_cents / usual)
    overrides = {
        "hardship": reason if reason in _PLANNED else None,
        "expected_recovery_date": expected_recovery,
        "hardship_income_factor": round(factor, 6),
    }
    quote = plan(db, loan_id, solver=solver, overrides=overrides)
    now = datetime.now(UTC).replace(tzinfo=None)
    offers = offers_from_quote(
        quote,
        loan_id=loan_id,
        as_of=record["as_of"],
        source="hardship",
        contract_version=version,
        expires_at=now + ttl,
        policy_id=policy_id,
        model_id=model,
        now=now,
    )
    hardship = {
        "reason": reason,
        "expected_recovery_date": expected_recovery.isoformat() if expected_recovery else None,
        "income_factor": round(factor, 6),
        "requested_on": record["as_of"].isoformat(),
    }
    return HardshipOffers(quote, offers, hardship)
