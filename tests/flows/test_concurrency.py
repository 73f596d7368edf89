"""The nightly flow among other users, with real processes: an analyst holding the published
copy open through a whole run, a service recording acceptances during a run, two runs at
once, a killed run (docs/concurrency.md)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import duckdb
import pytest

from repayplan.flows.run import replan
from repayplan.portfolio.spill import scratch_root
from repayplan.store.events import apply_events, read_events, register_event_handler
from repayplan.store.events import unregister_event_handler as unregister
from repayplan.store.publish import analyst_path, publish
from repayplan.store.runlock import RunInProgress, run_in_progress

from .conftest import AS_OF

pytestmark = pytest.mark.flows
CLI = Path(sys.executable).parent / "repayplan"


def _spawn(code: str, *args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )


def _wait_for(check, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the helper process never got ready"
        time.sleep(0.02)


def _read(path: Path, sql: str):
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


_READER = """
import json, os, sys, time, duckdb
path, ready, done = sys.argv[1:4]
con = duckdb.connect(path, read_only=True)      # an analyst's notebook, left open
during = set()
def look(c):
    runs = c.execute("SELECT count(*), count(*) FILTER (WHERE status = 'running') FROM runs")
    return runs.fetchone() + c.execute("SELECT count(*) FROM plans").fetchone()
during.add(look(con))
open(ready, "w").close()
while not os.path.exists(done):
    during.add(look(con))
    time.sleep(0.05)
during.add(look(con))
con.close()
con = duckdb.connect(path, read_only=True)      # reconnect: the new state
after = look(con)
print(json.dumps({"during": sorted(during), "after": after}))
"""


def test_reader_holding_the_copy_open_through_a_whole_run(demo_db):
    publish(demo_db, "before")
    ready, done = demo_db.parent / "ready", demo_db.parent / "done"
    reader = _spawn(_READER, str(analyst_path(demo_db)), str(ready), str(done))
    _wait_for(ready.exists, reader)
    summary = replan(demo_db, AS_OF, runner="processes", workers=2)
    done.touch()
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    seen = json.loads(out)
    # The open connection saw the state it opened, all through the run: no run, no plans.
    assert seen["during"] == [[0, 0, 0]]
    # Reconnected: the finished run, never a 'running' one, with its plans.
    runs, running, plans = seen["after"]
    assert summary.status in ("succeeded", "partial")
    assert (runs, running) == (1, 0) and plans == summary.counts["candidates"]
    assert summary.timings["publish"] > 0


_SERVICE = """
import json, os, sys, time
from repayplan.store.events import record_event
db, started, done = sys.argv[1:4]
ids = []
open(started, "w").close()
i = 0
while not os.path.exists(done) and i < 3000:
    for attempt in range(2):   # every request retried once, as a client would on a timeout
        e = record_event(db, "offer.accepted", f"offer-{i}", {"installment_cents": 1000 + i},
                         idempotency_key=f"platform-a:{i}", actor="platform-a")
    ids.append(e.event_id)
    i += 1
    time.sleep(0.01)
print(json.dumps(ids))
"""


def _log_applied(con, events) -> None:
    con.execute("CREATE TABLE IF NOT EXISTS applied_log (event_id VARCHAR, seq BIGINT)")
    con.register("applied_now", events)
    con.execute("INSERT INTO applied_log SELECT event_id, seq FROM applied_now")
    con.unregister("applied_now")


def test_service_records_acceptances_during_a_run(demo_db):
    started, done = demo_db.parent / "started", demo_db.parent / "done"
    service = _spawn(_SERVICE, str(demo_db), str(started), str(done))
    register_event_handler("offer.accepted", _log_applied)
    try:
        _wait_for(started.exists, service)
        time.sleep(0.5)
        summary = replan(demo_db, AS_OF, runner="threads", workers=2)
        during = len(read_events(demo_db))
        time.sleep(0.3)
        done.touch()
        out, err = service.communicate(timeout=60)
        assert service.returncode == 0, err
        tail = apply_events(demo_db)  # what arrived after the run's last apply
    finally:
        unregister("offer.accepted")
    recorded = json.loads(out)
    assert summary.status in ("succeeded", "partial")
    assert summary.counts["events_applied"] > 0 and during > summary.counts["events_applied"] / 2
    assert summary.counts["events_applied"] + tail.applied == len(recorded)
    rows = _read(
        demo_db,
        "SELECT count(*), count(DISTINCT event_id), min(seq), max(seq), "
        "count(DISTINCT applied_by) FROM events",
    )[0]
    assert rows[:4] == (len(recorded), len(recorded), 1, len(recorded))
    assert rows[4] >= 2  # applied by the run and by the tail apply
    applied = _read(demo_db, "SELECT count(*), count(DISTINCT event_id) FROM applied_log")[0]
    assert applied == (len(recorded), len(recorded))  # each handled exactly once
    assert {r[0] for r in _read(demo_db, "SELECT event_id FROM events")} == set(recorded)


def test_two_runs_at_once_second_refused_or_queued(demo_db, prefect_server):
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    first = subprocess.Popen(
        [
            str(CLI),
            "replan",
            "--db",
            str(demo_db),
            "--as-of",
            AS_OF.isoformat(),
            "--scope",
            "all",
            "--chunk-size",
            "50",
            "--json",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _wait_for(lambda: run_in_progress(demo_db) is not None, first)
    holder = run_in_progress(demo_db)
    with pytest.raises(RunInProgress) as refused:
        replan(demo_db, AS_OF, runner="threads", workers=2)
    assert f"run {holder['run_id']}" in str(refused.value)
    assert "was not started" in str(refused.value)
    assert first.poll() is None  # the refused run touched nothing of the first
    # Queued: waits for the first to finish, then runs.
    second = replan(demo_db, AS_OF, runner="threads", workers=2, wait_s=600)
    out, err = first.communicate(timeout=60)
    assert first.returncode == 0, err
    one = json.loads(out)
    assert one["run_id"] == holder["run_id"] and one["status"] in ("succeeded", "partial")
    assert second.status in ("succeeded", "partial")
    statuses = _read(demo_db, "SELECT status::VARCHAR FROM runs")
    assert "interrupted" not in {s for (s,) in statuses}  # nobody marked the other dead
    assert not scratch_root(demo_db).exists()


def test_killed_run_is_never_half_visible_to_analysts(demo_db, prefect_server):
    publish(demo_db, "before")
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    proc = subprocess.Popen(
        [
            str(CLI),
            "replan",
            "--db",
            str(demo_db),
            "--as-of",
            AS_OF.isoformat(),
            "--scope",
            "all",
            "--chunk-size",
            "50",
            "--json",
        ],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    _wait_for(lambda: run_in_progress(demo_db) is not None, proc)
    root = scratch_root(demo_db)
    _wait_for(lambda: root.exists() and any(root.glob("*/*.parquet")), proc)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    copy = analyst_path(demo_db)
    # Analysts still see the last committed state, whole: no run, no plans.
    assert _read(copy, "SELECT count(*) FROM runs") == [(0,)]
    assert _read(copy, "SELECT count(*) FROM plans") == [(0,)]
    assert run_in_progress(demo_db) is None  # the kernel released the dead run's lock
    summary = replan(demo_db, AS_OF, runner="threads", workers=2)
    assert summary.counts["interrupted_runs_marked"] == 1
    published = dict(_read(copy, "SELECT status::VARCHAR, count(*) FROM runs GROUP BY 1"))
    assert published == {"interrupted": 1, summary.status: 1}
