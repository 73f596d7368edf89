"""The offer lifecycle: offered → accepted → (approved) → booked, or rejected / expired /
cancelled / undone — the rules, and the writer's side (offers, audit, booking, undo).

Modelled on Apache Fineract's reschedule requests (a request per change, preview without
side effects, maker–checker approval, a second pending request for the same loan refused,
undo of a booked change) and Stripe's quotes (an expiry on every open offer).

- :func:`decide` is the one rule book: which action an actor may take on an offer in its
  current state, and the state it leads to. The service checks a request with it before it
  records the event; the writer checks the event again with it when it applies it (two
  services racing for one offer: the second is refused there and changes nothing).
- The writer's functions (:func:`insert_offers`, :func:`apply_action`, :func:`book`,
  :func:`undo`, :func:`expire_offers`) take the engine connection of the single writer;
  they are what the event handlers (:mod:`repayplan.offers.handlers`) and the nightly call.
- Booking replaces the loan's contract (``contract_installments`` and the loan's terms,
  balances, status, delinquency and restructure count/date) with the offer's schedule and
  appends both the state it replaces and the new one to ``contract_versions``; undo puts the
  replaced state back exactly. ``offer_transitions`` is the audit: one appended row per
  transition (who, when, from, to, the event that caused it), never updated.

Money in offers handed around in Python is integer cents; the tables hold DECIMAL(18,2).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import duckdb
import pyarrow as pa

from repayplan import __version__
from repayplan.errors import InputError
from repayplan.plans.alternative import Quote

OPEN = ("offered", "accepted", "approved")
TERMINAL = ("booked", "rejected", "expired", "cancelled", "undone")
ACTIONS = ("accept", "approve", "reject", "cancel", "undo")
#: Event kind recorded for each action (subject: the offer id).
EVENT_OF = {
    "accept": "offer.accepted",
    "approve": "offer.approved",
    "reject": "offer.rejected",
    "cancel": "offer.cancelled",
    "undo": "offer.undone",
}
ACTION_OF = {kind: action for action, kind in EVENT_OF.items()}
#: Who may take each action: the borrower (through their link), a lending platform's API
#: key, a reviewer's API key (a person at the lender).
ROLES_FOR = {
    "accept": ("borrower", "platform"),
    "cancel": ("borrower", "platform"),
    "approve": ("reviewer",),
    "reject": ("reviewer",),
    "undo": ("reviewer",),
}
#: How long an offer stays open unless its creator says otherwise.
DEFAULT_TTL = timedelta(days=7)
#: Alternatives never offered: keeping the contract needs no booking.
NOT_OFFERED = ("keep",)
SYSTEM = "system"


class OfferConflict(InputError):
    """The action is not possible in the offer's state (HTTP 409)."""


class OfferForbidden(InputError):
    """The actor's role may not take this action (HTTP 403)."""


class OfferNotFound(InputError):
    """No such offer (HTTP 404)."""


@dataclass(frozen=True)
class OfferState:
    """What :func:`decide` needs to know of an offer."""

    offer_id: str
    loan_id: str
    status: str
    needs_review: bool
    expires_at: datetime  # UTC, naive
    accepted_by: str | None = None
    contract_version: int = 0


def effective_status(status: str, expires_at: datetime, now: datetime) -> str:
    """``status``, or ``expired`` for an open, unbooked offer past its expiry."""
    if status in ("offered", "accepted") and expires_at < now:
        return "expired"
    return status


