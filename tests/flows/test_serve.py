"""``repayplan serve`` against a real Prefect server: the nightly deployment is registered
with its cron schedule, and a run of it re-plans the portfolio."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from .conftest import AS_OF

pytestmark = pytest.mark.flows
CLI = str(Path(sys.executable).parent / "repayplan")


def _deployment(name: str, timeout: float):
    from prefect.client.orchestration import get_client

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            try:
                return client.read_deployment_by_name(name)
            except Exception:  # not registered yet
                time.sleep(1)
    raise AssertionError(f"deployment {name} was not registered in {timeout} s")


def test_serve_registers_the_schedule_and_runs_it(demo_db, prefect_server, tmp_path):
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    log = (tmp_path / "serve.log").open("w")
    proc = subprocess.Popen(
        [CLI, "serve", "--db", str(demo_db), "--cron", "30 1 * * *", "--runner", "threads"],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deployment = _deployment("nightly-replan/nightly", timeout=120)
        crons = [s.schedule.cron for s in deployment.schedules]
        assert crons == ["30 1 * * *"]
        assert deployment.parameters["db"] == str(demo_db.resolve())

        from prefect.deployments import run_deployment

        flow_run = run_deployment(
            "nightly-replan/nightly", parameters={"as_of": AS_OF.isoformat()}, timeout=300
        )
        assert flow_run.state.is_completed(), (flow_run.state, (tmp_path / "serve.log").read_text())
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()
    con = duckdb.connect(str(demo_db), read_only=True)
    try:
        status = con.execute(
            "SELECT status::VARCHAR FROM runs WHERE as_of = ? AND status <> 'interrupted'",
            [AS_OF],
        ).fetchall()
    finally:
        con.close()
    assert status in ([("succeeded",)], [("partial",)])
