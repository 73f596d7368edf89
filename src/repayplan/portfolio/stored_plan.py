"""``plan``: the options for one stored loan, exactly as tonight's nightly run would see them.

One code path with the nightly: the active policy, the fitted burden curve and miss model,
:func:`~repayplan.portfolio.candidates.candidates_for_loan` for the alternatives (fallbacks
and the champion arm included) and :func:`~repayplan.portfolio.candidates.value_candidates`
for their expected outcomes; only the database read is different (one loan, read-only).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from repayplan.errors import InputError
from repayplan.plans.alternative import Alternative, Quote
from repayplan.plans.quote import case_from_record, check_strategy, quote
from repayplan.portfolio.candidates import candidates_for_loan, value_candidates
from repayplan.portfolio.nightly_policy import active_policy
from repayplan.risk.burden_fit import active_burden_curve
from repayplan.risk.metrics import money
from repayplan.risk.miss_model import active_miss_model
from repayplan.store.publish import connect_reader
from repayplan.store.queries import loan_for_planning


def plan(
    db: str | Path,
    loan_id: str,
    *,
    strategy: str = "optimize",
    solver: str = "fast",
    preset: str | None = None,
    overrides: Mapping[str, Any] | None = None,
) -> Quote:
    """Plans for stored loan ``loan_id`` as of its ``as_of``.

    ``overrides``: record fields to replace before planning (a hardship the borrower
    reports now: ``hardship``, ``expected_recovery_date``, ``hardship_income_factor``).

    ``strategy`` ``optimize``: the alternatives the nightly would offer, ``keep`` first
    (the contract valued in the loan's current delinquency state), each with
    ``charge_off_12m`` / ``charge_off_24m`` / ``charge_off_life`` (fractions) and
    ``expected_value`` (currency units) in its metrics; ``waterfall`` / ``contract``: that
    baseline under the active policy and curve.
    """
    check_strategy(strategy)
    if str(db) != ":memory:" and not Path(db).exists():
        raise InputError("no such file", field="--db", record=str(db))
    con = connect_reader(db)
    try:
        record = loan_for_planning(con, loan_id)
        policy = active_policy(con)
        curve = active_burden_curve(con)
        model = active_miss_model(con)
    finally:
        con.close()
    record = {**record, **(overrides or {})}
    as_of = record["as_of"]
    case = case_from_record(record, loan_id=loan_id, as_of=as_of)
    if strategy != "optimize":
        return quote(case, policy.plan, strategy, solver, preset, curve=curve)
    if preset is not None:
        raise InputError("a preset applies to --strategy waterfall only", field="preset")
    found = candidates_for_loan(
        case, record, policy, "plan", solver=solver, curve=curve, miss_model=model
    )
    outcomes = value_candidates(found.candidates, as_of, policy, model)
    alternatives: list[Alternative] = []
    for i, c in enumerate(found.candidates):
        metrics = {
            **c.alt.metrics,
            "charge_off_12m": round(float(outcomes.charge_off_12[i]), 6),
            "charge_off_24m": round(float(outcomes.charge_off_24[i]), 6),
            "charge_off_life": round(float(outcomes.charge_off[i]), 6),
            "expected_value": money(float(outcomes.expected_npv[i])),
        }
        alternatives.append(dataclasses.replace(c.alt, metrics=metrics))
    return Quote(tuple(alternatives), found.status, solver, tuple(found.reasons))