def decide(
    offer: OfferState,
    action: str,
    *,
    actor: str,
    role: str,
    now: datetime,
    pending_other: str | None = None,
    current_version: int | None = None,
) -> str:
    """The status ``action`` leads to (``accepted``, ``approved``, ``rejected``,
    ``cancelled``, ``undone``), or raise why not: :class:`OfferForbidden` (the role may not),
    :class:`OfferConflict` (not in this state). ``pending_other``: another offer of the same
    loan already accepted or approved (a second pending request is refused).
    ``current_version``: the loan's contract version now (undo only undoes the latest
    booking; a booking must replace the version the offer was made for). ``now``: UTC."""
    if action not in ACTIONS:
        raise InputError(f"unknown action; use one of {', '.join(ACTIONS)}", field="action")
    if role not in ROLES_FOR[action]:
        raise OfferForbidden(
            f"{action} needs a {' or '.join(ROLES_FOR[action])} (this caller is a {role})",
            field="authorization",
            record=f"offer {offer.offer_id}",
        )
    status = effective_status(offer.status, offer.expires_at, now)
    rec = f"offer {offer.offer_id}"

    def refuse(why: str) -> OfferConflict:
        return OfferConflict(why, field="status", record=rec)

    if action == "accept":
        if status != "offered":
            raise refuse(f"is {status}; only an offered plan can be accepted")
        if pending_other:
            raise refuse(
                f"loan {offer.loan_id} already has offer {pending_other} accepted and "
                "awaiting booking; cancel or reject it first"
            )
        if current_version is not None and current_version != offer.contract_version:
            raise refuse("the loan's contract changed since this plan was offered")
        return "accepted"
    if action == "approve":
        if status != "accepted":
            raise refuse(f"is {status}; only an accepted plan can be approved")
        if not offer.needs_review:
            raise refuse("needs no approval: it is booked when accepted")
        if actor == offer.accepted_by:
            raise refuse("the person who accepted a plan cannot also approve it")
        return "approved"
    if action in ("reject", "cancel"):
        if status not in OPEN:
            raise refuse(f"is {status}; only an open plan can be {action}ed")
        return "rejected" if action == "reject" else "cancelled"
    # undo
    if status != "booked":
        raise refuse(f"is {status}; only a booked plan can be undone")
    return "undone"


# --------------------------------------------------------------------------- offers


def _cents(value: Any) -> int:
    return int((Decimal(str(value)) * 100).to_integral_value())


def needs_review_of(status: str, metrics: Mapping[str, Any], forborne: int = 0) -> bool:
    """Whether an alternative is booked only after a second person approves it: the quote
    needed a declared relaxation or manual review, or it forgives or forbears principal."""
    forgiven = _cents(metrics.get("principal_forgiven") or 0)
    return status in ("relaxed", "manual_review") or forgiven > 0 or forborne > 0


def offers_from_quote(
    quote: Quote,
    *,
    loan_id: str,
    as_of: date,
    source: str,
    contract_version: int = 0,
    expires_at: datetime | None = None,
    policy_id: str | None = None,
    model_id: str | None = None,
    now: datetime | None = None,
) -> list[dict[str, Any]]:
    """One offer per alternative of ``quote`` (``keep`` left out), as JSON-ready dicts in
    integer cents — what the service records in the event ``offers.created`` and the
    writer stores with :func:`insert_offers`."""
    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    expires = (expires_at or now + DEFAULT_TTL).replace(tzinfo=None)
    batch = uuid.uuid4().hex[:12]
    out = []
    for alt in quote.alternatives:
        if alt.name in NOT_OFFERED:
            continue
        rows = [
            [i.number, i.due_date.isoformat(), i.payment, i.principal, i.interest, i.balance]
            for i in alt.schedule.installments
        ]
        if not rows:
            continue
        m = alt.metrics
        pays = [r[2] for r in rows]
        out.append(
            {
                "offer_id": "O" + uuid.uuid4().hex[:15],
                "loan_id": loan_id,
                "batch_id": batch,
                "source": source,
                "plan_id": None,
                "run_id": None,
                "alternative": alt.name,
                "as_of": as_of.isoformat(),
                "contract_version": int(contract_version),
                "created_at": now.isoformat(),
                "expires_at": expires.isoformat(),
                "needs_review": needs_review_of(
                    "relaxed" if _relaxed(quote, alt.name) else "ok",
                    m,
                    alt.forborne_principal,
                ),
                "annual_rate_percent": str((alt.annual_rate * 100).quantize(Decimal("0.0001"))),
                "frequency": alt.frequency,
                "term_periods": len(rows),
                "first_payment_cents": pays[0],
                "max_payment_cents": max(pays),
                "total_paid_cents": sum(pays),
                "total_interest_cents": sum(r[4] for r in rows),
                "apr_percent": _float(m.get("apr_percent")),
                "irr_annual_percent": _float(m.get("irr_nominal_annual_percent")),
                "max_pti": _float(m.get("max_payment_to_income")),
                "explanation": alt.explanation,
                "metrics": {
                    k: m[k]
                    for k in (
                        "pd",
                        "expected_loss",
                        "lender_npv",
                        "concession",
                        "penalty_waived",
                        "principal_forgiven",
                        "irr_effective_annual_percent",
                        "charge_off_12m",
                    )
                    if k in m
                },
                "engine_version": __version__,
                "policy_id": policy_id,
                "model_id": model_id,
                "installments": rows,
            }
        )
    return out


