"""The nightly re-planning steps as library functions. The Prefect flow
``repayplan.flows.nightly.nightly_replan`` runs them (``repayplan.flows.run.replan`` runs it
now, locally); this module knows nothing of Prefect.

Steps (each callable and testable without Prefect):

1. :func:`load_arrivals` — import the files waiting in an inbox folder (validated; bad rows
   go to ``rejected_rows``; re-importing the same files changes nothing);
2. :func:`prepare_run` — record the run as running, roll delinquency forward to ``as_of``,
   score risk with the active model (skipped, with the reason, when none is fitted), pick
   the loans to re-plan and read them; the connection is closed afterwards so that worker
   processes never meet an open DuckDB file;
3. :func:`split_chunks` + :func:`repayplan.portfolio.candidates.generate_candidates` — the
   parallel stage, one task per chunk of loans;
4. :func:`choose_plans` — one plan per loan under the portfolio limits;
5. :func:`apply_compliance` — every chosen plan re-checked; a failing plan falls back to the
   contract (``keep``) and is recorded;
6. :func:`finish_run` — everything written in one transaction by the single writer, the
   event inbox applied, and the result published for analysts (``store.publish``).

The flow holds the portfolio's run lock (``store.runlock``) from start to end: a second run
waits or is refused, so it never marks this one ``interrupted`` or removes its scratch.
"""

from __future__ import annotations

import json
import logging
import math
import time
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from repayplan.errors import InputError
from repayplan.portfolio.candidates import (
    FAILURE_SCHEMA,
    INSTALLMENT_SCHEMA,
    MANUAL_REVIEW,
    PLAN_SCHEMA,
)
from repayplan.portfolio.compliance import check_compliance
from repayplan.portfolio.limits import PortfolioLimits
from repayplan.portfolio.nightly_policy import NightlyPolicy, active_policy
from repayplan.portfolio.selection import KEEP, Selection, select_plans
from repayplan.portfolio.spill import CandidateSpill
from repayplan.portfolio.triggers import SCOPES, select_for_replanning, update_delinquency
from repayplan.risk.burden import DEFAULT_BURDEN_CURVE, BurdenCurve
from repayplan.risk.miss_model import DEFAULT_MISS_MODEL, MissModel, active_miss_model
from repayplan.store.connection import connect
from repayplan.store.events import apply_events
from repayplan.store.publish import publish
from repayplan.store.queries import loans_for_planning
from repayplan.store.results import RunRecord, RunTables, start_run, write_run

log = logging.getLogger(__name__)

RUNNERS = ("threads", "processes", "dask")
DEFAULT_CHUNK_SIZE = 500
INBOX_KINDS = ("borrowers", "loans", "payments")


@dataclass
class Prepared:
    """What the flow process read before the parallel stage."""

    run: RunRecord
    policy: NightlyPolicy
    triggers: pd.DataFrame  # select_for_replanning's rows (every open loan)
    loans: pd.DataFrame  # loans_for_planning rows of the eligible loans
    curve: BurdenCurve = DEFAULT_BURDEN_CURVE
    miss_model: MissModel = DEFAULT_MISS_MODEL


