"""Candidate plans for a chunk of loans: the nightly flow's worker (pure — no DuckDB).

A chunk is a DataFrame of ``store.queries.loans_for_planning`` rows (hundreds to thousands of
loans). For each loan the worker builds the contract as it stands (the ``keep`` candidate,
:func:`repayplan.plans.baselines.contract_plan`) and the optimised alternatives
(:func:`repayplan.plans.quote.quote`), and returns four Arrow tables:

- ``candidates`` — one row per (loan, plan), the input of
  :func:`repayplan.portfolio.selection.select_plans`, money in currency units:

  * ``value`` = the expected NPV at the hurdle rate of what the plan will collect, with
    ``1 − LGD`` recovered at charge-off, under the lender's fitted behaviour model
    (:func:`repayplan.risk.outcomes.plan_outcomes` on the cent-exact schedule: ``keep`` in the
    loan's current delinquency state, a restructure from a clean slate), less
    ``default_cost`` × exposure × the 24-month charge-off probability;
  * ``concession`` = ``max(0, exposure − lender_npv)`` for a restructure, 0 for ``keep``
    (the contract gives nothing away): what the lender forgoes at the hurdle rate;
  * ``collections_1..3`` = expected cash in months 1, 2, 3 after ``as_of`` under the same
    model (arrears cured included);
  * ``restructure`` = not ``keep``; ``needs_review`` = a restructure that needed a declared
    relaxation, forbears principal, or concedes more than ``review_concession_threshold``;

- ``plans`` — one row per candidate with its exact figures (money in integer cents) and the
  ``plan_id`` that links the other tables;
- ``installments`` — the cent-exact schedule of every candidate (cents);
- ``failures`` — ``loan_id``, ``stage``, ``reason`` for each loan that could not be planned
  (stage ``input`` or ``quote``: the loan then has no candidates) or got no feasible
  alternative (stage ``manual_review``: it keeps only ``keep``).

One bad loan never stops the chunk.
"""

from __future__ import annotations

import dataclasses
import json
import math
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from repayplan.errors import InputError
from repayplan.finance import Frequency, add_months
from repayplan.plans.alternative import Alternative
from repayplan.plans.baselines import contract_plan, period_incomes, waterfall_plan
from repayplan.plans.case import LoanCase
from repayplan.plans.quote import case_from_record, quote
from repayplan.portfolio.nightly_policy import NightlyPolicy, in_champion_arm
from repayplan.portfolio.selection import KEEP
from repayplan.risk.burden import DEFAULT_BURDEN_CURVE, BurdenCurve
from repayplan.risk.metrics import money
from repayplan.risk.miss_model import DEFAULT_MISS_MODEL, MissModel, months_per_period
from repayplan.risk.outcomes import (
    Outcomes,
    month_offsets,
    pad_batch,
    plan_outcomes,
    unpaid_installments,
)

CANDIDATE_SCHEMA = pa.schema(
    [
        ("plan_id", pa.string()),
        ("loan_id", pa.string()),
        ("candidate", pa.string()),
        ("segment", pa.string()),
        ("value", pa.float64()),
        ("concession", pa.float64()),
        ("collections_1", pa.float64()),
        ("collections_2", pa.float64()),
        ("collections_3", pa.float64()),
        ("restructure", pa.bool_()),
        ("needs_review", pa.bool_()),
        ("arm", pa.string()),  # champion | challenger
    ]
)
PLAN_SCHEMA = pa.schema(
    [
        ("plan_id", pa.string()),
        ("loan_id", pa.string()),
        ("alternative", pa.string()),
        ("status", pa.string()),
        ("annual_rate", pa.string()),  # Decimal fraction as text: exact
        ("term_periods", pa.int32()),
        ("frequency", pa.string()),
        ("periods_per_year", pa.int32()),
        ("objective", pa.float64()),
        ("exposure", pa.int64()),  # cents owed before the plan
        ("principal", pa.int64()),  # cents the schedule amortises
        ("total_paid", pa.int64()),
        ("total_interest", pa.int64()),
        ("npv", pa.int64()),
        ("apr_percent", pa.float64()),
        ("pd", pa.float64()),
        ("expected_loss", pa.int64()),
        ("max_pti", pa.float64()),
        ("shortfall", pa.int64()),  # priced affordability shortfall, cents
        ("concession", pa.int64()),
        ("forborne_principal", pa.int64()),
        ("metrics", pa.string()),
        ("explanation", pa.string()),
        ("solver", pa.string()),
        ("arm", pa.string()),  # champion | challenger
    ]
)
INSTALLMENT_SCHEMA = pa.schema(
    [
        ("plan_id", pa.string()),
        ("number", pa.int32()),
        ("due_date", pa.date32()),
        ("payment", pa.int64()),
        ("principal", pa.int64()),
        ("interest", pa.int64()),
        ("balance", pa.int64()),
    ]
)
#: ``plan_failures.stage`` of a loan with no feasible alternative: it keeps its contract and
#: goes to a person (not a failure of the run).
MANUAL_REVIEW = "manual_review"
FAILURE_SCHEMA = pa.schema(
    [("loan_id", pa.string()), ("stage", pa.string()), ("reason", pa.string())]
)


