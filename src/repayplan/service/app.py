"""The quote and offer service: FastAPI under ``/v1``, and the borrower page at ``/borrower/``.

Reads come from the published copy (``store.publish``) plus the service's own pending events
(``offers.view``); every write is an event in the inbox (``store.events.record_event``), so
the service keeps answering while the nightly runs. Between runs a background thread
applies the inbox (bookings land within about a second); during a run the run applies it.

Conventions: writes take an ``Idempotency-Key`` (same key + same body → the first answer;
same key + another body → 422; the same key still in flight → 409; none → 400); errors are
``application/problem+json`` naming the field; lender endpoints need an API key
(``Authorization: Bearer rp_…``, stored hashed); the borrower's own endpoints also accept the
borrower link's token (``X-Borrower-Token``). Responses and logs carry pseudonymous ids only.
"""

import base64
import hashlib
import hmac
import logging
import os
import secrets
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Header, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from repayplan import __version__
from repayplan.errors import InputError, format_scrubbed_traceback
from repayplan.offers import view
from repayplan.offers.lifecycle import (
    EVENT_OF,
    OfferConflict,
    OfferForbidden,
    OfferNotFound,
    decide,
)
from repayplan.offers.prepayment import preview_prepayment
from repayplan.offers.quotes import hardship_offers
from repayplan.plans.case import MAX_RECOVERY_MONTHS, LoanCase, Policy
from repayplan.plans.quote import quote as quote_case
from repayplan.risk.metrics import money
from repayplan.store.events import (
    IdempotencyConflict,
    apply_events,
    find_event,
    inbox_seq,
    read_events,
    record_event,
    same_request,
)
from repayplan.store.runlock import run_in_progress
from repayplan.store.schema import HARDSHIP_REASONS

log = logging.getLogger("repayplan.service")
STATIC = Path(__file__).parent / "static"
PROBLEM = "application/problem+json"
#: How long a stateless quote's terms are stated to hold.
QUOTE_TTL = timedelta(hours=24)
#: How long a borrower link stays valid.
LINK_TTL = timedelta(days=14)
DEFAULT_CURRENCY = "EUR"
#: Quotes computed at once (0: two per CPU core); ``REPAYPLAN_QUOTE_SLOTS``.
QUOTE_SLOTS = int(os.environ.get("REPAYPLAN_QUOTE_SLOTS", "0") or 0)
_Money = Annotated[Decimal, Field(ge=0, max_digits=14, decimal_places=2)]


class Problem(Exception):
    """An RFC 9457 problem: status, title, detail, and the field it is about."""

    def __init__(self, status: int, title: str, detail: str, field: str | None = None):
        super().__init__(detail)
        self.status, self.title, self.detail, self.field = status, title, detail, field


def _problem(status: int, title: str, detail: str, field: str | None = None, **extra: Any):
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail}
    if field:
        body["field"] = field
    body.update(extra)
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


# ------------------------------------------------------------------ request bodies


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class QuoteRequest(_Body):
    """A borrower's loan and circumstances (money in currency units, rates in percent)."""

    balance: Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=2)]
    annual_rate_percent: Annotated[Decimal, Field(ge=0, lt=1000, max_digits=9)]
    remaining_term_months: Annotated[int, Field(ge=1, le=600)] = 60
    monthly_income: _Money
    essential_expenses: _Money
    other_debt: _Money = Decimal(0)
    arrears: _Money = Decimal(0)
    penalty_fees: _Money = Decimal(0)
    hardship: Literal["none", "job_loss", "illness", "business_downturn", "seasonal"] = "none"
    recovery_months: Annotated[int, Field(ge=0, le=MAX_RECOVERY_MONTHS)] | None = None
    hardship_income_factor: Annotated[float, Field(ge=0, le=1)] = 1.0
    start_date: date | None = None
    max_term_months: Annotated[int, Field(ge=1, le=600)] = 480


class ActionRequest(_Body):
    note: Annotated[str, Field(max_length=200)] | None = None


class HardshipRequest(_Body):
    reason: Literal[HARDSHIP_REASONS]  # type: ignore[valid-type]
    income_now: _Money
    expected_recovery_date: date | None = None


class PrepaymentRequest(_Body):
    amount: Annotated[Decimal, Field(gt=0, max_digits=14, decimal_places=2)]
    date: date


# ------------------------------------------------------------------ callers


@dataclass(frozen=True)
class Caller:
    actor: str  # API key name, or borrower:<loan id>
    role: str  # platform | reviewer | borrower
    loan_id: str | None = None  # the borrower's loan