def _relaxed(quote: Quote, name: str) -> bool:
    """Whether ``quote``'s alternative ``name`` needed a declared relaxation."""
    return any(r.startswith(f"{name}:") and "offered after" in r for r in quote.reasons)


def _float(value: Any) -> float | None:
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


_OFFER_COLUMNS = (
    "offer_id",
    "loan_id",
    "batch_id",
    "source",
    "plan_id",
    "run_id",
    "alternative",
    "as_of",
    "contract_version",
    "created_at",
    "expires_at",
    "needs_review",
    "annual_rate_percent",
    "frequency",
    "term_periods",
    "first_payment",
    "max_payment",
    "total_paid",
    "total_interest",
    "apr_percent",
    "irr_annual_percent",
    "max_pti",
    "explanation",
    "metrics",
    "engine_version",
    "policy_id",
    "model_id",
)


def insert_offers(
    con: duckdb.DuckDBPyConnection,
    offers: Sequence[Mapping[str, Any]],
    *,
    actor: str = SYSTEM,
    event_id: str | None = None,
    at: datetime | None = None,
) -> int:
    """Store ``offers`` (dicts of :func:`offers_from_quote`) with their installments and
    the transition to ``offered``; earlier open ``offered`` offers of the same loans from
    another batch are cancelled (superseded). Offers already stored (same id) are skipped.
    Runs in the caller's transaction. Returns the number stored."""
    at = (at or datetime.now(UTC)).replace(tzinfo=None)
    ids = [o["offer_id"] for o in offers]
    if not ids:
        return 0
    have = {
        r[0]
        for r in con.execute(
            "SELECT offer_id FROM offers WHERE offer_id IN (SELECT unnest(?))", [ids]
        ).fetchall()
    }
    new = [o for o in offers if o["offer_id"] not in have]
    if not new:
        return 0
    frame = pa.table(
        {
            "offer_id": [o["offer_id"] for o in new],
            "loan_id": [o["loan_id"] for o in new],
            "batch_id": [o["batch_id"] for o in new],
            "source": [o["source"] for o in new],
            "plan_id": pa.array([o.get("plan_id") for o in new], pa.string()),
            "run_id": pa.array([o.get("run_id") for o in new], pa.string()),
            "alternative": [o["alternative"] for o in new],
            "as_of": [date.fromisoformat(o["as_of"]) for o in new],
            "contract_version": pa.array([int(o["contract_version"]) for o in new], pa.int32()),
            "created_at": [datetime.fromisoformat(o["created_at"]) for o in new],
            "expires_at": [datetime.fromisoformat(o["expires_at"]) for o in new],
            "needs_review": [bool(o["needs_review"]) for o in new],
            "annual_rate_percent": [str(o["annual_rate_percent"]) for o in new],
            "frequency": [o["frequency"] for o in new],
            "term_periods": pa.array([int(o["term_periods"]) for o in new], pa.int32()),
            "first_payment": [int(o["first_payment_cents"]) for o in new],
            "max_payment": [int(o["max_payment_cents"]) for o in new],
            "total_paid": [int(o["total_paid_cents"]) for o in new],
            "total_interest": [int(o["total_interest_cents"]) for o in new],
            "apr_percent": pa.array([o.get("apr_percent") for o in new], pa.float64()),
            "irr_annual_percent": pa.array(
                [o.get("irr_annual_percent") for o in new], pa.float64()
            ),
            "max_pti": pa.array([o.get("max_pti") for o in new], pa.float64()),
            "explanation": pa.array([o.get("explanation") for o in new], pa.string()),
            "metrics": [json.dumps(o.get("metrics") or {}, sort_keys=True) for o in new],
            "engine_version": [o["engine_version"] for o in new],
            "policy_id": pa.array([o.get("policy_id") for o in new], pa.string()),
            "model_id": pa.array([o.get("model_id") for o in new], pa.string()),
        }
    )
    inst = {k: [] for k in ("offer_id", "number", "due_date", "payment", "principal")}
    inst |= {"interest": [], "balance": []}
    for o in new:
        for number, due, payment, principal, interest, balance in o["installments"]:
            inst["offer_id"].append(o["offer_id"])
            inst["number"].append(int(number))
            inst["due_date"].append(date.fromisoformat(due))
            inst["payment"].append(int(payment))
            inst["principal"].append(int(principal))
            inst["interest"].append(int(interest))
            inst["balance"].append(int(balance))
    con.register("offers_in", frame)
    con.register("offer_inst_in", pa.table(inst))
    try:
        # Earlier offers of these loans still waiting for the borrower are superseded.
        superseded = con.execute(
            """SELECT offer_id, status::VARCHAR FROM offer_status
               WHERE loan_id IN (SELECT loan_id FROM offers_in)
                 AND batch_id NOT IN (SELECT batch_id FROM offers_in)
                 AND status = 'offered'"""
        ).fetchall()
        con.execute(
            f"""INSERT INTO offers ({", ".join(_OFFER_COLUMNS)})
                SELECT offer_id, loan_id, batch_id, source, plan_id, run_id, alternative,
                       as_of, contract_version, created_at, expires_at, needs_review,
                       CAST(annual_rate_percent AS DECIMAL(7,4)), frequency::frequency,
                       term_periods, money_of_cents(first_payment), money_of_cents(max_payment),
                       money_of_cents(total_paid), money_of_cents(total_interest),
                       apr_percent, irr_annual_percent, max_pti, explanation, metrics::JSON,
                       engine_version, policy_id, model_id
                FROM offers_in"""
        )
        con.execute(
            """INSERT INTO offer_installments
               SELECT offer_id, number, due_date, money_of_cents(payment),
                      money_of_cents(principal), money_of_cents(interest),
                      money_of_cents(balance) FROM offer_inst_in"""
        )
        con.execute(
            "INSERT INTO offer_transitions SELECT offer_id, ?, NULL, 'offered', ?, ?, NULL "
            "FROM offers_in",
            [at, actor, event_id],
        )
    finally:
        con.unregister("offers_in")
        con.unregister("offer_inst_in")
    for offer_id, status in superseded:
        _transition(con, offer_id, status, "cancelled", SYSTEM, event_id, at, "superseded")
    return len(new)