@dataclass
class ChunkResult:
    """The four tables of one chunk (see the module docstring) and its solver seconds."""

    candidates: pa.Table
    plans: pa.Table
    installments: pa.Table
    failures: pa.Table
    loans: int
    seconds: float = 0.0


def _cents(money_text: str) -> int:
    return int(Decimal(money_text).scaleb(2).to_integral_value())


def _clean(record: dict[str, Any]) -> dict[str, Any]:
    """pandas' missing values (NaN, NaT) as None and timestamps as dates: what
    ``case_from_record`` expects."""
    out = {}
    for key, value in record.items():
        if isinstance(value, pd.Timestamp):
            value = value.date()
        elif value is pd.NaT or (isinstance(value, float) and math.isnan(value)):
            value = None
        elif isinstance(value, np.generic):
            value = value.item()
        out[key] = value
    return out


@dataclass
class _Candidate:
    """One candidate waiting for its valuation: the plan, the loan's state when it starts
    (installments and cents past due: those of the loan for ``keep``, none for a
    restructure, which clears them) and the contract payment that ``keep`` really asks for
    in its first period (the contract plan adds the overdue amounts there)."""

    plan_id: str
    case: LoanCase
    alt: Alternative
    status: str
    arm: str
    unpaid0: int = 0
    arrears0: int = 0
    first_payment_less: int = 0


def keep_as_of(keep: _Candidate) -> date:
    """The valuation date of a loan's candidates: the day before ``keep``'s first due date
    counts as the start of month 1 (the plan starts on the last due date)."""
    first = keep.alt.schedule.installments[0].due_date
    return add_months(first, -1)


def valuation_batch(candidates: list[_Candidate], as_of: date) -> Any:
    """The candidates' schedules as a :class:`~repayplan.risk.outcomes.PlanBatch`: payments,
    what is owed, due months after ``as_of`` and the borrower's expected income per period
    (seasonality and hardship included)."""
    from repayplan.store.schema import SEGMENTS

    pays, owed, months_due, incomes = [], [], [], []
    for c in candidates:
        inst = c.alt.schedule.installments
        pay = np.fromiter((i.payment for i in inst), dtype=np.int64, count=len(inst))
        bal = np.fromiter((i.balance for i in inst), dtype=np.int64, count=len(inst))
        pay[0] -= c.first_payment_less
        dates = [i.due_date for i in inst]
        per_year = Frequency(c.alt.frequency).periods_per_year
        pays.append(pay)
        owed.append(bal + pay)
        months_due.append(month_offsets(as_of, np.array(dates, dtype="datetime64[D]")))
        incomes.append(np.asarray(period_incomes(c.case, dates, per_year), dtype=float))
    segments = [
        SEGMENTS.index(c.case.segment) if c.case.segment in SEGMENTS else 0 for c in candidates
    ]
    return pad_batch(
        pays,
        owed,
        months_due,
        incomes,
        [months_per_period(c.alt.frequency) for c in candidates],
        segments,
        [c.unpaid0 for c in candidates],
        [c.arrears0 for c in candidates],
    )


