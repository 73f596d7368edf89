"""Prefect set up for offline, local use — call :func:`configure` before ``prefect`` is imported.

Prefect reads its settings from the environment when it is first imported, so this module
only touches ``os.environ`` and must not import prefect itself. What it sets, unless the user
already set it:

- ``PREFECT_HOME``: ``.prefect`` under the current directory, so runs, the temporary local
  server's database and logs stay inside the project instead of ``~/.prefect``;
- ``PREFECT_SERVER_ANALYTICS_ENABLED=false`` and ``DO_NOT_TRACK=1``: no network here;
- ``PREFECT_LOGGING_LEVEL=WARNING``: a quiet log (run summaries are printed by repayplan);
- ``PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS=120``: the temporary server takes
  10–20 s to start the first time on a small machine; the default 20 s is too tight;
- ``DASK_DISTRIBUTED__LOGGING__DISTRIBUTED=warning``: a LocalCluster is quiet too.

``PREFECT_API_URL`` is respected: when it is set, flows report to that server (for example
one started with ``prefect server start``) instead of a temporary local one.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_DEFAULTS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "DO_NOT_TRACK": "1",
    "PREFECT_LOGGING_LEVEL": "WARNING",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
    "DASK_DISTRIBUTED__LOGGING__DISTRIBUTED": "warning",
}


def configure(home: str | Path | None = None) -> dict[str, str]:
    """Set Prefect's environment for offline local use (values already set are kept).

    ``home``: where ``PREFECT_HOME`` points when it is not set (default ``./.prefect``).
    Returns the variables this call set.
    """
    wanted = dict(_DEFAULTS)
    wanted["PREFECT_HOME"] = str(Path(home or Path.cwd() / ".prefect").resolve())
    set_now = {}
    for key, value in wanted.items():
        if key not in os.environ:
            os.environ[key] = value
            set_now[key] = value
    return set_now


@contextmanager
def api_server() -> Iterator[str]:
    """The Prefect API for the flow runs inside this block; yields its URL.

    ``PREFECT_API_URL`` (a real ``prefect server start``, or a test harness) is used when it
    is set. Otherwise this process starts the temporary server itself instead of leaving
    it to Prefect, so that it cannot outlive the run:

    - on Linux the server gets ``PR_SET_PDEATHSIG`` (SIGKILL): it dies with this process,
      even after ``kill -9``;
    - it is recorded under ``$PREFECT_HOME/repayplan-servers`` with this process as owner,
      and the next run stops any recorded server whose owner is gone
      (:func:`repayplan.leftovers.sweep_servers`) — the fallback where the signal is not
      available;
    - it is stopped when the block ends.

    Inside the block ``PREFECT_API_URL`` is set in the environment too, so that
    process-pool workers report to this server instead of each starting their own.
    """
    configure()
    from prefect.settings import PREFECT_API_URL, temporary_settings

    url = PREFECT_API_URL.value()
    if url:
        with _environ("PREFECT_API_URL", url):
            yield url
        return
    from repayplan.leftovers import record_server, sweep_servers

    home = Path(os.environ["PREFECT_HOME"])
    sweep_servers(home)
    server = _owned_server()
    server.start()
    assert server.server_process is not None
    record = record_server(home, server.server_process.pid)
    try:
        with (
            temporary_settings(updates={PREFECT_API_URL: server.api_url}),
            _environ("PREFECT_API_URL", server.api_url),
        ):
            yield server.api_url
    finally:
        _drain_to_api()  # logs and events still queued go out before their server stops
        server.stop()
        record.unlink(missing_ok=True)


def _drain_to_api(timeout: float = 5.0) -> None:
    """Send what Prefect's background workers (logs, events) still hold, waiting at most
    ``timeout`` seconds each."""
    try:
        from prefect.events.worker import EventsWorker
        from prefect.logging.handlers import APILogWorker
    except ImportError:  # pragma: no cover - another Prefect layout
        return
    for worker in (APILogWorker, EventsWorker):
        try:
            worker.drain_all(timeout=timeout)
        except Exception:  # a failed flush must not fail the run
            continue


@contextmanager
def _environ(key: str, value: str) -> Iterator[None]:
    before = os.environ.get(key)
    os.environ[key] = value
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = before


def _die_with_parent() -> None:  # pragma: no cover - runs in the child between fork and exec
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _owned_server() -> Any:
    """Prefect's temporary server (``SubprocessASGIServer``, registered as the instance
    Prefect itself would start) whose process dies with this one."""
    from prefect.server.api import server as server_module

    class OwnedServer(server_module.SubprocessASGIServer):
        def _run_uvicorn_command(self) -> subprocess.Popen[Any]:
            # Prefect 3.8's command (prefect/server/api/server.py), plus the parent-death
            # signal.
            import prefect
            from prefect.settings import get_current_settings

            # fmt: off
            args = [
                sys.executable, "-m", "uvicorn",
                "--app-dir", str(prefect.__module_path__.parent),
                "--factory", "prefect.server.api.server:create_app",
                "--host", "127.0.0.1", "--port", str(self.port),
                "--log-level", "error", "--lifespan", "on",
            ]
            # fmt: on
            return subprocess.Popen(
                args=args,
                env={
                    **os.environ,
                    "PREFECT_UI_ENABLED": "0",
                    "PREFECT__SERVER_EPHEMERAL": "1",
                    "PREFECT__SERVER_FINAL": "1",
                    **get_current_settings().to_environment_variables(exclude_unset=True),
                },
                preexec_fn=_die_with_parent if sys.platform == "linux" else None,
            )

    existing = server_module.SubprocessASGIServer._instances.get(None)
    if existing is not None and not isinstance(existing, OwnedServer) and not existing.running:
        del server_module.SubprocessASGIServer._instances[None]
    return OwnedServer()
