"""Where the nightly's chunks run: plain Python in worker processes, no Prefect inside them.

The flow's Prefect tasks run on a thread pool in the flow process; the ``candidates`` task of
a chunk hands the chunk to a :class:`ChunkPool` and waits for its result. The pool's workers
run :func:`repayplan.portfolio.candidates.generate_candidates` as a plain function: they never
import Prefect, never talk to its API and so can never start a temporary Prefect server of
their own (a process-pool worker of Prefect's ``ProcessPoolTaskRunner`` runs Prefect's task
engine, which needs an API: without one it starts a server, 10–25 s each on a small machine).

- ``threads``: the chunk runs in the task's own thread (nothing to start);
- ``processes``: a ``ProcessPoolExecutor`` of up to ``workers`` spawned processes, started
  once the run knows its chunks (:meth:`ChunkPool.start`: none for an empty run); on Linux
  each worker gets ``PR_SET_PDEATHSIG`` and dies with the flow process, even after
  ``kill -9``;
- ``dask``: a ``distributed.Client`` — of a LocalCluster of ``workers`` single-threaded
  processes, or of the scheduler at ``dask_address`` (``dask scheduler`` and ``dask worker``
  started apart, on this or other machines; the workers need ``repayplan`` installed).

Prefect still shows one task run per chunk, with its retries, in the flow process.
"""

from __future__ import annotations

import signal
import sys
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from typing import Any


def _die_with_parent() -> None:  # pragma: no cover - runs in worker processes
    if sys.platform != "linux":
        return
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _warm_worker(die_with_parent: bool = True) -> None:  # pragma: no cover - in workers
    """Initialise a worker process: die with the flow process (workers this run started);
    import the chunk worker's code once, now, rather than inside the first chunk's time."""
    if die_with_parent:
        _die_with_parent()
    import repayplan.portfolio.candidates  # noqa: F401


def _ready() -> bool:  # pragma: no cover - runs in worker processes
    return True


class ChunkPool:
    """Runs chunk functions for one flow run (a context manager); see the module docstring."""

    def __init__(self, runner: str, workers: int, dask_address: str | None = None) -> None:
        self.runner = runner
        self.workers = max(1, int(workers))
        self.dask_address = dask_address
        self._pool: ProcessPoolExecutor | None = None
        self._client: Any = None
        self._cluster: Any = None
        self._count = self.workers

    def __enter__(self) -> ChunkPool:
        return self

    def start(self, chunks: int) -> None:
        """Start the workers for ``chunks`` chunks: ``min(workers, chunks)`` of them (none for
        a run with nothing to plan: an empty run pays for no worker's start-up). Called once
        the run knows its chunks; :meth:`run` starts them itself when it was not."""
        if self._pool is not None or self._client is not None or chunks < 1:
            return
        count = min(self.workers, int(chunks))
        self._count = count
        if self.runner == "processes":
            import multiprocessing

            self._pool = ProcessPoolExecutor(
                max_workers=count,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_warm_worker,
            )
            # Spawned lazily, one per waiting task: ask for all of them now.
            for _ in range(count):
                self._pool.submit(_ready)
        elif self.runner == "dask":
            from distributed import Client, LocalCluster

            if self.dask_address:
                self._client = Client(self.dask_address)
                self._client.run(_warm_worker, False)  # someone's cluster: imports only
            else:
                self._cluster = LocalCluster(
                    n_workers=count,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                )
                self._client = Client(self._cluster)
                self._client.run(_warm_worker)

    def __exit__(self, *exc: object) -> None:
        if self._pool is not None:
            # Every chunk has come back (or the run failed): stop the workers now rather
            # than wait for one still importing (an empty run ends before they are ready).
            procs = list((getattr(self._pool, "_processes", None) or {}).values())
            self._pool.shutdown(wait=False, cancel_futures=True)
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.join(timeout=10)
            self._pool = None
        if self._client is not None:
            self._client.close()
            self._client = None
        if self._cluster is not None:
            self._cluster.close()
            self._cluster = None

    def run(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """``fn(*args, **kwargs)`` on a worker; blocks until it returns (or raises)."""
        if self.runner != "threads":
            self.start(self.workers)
        if self._pool is not None:
            return self._pool.submit(fn, *args, **kwargs).result()
        if self._client is not None:
            future = self._client.submit(fn, *args, pure=False, **kwargs)
            try:
                return future.result()
            finally:
                future.release()
        return fn(*args, **kwargs)

    def worker_count(self) -> int:
        """How many workers run chunks (those of the Dask scheduler when one is given; the
        pool's size before it is started)."""
        if self._pool is not None:
            return self._count
        if self._client is not None:
            return max(1, len(self._client.scheduler_info().get("workers", {})))
        return self.workers
