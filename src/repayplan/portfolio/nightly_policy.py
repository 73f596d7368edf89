"""The policy a nightly run works under, read from the active ``policy_versions`` row.

One JSON document holds three kinds of parameter (money in currency units, rates and shares
as fractions, as stored):

- per-loan planning (→ :class:`repayplan.plans.case.Policy`): ``hurdle_rate``,
  ``max_concession``, ``rate_floor``, ``rate_cap``, ``pti_cap``, ``max_term_months``,
  ``max_holiday_months``, ``min_payment``, ``lgd``;
- portfolio limits (→ :class:`repayplan.portfolio.limits.PortfolioLimits`):
  ``concession_budget``, ``segment_caps``, ``review_capacity``, and the collection floors —
  either ``collection_floors`` (three amounts) or ``collection_floor_share`` (default 0.9:
  each of the next three months must collect at least that share of what the current plans
  of the re-planned loans are expected to collect);
- the run itself: ``cool_down_months`` (6) and ``max_restructures`` (2) for eligibility,
  ``income_drop_threshold`` (0.2: observed income over the last 3 months below 80 % of the
  usual, seasonally adjusted), ``review_interval_months`` (12: restructured loans are
  reviewed this often), ``review_concession_threshold`` (1000.00: a plan giving up more
  needs a manual review), ``exact_max_loans`` (2000: exact selection up to this many loans);
- decisions: ``default_cost`` (0: a share of exposure the selection charges for each expected
  charge-off within 24 months, on top of the money lost — collection cost, the borrower's
  harm, the lender's name) and ``champion_share`` (0: the hash-chosen share of loans kept on
  the champion policy, the HAMP waterfall, so that realised outcomes of both arms can be
  compared; the demo runs 5 %).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field, fields
from decimal import Decimal
from typing import Any

import duckdb

from repayplan.errors import InputError
from repayplan.plans.case import Policy

_PLAN_KEYS = (
    "hurdle_rate",
    "max_concession",
    "rate_floor",
    "rate_cap",
    "pti_cap",
    "lgd",
)


@dataclass(frozen=True)
class NightlyPolicy:
    """Everything a nightly run needs from the policy (see the module docstring for units)."""

    policy_id: str
    plan: Policy = field(default_factory=Policy)
    concession_budget: float | None = None
    segment_caps: dict[str, float] = field(default_factory=dict)
    review_capacity: int | None = None
    collection_floors: tuple[float, float, float] | None = None
    collection_floor_share: float | None = 0.9
    cool_down_months: int = 6
    max_restructures: int = 2
    income_drop_threshold: float = 0.2
    review_interval_months: int = 12
    review_concession_threshold: float = 1000.0
    exact_max_loans: int = 2000
    default_cost: float = 0.0
    champion_share: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in ``runs.parameters``)."""
        out: dict[str, Any] = {f.name: getattr(self, f.name) for f in fields(self)}
        out["plan"] = {f.name: str(getattr(self.plan, f.name)) for f in fields(self.plan)}
        return out


def policy_from_parameters(policy_id: str, params: dict[str, Any]) -> NightlyPolicy:
    """Build a :class:`NightlyPolicy` from a policy's JSON parameters; a value of the wrong
    type raises InputError naming the policy and the key."""
    record = f"policy {policy_id}"
    try:
        plan_args: dict[str, Any] = {k: Decimal(str(params[k])) for k in _PLAN_KEYS if k in params}
        for key in ("max_term_months", "max_holiday_months"):
            if key in params:
                plan_args[key] = int(params[key])
        if "min_payment" in params:
            plan_args["min_payment"] = int(Decimal(str(params["min_payment"])) * 100)
        floors = params.get("collection_floors")
        budget = params.get("concession_budget")
        capacity = params.get("review_capacity")
        return NightlyPolicy(
            policy_id=policy_id,
            plan=Policy(**plan_args),
            concession_budget=None if budget is None else float(budget),
            segment_caps={str(k): float(v) for k, v in (params.get("segment_caps") or {}).items()},
            review_capacity=None if capacity is None else int(capacity),
            collection_floors=None if floors is None else tuple(float(f) for f in floors),
            collection_floor_share=(
                None
                if params.get("collection_floor_share", 0.9) is None
                else float(params.get("collection_floor_share", 0.9))
            ),
            cool_down_months=int(params.get("cool_down_months", 6)),
            max_restructures=int(params.get("max_restructures", 2)),
            income_drop_threshold=float(params.get("income_drop_threshold", 0.2)),
            review_interval_months=int(params.get("review_interval_months", 12)),
            review_concession_threshold=float(params.get("review_concession_threshold", 1000)),
            exact_max_loans=int(params.get("exact_max_loans", 2000)),
            default_cost=float(params.get("default_cost", 0.0)),
            champion_share=float(params.get("champion_share", 0.0)),
        )
    except (ArithmeticError, TypeError, ValueError) as exc:
        raise InputError(f"bad parameter: {exc}", field="parameters", record=record) from exc


def in_champion_arm(loan_id: str, share: float) -> bool:
    """True for the deterministic ``share`` of loans that stay on the champion policy: the
    loan id hashed (BLAKE2b) to a point in [0, 1) — the same loan in the same arm every night,
    whatever else is in the book."""
    if share <= 0.0:
        return False
    digest = hashlib.blake2b(loan_id.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2.0**64 < share


def active_policy(con: duckdb.DuckDBPyConnection) -> NightlyPolicy:
    """The newest active row of ``policy_versions`` as a :class:`NightlyPolicy`."""
    rows = con.execute(
        "SELECT policy_id, parameters FROM policy_versions WHERE active "
        "ORDER BY created_at DESC, policy_id DESC LIMIT 1"
    ).fetchall()
    if not rows:
        raise InputError("no active policy", field="active", record="policy_versions")
    return policy_from_parameters(rows[0][0], json.loads(rows[0][1]))
