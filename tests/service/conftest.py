"""A real uvicorn server on 127.0.0.1 over a small demo portfolio, shared by the API and the
browser tests of this folder (one server per module)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

import pytest

from repayplan.offers.keys import create_api_key
from repayplan.store import init_demo
from tests.demo_copy import copy_demo

AS_OF = date(2025, 6, 30)


@pytest.fixture(scope="session")
def service_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("service") / "portfolio.duckdb"
    init_demo(path, loans=200, seed=7, as_of=AS_OF)
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    db: Path
    url: str
    process: subprocess.Popen
    keys: dict[str, str] = field(default_factory=dict)
    log: Path | None = None

    def request(self, method, path, body=None, headers=None, raw: bytes | None = None):
        """(status, headers, JSON body) of one request."""
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + path,
            method=method,
            data=data,
            headers={"Content-Type": "application/json", **(headers or {})},
        )
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                return resp.status, dict(resp.headers), json.loads(resp.read() or b"null")
        except urllib.error.HTTPError as e:
            return e.code, dict(e.headers), json.loads(e.read() or b"null")

    def auth(self, name: str, key: str | None = None) -> dict[str, str]:
        out = {"Authorization": f"Bearer {self.keys[name]}"}
        if key:
            out["Idempotency-Key"] = key
        return out

    def wait_for(self, check, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = check()
            if value:
                return value
            time.sleep(0.2)
        raise AssertionError("timed out waiting")


def start_server(db: Path, log: Path, *, apply_interval: float = 0.3) -> Server:
    port = free_port()
    out = log.open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "repayplan.cli",
            "serve-api",
            "--db",
            str(db),
            "--port",
            str(port),
            "--apply-interval",
            str(apply_interval),
        ],
        stdout=out,
        stderr=subprocess.STDOUT,
        env=dict(os.environ),
    )
    server = Server(db=db, url=f"http://127.0.0.1:{port}", process=process, log=log)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(log.read_text())
        try:
            if server.request("GET", "/v1/health")[0] == 200:
                return server
        except OSError:
            pass
        time.sleep(0.2)
    process.kill()
    raise AssertionError("server did not start: " + log.read_text())


@pytest.fixture(scope="module")
def server(service_master: Path, tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("served")
    db = copy_demo(service_master, folder)
    keys = {
        "platform-a": create_api_key(db, "platform-a", "platform"),
        "reviewer-1": create_api_key(db, "reviewer-1", "reviewer"),
    }
    srv = start_server(db, folder / "server.log")
    srv.keys = keys
    try:
        yield srv
    finally:
        srv.process.terminate()
        try:
            srv.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            srv.process.kill()
