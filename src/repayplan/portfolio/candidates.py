"""Candidate plans for a chunk of loans: the nightly flow's worker (pure — no DuckDB).

A chunk is a DataFrame of ``store.queries.loans_for_planning`` rows (hundreds to thousands of
loans). For each loan the worker builds the contract as it stands (the ``keep`` candidate,
:func:`repayplan.plans.baselines.contract_plan`) and the optimised alternatives
(:func:`repayplan.plans.quote.quote`), and returns four Arrow tables:

- ``candidates`` — one row per (loan, plan), the input of
  :func:`repayplan.portfolio.selection.select_plans`, money in currency units:

  * ``value`` = ``lender_npv − expected_loss``: the NPV of the scheduled payments at the
    hurdle rate minus the LGD-weighted expected loss (both exact, from
    :func:`repayplan.risk.metrics.plan_metrics` on the cent-exact schedule);
  * ``concession`` = ``max(0, exposure − lender_npv)`` for a restructure, 0 for ``keep``
    (the contract gives nothing away): what the lender forgoes at the hurdle rate;
  * ``collections_1..3`` = expected cash in months 1, 2, 3 after ``as_of``: each installment
    due in that month × the probability the borrower has not defaulted by then;
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
from repayplan.plans.baselines import contract_plan
from repayplan.plans.case import LoanCase
from repayplan.plans.quote import case_from_record, quote
from repayplan.portfolio.nightly_policy import NightlyPolicy
from repayplan.portfolio.selection import KEEP
from repayplan.risk.burden import DEFAULT_BURDEN_CURVE, BurdenCurve

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


def month_windows(as_of: date) -> np.ndarray:
    """The ends of months 1, 2, 3 after ``as_of`` as datetime64[D] (month m is
    ``(end[m−1], end[m]]`` with end[0] = as_of)."""
    return np.array([as_of, *(add_months(as_of, m) for m in (1, 2, 3))], dtype="datetime64[D]")


def expected_collections(alt: Alternative, windows: np.ndarray) -> np.ndarray:
    """Expected cash (cents, float) in each of the three months after ``windows[0]``: each
    installment due in the month × the survival probability through its period."""
    dates = np.array([i.due_date for i in alt.schedule.installments], dtype="datetime64[D]")
    pay = np.array([i.payment for i in alt.schedule.installments], dtype=float)
    survival = np.asarray(alt.metrics["survival"], dtype=float)
    month = np.searchsorted(windows, dates, side="left")  # 1..3 inside the window
    out = np.zeros(3)
    inside = (month >= 1) & (month <= 3)
    np.add.at(out, month[inside] - 1, pay[inside] * survival[inside])
    return out


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
        plan_id: str,
        case: LoanCase,
        alt: Alternative,
        status: str,
        policy: NightlyPolicy,
        windows: np.ndarray,
    ) -> None:
        m = alt.metrics
        keep = alt.name == KEEP
        npv = _cents(m["lender_npv"])
        loss = _cents(m["expected_loss"])
        concession = 0 if keep else max(0, case.exposure - npv)
        needs_review = not keep and (
            status == "relaxed"
            or alt.forborne_principal > 0
            or concession / 100 > policy.review_concession_threshold
        )
        collected = expected_collections(alt, windows) / 100
        row = (
            plan_id,
            case.loan_id,
            alt.name,
            case.segment,
            (npv - loss) / 100,
            concession / 100,
            *collected.tolist(),
            not keep,
            needs_review,
        )
        for key, value in zip(CANDIDATE_SCHEMA.names, row, strict=True):
            self.cand[key].append(value)
        sched = alt.schedule
        plan_row = (
            plan_id,
            case.loan_id,
            alt.name,
            status,
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
            loss,
            m.get("max_payment_to_income"),
            _cents(m.get("affordability_shortfall", "0")),
            concession,
            alt.forborne_principal,
            json.dumps({k: v for k, v in m.items() if k != "survival"}),
            alt.explanation,
            str(m.get("solver", "none")),
        )
        for key, value in zip(PLAN_SCHEMA.names, plan_row, strict=True):
            self.plan[key].append(value)
        n = len(sched.installments)
        self.inst["plan_id"].extend([plan_id] * n)
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


def generate_candidates(
    loans: pd.DataFrame,
    as_of: date,
    policy: NightlyPolicy,
    run_id: str,
    *,
    solver: str = "fast",
    curve: BurdenCurve = DEFAULT_BURDEN_CURVE,
) -> ChunkResult:
    """Candidate plans for every loan of ``loans`` (``loans_for_planning`` rows).

    ``plan_id`` = ``{run_id}:{loan_id}:{candidate}``. A loan whose record is not a valid case
    (stage ``input``) or whose planning raises (stage ``quote``) gets a failure row and no
    candidates; a loan with no feasible alternative gets a ``manual_review`` row and only
    its ``keep`` candidate.
    """
    import time

    started = time.perf_counter()
    tables = _Tables()
    windows = month_windows(as_of)
    for raw in loans.to_dict("records"):
        record = _clean(raw)
        loan_id = str(record["loan_id"])
        try:
            case = case_from_record(record, loan_id=loan_id, as_of=as_of)
        except InputError as exc:
            tables.failure(loan_id, "input", str(exc))
            continue
        try:
            keep = contract_plan(case, policy.plan, curve)
            offer = quote(case, policy.plan, solver=solver, curve=curve)
        except Exception as exc:  # one loan's failure is recorded, never fatal for the chunk
            tables.failure(loan_id, "quote", f"{type(exc).__name__}: {exc}")
            continue
        keep = Alternative(
            name=KEEP,
            schedule=keep.schedule,
            annual_rate=keep.annual_rate,
            metrics=keep.metrics,
            explanation=keep.explanation,
            frequency=keep.frequency,
        )
        tables.add(f"{run_id}:{loan_id}:{KEEP}", case, keep, "ok", policy, windows)
        for alt in offer.alternatives:
            tables.add(f"{run_id}:{loan_id}:{alt.name}", case, alt, offer.status, policy, windows)
        if not offer.alternatives:
            tables.failure(loan_id, MANUAL_REVIEW, "; ".join(offer.reasons))
    return tables.result(len(loans), time.perf_counter() - started)