class _Tables:
    """Column lists that grow per candidate and become Arrow tables once per chunk."""

    def __init__(self) -> None:
        self.cand: dict[str, list[Any]] = {n: [] for n in CANDIDATE_SCHEMA.names}
        self.plan: dict[str, list[Any]] = {n: [] for n in PLAN_SCHEMA.names}
        self.inst: dict[str, list[Any]] = {n: [] for n in INSTALLMENT_SCHEMA.names}
        self.fail: dict[str, list[Any]] = {n: [] for n in FAILURE_SCHEMA.names}

    def failure(self, loan_id: str, stage: str, reason: str) -> None:
        for key, value in zip(FAILURE_SCHEMA.names, (loan_id, stage, reason), strict=True):
            self.fail[key].append(value)

    def add(
        self,
        c: _Candidate,
        policy: NightlyPolicy,
        outcomes: Outcomes,
        i: int,
    ) -> None:
        case, alt = c.case, c.alt
        m = dict(alt.metrics)
        keep = alt.name == KEEP
        npv = _cents(m["lender_npv"])
        expected = float(outcomes.expected_npv[i])
        charge_off = float(outcomes.charge_off_24[i])
        concession = 0 if keep else max(0, case.exposure - npv)
        needs_review = not keep and (
            c.status == "relaxed"
            or alt.forborne_principal > 0
            or concession / 100 > policy.review_concession_threshold
        )
        # What the lender expects to collect (recoveries included, at the hurdle), less the
        # policy's price of a charge-off: the selection maximises this.
        value = expected - policy.default_cost * charge_off * case.exposure
        m["charge_off_12m"] = round(float(outcomes.charge_off_12[i]), 6)
        m["charge_off_24m"] = round(charge_off, 6)
        m["charge_off_life"] = round(float(outcomes.charge_off[i]), 6)
        m["expected_value"] = money(expected)
        row = (
            c.plan_id,
            case.loan_id,
            alt.name,
            case.segment,
            value / 100,
            concession / 100,
            *(outcomes.collections[i] / 100).tolist(),
            not keep,
            needs_review,
            c.arm,
        )
        for key, value in zip(CANDIDATE_SCHEMA.names, row, strict=True):
            self.cand[key].append(value)
        sched = alt.schedule
        plan_row = (
            c.plan_id,
            case.loan_id,
            alt.name,
            c.status,
            str(alt.annual_rate),
            alt.term_periods,
            alt.frequency,
            Frequency(alt.frequency).periods_per_year,
            alt.objective,
            case.exposure,
            sched.principal,
            sched.total_paid,
            sched.total_interest,
            npv,
            float(m["apr_percent"]),
            float(m["pd"]),
            _cents(m["expected_loss"]),
            m.get("max_payment_to_income"),
            _cents(m.get("affordability_shortfall", "0")),
            concession,
            alt.forborne_principal,
            json.dumps({k: v for k, v in m.items() if k != "survival"}),
            alt.explanation,
            str(m.get("solver", "none")),
            c.arm,
        )
        for key, value in zip(PLAN_SCHEMA.names, plan_row, strict=True):
            self.plan[key].append(value)
        n = len(sched.installments)
        self.inst["plan_id"].extend([c.plan_id] * n)
        for key in ("number", "due_date", "payment", "principal", "interest", "balance"):
            self.inst[key].extend(getattr(i, key) for i in sched.installments)

    def result(self, loans: int, seconds: float) -> ChunkResult:
        return ChunkResult(
            candidates=pa.table(self.cand, schema=CANDIDATE_SCHEMA),
            plans=pa.table(self.plan, schema=PLAN_SCHEMA),
            installments=pa.table(self.inst, schema=INSTALLMENT_SCHEMA),
            failures=pa.table(self.fail, schema=FAILURE_SCHEMA),
            loans=loans,
            seconds=seconds,
        )


def _renamed(alt: Alternative, name: str, explanation: str | None = None) -> Alternative:
    return Alternative(
        name=name,
        schedule=alt.schedule,
        annual_rate=alt.annual_rate,
        metrics=alt.metrics,
        objective=alt.objective,
        explanation=alt.explanation if explanation is None else explanation,
        forborne_principal=alt.forborne_principal,
        frequency=alt.frequency,
    )


