"""The nightly re-planning flow: Prefect tasks over the steps of ``portfolio.replan``.

The run's body is :func:`repayplan.flows.body.locked_run` (shared with the run without
Prefect, :func:`repayplan.flows.body.run_plain`); here each of its steps is a Prefect task
(retried on transient failure), run on a thread pool in the flow process. The chunks' work
runs as plain Python on a :class:`~repayplan.flows.chunks.ChunkPool` (threads, processes or
Dask): the workers never import Prefect, so never start a Prefect server of their own.
"""

from __future__ import annotations

import logging
from datetime import date
from typing import Any

from repayplan.prefect_env import configure

configure()

from prefect import flow, task  # noqa: E402  (configure() must run before prefect is imported)
from prefect.cache_policies import NO_CACHE  # noqa: E402
from prefect.task_runners import ThreadPoolTaskRunner  # noqa: E402

from repayplan.flows import body  # noqa: E402
from repayplan.flows.chunks import ChunkPool  # noqa: E402
from repayplan.offers.nightly import offer_run_plans  # noqa: E402
from repayplan.portfolio import replan as steps  # noqa: E402
from repayplan.portfolio.limits import PortfolioLimits  # noqa: E402
from repayplan.portfolio.nightly_policy import NightlyPolicy  # noqa: E402
from repayplan.portfolio.spill import CandidateSpill  # noqa: E402

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
    pool: ChunkPool,
    chunk: Any,
    as_of: date,
    policy: NightlyPolicy,
    run_id: str,
    curve: Any,
    miss_model: Any,
):
    """One chunk's candidates, computed by ``pool`` as plain Python (``flows.chunks``): this
    task runs in the flow process and only waits."""
    return body.chunk_candidates(pool, chunk, as_of, policy, run_id, curve, miss_model)


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
    return body.write_report(db, run_id, out, artifacts=True)


class PrefectSteps:
    """The run's steps as this module's Prefect tasks (inside the flow run)."""

    def load_arrivals(self, db, as_of, inbox):
        return load_arrivals_task(db, as_of, inbox)

    def prepare(self, db, as_of, run_id, policy, scope, params):
        return prepare_task(db, as_of, run_id, policy, scope, params)

    def submit_candidates(self, *args: Any) -> Any:
        return candidates_task.submit(*args)

    def select(self, result, prepared, limits):
        return select_task(result, prepared, limits)

    def compliance(self, result, selection, policy):
        return compliance_task(result, selection, policy)

    def write(self, db, prepared, result, selection, chosen, failures):
        return write_task(db, prepared, result, selection, chosen, failures)

    def report(self, db, run_id, out):
        return report_task(db, run_id, out)


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
    dask_address: str | None = None,
) -> steps.RunSummary:
    """Re-plan the portfolio in ``db`` as of ``as_of`` (default today); see
    :mod:`repayplan.flows.body`. ``runner`` says where the chunks run
    (:class:`~repayplan.flows.chunks.ChunkPool`: ``threads``, ``processes``, or ``dask`` — a
    LocalCluster, or the scheduler at ``dask_address``); the Prefect tasks themselves run on
    a thread pool in this process. ``as_of`` may be ISO text (``YYYY-MM-DD``), as a
    deployment run passes it. After the write, the morning report goes to ``report_dir``
    (default ``reports/`` beside ``db``) and is published as Prefect artifacts
    (``repayplan.flows.artifacts``).

    The whole run holds the portfolio's run lock: when another run holds it, this one waits
    up to ``wait_s`` seconds, then is refused (``RunInProgress``) without touching anything."""
    # A deployment's parameters arrive as JSON text (UI, `prefect deployment run`).
    as_of = date.fromisoformat(as_of) if isinstance(as_of, str) else (as_of or date.today())
    return body.run_locked(
        PrefectSteps(), db, as_of, runner, workers, chunk_size, policy, limits, inbox, scope,
        report_dir, wait_s, dask_address,
    )  # fmt: skip


def task_runner(runner: str, workers: int, dask_address: str | None = None) -> Any:
    """The Prefect task runner of the flow: a thread pool of ``workers`` threads in this
    process, whatever ``runner`` is. The chunks' work runs where ``runner`` says, in a
    :class:`~repayplan.flows.chunks.ChunkPool` the flow starts, as plain Python: Prefect's
    process-pool and Dask task runners run Prefect's task engine inside each worker, which
    needs a Prefect API there (``runner`` and ``dask_address`` are kept for callers)."""
    del runner, dask_address
    return ThreadPoolTaskRunner(max_workers=max(1, int(workers)))


def run_nightly(
    *, runner: str, workers: int, dask_address: str | None = None, **params: Any
) -> steps.RunSummary:
    """Run :func:`nightly_replan` once with the task runner ``runner`` asks for; ``params``
    are the flow's other parameters."""
    configured = nightly_replan.with_options(task_runner=task_runner(runner, workers, dask_address))
    return configured(runner=runner, workers=workers, dask_address=dask_address, **params)


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
