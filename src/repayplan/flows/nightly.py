"""The nightly re-planning flow: Prefect tasks over the steps of ``portfolio.replan``.

load arrivals → prepare (run row, delinquency, risk scores, triggers, read loans) →
candidates, one task per chunk of loans (retried on transient failure) → selection under
the portfolio limits → compliance → one transaction by the single writer (this process).

Workers only compute: they receive a chunk of loan rows and return Arrow tables; DuckDB is
closed while they run and only this process opens it again, to write. As chunks come back
their plans and schedules are spilled to Parquet in a scratch folder next to the database
(``portfolio.spill``), so this process holds only the candidates' figures and the writer
loads plans and chosen schedules straight from the files.

One run at a time: the flow holds the portfolio's run lock (``store.runlock``) throughout,
so a second run waits (``wait_s``) or is refused with a message naming the run in progress.
The results are published for analysts as they are committed (``store.publish``).
"""

from __future__ import annotations

import gc
import logging
import time
from contextlib import suppress
from datetime import date
from typing import Any

from repayplan.prefect_env import configure

configure()

from prefect import flow, task  # noqa: E402  (configure() must run before prefect is imported)
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.task_runners import ProcessPoolTaskRunner, ThreadPoolTaskRunner  # noqa: E402

from repayplan import progress  # noqa: E402
from repayplan.errors import RepayplanError  # noqa: E402
from repayplan.offers.nightly import offer_run_plans  # noqa: E402
from repayplan.portfolio import replan as steps  # noqa: E402
from repayplan.portfolio.candidates import generate_candidates  # noqa: E402
from repayplan.portfolio.limits import PortfolioLimits  # noqa: E402
from repayplan.portfolio.nightly_policy import NightlyPolicy  # noqa: E402
from repayplan.portfolio.spill import CandidateSpill, clear_stale_scratch, run_scratch  # noqa: E402
from repayplan.store.connection import connect  # noqa: E402
from repayplan.store.publish import publish  # noqa: E402
from repayplan.store.results import fail_run  # noqa: E402
from repayplan.store.runlock import run_lock  # noqa: E402

log = logging.getLogger(__name__)

#: Cron of the nightly deployment (``repayplan serve``): 02:00 every day.
NIGHTLY_CRON = "0 2 * * *"

# Inputs are DataFrames and Arrow tables: hashing them for a cache key would cost more than
# the work, and a re-run must recompute anyway.
_TASK = {"cache_policy": NO_CACHE, "persist_result": False}


@task(name="load-arrivals", retries=2, retry_delay_seconds=2, **_TASK)
def load_arrivals_task(db: str, as_of: date, inbox: str | None) -> dict[str, Any]:
    return steps.load_arrivals(db, as_of, inbox)


@task(name="prepare", retries=2, retry_delay_seconds=2, **_TASK)
def prepare_task(
    db: str, as_of: date, run_id: str, policy: NightlyPolicy | None, scope: str, params: dict
) -> steps.Prepared:
    return steps.prepare_run(
        db, as_of, run_id=run_id, policy=policy, scope=scope, parameters=params
    )


@task(name="candidates", retries=2, retry_delay_seconds=1, **_TASK)
def candidates_task(
    chunk: Any, as_of: date, policy: NightlyPolicy, run_id: str, curve: Any, miss_model: Any
):
    return generate_candidates(chunk, as_of, policy, run_id, curve=curve, miss_model=miss_model)


@task(name="select", **_TASK)
def select_task(result: CandidateSpill, prepared: steps.Prepared, limits: PortfolioLimits | None):
    return steps.choose_plans(result, prepared, limits)


@task(name="compliance", **_TASK)
def compliance_task(result: CandidateSpill, selection: Any, policy: NightlyPolicy):
    return steps.apply_compliance(result, selection, policy)


@task(name="write", retries=2, retry_delay_seconds=2, **_TASK)
def write_task(db: str, prepared, result, selection, chosen, failures):
    return steps.finish_run(
        db, prepared, result, selection, chosen, failures, after_write=offer_run_plans
    )