def create_run_offers(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    *,
    ttl: timedelta = DEFAULT_TTL,
    now: datetime | None = None,
) -> int:
    """Offers for the plans run ``run_id`` chose (``keep`` left out): one per loan, source
    ``nightly``, with the run's policy and the active risk model. Runs in its own
    transaction; a re-run of the same run creates nothing twice. Returns the number."""
    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    rows = con.execute(
        """SELECT p.plan_id, p.loan_id, p.alternative, r.as_of, p.status::VARCHAR,
                  CAST(p.annual_rate_percent AS VARCHAR), p.frequency::VARCHAR, p.explanation,
                  p.metrics, p.apr_percent, p.max_pti, CAST(p.forborne_principal * 100 AS BIGINT),
                  r.policy_id
           FROM plans p JOIN runs r USING (run_id)
           WHERE p.run_id = ? AND p.chosen AND p.alternative NOT IN ('keep')
             AND p.plan_id NOT IN (SELECT plan_id FROM offers WHERE plan_id IS NOT NULL)""",
        [run_id],
    ).fetchall()
    if not rows:
        return 0
    model = con.execute("SELECT max(model_id) FROM risk_models WHERE active").fetchone()[0]
    inst = con.execute(
        """SELECT plan_id, number, due_date, CAST(payment * 100 AS BIGINT),
                  CAST(principal * 100 AS BIGINT), CAST(interest * 100 AS BIGINT),
                  CAST(balance * 100 AS BIGINT)
           FROM plan_installments WHERE plan_id IN (SELECT unnest(?)) ORDER BY plan_id, number""",
        [[r[0] for r in rows]],
    ).fetchall()
    by_plan: dict[str, list[list[Any]]] = {}
    for plan_id, *rest in inst:
        by_plan.setdefault(plan_id, []).append(
            [rest[0], rest[1].isoformat(), rest[2], rest[3], rest[4], rest[5]]
        )
    versions = dict(
        con.execute(
            """SELECT loan_id, version FROM contract_versions
               WHERE event IN ('booked', 'restored') AND loan_id IN (SELECT unnest(?))
               QUALIFY row_number() OVER (PARTITION BY loan_id
                                          ORDER BY recorded_at DESC, version DESC) = 1""",
            [[r[1] for r in rows]],
        ).fetchall()
    )
    offers = []
    for plan_id, loan_id, alt, as_of, status, rate, freq, why, metrics, apr, pti, forb, pol in rows:
        schedule = by_plan.get(plan_id)
        if not schedule:
            continue
        metrics = json.loads(metrics) if isinstance(metrics, str) else dict(metrics or {})
        pays = [r[2] for r in schedule]
        offers.append(
            {
                "offer_id": "O" + uuid.uuid5(uuid.NAMESPACE_URL, f"plan:{plan_id}").hex[:15],
                "loan_id": loan_id,
                "batch_id": f"run-{run_id}",
                "source": "nightly",
                "plan_id": plan_id,
                "run_id": run_id,
                "alternative": alt,
                "as_of": as_of.isoformat(),
                "contract_version": versions.get(loan_id, 0),
                "created_at": now.isoformat(),
                "expires_at": (now + ttl).isoformat(),
                "needs_review": needs_review_of(status, metrics, int(forb or 0)),
                "annual_rate_percent": rate,
                "frequency": freq,
                "term_periods": len(schedule),
                "first_payment_cents": pays[0],
                "max_payment_cents": max(pays),
                "total_paid_cents": sum(pays),
                "total_interest_cents": sum(r[4] for r in schedule),
                "apr_percent": apr,
                "irr_annual_percent": _float(metrics.get("irr_nominal_annual_percent")),
                "max_pti": pti,
                "explanation": why,
                "metrics": {k: metrics[k] for k in ("pd", "expected_loss") if k in metrics},
                "engine_version": __version__,
                "policy_id": pol,
                "model_id": model,
                "installments": schedule,
            }
        )
    con.execute("BEGIN TRANSACTION")
    try:
        n = insert_offers(con, offers, actor=f"run:{run_id}", at=now)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return n