def fallback_alternatives(
    case: LoanCase,
    policy: NightlyPolicy,
    curve: BurdenCurve,
    solver: str,
    reasons: str,
    *,
    keep: _Candidate | None = None,
    miss_model: MissModel = DEFAULT_MISS_MODEL,
) -> list[Alternative]:
    """The next-best lawful restructures for a loan no optimised template could plan, in
    order: the HAMP waterfall (capitalise, cut the rate, extend, forbear), and a discounted
    settlement. Each says why it is offered; a person reviews it (``needs_review``).

    The waterfall is offered when it meets the policy's rules (:func:`lawful`). Two
    exceptions are made for it, each marked in its metrics so that the compliance check
    honours it:

    - ``"npv_test": true`` — it fails only the yield floor but passes HAMP's own NPV test
      against ``keep``: its expected NPV under ``miss_model`` (defaults and recoveries
      included) is at least that of leaving the contract alone, and it concedes no more than
      ``Policy.settlement_discount``;
    - ``"burden_relief": true`` (with ``"contract_pti"``) — its payment-to-income is above
      the cap but below what the contract asks (overdue amounts due at once included), for
      a loan already past due or in hardship: it is forbearance on credit already granted,
      not new credit, and leaving the borrower on the heavier contract is the worse choice
      for both sides."""
    out: list[Alternative] = []
    why = f"fallback (no optimised plan was feasible: {reasons})"
    try:
        wf = waterfall_plan(case, policy.plan, "hamp", curve=curve)
        extra: dict[str, Any] = {}
        notes: list[str] = []
        relief = _burden_relief(wf, case, policy, keep)
        if relief is not None:
            extra.update(burden_relief=True, contract_pti=relief)
            notes.append(
                f"lowers the payment-to-income from {relief:.0%} under the contract to "
                f"{wf.metrics['max_payment_to_income']:.0%}"
            )
        pti_ok = relief is not None
        if lawful(wf, case, policy, pti=not pti_ok):
            pass
        elif keep is not None and lawful(wf, case, policy, yield_floor=False, pti=not pti_ok):
            tested = _Candidate("", case, wf, "relaxed", keep.arm)
            values = value_candidates([keep, tested], keep_as_of(keep), policy, miss_model)
            concession = 1 - _cents(wf.metrics["lender_npv"]) / case.exposure
            if not (
                values.expected_npv[1] >= values.expected_npv[0]
                and concession <= float(policy.plan.settlement_discount)
            ):
                raise InputError("the waterfall fails the NPV test", field="waterfall")
            extra["npv_test"] = True
            notes.append("passes the NPV test: expected to recover more than the contract")
        else:
            raise InputError("the waterfall breaks the policy's rules", field="waterfall")
        if extra:
            wf = dataclasses.replace(wf, metrics={**wf.metrics, **extra})
        text = "; ".join([why, *notes])
        out.append(_renamed(wf, "waterfall", f"{wf.explanation} — {text}"))
    except InputError:
        pass
    try:
        offer = quote(case, policy.plan, solver=solver, templates=("settlement",), curve=curve)
        out += [_renamed(a, a.name, f"{a.explanation} — {why}") for a in offer.alternatives]
    except InputError:
        pass
    return out


def _burden_relief(
    alt: Alternative, case: LoanCase, policy: NightlyPolicy, keep: _Candidate | None
) -> float | None:
    """The largest payment-to-income the contract asks of the borrower from now on (the
    overdue amounts due at once included) when ``alt``, above the cap, still asks less, for
    a loan past due or in hardship; else None."""
    if keep is None or (case.arrears <= 0 and case.hardship is None):
        return None
    pti = alt.metrics.get("max_payment_to_income")
    before = keep.alt.metrics.get("max_payment_to_income")
    if pti is None or before is None or pti <= float(policy.plan.pti_cap) + 1e-6:
        return None
    return float(before) if pti < float(before) else None


def lawful(
    alt: Alternative,
    case: LoanCase,
    policy: NightlyPolicy,
    *,
    yield_floor: bool = True,
    pti: bool = True,
) -> bool:
    """True when a baseline plan meets the policy's rules that the optimiser's templates
    meet by construction: the yield floor (unless ``yield_floor`` is false), the
    payment-to-income cap (unless ``pti`` is false) and the rate cap (the rules
    :func:`repayplan.portfolio.compliance.check_compliance` re-checks)."""
    rules = policy.plan
    npv = _cents(alt.metrics["lender_npv"])
    ratio = alt.metrics.get("max_payment_to_income")
    irr = Decimal(alt.metrics["irr_nominal_annual_percent"]) / 100
    return (
        (not yield_floor or npv >= (1 - float(rules.max_concession)) * case.exposure)
        and ratio is not None
        and (not pti or ratio <= float(rules.pti_cap) + 1e-6)
        and irr <= rules.rate_cap
    )


@dataclass
class LoanCandidates:
    """What :func:`candidates_for_loan` found for one loan: the candidates (``keep`` first),
    the quote's status and reasons, and the manual-review reason (None when something
    besides ``keep`` is offered)."""

    candidates: list[_Candidate]
    status: str
    reasons: tuple[str, ...] = ()
    review: str | None = None


def value_candidates(
    candidates: list[_Candidate], as_of: date, policy: NightlyPolicy, miss_model: MissModel
) -> Outcomes:
    """Every candidate's expected outcomes under ``miss_model``, in one batch."""
    return plan_outcomes(
        valuation_batch(candidates, as_of),
        miss_model,
        lgd=float(policy.plan.lgd),
        hurdle_rate=float(policy.plan.hurdle_rate),
    )


