"""The nightly run's body, apart from its orchestrator: the steps of ``portfolio.replan``
in order, called through a :class:`RunSteps` — Prefect tasks (``flows.nightly``) or plain
calls (:class:`PlainSteps`, :func:`run_plain`: no Prefect imported, no server started).

load arrivals → prepare (run row, delinquency, risk scores, triggers, read loans) →
candidates, one call per chunk of loans on a :class:`~repayplan.flows.chunks.ChunkPool` →
selection under the portfolio limits → compliance → one transaction by the single writer
(this process) → the morning report.

Workers only compute, as plain Python: they receive a chunk of loan rows and return Arrow
tables; DuckDB is closed while they run and only this process opens it again, to write. As
chunks come back their plans and schedules are spilled to Parquet in a scratch folder next
to the database (``portfolio.spill``), so this process holds only the candidates' figures;
at most two chunks per worker are in flight. The writer loads the plans and only the chosen
schedules straight from the files.

One run at a time: the run holds the portfolio's run lock (``store.runlock``) throughout,
so a second run waits (``wait_s``) or is refused with a message naming the run in progress.
The results are published for analysts as they are committed (``store.publish``).
"""

from __future__ import annotations

import gc
import logging
import time
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import suppress
from datetime import date
from typing import Any, Protocol

from repayplan import progress
from repayplan.errors import RepayplanError
from repayplan.flows.chunks import ChunkPool
from repayplan.offers.nightly import offer_run_plans
from repayplan.portfolio import replan as steps
from repayplan.portfolio.candidates import generate_candidates
from repayplan.portfolio.limits import PortfolioLimits
from repayplan.portfolio.nightly_policy import NightlyPolicy
from repayplan.portfolio.spill import CandidateSpill, clear_stale_scratch, run_scratch
from repayplan.store.connection import connect
from repayplan.store.publish import publish
from repayplan.store.results import fail_run
from repayplan.store.runlock import run_lock

log = logging.getLogger(__name__)


class RunSteps(Protocol):
    """How a run calls its steps (each returns what the same-named library step returns;
    ``submit_candidates`` a future of one chunk's ``ChunkResult``)."""

    def load_arrivals(self, db: str, as_of: date, inbox: str | None) -> dict[str, Any]: ...
    def prepare(self, db, as_of, run_id, policy, scope, params) -> steps.Prepared: ...
    def submit_candidates(self, pool, chunk, as_of, policy, run_id, curve, miss_model) -> Any: ...
    def select(self, result, prepared, limits) -> Any: ...
    def compliance(self, result, selection, policy) -> Any: ...
    def write(self, db, prepared, result, selection, chosen, failures) -> Any: ...
    def report(self, db: str, run_id: str, out: str | None) -> str | None: ...


def chunk_candidates(
    pool: ChunkPool, chunk: Any, as_of: date, policy: NightlyPolicy, run_id: str, curve, miss_model
):
    """One chunk's candidates, computed by ``pool`` as plain Python; the caller only waits."""
    return pool.run(
        generate_candidates, chunk, as_of, policy, run_id, curve=curve, miss_model=miss_model
    )


def write_report(db: str, run_id: str, out: str | None, *, artifacts: bool) -> str | None:
    """Write the morning report (and, with ``artifacts``, publish it as Prefect artifacts of
    the current flow run); a report that cannot be written is logged and never fails the run
    (its results are already committed)."""
    from repayplan.flows.artifacts import publish_report

    try:
        return publish_report(db, run_id, out, artifacts=artifacts)["path"]
    except Exception as exc:  # the run's results stand without their report
        # Only our own messages are logged: a DuckDB message may quote raw input.
        detail = str(exc) if isinstance(exc, RepayplanError) else "run `repayplan report`"
        log.warning("morning report of run %s not written: %s (%s)", run_id, detail, type(exc))
        return None


class PlainSteps:
    """The steps as plain calls in this process, the chunks waited on by ``workers``
    threads (no retries: a failed step fails the run, which can be run again)."""

    def __init__(self, workers: int) -> None:
        self._threads = ThreadPoolExecutor(max_workers=max(1, int(workers)))

    def close(self) -> None:
        self._threads.shutdown(wait=True, cancel_futures=True)

    def load_arrivals(self, db, as_of, inbox):
        return steps.load_arrivals(db, as_of, inbox)

    def prepare(self, db, as_of, run_id, policy, scope, params):
        return steps.prepare_run(
            db, as_of, run_id=run_id, policy=policy, scope=scope, parameters=params
        )

    def submit_candidates(self, *args: Any) -> Future:
        return self._threads.submit(chunk_candidates, *args)

    def select(self, result, prepared, limits):
        return steps.choose_plans(result, prepared, limits)

    def compliance(self, result, selection, policy):
        return steps.apply_compliance(result, selection, policy)

    def write(self, db, prepared, result, selection, chosen, failures):
        return steps.finish_run(
            db, prepared, result, selection, chosen, failures, after_write=offer_run_plans
        )

    def report(self, db, run_id, out):
        return write_report(db, run_id, out, artifacts=False)