@dataclass
class RunSummary:
    """The outcome of one run (what ``repayplan replan`` prints): counts, seconds per stage,
    and the selection's objective / bound (currency units) and gap (fraction)."""

    run_id: str
    as_of: date
    db: str
    status: str
    runner: str
    policy_id: str | None
    counts: dict[str, Any] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    selection: dict[str, Any] = field(default_factory=dict)
    message: str | None = None
    report: str | None = None  # the morning report's HTML file, when it was written

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``repayplan replan --json``)."""
        return {
            "run_id": self.run_id,
            "as_of": self.as_of.isoformat(),
            "db": self.db,
            "status": self.status,
            "runner": self.runner,
            "policy_id": self.policy_id,
            "counts": self.counts,
            "timings": {k: round(v, 3) for k, v in self.timings.items()},
            "selection": self.selection,
            "message": self.message,
            "report": self.report,
        }


def new_run_id(as_of: date) -> str:
    """``YYYYMMDD-`` + 8 random hex digits: sortable by date, unique per attempt."""
    return f"{as_of:%Y%m%d}-{uuid.uuid4().hex[:8]}"


def load_arrivals(db: str | Path, as_of: date, inbox: str | Path | None) -> dict[str, Any]:
    """Import ``borrowers``, ``loans`` and ``payments`` files (``.csv`` or ``.parquet``) found
    in ``inbox`` through the validating importer; ``{}`` when there is no inbox or it is
    empty. Returns the import summary (counts, rejections)."""
    if inbox is None:
        return {}
    folder = Path(inbox)
    if not folder.is_dir():
        raise InputError("no such folder", field="inbox", record=str(folder))
    files: dict[str, Path] = {}
    for kind in INBOX_KINDS:
        for suffix in (".csv", ".parquet"):
            if (folder / f"{kind}{suffix}").is_file():
                files[kind] = folder / f"{kind}{suffix}"
    if not files:
        return {}
    from repayplan.store.importer import import_files

    return import_files(db, **files, as_of=as_of).to_dict()


def score_risk(db: str | Path, as_of: date) -> dict[str, Any]:
    """Score every open loan with the active risk model (``repayplan.risk.pd_model.score``).
    Without a fitted model (or before the risk layer exists) scoring is skipped: the plans
    then use ``risk.metrics.DEFAULT_BASE_MONTHLY_HAZARD``; the reason is returned and
    logged."""
    try:
        from repayplan.risk import pd_model
    except ImportError as exc:  # the risk layer is optional for the flow
        reason = f"risk scoring skipped: {exc}"
    else:
        try:
            summary = pd_model.score(db, as_of=as_of)
            return {"scored": summary.loans, "model_id": summary.model_id}
        except InputError as exc:
            reason = f"risk scoring skipped: {exc}"
    log.warning(reason)
    return {"scored": 0, "skipped": reason}


def _burden_curve(con: Any) -> BurdenCurve:
    try:
        from repayplan.risk.burden_fit import active_burden_curve
    except ImportError:
        return DEFAULT_BURDEN_CURVE
    return active_burden_curve(con)


def prepare_run(
    db: str | Path,
    as_of: date,
    *,
    run_id: str,
    policy: NightlyPolicy | None = None,
    scope: str = "triggered",
    parameters: dict[str, Any] | None = None,
) -> Prepared:
    """Steps before the parallel stage; see the module docstring. The run row is written
    (status ``running``) so a killed run is visible; no other result is written here."""
    if scope not in SCOPES:
        raise InputError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}", field="scope")
    timings: dict[str, float] = {}
    tic = time.perf_counter()
    con = connect(db)
    try:
        policy = policy or active_policy(con)
        run = RunRecord(
            run_id=run_id,
            as_of=as_of,
            parameters=dict(parameters or {}),
            policy_id=policy.policy_id,
        )
        run.parameters["policy"] = policy.to_dict()
        run.counts["interrupted_runs_marked"] = start_run(con, run)
        run.counts["events_applied"] = _apply_events(db, con, run)
        run.counts["loans_rolled_forward"] = update_delinquency(con, as_of)
    finally:
        con.close()
    timings["delinquency"] = time.perf_counter() - tic
    tic = time.perf_counter()
    run.counts["risk"] = score_risk(db, as_of)
    timings["risk"] = time.perf_counter() - tic
    tic = time.perf_counter()
    con = connect(db, read_only=False)
    try:
        triggers = select_for_replanning(con, as_of, policy, scope)
        eligible = triggers.loc[triggers["eligible"], "loan_id"].tolist()
        loans = loans_for_planning(con, eligible)
        curve = _burden_curve(con)
        miss_model = active_miss_model(con)
    finally:
        con.close()
    timings["select"] = time.perf_counter() - tic
    run.timings.update(timings)
    run.loans_considered = len(triggers)
    run.counts["triggered"] = int((triggers["reasons"].map(len) > 0).sum())
    run.counts["eligible"] = len(eligible)
    reasons = triggers["reasons"].explode().dropna().value_counts()
    run.counts["reasons"] = {str(k): int(v) for k, v in reasons.items()}
    return Prepared(
        run=run, policy=policy, triggers=triggers, loans=loans, curve=curve, miss_model=miss_model
    )


def split_chunks(
    loans: pd.DataFrame, chunk_size: int = DEFAULT_CHUNK_SIZE, workers: int = 1
) -> list[pd.DataFrame]:
    """``loans`` in consecutive chunks of at most ``chunk_size`` rows (the unit of one task);
    smaller when that gives every one of ``workers`` something to do."""
    if chunk_size < 1:
        raise InputError("must be at least 1", field="chunk_size")
    chunk_size = max(1, min(chunk_size, math.ceil(len(loans) / max(workers, 1))))
    return [loans.iloc[i : i + chunk_size] for i in range(0, len(loans), chunk_size)]


def portfolio_limits(
    policy: NightlyPolicy, candidates: pd.DataFrame, triggers: pd.DataFrame
) -> PortfolioLimits:
    """The policy's limits stated over the candidate set.

    Collection floors: the policy's amounts, or ``collection_floor_share`` × what the
    ``keep`` plans of the re-planned loans are expected to collect in each month. Segment
    caps are portfolio-wide: ``⌊cap × open loans of the segment⌋`` restructured plans, less
    the loans already restructured that are not being re-planned, expressed as a share of
    the segment's loans in the candidates (what ``select_plans`` expects).
    """
    floors = policy.collection_floors
    keep = candidates[candidates["candidate"] == KEEP]
    if floors is None and policy.collection_floor_share is not None:
        share = policy.collection_floor_share
        floors = tuple(share * float(keep[f"collections_{m}"].sum()) for m in (1, 2, 3))
    caps: dict[str, float] = {}
    open_per_segment = triggers.groupby("segment")["loan_id"].count()
    in_candidates = keep.groupby("segment")["loan_id"].count()
    planned = set(keep["loan_id"])
    outside = (
        triggers[(triggers["status"] == "restructured") & ~triggers["loan_id"].isin(planned)]
        .groupby("segment")["loan_id"]
        .count()
    )
    for segment, cap in policy.segment_caps.items():
        n = int(in_candidates.get(segment, 0))
        if n == 0:
            continue
        allowed = max(
            0,
            math.floor(cap * int(open_per_segment.get(segment, 0)) + 1e-9)
            - int(outside.get(segment, 0)),
        )
        # +0.5 so that select_plans' ⌊share × n⌋ gives back exactly ``allowed``.
        caps[segment] = min(1.0, (allowed + 0.5) / n)
    return PortfolioLimits(
        concession_budget=policy.concession_budget,
        collection_floors=floors,
        segment_caps=caps,
        review_capacity=policy.review_capacity,
    )


def choose_plans(
    result: CandidateSpill,
    prepared: Prepared,
    limits: PortfolioLimits | None = None,
    time_limit: float = 60.0,
) -> Selection:
    """One plan per loan under the portfolio limits (:func:`choose`); ``limits`` overrides
    the policy's."""
    candidates = result.candidates.to_pandas()
    if limits is None:
        limits = portfolio_limits(prepared.policy, candidates, prepared.triggers)
    return choose(candidates, limits, prepared.policy, time_limit)