class Service:
    """State shared by the endpoints of one ``db``."""

    def __init__(self, db: str | Path, apply_interval_s: float = 1.0):
        self.db = Path(db)
        self.reader = view.Reader(self.db)
        self.secret = _secret(self.db)
        self.inflight: set[str] = set()
        self.lock = threading.Lock()  # decide + record, one at a time in this process
        self.apply_interval_s = apply_interval_s
        # Quotes are CPU-bound (the solves): a burst of them beyond a few per core only adds
        # GIL contention and memory; the rest wait their turn.
        self.quote_slots = threading.Semaphore(QUOTE_SLOTS or 2 * (os.cpu_count() or 1))
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.currency = DEFAULT_CURRENCY
        try:
            with self.reader.cursor() as con:
                row = con.execute("SELECT value FROM store_meta WHERE key = 'currency'")
                found = row.fetchone()
                self.currency = found[0] if found else DEFAULT_CURRENCY
        except InputError:
            pass

    # borrower links: HMAC(secret, loan|expiry), the loan and expiry in the token
    def link_token(self, loan_id: str, expires: datetime) -> str:
        msg = f"{loan_id}|{int(expires.timestamp())}"
        sig = hmac.new(self.secret, msg.encode(), hashlib.sha256).hexdigest()[:32]
        return base64.urlsafe_b64encode(msg.encode()).decode().rstrip("=") + "." + sig

    def check_token(self, token: str) -> str:
        try:
            head, sig = token.split(".", 1)
            msg = base64.urlsafe_b64decode(head + "=" * (-len(head) % 4)).decode()
            loan_id, exp = msg.rsplit("|", 1)
            good = hmac.new(self.secret, msg.encode(), hashlib.sha256).hexdigest()[:32]
            valid = hmac.compare_digest(good, sig) and int(exp) >= time.time()
        except (ValueError, UnicodeDecodeError):
            valid = False
        if not valid:
            raise Problem(
                401,
                "Unauthorized",
                "the borrower link is not valid or has expired",
                "X-Borrower-Token",
            )
        return loan_id

    @contextmanager
    def in_flight(self, key: str) -> Iterator[None]:
        with self.lock:
            if key in self.inflight:
                raise Problem(
                    409,
                    "Conflict",
                    "a request with this Idempotency-Key is still "
                    "in flight; retry when it has finished",
                    "Idempotency-Key",
                )
            self.inflight.add(key)
        try:
            yield
        finally:
            with self.lock:
                self.inflight.discard(key)

    # the background applier: the inbox into the engine between nightly runs
    def start(self) -> None:
        if self.apply_interval_s > 0:
            self._thread = threading.Thread(
                target=self._apply_loop, daemon=True, name="apply-events"
            )
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)
        self.reader.close()

    def apply_now(self) -> int:
        """Apply pending events unless a nightly run holds the portfolio (it applies them
        itself); publish when something was applied. Returns the number applied."""
        if run_in_progress(self.db) is not None:
            return 0
        try:
            if inbox_seq(self.db) <= self.reader.watermark():
                return 0
        except InputError:
            return 0
        from repayplan.store.connection import connect
        from repayplan.store.publish import publish

        con = connect(self.db, wait_s=0.5)
        try:
            summary = apply_events(self.db, con=con, applied_by="service", publish=False)
            if summary.applied:
                publish(self.db, f"events-{summary.watermark}", con=con)
            return summary.applied
        finally:
            con.close()

    def _apply_loop(self) -> None:
        while not self._stop.wait(self.apply_interval_s):
            try:
                self.apply_now()
            except InputError:  # another writer holds the engine: next time
                continue
            except Exception as exc:  # never let the applier die; the nightly applies too
                log.warning("events not applied yet: %s", type(exc).__name__)


def _secret(db: Path) -> bytes:
    """The borrower links' signing key: ``<db>.service-secret`` (mode 0600), made once."""
    path = Path(f"{db}.service-secret")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(secrets.token_hex(32))
    return bytes.fromhex(path.read_text().strip())


# ------------------------------------------------------------------ answers