@task(name="report", **_TASK)
def report_task(db: str, run_id: str, out: str | None) -> str | None:
    """Write the morning report and publish it as Prefect artifacts; a report that cannot be
    written is logged and never fails the run (its results are already committed)."""
    from repayplan.flows.artifacts import publish_report

    try:
        return publish_report(db, run_id, out)["path"]
    except Exception as exc:  # the run's results stand without their report
        # Only our own messages are logged: a DuckDB message may quote raw input.
        detail = str(exc) if isinstance(exc, RepayplanError) else "run `repayplan report`"
        log.warning("morning report of run %s not written: %s (%s)", run_id, detail, type(exc))
        return None


@flow(name="nightly-replan", validate_parameters=False, log_prints=False)
def nightly_replan(
    db: str,
    as_of: date | str | None = None,
    runner: str = "threads",
    workers: int = 2,
    chunk_size: int = steps.DEFAULT_CHUNK_SIZE,
    policy: NightlyPolicy | None = None,
    limits: PortfolioLimits | None = None,
    inbox: str | None = None,
    scope: str = "triggered",
    report_dir: str | None = None,
    wait_s: float = 0.0,
) -> steps.RunSummary:
    """Re-plan the portfolio in ``db`` as of ``as_of`` (default today); see the module
    docstring. The task runner is chosen by :func:`run_nightly` (``runner`` is recorded).
    ``as_of`` may be ISO text (``YYYY-MM-DD``), as a deployment run passes it. After the
    write, the morning report goes to ``report_dir`` (default ``reports/`` beside ``db``)
    and is published as Prefect artifacts (``repayplan.flows.artifacts``).

    The whole run holds the portfolio's run lock: when another run holds it, this one waits
    up to ``wait_s`` seconds, then is refused (``RunInProgress``) without touching anything."""
    # A deployment's parameters arrive as JSON text (UI, `prefect deployment run`).
    as_of = date.fromisoformat(as_of) if isinstance(as_of, str) else (as_of or date.today())
    run_id = steps.new_run_id(as_of)
    with run_lock(db, run_id, wait_s=float(wait_s)):
        return _locked_run(
            db, as_of, run_id, runner, workers, chunk_size, policy, limits, inbox, scope,
            report_dir,
        )  # fmt: skip


def _locked_run(
    db: str,
    as_of: date,
    run_id: str,
    runner: str,
    workers: int,
    chunk_size: int,
    policy: NightlyPolicy | None,
    limits: PortfolioLimits | None,
    inbox: str | None,
    scope: str,
    report_dir: str | None,
) -> steps.RunSummary:
    """The body of :func:`nightly_replan`, run while holding the run lock."""
    timings: dict[str, float] = {}
    params = {
        "runner": runner,
        "workers": workers,
        "chunk_size": chunk_size,
        "scope": scope,
        "inbox": inbox,
        "limits_override": limits is not None,
    }
    prepared = None
    try:
        tic = time.perf_counter()
        if inbox:
            progress.report("importing arrivals")
        arrivals = load_arrivals_task(db, as_of, inbox)
        timings["arrivals"] = time.perf_counter() - tic
        progress.report("preparing: delinquency, risk scores, triggers")
        prepared = prepare_task(db, as_of, run_id, policy, scope, params)
        progress.report("preparing: delinquency, risk scores, triggers", 1, 1)
        prepared.run.counts["arrivals"] = arrivals
        # Killed runs' folders: we hold the run lock, so no other run is alive to own one.
        clear_stale_scratch(db, keep=run_id)
        with run_scratch(db, run_id) as scratch:
            tic = time.perf_counter()
            chunks = steps.split_chunks(prepared.loans, chunk_size, workers)
            prepared.loans = prepared.loans.iloc[:0]  # the chunks hold the rows now
            futures = [
                candidates_task.submit(
                    c, as_of, prepared.policy, run_id, prepared.curve, prepared.miss_model
                )
                for c in chunks
            ]
            del chunks
            result = CandidateSpill(scratch)
            label = f"candidate plans ({len(prepared.triggers):,} loans)"
            progress.report(label, 0, len(futures))
            for i in range(len(futures)):
                # In order, dropping each chunk once spilled: memory stays one chunk deep.
                result.add(futures[i].result())
                futures[i] = None
                # Prefect's process-pool futures reach the pickled result through reference
                # cycles, and Arrow-heavy code allocates too few Python objects for the
                # cyclic collector to run on its own: without this, chunks stay resident.
                gc.collect()
                progress.report(label, i + 1, len(futures))
            timings["candidates"] = time.perf_counter() - tic
            tic = time.perf_counter()
            progress.report("selection under the portfolio limits")
            selection = select_task(result, prepared, limits)
            progress.report("selection under the portfolio limits", 1, 1)
            timings["selection"] = time.perf_counter() - tic
            tic = time.perf_counter()
            chosen, failures = compliance_task(result, selection, prepared.policy)
            timings["compliance"] = time.perf_counter() - tic
            prepared.run.timings.update(timings)
            prepared.run.counts["chunks"] = len(futures)
            progress.report("writing the run")
            run = write_task(db, prepared, result, selection, chosen, failures)
            progress.report("writing the run", 1, 1)
    except BaseException as exc:
        if prepared is not None or _run_exists(db, run_id):
            con = connect(db)
            try:
                fail_run(con, run_id, f"{type(exc).__name__}: {exc}")
                with suppress(Exception):  # analysts see the failed run; best effort
                    publish(db, f"failed-{run_id}", con=con)
            finally:
                con.close()
        raise
    tic = time.perf_counter()
    report_file = report_task(db, run.run_id, report_dir)
    timings["report"] = time.perf_counter() - tic
    return steps.RunSummary(
        run_id=run.run_id,
        as_of=as_of,
        db=db,
        status=run.status,
        runner=runner,
        policy_id=run.policy_id,
        counts={
            "loans_considered": run.loans_considered,
            "loans_replanned": run.loans_replanned,
            "plans_written": run.plans_written,
            **{k: v for k, v in run.counts.items() if k not in ("risk", "arrivals")},
        },
        timings={**run.timings, "report": timings["report"]},
        selection={
            "method": run.selection_method,
            "objective": run.selection_objective,
            "bound": run.selection_bound,
            "gap": run.selection_gap,
            "feasible": selection.feasible,
            "reasons": list(selection.reasons),
        },
        message=run.message,
        report=report_file,
    )