# --------------------------------------------------------------------------- reading


def current_version(con: duckdb.DuckDBPyConnection, loan_id: str) -> int:
    """The loan's contract version in force: 0 (the contract as imported) until a booking;
    each booking adds one; an undo goes back to the version it restores."""
    row = con.execute(
        """SELECT version FROM contract_versions
           WHERE loan_id = ? AND event IN ('booked', 'restored')
           ORDER BY recorded_at DESC, version DESC LIMIT 1""",
        [loan_id],
    ).fetchone()
    return int(row[0]) if row else 0


def offer_state(con: duckdb.DuckDBPyConnection, offer_id: str) -> OfferState:
    """The offer's recorded state (expiry applied by :func:`decide`)."""
    row = con.execute(
        """SELECT offer_id, loan_id, recorded_status::VARCHAR, needs_review, expires_at,
                  contract_version,
                  (SELECT actor FROM offer_transitions t WHERE t.offer_id = s.offer_id
                     AND to_status = 'accepted' ORDER BY changed_at DESC LIMIT 1)
           FROM offer_status s WHERE offer_id = ?""",
        [offer_id],
    ).fetchone()
    if row is None:
        raise OfferNotFound("no such offer", field="offer_id", record=f"offer {offer_id}")
    return OfferState(
        offer_id=row[0],
        loan_id=row[1],
        status=row[2],
        needs_review=bool(row[3]),
        expires_at=row[4],
        accepted_by=row[6],
        contract_version=int(row[5]),
    )