def run_locked(
    run: RunSteps,
    db: str,
    as_of: date,
    runner: str,
    workers: int,
    chunk_size: int,
    policy: NightlyPolicy | None,
    limits: PortfolioLimits | None,
    inbox: str | None,
    scope: str,
    report_dir: str | None,
    wait_s: float,
    dask_address: str | None,
) -> steps.RunSummary:
    """A new run of ``db`` as of ``as_of`` under the run lock, its chunks on a
    :class:`ChunkPool` of ``runner``; the steps called through ``run``."""
    run_id = steps.new_run_id(as_of)
    # Inside the lock: a refused run starts no workers. They start once the run knows its
    # chunks (ChunkPool.start): none for an empty run, and on 2 cores their imports would
    # only slow the preparation they overlapped.
    with (
        run_lock(db, run_id, wait_s=float(wait_s)),
        ChunkPool(runner, workers, dask_address) as pool,
    ):
        return locked_run(
            run, db, as_of, run_id, runner, workers, chunk_size, policy, limits, inbox,
            scope, report_dir, pool,
        )  # fmt: skip


def run_plain(
    db: str,
    as_of: date,
    runner: str = "threads",
    workers: int = 2,
    chunk_size: int = steps.DEFAULT_CHUNK_SIZE,
    policy: NightlyPolicy | None = None,
    limits: PortfolioLimits | None = None,
    inbox: str | None = None,
    scope: str = "triggered",
    report_dir: str | None = None,
    wait_s: float = 0.0,
    dask_address: str | None = None,
) -> steps.RunSummary:
    """The same run as the Prefect flow ``nightly-replan``, without Prefect: no server, no
    task runs or artifacts in a UI (the run's row, timings and report are written as
    always)."""
    plain = PlainSteps(workers)
    try:
        return run_locked(
            plain, db, as_of, runner, workers, chunk_size, policy, limits, inbox, scope,
            report_dir, wait_s, dask_address,
        )  # fmt: skip
    finally:
        plain.close()


def locked_run(
    run: RunSteps,
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
    pool: ChunkPool,
) -> steps.RunSummary:
    """The body of a run, while it holds the run lock; ``run`` calls its steps."""
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
        arrivals = run.load_arrivals(db, as_of, inbox)
        timings["arrivals"] = time.perf_counter() - tic
        progress.report("preparing: delinquency, risk scores, triggers")
        prepared = run.prepare(db, as_of, run_id, policy, scope, params)
        progress.report("preparing: delinquency, risk scores, triggers", 1, 1)
        prepared.run.counts["arrivals"] = arrivals
        # Killed runs' folders: we hold the run lock, so no other run is alive to own one.
        clear_stale_scratch(db, keep=run_id)
        with run_scratch(db, run_id) as scratch:
            tic = time.perf_counter()
            chunks = steps.split_chunks(prepared.loans, chunk_size, workers)
            prepared.loans = prepared.loans.iloc[:0]  # the chunks hold the rows now
            n_chunks = len(chunks)
            pool.start(n_chunks)  # no workers for a run with nothing to plan
            # A bounded window of chunks in flight (two per worker): results wait for the
            # in-order spill at most that deep, whatever the portfolio's size.
            window = 2 * pool.worker_count()
            futures: dict[int, Any] = {}
            submitted = 0
            result = CandidateSpill(scratch)
            label = f"candidate plans ({len(prepared.triggers):,} loans)"
            progress.report(label, 0, n_chunks)
            for i in range(n_chunks):
                while submitted < n_chunks and submitted < i + window:
                    futures[submitted] = run.submit_candidates(
                        pool, chunks[submitted], as_of, prepared.policy, run_id,
                        prepared.curve, prepared.miss_model,
                    )  # fmt: skip
                    chunks[submitted] = None
                    submitted += 1
                # In order, dropping each chunk once spilled.
                result.add(futures.pop(i).result())
                # Futures reach their results through reference cycles, and Arrow-heavy
                # code allocates too few Python objects for the cyclic collector to run on
                # its own: without this, chunks stay resident.
                gc.collect()
                progress.report(label, i + 1, n_chunks)
            del chunks
            timings["candidates"] = time.perf_counter() - tic
            tic = time.perf_counter()
            progress.report("selection under the portfolio limits")
            selection = run.select(result, prepared, limits)
            progress.report("selection under the portfolio limits", 1, 1)
            timings["selection"] = time.perf_counter() - tic
            tic = time.perf_counter()
            chosen, failures = run.compliance(result, selection, prepared.policy)
            timings["compliance"] = time.perf_counter() - tic
            prepared.run.timings.update(timings)
            prepared.run.counts["chunks"] = n_chunks
            progress.report("writing the run")
            record = run.write(db, prepared, result, selection, chosen, failures)
            progress.report("writing the run", 1, 1)
    except BaseException as exc:
        if prepared is not None or run_exists(db, run_id):
            con = connect(db)
            try:
                fail_run(con, run_id, f"{type(exc).__name__}: {exc}")
                with suppress(Exception):  # analysts see the failed run; best effort
                    publish(db, f"failed-{run_id}", con=con)
            finally:
                con.close()
        raise
    tic = time.perf_counter()
    report_file = run.report(db, record.run_id, report_dir)
    timings["report"] = time.perf_counter() - tic
    return steps.RunSummary(
        run_id=record.run_id,
        as_of=as_of,
        db=db,
        status=record.status,
        runner=runner,
        policy_id=record.policy_id,
        counts={
            "loans_considered": record.loans_considered,
            "loans_replanned": record.loans_replanned,
            "plans_written": record.plans_written,
            **{k: v for k, v in record.counts.items() if k not in ("risk", "arrivals")},
        },
        timings={**record.timings, "report": timings["report"]},
        selection={
            "method": record.selection_method,
            "objective": record.selection_objective,
            "bound": record.selection_bound,
            "gap": record.selection_gap,
            "feasible": selection.feasible,
            "reasons": list(selection.reasons),
        },
        message=record.message,
        report=report_file,
    )


def run_exists(db: str, run_id: str) -> bool:
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
