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
from collections.abc import Callable, Iterator
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
def api_server(meanwhile: Callable[[], object] | None = None) -> Iterator[str]:
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

    The server process is launched before this process imports Prefect (Prefect's own
    ``SubprocessASGIServer`` would import the whole server application here, ≈ 3× the cost
    of importing Prefect), and ``meanwhile`` (say, importing the flow) runs while it starts.

    Inside the block ``PREFECT_API_URL`` is set in the environment too, so that any process
    started inside reports to this server instead of starting its own.
    """
    configure()
    url = os.environ.get("PREFECT_API_URL")
    server = None
    if not url:
        server = _TemporaryServer()
        server.launch()
    try:
        if meanwhile is not None:
            meanwhile()
        from prefect.settings import PREFECT_API_URL, temporary_settings

        url = url or PREFECT_API_URL.value()  # a profile may name a server
        if url:
            if server is not None:
                server.stop()
                server = None
            with _environ("PREFECT_API_URL", url):
                yield url
            return
        assert server is not None
        from repayplan.leftovers import record_server, sweep_servers

        home = Path(os.environ["PREFECT_HOME"])
        sweep_servers(home)
        record = record_server(home, server.pid)
        try:
            server.wait_ready(float(os.environ["PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"]))
            with (
                temporary_settings(updates={PREFECT_API_URL: server.api_url}),
                _environ("PREFECT_API_URL", server.api_url),
            ):
                yield server.api_url
        finally:
            _drain_to_api()  # logs and events still queued go out before their server stops
            server.stop()
            server = None
            record.unlink(missing_ok=True)
    finally:
        if server is not None:
            server.stop()


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


class _TemporaryServer:
    """Prefect's temporary API server (the command of Prefect 3.8's
    ``SubprocessASGIServer``, ``prefect/server/api/server.py``) in a process that dies with
    this one; launched without importing Prefect here."""

    def __init__(self) -> None:
        self.port = _free_port()
        self.process: subprocess.Popen[Any] | None = None

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def launch(self) -> None:
        """Start the server process; returns at once (see :meth:`wait_ready`)."""
        import importlib.util

        spec = importlib.util.find_spec("prefect")
        assert spec is not None and spec.origin is not None
        app_dir = str(Path(spec.origin).parent.parent)
        # fmt: off
        args = [
            sys.executable, "-m", "uvicorn",
            "--app-dir", app_dir,
            "--factory", "prefect.server.api.server:create_app",
            "--host", "127.0.0.1", "--port", str(self.port),
            "--log-level", "error", "--lifespan", "on",
        ]
        # fmt: on
        self.process = subprocess.Popen(
            args=args,
            env={
                **os.environ,
                "PREFECT_UI_ENABLED": "0",
                "PREFECT__SERVER_EPHEMERAL": "1",
                "PREFECT__SERVER_FINAL": "1",
            },
            preexec_fn=_die_with_parent if sys.platform == "linux" else None,
        )

    def wait_ready(self, timeout: float) -> None:
        """Wait until the server answers ``/health`` (a server that lost its port to
        another process, exit code 3, is started again on another)."""
        import time

        import httpx

        assert self.process is not None
        deadline = time.monotonic() + timeout
        with httpx.Client() as client:
            while time.monotonic() < deadline:
                code = self.process.poll()
                if code == 3:
                    self.port = _free_port()
                    self.launch()
                    continue
                if code is not None:
                    break
                try:
                    if client.get(f"{self.api_url}/health").status_code == 200:
                        return
                except httpx.TransportError:
                    pass
                time.sleep(0.1)
        code = self.process.poll()
        self.stop()
        detail = f" (it exited with code {code})" if code is not None else ""
        raise RuntimeError(
            f"the temporary Prefect server did not start within {timeout:g} s{detail}; "
            "set PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS higher or run "
            "`prefect server start` and set PREFECT_API_URL"
        )

    def stop(self) -> None:
        if self.process is None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.process = None


def _free_port() -> int:
    """A free port in Prefect's range for temporary servers (8000–8999)."""
    import random
    import socket

    for _ in range(20):
        port = random.randrange(8000, 9000)
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port for the temporary Prefect server (8000–8999)")