def pending_offer(con: duckdb.DuckDBPyConnection, loan_id: str, besides: str) -> str | None:
    """Another offer of ``loan_id`` accepted or approved and not yet booked, if any."""
    row = con.execute(
        "SELECT offer_id FROM offer_status WHERE loan_id = ? AND offer_id <> ? "
        "AND status IN ('accepted', 'approved') LIMIT 1",
        [loan_id, besides],
    ).fetchone()
    return row[0] if row else None


# --------------------------------------------------------------------------- writing


def _transition(
    con: duckdb.DuckDBPyConnection,
    offer_id: str,
    from_status: str | None,
    to_status: str,
    actor: str,
    event_id: str | None,
    at: datetime,
    note: str | None = None,
) -> None:
    con.execute(
        "INSERT INTO offer_transitions VALUES (?, ?, ?, ?, ?, ?, ?)",
        [offer_id, at, from_status, to_status, actor, event_id, note],
    )


def apply_action(
    con: duckdb.DuckDBPyConnection,
    offer_id: str,
    action: str,
    *,
    actor: str,
    role: str,
    event_id: str | None = None,
    at: datetime | None = None,
    note: str | None = None,
) -> str:
    """Take ``action`` on the offer in the writer (caller's transaction) and return its new
    status: accepting a plan that needs no review books it at once, approving one books it;
    undo restores the contract it replaced. Raises what :func:`decide` raises."""
    at = (at or datetime.now(UTC)).replace(tzinfo=None)
    offer = offer_state(con, offer_id)
    status = effective_status(offer.status, offer.expires_at, at)
    if status == "expired" and offer.status != "expired":
        _transition(con, offer_id, offer.status, "expired", SYSTEM, None, at, "past expires_at")
    version = current_version(con, offer.loan_id)
    to = decide(
        offer,
        action,
        actor=actor,
        role=role,
        now=at,
        pending_other=pending_offer(con, offer.loan_id, offer_id) if action == "accept" else None,
        current_version=version if action == "accept" else None,
    )
    if action == "undo":
        undo(con, offer, actor=actor, event_id=event_id, at=at)
        return "undone"
    _transition(con, offer_id, offer.status, to, actor, event_id, at, note)
    if (to == "accepted" and not offer.needs_review) or to == "approved":
        book(con, offer, actor=actor, event_id=event_id, at=at, from_status=to)
        return "booked"
    return to


_STATE_COLUMNS = (
    "annual_rate_percent",
    "frequency",
    "outstanding_principal",
    "accrued_interest",
    "arrears_amount",
    "penalty_fees",
    "days_past_due",
    "delinquency_bucket",
    "status",
    "restructure_count",
    "last_restructure_date",
    "regular_payment",
    "remaining_term",
    "next_due_date",
    "as_of",
)
_STATE = ", ".join(_STATE_COLUMNS)


def _archive(
    con: duckdb.DuckDBPyConnection,
    loan_id: str,
    version: int,
    event: str,
    offer_id: str | None,
    actor: str,
    at: datetime,
) -> None:
    """Append the loan's current contract state and installments as ``version``/``event``."""
    con.execute(
        f"INSERT INTO contract_versions (loan_id, version, event, offer_id, recorded_at, "
        f"actor, {_STATE}) SELECT loan_id, ?, ?, ?, ?, ?, {_STATE} FROM loans WHERE loan_id = ?",
        [version, event, offer_id, at, actor, loan_id],
    )
    con.execute(
        "INSERT INTO contract_version_installments SELECT loan_id, ?, ?, ?, number, due_date, "
        "payment, principal, interest, balance FROM contract_installments WHERE loan_id = ?",
        [version, event, at, loan_id],
    )


