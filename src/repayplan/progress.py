"""Progress of long steps (a replan's chunks, an import's stages): reported by the library,
shown by the CLI.

The library calls :func:`report` and knows nothing of terminals; a user surface installs a
sink with :func:`reporting` — the CLI's is a rich progress display on stderr, only when
stderr is a terminal and the output is not ``--json`` (:func:`terminal_progress`). With no
sink installed, :func:`report` does nothing.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

#: ``sink(stage, done, total)``: ``total`` None for a step without a count.
Sink = Callable[[str, int, "int | None"], None]

_lock = threading.Lock()
_sinks: list[Sink] = []


def report(stage: str, done: int = 0, total: int | None = None) -> None:
    """``done`` of ``total`` units of ``stage`` finished (a step without a count: ``total``
    None; ``done == total`` ends it). Never raises: a display must not fail a run."""
    with _lock:
        sinks = list(_sinks)
    for sink in sinks:
        try:
            sink(stage, done, total)
        except Exception:
            continue


@contextmanager
def reporting(sink: Sink) -> Iterator[Sink]:
    """Send :func:`report` calls to ``sink`` inside the block."""
    with _lock:
        _sinks.append(sink)
    try:
        yield sink
    finally:
        with _lock:
            _sinks.remove(sink)


class RichSink:
    """A rich ``Progress`` with one bar per stage (a spinner for steps without a count)."""

    def __init__(self, console: Any) -> None:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
        )

        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            console=console,
            transient=True,
        )
        self._tasks: dict[str, Any] = {}

    def __call__(self, stage: str, done: int, total: int | None) -> None:
        task = self._tasks.get(stage)
        if task is None:
            task = self._tasks[stage] = self.progress.add_task(stage, total=total)
        self.progress.update(task, completed=done, total=total)
        if total is not None and done >= total:
            self.progress.update(task, visible=False)


@contextmanager
def terminal_progress(console: Any, *, enabled: bool = True) -> Iterator[None]:
    """A rich progress display on ``console`` for the block, when ``enabled`` and the
    console is a terminal; otherwise nothing is shown."""
    if not enabled or not console.is_terminal:
        yield
        return
    sink = RichSink(console)
    with sink.progress, reporting(sink):
        yield
