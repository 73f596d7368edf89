"""One run at a time per portfolio: an operating-system lock held for the whole run.

A nightly (or ad hoc) run takes :func:`run_lock` before it touches the database and keeps it
until it has written its results. A second run started meanwhile either waits for it
(``wait_s`` > 0) or is refused at once with :class:`RunInProgress`, which names the run that
holds the lock (its ``run_id``, process id and start time). Neither touches the other's run
row or scratch folder.

The lock is ``flock`` on ``<db>.run-lock``: the kernel releases it when the holding process
ends for any reason (``kill -9`` included), so a ``runs`` row still marked ``running`` while
nobody holds the lock belongs to a process that died — that is what lets the next run mark
it ``interrupted`` and remove its scratch folder safely. The descriptor is not inherited by
the spawned worker processes (Python opens it close-on-exec; Prefect and Dask spawn).
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from repayplan.errors import InputError

LOCK_SUFFIX = ".run-lock"


class RunInProgress(InputError):
    """Another run holds the portfolio's run lock (the message names it)."""


def lock_path(db: str | Path) -> Path:
    """The run-lock file of ``db``: ``<db>.run-lock``."""
    return Path(f"{db}{LOCK_SUFFIX}")


def _holder(path: Path) -> dict:
    try:
        return json.loads(path.read_text() or "{}")
    except (OSError, ValueError):
        return {}


@contextmanager
def run_lock(db: str | Path, run_id: str, *, wait_s: float = 0.0) -> Iterator[Path]:
    """Hold the run lock of ``db`` for ``run_id`` during the ``with`` block.

    Waits up to ``wait_s`` seconds for a run in progress (0: refuse at once), then raises
    :class:`RunInProgress`. In-memory databases need no lock. Yields the lock file's path.
    """
    if str(db) == ":memory:":
        yield Path(os.devnull)
        return
    path = lock_path(db)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        deadline = time.monotonic() + max(0.0, wait_s)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except OSError as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                if time.monotonic() >= deadline:
                    raise RunInProgress(
                        _refusal(path, wait_s), field="run", record=str(db)
                    ) from None
                time.sleep(0.2)
        info = {
            "run_id": run_id,
            "pid": os.getpid(),
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        }
        os.ftruncate(fd, 0)
        os.pwrite(fd, json.dumps(info).encode(), 0)
        try:
            yield path
        finally:
            os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _refusal(path: Path, wait_s: float) -> str:
    info = _holder(path)
    who = (
        f"run {info.get('run_id', '?')} (process {info.get('pid', '?')}, started "
        f"{info.get('started_at', '?')})"
        if info
        else "another run"
    )
    waited = f" after waiting {wait_s:g} s" if wait_s > 0 else ""
    return (
        f"{who} is in progress on this portfolio; this run was not started{waited}. "
        "Let it finish, or start this one with --wait SECONDS to queue behind it"
    )


def run_in_progress(db: str | Path) -> dict | None:
    """The holder of ``db``'s run lock (``run_id``, ``pid``, ``started_at``), or None when no
    run is in progress. Takes and drops the lock when it is free."""
    path = lock_path(db)
    if not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError:
            return _holder(path) or {"run_id": None}
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)