def _money_fields(o: dict[str, Any]) -> dict[str, Any]:
    return {
        "offer_id": o["offer_id"],
        "loan_id": o["loan_id"],
        "status": o["status"],
        "booking": o.get("booking"),
        "needs_review": o["needs_review"],
        "source": o["source"],
        "alternative": o["alternative"],
        "as_of": o["as_of"],
        "created_at": o["created_at"],
        "expires_at": o["expires_at"],
        "annual_rate_percent": o["annual_rate_percent"],
        "frequency": o["frequency"],
        "term_periods": o["term_periods"],
        "first_payment": money(o["first_payment_cents"]),
        "max_payment": money(o["max_payment_cents"]),
        "total_paid": money(o["total_paid_cents"]),
        "total_interest": money(o["total_interest_cents"]),
        "apr_percent": o.get("apr_percent"),
        "irr_annual_percent": o.get("irr_annual_percent"),
        "max_payment_to_income": o.get("max_pti"),
        "explanation": o.get("explanation"),
        "versions": {
            "engine": o["engine_version"],
            "policy": o.get("policy_id"),
            "risk_model": o.get("model_id"),
        },
        "installments": [
            {
                "number": n,
                "due_date": d,
                "payment": money(p),
                "principal": money(pr),
                "interest": money(i),
                "balance": money(b),
            }
            for n, d, p, pr, i, b in o["installments"]
        ],
    }


def _alternative(alt: Any) -> dict[str, Any]:
    pays = [i.payment for i in alt.schedule.installments]
    m = alt.metrics
    return {
        "name": alt.name,
        "explanation": alt.explanation,
        "annual_rate_percent": str((alt.annual_rate * 100).quantize(Decimal("0.0001"))),
        "frequency": alt.frequency,
        "term_periods": alt.term_periods,
        "first_payment": money(pays[0]),
        "max_payment": money(max(pays)),
        "total_paid": m.get("total_paid"),
        "total_interest": m.get("total_interest"),
        "apr_percent": m.get("apr_percent"),
        "irr_annual_percent": m.get("irr_nominal_annual_percent"),
        "irr_effective_annual_percent": m.get("irr_effective_annual_percent"),
        "max_payment_to_income": m.get("max_payment_to_income"),
        "pd": m.get("pd"),
        "installments": [
            {
                "number": i.number,
                "due_date": i.due_date.isoformat(),
                "payment": money(i.payment),
                "principal": money(i.principal),
                "interest": money(i.interest),
                "balance": money(i.balance),
            }
            for i in alt.schedule.installments
        ],
    }


def _cents(value: Decimal) -> int:
    return int((value * 100).to_integral_value())


_RESULT = {
    "accept": "accepted",
    "approve": "approved",
    "reject": "rejected",
    "cancel": "cancelled",
    "undo": "undone",
}


_ACTION_DOCS = {
    "accept": "The borrower (or the platform for them) accepts the offer; a plan that needs "
    "no review is then booked.",
    "cancel": "The borrower withdraws an open offer.",
    "approve": "A reviewer (not the one who accepted) approves a plan that needs review; it "
    "is then booked.",
    "reject": "A reviewer rejects an open offer.",
    "undo": "A reviewer undoes a booking: the previous contract is restored exactly.",
}


def _action_answer(event: Any, action: str, offer: dict[str, Any]) -> dict[str, Any]:
    books = action == "approve" or (action == "accept" and not offer["needs_review"])
    return {
        "offer_id": event.subject_id,
        "loan_id": offer["loan_id"],
        "action": action,
        "status": _RESULT[action],
        "booking": "pending" if books else ("undo pending" if action == "undo" else None),
        "event_id": event.event_id,
        "recorded_at": event.recorded_at.isoformat(),
    }


# ------------------------------------------------------------------ the app