def _run_exists(db: str, run_id: str) -> bool:
    try:
        con = connect(db)
    except Exception:
        return False
    try:
        return bool(
            con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchone()[0]
        )
    finally:
        con.close()


def task_runner(runner: str, workers: int, dask_address: str | None = None) -> Any:
    """The Prefect task runner for ``runner``: a thread pool, a process pool, or a Dask
    cluster (a LocalCluster of ``workers`` single-threaded processes, or ``dask_address``)."""
    if runner == "threads":
        return ThreadPoolTaskRunner(max_workers=workers)
    if runner == "processes":
        return ProcessPoolTaskRunner(max_workers=workers)
    from prefect_dask import DaskTaskRunner

    if dask_address:
        return DaskTaskRunner(address=dask_address)
    return DaskTaskRunner(
        cluster_kwargs={
            "n_workers": workers,
            "threads_per_worker": 1,
            "processes": True,
            "dashboard_address": None,
        }
    )


def run_nightly(
    *, runner: str, workers: int, dask_address: str | None = None, **params: Any
) -> steps.RunSummary:
    """Run :func:`nightly_replan` once with the task runner ``runner`` asks for; ``params``
    are the flow's other parameters."""
    configured = nightly_replan.with_options(task_runner=task_runner(runner, workers, dask_address))
    return configured(runner=runner, workers=workers, **params)


def serve(
    db: str,
    cron: str = NIGHTLY_CRON,
    runner: str = "processes",
    workers: int = 2,
    scope: str = "triggered",
    name: str = "nightly",
    wait_s: float = 3600.0,
) -> None:
    """Register the nightly deployment on the Prefect server at ``PREFECT_API_URL`` with the
    ``cron`` schedule and run its worker loop here until interrupted (``flow.serve``).
    Each scheduled run re-plans ``db`` as of its run date with the task runner ``runner``;
    when another run holds the portfolio it waits for it up to ``wait_s`` seconds.
    """
    import os

    from repayplan.errors import InputError

    if not os.environ.get("PREFECT_API_URL"):
        raise InputError(
            "schedules need a Prefect server: run `prefect server start` and set "
            "PREFECT_API_URL=http://127.0.0.1:4200/api",
            field="PREFECT_API_URL",
        )
    configured = nightly_replan.with_options(task_runner=task_runner(runner, workers))
    configured.serve(
        name=name,
        cron=cron,
        parameters={
            "db": db,
            "runner": runner,
            "workers": workers,
            "scope": scope,
            "wait_s": wait_s,
        },
    )