def choose(
    candidates: pd.DataFrame,
    limits: PortfolioLimits,
    policy: NightlyPolicy,
    time_limit: float = 60.0,
) -> Selection:
    """The challenger arm's plans chosen by :func:`select_plans` under ``limits`` (exact
    CP-SAT up to the policy's ``exact_max_loans`` loans, Lagrangian beyond); each loan of the
    champion arm takes the champion's decision — its restructure when it has one, else
    ``keep`` — outside the selection, as the experiment requires."""
    champion = candidates["arm"] == "champion" if "arm" in candidates else None
    if champion is None or not champion.any():
        return select_plans(
            candidates,
            limits,
            method="auto",
            exact_max_loans=policy.exact_max_loans,
            time_limit=time_limit,
        )
    fixed = (
        candidates[champion]
        .sort_values("restructure", ascending=False, kind="stable")
        .drop_duplicates("loan_id")
    )
    rest = candidates[~champion]
    if rest.empty:
        selection = Selection(rest, 0.0, 0.0, 0.0, "none", True)
    else:
        selection = select_plans(
            rest,
            limits,
            method="auto",
            exact_max_loans=policy.exact_max_loans,
            time_limit=time_limit,
        )
    selection.chosen = pd.concat([selection.chosen, fixed], ignore_index=True)
    selection.stats["champion_loans"] = len(fixed)
    return selection