def book(
    con: duckdb.DuckDBPyConnection,
    offer: OfferState,
    *,
    actor: str,
    event_id: str | None,
    at: datetime,
    from_status: str,
) -> None:
    """Make the offer's schedule the loan's contract (caller's transaction): the state it
    replaces and the new one appended to ``contract_versions``; the loan's rate, cycle,
    balances (the schedule's principal outstanding; arrears, penalties and accrued
    interest are in the plan), delinquency (current), status (``restructured``), restructure
    count and date (the offer's ``as_of``), installment, term and next due date."""
    loan = con.execute("SELECT status::VARCHAR FROM loans WHERE loan_id = ?", [offer.loan_id])
    found = loan.fetchone()
    if found is None or found[0] == "closed":
        raise OfferConflict(
            "the loan is closed or unknown; nothing to book",
            field="loan_id",
            record=f"offer {offer.offer_id}",
        )
    old = current_version(con, offer.loan_id)
    new = (
        1
        + (
            con.execute(
                "SELECT coalesce(max(version), 0) FROM contract_versions WHERE loan_id = ?",
                [offer.loan_id],
            ).fetchone()[0]
        )
    )
    _archive(con, offer.loan_id, old, "superseded", offer.offer_id, actor, at)
    con.execute("DELETE FROM contract_installments WHERE loan_id = ?", [offer.loan_id])
    con.execute(
        "INSERT INTO contract_installments SELECT ?, number, due_date, payment, principal, "
        "interest, balance FROM offer_installments WHERE offer_id = ?",
        [offer.loan_id, offer.offer_id],
    )
    con.execute(
        """UPDATE loans SET
               annual_rate_percent = o.annual_rate_percent, frequency = o.frequency,
               outstanding_principal = s.principal, accrued_interest = 0, arrears_amount = 0,
               penalty_fees = 0, days_past_due = 0, delinquency_bucket = 'current',
               status = 'restructured', restructure_count = loans.restructure_count + 1,
               last_restructure_date = o.as_of, regular_payment = o.first_payment,
               remaining_term = s.n, next_due_date = s.first_due, as_of = o.as_of
           FROM offers o, (SELECT sum(principal) AS principal, count(*) AS n,
                                  min(due_date) AS first_due
                           FROM offer_installments WHERE offer_id = $id) s
           WHERE o.offer_id = $id AND loans.loan_id = o.loan_id""".replace("$id", "?"),
        [offer.offer_id, offer.offer_id],
    )
    _archive(con, offer.loan_id, new, "booked", offer.offer_id, actor, at)
    _transition(con, offer.offer_id, from_status, "booked", SYSTEM, event_id, at)
    # The other offers of the loan are void now.
    others = con.execute(
        "SELECT offer_id, recorded_status::VARCHAR FROM offer_status WHERE loan_id = ? "
        "AND offer_id <> ? AND recorded_status IN ('offered', 'accepted', 'approved')",
        [offer.loan_id, offer.offer_id],
    ).fetchall()
    for other, status in others:
        _transition(con, other, status, "cancelled", SYSTEM, event_id, at, "another plan booked")


def undo(
    con: duckdb.DuckDBPyConnection,
    offer: OfferState,
    *,
    actor: str,
    event_id: str | None,
    at: datetime,
) -> None:
    """Undo the offer's booking (caller's transaction): the loan's contract, terms,
    balances, status and restructure count go back exactly to what they were just before
    it was booked. Only the latest booking of a loan can be undone."""
    rec = f"offer {offer.offer_id}"
    booked = con.execute(
        "SELECT version FROM contract_versions WHERE offer_id = ? AND event = 'booked'",
        [offer.offer_id],
    ).fetchone()
    now_version = current_version(con, offer.loan_id)
    if booked is None or int(booked[0]) != now_version:
        raise OfferConflict(
            "a later change to this loan's contract was booked; undo that first",
            field="status",
            record=rec,
        )
    before = con.execute(
        "SELECT version, recorded_at FROM contract_versions WHERE offer_id = ? "
        "AND event = 'superseded'",
        [offer.offer_id],
    ).fetchone()
    version, recorded = int(before[0]), before[1]
    _archive(con, offer.loan_id, now_version, "undone", offer.offer_id, actor, at)
    sets = ", ".join(f"{c} = v.{c}" for c in _STATE_COLUMNS)
    con.execute(
        f"""UPDATE loans SET {sets} FROM contract_versions v
            WHERE v.loan_id = loans.loan_id AND loans.loan_id = ? AND v.offer_id = ?
              AND v.event = 'superseded'""",
        [offer.loan_id, offer.offer_id],
    )
    con.execute("DELETE FROM contract_installments WHERE loan_id = ?", [offer.loan_id])
    con.execute(
        """INSERT INTO contract_installments SELECT loan_id, number, due_date, payment,
               principal, interest, balance FROM contract_version_installments
           WHERE loan_id = ? AND version = ? AND event = 'superseded' AND recorded_at = ?
           ORDER BY number""",
        [offer.loan_id, version, recorded],
    )
    _archive(con, offer.loan_id, version, "restored", offer.offer_id, actor, at)
    _transition(con, offer.offer_id, "booked", "undone", actor, event_id, at)