def create_app(db: str | Path, *, apply_interval_s: float = 1.0) -> FastAPI:
    """The service for portfolio ``db`` (its published copy must exist)."""
    service = Service(db, apply_interval_s)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        yield
        service.stop()

    app = FastAPI(
        title="repayplan quote and offer service",
        version=__version__,
        description="Quotes for borrowers, the offer lifecycle for lending platforms, and the "
        "borrower page (/borrower/). Money in currency units as strings, rates in percent.",
        lifespan=lifespan,
        # FastAPI's /docs loads Swagger UI from a CDN; ours is shipped in the package.
        docs_url=None,
        redoc_url=None,
    )
    app.state.service = service

    @app.exception_handler(Problem)
    async def _on_problem(request: Request, exc: Problem):
        return _problem(exc.status, exc.title, exc.detail, exc.field)

    @app.exception_handler(InputError)
    async def _on_input(request: Request, exc: InputError):
        status, title = 422, "Unprocessable Content"
        if isinstance(exc, OfferNotFound):
            status, title = 404, "Not Found"
        elif isinstance(exc, OfferForbidden):
            status, title = 403, "Forbidden"
        elif isinstance(exc, OfferConflict):
            status, title = 409, "Conflict"
        elif isinstance(exc, IdempotencyConflict):
            field = "Idempotency-Key"
            return _problem(422, title, "this Idempotency-Key was used with another request", field)
        elif exc.field == "loan_id" and "no such" in exc.reason:
            status, title = 404, "Not Found"
        return _problem(status, title, exc.reason, exc.field)

    @app.exception_handler(RequestValidationError)
    async def _on_validation(request: Request, exc: RequestValidationError):
        errors = []
        for e in exc.errors():
            loc = [str(p) for p in e.get("loc", ()) if p not in ("body", "query", "path")]
            errors.append({"field": ".".join(loc) or "body", "reason": e.get("msg", "invalid")})
        first = errors[0] if errors else {"field": "body", "reason": "invalid"}
        return _problem(
            422,
            "Unprocessable Content",
            f"{first['field']}: {first['reason']}",
            first["field"],
            errors=errors,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _on_http(request: Request, exc: StarletteHTTPException):
        return _problem(exc.status_code, str(exc.detail), str(exc.detail))

    @app.exception_handler(Exception)
    async def _on_error(request: Request, exc: Exception):
        ref = uuid.uuid4().hex[:12]
        log.error("unexpected error %s:\n%s", ref, format_scrubbed_traceback(exc))
        return _problem(500, "Internal Server Error", f"unexpected error (reference {ref})")

    def caller(
        authorization: Annotated[str | None, Header()] = None,
        x_borrower_token: Annotated[str | None, Header()] = None,
    ) -> Caller:
        if authorization:
            scheme, _, key = authorization.partition(" ")
            found = service.reader.key(key.strip()) if scheme.lower() == "bearer" else None
            if found is None:
                raise Problem(401, "Unauthorized", "unknown or revoked API key", "Authorization")
            return Caller(actor=found[0], role=found[1])
        if x_borrower_token:
            loan_id = service.check_token(x_borrower_token)
            return Caller(actor=f"borrower:{loan_id}", role="borrower", loan_id=loan_id)
        raise Problem(
            401,
            "Unauthorized",
            "send an API key (Authorization: Bearer …) or the "
            "borrower link's token (X-Borrower-Token)",
            "Authorization",
        )

    def lender(who: Annotated[Caller, Depends(caller)]) -> Caller:
        if who.role == "borrower":
            raise Problem(403, "Forbidden", "needs a lender's API key", "Authorization")
        return who

    def idem_key(idempotency_key: Annotated[str | None, Header()] = None) -> str:
        if idempotency_key is None:
            raise Problem(
                400, "Bad Request", "writes need an Idempotency-Key header", "Idempotency-Key"
            )
        if not 1 <= len(idempotency_key) <= 200 or not idempotency_key.isprintable():
            raise Problem(
                400, "Bad Request", "must be 1 to 200 printable characters", "Idempotency-Key"
            )
        return idempotency_key

    def own_loan(who: Caller, loan_id: str) -> None:
        if who.role == "borrower" and who.loan_id != loan_id:
            raise Problem(403, "Forbidden", "this borrower link is for another loan", "loan_id")

    @app.get("/docs", include_in_schema=False)
    def docs():
        return FileResponse(STATIC / "apidocs.html")

    @app.get("/", include_in_schema=False)
    def root():
        return RedirectResponse("/borrower/")

    @app.get("/v1/health")
    def health() -> dict[str, Any]:
        """Liveness and how far the writer has applied the inbox."""
        applied = service.reader.watermark()
        return {
            "status": "ok",
            "version": __version__,
            "events_recorded": inbox_seq(db),
            "events_applied": applied,
            "run_in_progress": run_in_progress(db) is not None,
        }

    @app.get("/v1/config")
    def config() -> dict[str, Any]:
        """What the borrower page needs: the portfolio's currency and the languages."""
        return {
            "currency": service.currency,
            "languages": ["en", "zh-CN"],
            "hardship_reasons": list(HARDSHIP_REASONS),
        }

    @app.post("/v1/quotes")
    def quotes(body: QuoteRequest) -> dict[str, Any]:
        """Stateless: a borrower's loan and circumstances in, the alternatives out. Nothing
        is recorded."""
        case = LoanCase(
            outstanding_principal=_cents(body.balance),
            annual_rate=body.annual_rate_percent / 100,
            remaining_term=body.remaining_term_months,
            monthly_income=_cents(body.monthly_income),
            essential_expenses=_cents(body.essential_expenses),
            other_debt=_cents(body.other_debt),
            arrears=_cents(body.arrears),
            penalty_fees=_cents(body.penalty_fees),
            hardship=None if body.hardship == "none" else body.hardship,
            recovery_months=body.recovery_months,
            hardship_income_factor=body.hardship_income_factor,
            start=body.start_date or date.today(),
        )
        with service.quote_slots:
            result = quote_case(case, Policy(max_term_months=body.max_term_months))
        now = datetime.now(UTC)
        return {
            "quote_id": "Q" + uuid.uuid4().hex[:15],
            "status": result.status,
            "reasons": list(result.reasons),
            "created_at": now.isoformat(timespec="seconds"),
            "expires_at": (now + QUOTE_TTL).isoformat(timespec="seconds"),
            "currency": service.currency,
            "versions": {"engine": __version__, "policy": "default", "risk_model": "default"},
            "alternatives": [_alternative(a) for a in result.alternatives],
        }

    @app.post("/v1/loans/{loan_id}/borrower-link")
    def borrower_link(loan_id: str, who: Annotated[Caller, Depends(lender)]) -> dict[str, Any]:
        """A link the platform gives its borrower: the page opens the loan's offers."""
        with service.reader.cursor() as con:
            if not con.execute(
                "SELECT count(*) FROM loans WHERE loan_id = ?", [loan_id]
            ).fetchone()[0]:
                raise Problem(404, "Not Found", "no such loan", "loan_id")
        expires = datetime.now(UTC) + LINK_TTL
        token = service.link_token(loan_id, expires)
        return {
            "loan_id": loan_id,
            "token": token,
            "expires_at": expires.isoformat(timespec="seconds"),
            "url": f"/borrower/#loan={loan_id}&token={token}",
        }

    @app.get("/v1/loans/{loan_id}")
    def loan(loan_id: str, who: Annotated[Caller, Depends(caller)]) -> dict[str, Any]:
        """The contract in force, as the borrower sees it (no personal data)."""
        own_loan(who, loan_id)
        with service.reader.cursor() as con:
            row = con.execute(
                "SELECT status::VARCHAR, CAST(outstanding_principal * 100 AS BIGINT), "
                "CAST(arrears_amount * 100 AS BIGINT), CAST(regular_payment * 100 AS BIGINT), "
                "next_due_date, remaining_term, CAST(annual_rate_percent AS VARCHAR), "
                "days_past_due, as_of, frequency::VARCHAR FROM loans WHERE loan_id = ?",
                [loan_id],
            ).fetchone()
        if row is None:
            raise Problem(404, "Not Found", "no such loan", "loan_id")
        return {
            "loan_id": loan_id,
            "status": row[0],
            "outstanding_principal": money(row[1]),
            "arrears": money(row[2]),
            "installment": money(row[3] or 0),
            "next_due_date": row[4].isoformat() if row[4] else None,
            "remaining_term": row[5],
            "annual_rate_percent": row[6],
            "days_past_due": row[7],
            "as_of": row[8].isoformat(),
            "frequency": row[9],
            "currency": service.currency,
            "contract_version": view.contract_version(service.reader, loan_id),
        }

    @app.get("/v1/loans/{loan_id}/offers")
    def loan_offers(loan_id: str, who: Annotated[Caller, Depends(caller)]) -> dict[str, Any]:
        """The loan's offers, newest first, with status and schedule."""
        own_loan(who, loan_id)
        offers = view.loan_offers(service.reader, loan_id)
        return {
            "loan_id": loan_id,
            "currency": service.currency,
            "offers": [_money_fields(o) for o in offers],
        }

    @app.get("/v1/offers/{offer_id}")
    def offer(offer_id: str, who: Annotated[Caller, Depends(caller)]) -> dict[str, Any]:
        found = view.find_offer(service.reader, offer_id)
        own_loan(who, found["loan_id"])
        return _money_fields(found)

    def act(
        offer_id: str, action: str, body: ActionRequest | None, who: Caller, key: str
    ) -> JSONResponse:
        kind = EVENT_OF[action]
        payload: dict[str, Any] = {"role": who.role}
        if body is not None and body.note:
            payload["note"] = body.note
        scoped = f"{who.actor}:{key}"
        with service.in_flight(scoped):
            first = find_event(db, scoped)
            if first is not None:
                if not same_request(first, kind, offer_id, payload):
                    raise IdempotencyConflict("used with another request", field="Idempotency-Key")
                found = view.find_offer(service.reader, offer_id)
                return JSONResponse(
                    _action_answer(first, action, found), headers={"Idempotent-Replayed": "true"}
                )
            found = view.find_offer(service.reader, offer_id)
            own_loan(who, found["loan_id"])
            with service.lock:
                siblings = view.loan_offers(service.reader, found["loan_id"])
                found = next(o for o in siblings if o["offer_id"] == offer_id)
                decide(
                    view.state_of(found),
                    action,
                    actor=who.actor,
                    role=who.role,
                    now=datetime.now(UTC).replace(tzinfo=None),
                    pending_other=view.pending_other(siblings, offer_id),
                    current_version=view.contract_version(service.reader, found["loan_id"])
                    if action == "accept"
                    else None,
                )
                event = record_event(
                    db, kind, offer_id, payload, idempotency_key=scoped, actor=who.actor
                )
        return JSONResponse(_action_answer(event, action, found), status_code=202)

    def make(action: str):
        def endpoint(
            offer_id: str,
            who: Annotated[Caller, Depends(caller)],
            key: Annotated[str, Depends(idem_key)],
            body: ActionRequest | None = None,
        ) -> JSONResponse:
            return act(offer_id, action, body, who, key)

        endpoint.__doc__ = _ACTION_DOCS[action]
        endpoint.__name__ = f"{action}_offer"
        return endpoint

    for action in _ACTION_DOCS:
        app.post(f"/v1/offers/{{offer_id}}/{action}", status_code=202)(make(action))

    @app.post("/v1/loans/{loan_id}/prepayments:preview")
    def prepayment(
        loan_id: str, body: PrepaymentRequest, who: Annotated[Caller, Depends(caller)]
    ) -> dict[str, Any]:
        """What a prepayment does (shorter term or lower installment; never a penalty).
        Side-effect free."""
        own_loan(who, loan_id)
        with service.reader.cursor() as con:
            return preview_prepayment(con, loan_id, _cents(body.amount), body.date)

    @app.post("/v1/loans/{loan_id}/hardship", status_code=201)
    def hardship(
        loan_id: str,
        body: HardshipRequest,
        who: Annotated[Caller, Depends(caller)],
        key: Annotated[str, Depends(idem_key)],
    ) -> dict[str, Any]:
        """The borrower reports a hardship and gets fresh offers at once."""
        own_loan(who, loan_id)
        payload = {
            "reason": body.reason,
            "income_now_cents": _cents(body.income_now),
            "expected_recovery_date": body.expected_recovery_date.isoformat()
            if body.expected_recovery_date
            else None,
        }
        scoped = f"{who.actor}:{key}"
        with service.in_flight(scoped):
            first = find_event(db, scoped)
            if first is not None and not same_request(first, "hardship.reported", loan_id, payload):
                raise IdempotencyConflict("used with another request", field="Idempotency-Key")
            if first is not None:
                for e in read_events(
                    db, after_seq=first.seq, subject_id=loan_id, kind="offers.created"
                ):
                    if e.payload.get("hardship_event_id") == first.event_id:
                        return _hardship_answer(loan_id, first, e.payload, service)
            made = hardship_offers(
                db,
                loan_id,
                reason=body.reason,
                income_now_cents=payload["income_now_cents"],
                expected_recovery=body.expected_recovery_date,
            )
            event = first or record_event(
                db,
                "hardship.reported",
                loan_id,
                payload,
                idempotency_key=scoped,
                actor=who.actor,
            )
            created = {
                "hardship_event_id": event.event_id,
                "status": made.quote.status,
                "reasons": list(made.quote.reasons),
                "offers": made.offers,
            }
            record_event(
                db,
                "offers.created",
                loan_id,
                created,
                actor=who.actor,
                idempotency_key=f"{scoped}:offers",
            )
        return _hardship_answer(loan_id, event, created, service)

    app.mount("/borrower", StaticFiles(directory=STATIC, html=True), name="borrower")
    return app


def _hardship_answer(loan_id: str, event: Any, created: dict[str, Any], service: Service):
    offers = []
    for o in created.get("offers", []):
        o = {**o, "status": "offered", "booking": None}
        offers.append(_money_fields(o))
    return {
        "loan_id": loan_id,
        "hardship_event_id": event.event_id,
        "status": created.get("status"),
        "reasons": created.get("reasons", []),
        "currency": service.currency,
        "offers": offers,
    }