def apply_compliance(
    result: CandidateSpill, selection: Selection, policy: NightlyPolicy
) -> tuple[list[str], pa.Table]:
    """Re-check the chosen plans; a failing restructure is replaced by that loan's ``keep``
    plan. Returns the final chosen plan ids and the failure rows (``FAILURE_SCHEMA``)."""
    chosen = selection.chosen["plan_id"].tolist()
    failed = check_compliance(result.plans(chosen), result.installments(chosen), policy.plan)
    bad = set(failed["plan_id"].to_pylist())
    final = [
        pid if pid not in bad or pid.endswith(f":{KEEP}") else pid.rsplit(":", 1)[0] + f":{KEEP}"
        for pid in chosen
    ]
    failures = failed.select(["loan_id", "stage", "reason"]).cast(FAILURE_SCHEMA)
    return final, failures


def finish_run(
    db: str | Path,
    prepared: Prepared,
    result: CandidateSpill,
    selection: Selection,
    chosen: list[str],
    compliance_failures: pa.Table,
    after_write: Any = None,
) -> RunRecord:
    """Write the run in one transaction (the single writer) and return its final record.

    ``after_write(con, run)``: called with the writer's connection once the results are
    committed and before the inbox is applied and the result published (the flow passes
    the offer lifecycle's: offers for the chosen plans, expiry); it returns counts to keep
    in the run's ``counts`` and a failure is kept there too (``after_write_error``), never
    failing the committed run.

    Status ``succeeded``, or ``partial`` when some loan could not be planned (bad input, an
    error while planning, or a chosen plan failing compliance). A loan with no feasible
    alternative keeps its contract and goes to manual review (stage ``manual_review`` in
    ``plan_failures``): an answer, not a failure, so it does not make the run partial."""
    run = prepared.run
    failures = pa.concat_tables([result.failures, compliance_failures])
    triggers = prepared.triggers[prepared.triggers["reasons"].map(len) > 0]
    triggers_table = pa.table(
        {
            "loan_id": pa.array(triggers["loan_id"].tolist(), pa.string()),
            "reasons": pa.array([list(r) for r in triggers["reasons"]], pa.list_(pa.string())),
            "eligible": pa.array(triggers["eligible"].tolist(), pa.bool_()),
            "ineligible_reason": pa.array(
                [None if pd.isna(v) else str(v) for v in triggers["ineligible_reason"]],
                pa.string(),
            ),
        }
    )
    restructures = int(np.sum([not pid.endswith(f":{KEEP}") for pid in chosen]) if chosen else 0)
    review = pc.equal(failures["stage"], MANUAL_REVIEW)
    failed_loans = len(set(failures.filter(pc.invert(review))["loan_id"].to_pylist()))
    review_loans = len(set(failures.filter(review)["loan_id"].to_pylist()))
    run.loans_replanned = len(chosen)
    run.counts.update(
        {
            "candidates": result.candidates.num_rows,
            "loans_with_candidates": len(chosen),
            "restructures_chosen": restructures,
            "failures": failed_loans,
            "manual_review": review_loans,
            "compliance_failures": compliance_failures.num_rows,
        }
    )
    run.selection_method = selection.method
    run.selection_objective = selection.objective
    run.selection_bound = selection.bound
    run.selection_gap = selection.gap
    run.solver_stats = {
        "selection": {
            **selection.stats,
            "feasible": selection.feasible,
            "reasons": list(selection.reasons),
        },
        "candidate_seconds": result.seconds,
    }
    run.status = "partial" if failed_loans else "succeeded"
    notes = []
    if failed_loans:
        notes.append(f"{failed_loans} loans could not be planned (see plan_failures)")
    if review_loans:
        notes.append(
            f"{review_loans} loans had no feasible alternative, kept their contract and "
            "await manual review (plan_failures, stage manual_review)"
        )
    run.message = "; ".join(notes) or None
    run.finished_at = datetime.now()
    con = connect(db)
    try:
        tic = time.perf_counter()
        tables = RunTables(
            plans=result.plan_files or PLAN_SCHEMA.empty_table(),
            # Only the chosen plans' installments: the unchosen schedules never leave the
            # scratch folder (the writer would drop them anyway).
            installments=_chosen_installments(result, chosen),
            chosen=chosen,
            triggers=triggers_table,
            failures=failures,
        )
        write_run(con, run, tables)
        run.timings["write"] = time.perf_counter() - tic
        if after_write is not None:
            try:
                run.counts.update(after_write(con, run) or {})
            except Exception as exc:
                log.warning("after the write: %s", type(exc).__name__)
                run.counts["after_write_error"] = f"{type(exc).__name__}: {exc}"[:500]
        # Events the service recorded while the run was planning.
        run.counts["events_applied"] = run.counts.get("events_applied", 0) + _apply_events(
            db, con, run
        )
        run.timings["publish"] = publish_after_run(db, con, run)
        con.execute(
            "UPDATE runs SET timings = ?::JSON, counts = ?::JSON WHERE run_id = ?",
            [json.dumps(run.timings), json.dumps(run.counts, default=str), run.run_id],
        )
    finally:
        con.close()
    return run