def expire_offers(con: duckdb.DuckDBPyConnection, now: datetime | None = None) -> int:
    """Append an ``expired`` transition for every open offer past its expiry (the views
    already show them expired; this puts it in the audit). Own transaction."""
    now = (now or datetime.now(UTC)).replace(tzinfo=None)
    con.execute("BEGIN TRANSACTION")
    try:
        n = con.execute(
            """INSERT INTO offer_transitions
               SELECT offer_id, $now, recorded_status, 'expired', 'system', NULL,
                      'past expires_at'
               FROM offer_status
               WHERE recorded_status IN ('offered', 'accepted') AND expires_at < $now""",
            {"now": now},
        ).fetchone()[0]
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return int(n)


def offers_of_loan(con: duckdb.DuckDBPyConnection, loan_id: str) -> list[dict[str, Any]]:
    """The loan's offers, newest first, with status and installments (cents)."""
    rows = con.execute(
        """SELECT * EXCLUDE (metrics), metrics::VARCHAR AS metrics FROM offer_status
           WHERE loan_id = ? ORDER BY created_at DESC, offer_id""",
        [loan_id],
    )
    names = [d[0] for d in rows.description]
    out = [dict(zip(names, r, strict=True)) for r in rows.fetchall()]
    if not out:
        return []
    inst = con.execute(
        """SELECT offer_id, number, due_date, CAST(payment * 100 AS BIGINT),
                  CAST(principal * 100 AS BIGINT), CAST(interest * 100 AS BIGINT),
                  CAST(balance * 100 AS BIGINT)
           FROM offer_installments WHERE offer_id IN (SELECT unnest(?))
           ORDER BY offer_id, number""",
        [[o["offer_id"] for o in out]],
    ).fetchall()
    by: dict[str, list[list[Any]]] = {}
    for offer_id, number, due, *money in inst:
        by.setdefault(offer_id, []).append([number, due.isoformat(), *money])
    return [to_record(o, by.get(o["offer_id"], [])) for o in out]


def to_record(row: Mapping[str, Any], installments: Iterable[Sequence[Any]]) -> dict[str, Any]:
    """A stored ``offer_status`` row as the JSON-ready dict of :func:`offers_from_quote`
    (plus ``status``)."""

    def c(v: Any) -> int:
        return _cents(v)

    metrics = row.get("metrics")
    return {
        "offer_id": row["offer_id"],
        "loan_id": row["loan_id"],
        "batch_id": row["batch_id"],
        "source": row["source"],
        "plan_id": row["plan_id"],
        "run_id": row["run_id"],
        "alternative": row["alternative"],
        "as_of": row["as_of"].isoformat(),
        "contract_version": int(row["contract_version"]),
        "created_at": row["created_at"].isoformat(),
        "expires_at": row["expires_at"].isoformat(),
        "needs_review": bool(row["needs_review"]),
        "annual_rate_percent": str(row["annual_rate_percent"]),
        "frequency": str(row["frequency"]),
        "term_periods": int(row["term_periods"]),
        "first_payment_cents": c(row["first_payment"]),
        "max_payment_cents": c(row["max_payment"]),
        "total_paid_cents": c(row["total_paid"]),
        "total_interest_cents": c(row["total_interest"]),
        "apr_percent": row["apr_percent"],
        "irr_annual_percent": row["irr_annual_percent"],
        "max_pti": row["max_pti"],
        "explanation": row["explanation"],
        "metrics": json.loads(metrics) if isinstance(metrics, str) else (metrics or {}),
        "engine_version": row["engine_version"],
        "policy_id": row["policy_id"],
        "model_id": row["model_id"],
        "installments": [list(i) for i in installments],
        "status": str(row["status"]),
        "status_at": row["status_at"].isoformat() if row.get("status_at") else None,
    }
