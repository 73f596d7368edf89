"""Run the nightly re-planning flow now, in this process: :func:`replan`.

The command ``repayplan replan``, ``repayplan demo`` and scripts call this; the steps it
runs are library functions in :mod:`repayplan.portfolio.replan`, which never import the
flow. Prefect is imported only when a run starts.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

from repayplan.portfolio.limits import PortfolioLimits
from repayplan.portfolio.nightly_policy import NightlyPolicy
from repayplan.portfolio.replan import DEFAULT_CHUNK_SIZE, RunSummary, check_options
from repayplan.prefect_env import api_server

__all__ = ["replan"]


def replan(
    db: str | Path,
    as_of: date,
    runner: str = "threads",
    workers: int = 2,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    policy: NightlyPolicy | None = None,
    limits: PortfolioLimits | None = None,
    inbox: str | Path | None = None,
    *,
    scope: str = "triggered",
    dask_address: str | None = None,
    report_dir: str | Path | None = None,
    wait_s: float = 0.0,
    prefect: bool = True,
) -> RunSummary:
    """Re-plan the portfolio in ``db`` as of ``as_of`` by running the Prefect flow locally.

    ``runner``: ``threads`` (a thread pool), ``processes`` (a process pool) or ``dask`` (a
    Dask cluster through prefect-dask: a LocalCluster of ``workers`` processes, or the
    scheduler at ``dask_address``). ``chunk_size``: loans per task. ``policy``: overrides the
    active ``policy_versions`` row; ``limits`` overrides the portfolio limits derived from
    it (a stress scenario). ``inbox``: a folder of arrivals to import first. ``scope``:
    ``triggered`` (loans with a trigger) or ``all`` (every open loan). ``report_dir``:
    where the morning report is written (default ``reports/`` beside ``db``). ``wait_s``:
    when another run holds the portfolio, wait this many seconds for it, then refuse
    (:class:`repayplan.store.runlock.RunInProgress`; 0 refuses at once). ``prefect``:
    run it as the Prefect flow ``nightly-replan`` (the default: task runs, retries and
    artifacts in Prefect's UI; without ``PREFECT_API_URL`` a temporary Prefect server is
    started for the run, 10–40 s on a small machine), or, when false, the same steps as
    plain calls (:func:`repayplan.flows.body.run_plain`: no Prefect imported, no server, no
    retries — the run's row, timings and morning report are written as always).
    """
    check_options(
        db,
        as_of,
        runner=runner,
        workers=workers,
        chunk_size=chunk_size,
        inbox=inbox,
        scope=scope,
        dask_address=dask_address,
    )
    params = dict(
        db=str(db),
        as_of=as_of,
        runner=runner,
        workers=workers,
        chunk_size=chunk_size,
        policy=policy,
        limits=limits,
        inbox=None if inbox is None else str(inbox),
        scope=scope,
        dask_address=dask_address,
        report_dir=None if report_dir is None else str(report_dir),
        wait_s=wait_s,
    )
    if not prefect:
        from repayplan.flows.body import run_plain

        return run_plain(**params)
    # Importing the flow imports Prefect (seconds on a small machine), which commands that
    # never re-plan should not pay for: it is done here, while the temporary server starts.
    with api_server(meanwhile=_import_flow):  # the server dies with this process
        from repayplan.flows.nightly import run_nightly

        return run_nightly(**params)


def _import_flow() -> None:
    import repayplan.flows.nightly  # noqa: F401