def _chosen_installments(result: CandidateSpill, chosen: list[str]) -> Any:
    path = result.write_chosen_installments(chosen)
    return [path] if path is not None else INSTALLMENT_SCHEMA.empty_table()


def _apply_events(db: str | Path, con: Any, run: RunRecord) -> int:
    """Apply the event inbox's new events in the run's connection (``store.events``). A
    failing handler never fails the run: the events stay in the inbox for the next apply,
    and the reason is kept in the run's counts (``events_error``)."""
    if str(db) == ":memory:":
        return 0
    try:
        return apply_events(db, con=con, applied_by=run.run_id, publish=False).applied
    except Exception as exc:
        log.warning("events not applied: %s", type(exc).__name__)
        run.counts["events_error"] = f"{type(exc).__name__}: {exc}"[:500]
        return 0


def publish_after_run(db: str | Path, con: Any, run: RunRecord) -> float:
    """Publish the committed results for analysts (``store.publish``) and return the
    seconds it took. The results are committed already, so a failed publication does not
    fail the run: it is logged and kept in the run's counts (``publish_error``); the next
    publication includes these results."""
    if str(db) == ":memory:":
        return 0.0
    tic = time.perf_counter()
    try:
        publish(db, f"{run.kind}-{run.run_id}", con=con)
    except Exception as exc:
        log.warning("results not published: %s", type(exc).__name__)
        run.counts["publish_error"] = f"{type(exc).__name__}: {exc}"[:500]
    return time.perf_counter() - tic


#: Furthest a run may roll the book forward from the loans' own as_of, days.
MAX_ROLL_FORWARD_DAYS = 5 * 366


def check_options(
    db: str | Path,
    as_of: date,
    *,
    runner: str = "threads",
    workers: int = 2,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    inbox: str | Path | None = None,
    scope: str = "triggered",
    dask_address: str | None = None,
) -> None:
    """Refuse a run that cannot succeed before anything starts (no Prefect server, no
    ``runs`` row): an unknown runner or scope, fewer than 1 worker or loan per chunk, a
    missing database or inbox folder, and an ``as_of`` before the book's (planning from the
    past on today's balances) or more than :data:`MAX_ROLL_FORWARD_DAYS` after it."""
    if runner not in RUNNERS:
        raise InputError(
            f"unknown runner {runner!r}; use one of {', '.join(RUNNERS)}", field="runner"
        )
    if workers < 1:
        raise InputError(f"must be at least 1, got {workers}", field="workers")
    if workers > 256:
        raise InputError(f"must be at most 256, got {workers}", field="workers")
    if chunk_size < 1:
        raise InputError(f"must be at least 1, got {chunk_size}", field="chunk_size")
    if scope not in SCOPES:
        raise InputError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}", field="scope")
    if dask_address and runner != "dask":
        raise InputError("--dask-address needs --runner dask", field="dask_address")
    if inbox is not None and not Path(inbox).is_dir():
        raise InputError("no such folder", field="inbox", record=str(inbox))
    if not Path(db).is_file():
        raise InputError("no such database file", field="db", record=str(db))
    con = connect(db, read_only=True)
    try:
        book = con.execute("SELECT max(as_of) FROM loans").fetchone()[0]
    finally:
        con.close()
    if book is None:
        return
    if as_of < book:
        raise InputError(
            f"{as_of} is before the book's as-of date {book}: a run cannot plan from the "
            "past on today's balances",
            field="as_of",
        )
    if (as_of - book).days > MAX_ROLL_FORWARD_DAYS:
        raise InputError(
            f"{as_of} is more than {MAX_ROLL_FORWARD_DAYS} days after the book's as-of date "
            f"{book}; import current balances first",
            field="as_of",
        )