def candidates_for_loan(
    case: LoanCase,
    record: dict[str, Any],
    policy: NightlyPolicy,
    run_id: str,
    *,
    solver: str = "fast",
    curve: BurdenCurve = DEFAULT_BURDEN_CURVE,
    miss_model: MissModel = DEFAULT_MISS_MODEL,
) -> LoanCandidates:
    """``keep`` and the alternatives of one loan, with the quote's status and reasons, and
    the manual-review reason when nothing but ``keep`` could be offered.

    A loan in the champion arm of the policy experiment (:func:`in_champion_arm`) gets the
    champion's decision only (besides ``keep``): the waterfall when it is past due or
    reports a hardship; :func:`repayplan.portfolio.replan.choose` then takes it, outside
    the selection. Every other loan gets the optimised templates; when none is feasible, the
    lawful fallbacks (:func:`fallback_alternatives`)."""
    loan_id = case.loan_id
    contract = contract_plan(case, policy.plan, curve)
    unpaid = unpaid_installments(case.arrears, record.get("regular_payment"))
    keep = _Candidate(
        f"{run_id}:{loan_id}:{KEEP}",
        case,
        _renamed(contract, KEEP),
        "ok",
        "",
        unpaid0=unpaid,
        arrears0=case.arrears + case.penalty_fees,
        first_payment_less=case.accrued_interest + case.arrears + case.penalty_fees,
    )
    champion = in_champion_arm(loan_id, policy.champion_share)
    arm = "champion" if champion else "challenger"
    keep.arm = arm
    out = [keep]
    if champion:
        if case.arrears > 0 or case.hardship is not None:
            try:
                wf = waterfall_plan(case, policy.plan, "hamp", curve=curve)
                out.append(_Candidate(f"{run_id}:{loan_id}:waterfall", case, wf, "ok", arm))
            except InputError:
                pass
        return LoanCandidates(out, "ok", ("champion arm: the HAMP waterfall policy",))
    offer = quote(case, policy.plan, solver=solver, curve=curve)
    alternatives, status = list(offer.alternatives), offer.status
    review = None
    if not alternatives:
        reasons = "; ".join(offer.reasons)
        alternatives = fallback_alternatives(
            case, policy, curve, solver, reasons, keep=keep, miss_model=miss_model
        )
        status = "relaxed"
        if not alternatives:
            review = reasons
    for alt in alternatives:
        out.append(_Candidate(f"{run_id}:{loan_id}:{alt.name}", case, alt, status, arm))
    return LoanCandidates(out, status if alternatives else "manual_review", offer.reasons, review)


def generate_candidates(
    loans: pd.DataFrame,
    as_of: date,
    policy: NightlyPolicy,
    run_id: str,
    *,
    solver: str = "fast",
    curve: BurdenCurve = DEFAULT_BURDEN_CURVE,
    miss_model: MissModel = DEFAULT_MISS_MODEL,
) -> ChunkResult:
    """Candidate plans for every loan of ``loans`` (``loans_for_planning`` rows).

    ``plan_id`` = ``{run_id}:{loan_id}:{candidate}``. A loan whose record is not a valid case
    (stage ``input``) or whose planning raises (stage ``quote``) gets a failure row and no
    candidates; a loan with no feasible alternative, not even a fallback, gets a
    ``manual_review`` row and only its ``keep`` candidate. Every candidate of the chunk is
    then valued at once under ``miss_model`` (:func:`repayplan.risk.outcomes.plan_outcomes`):
    ``keep`` in the loan's current delinquency state, a restructure from a clean slate.
    """
    import time

    started = time.perf_counter()
    tables = _Tables()
    pending: list[_Candidate] = []
    for raw in loans.to_dict("records"):
        record = _clean(raw)
        loan_id = str(record["loan_id"])
        try:
            case = case_from_record(record, loan_id=loan_id, as_of=as_of)
        except InputError as exc:
            tables.failure(loan_id, "input", str(exc))
            continue
        try:
            found = candidates_for_loan(
                case, record, policy, run_id, solver=solver, curve=curve, miss_model=miss_model
            )
        except Exception as exc:  # one loan's failure is recorded, never fatal for the chunk
            tables.failure(loan_id, "quote", f"{type(exc).__name__}: {exc}")
            continue
        pending += found.candidates
        if found.review is not None:
            tables.failure(loan_id, MANUAL_REVIEW, found.review)
    if pending:
        outcomes = value_candidates(pending, as_of, policy, miss_model)
        for i, c in enumerate(pending):
            tables.add(c, policy, outcomes, i)
    return tables.result(len(loans), time.perf_counter() - started)
