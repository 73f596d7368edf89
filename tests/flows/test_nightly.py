"""The real nightly flow on a small demo portfolio: runners, re-runs, failures, tracking."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

from repayplan.flows.run import replan
from repayplan.portfolio.spill import scratch_root
from repayplan.store import connect

from .conftest import AS_OF

pytestmark = pytest.mark.flows


def _read(db: Path, sql: str, params=None):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def _check_run(db: Path, summary) -> None:
    runs = _read(
        db,
        "SELECT run_id, status::VARCHAR, selection_gap FROM runs "
        "WHERE as_of = ? AND status <> 'interrupted'",
        [summary.as_of],
    )
    assert [r[0] for r in runs] == [summary.run_id]
    assert runs[0][1] in ("succeeded", "partial") and runs[0][2] is not None
    # Exactly one chosen plan per planned loan, all from this run; schedules of chosen plans.
    per_loan = _read(
        db,
        "SELECT loan_id, count(*) FILTER (WHERE chosen), count(DISTINCT run_id) "
        "FROM plans GROUP BY loan_id",
    )
    assert per_loan and all(chosen == 1 and runs_ == 1 for _, chosen, runs_ in per_loan)
    assert len(per_loan) == summary.counts["loans_replanned"]
    missing = _read(
        db,
        "SELECT count(*) FROM plans p WHERE chosen AND NOT EXISTS "
        "(SELECT 1 FROM plan_installments i WHERE i.plan_id = p.plan_id)",
    )
    assert missing == [(0,)]
    # Every chosen schedule reconciles to the cent.
    bad = _read(db, "SELECT count(*) FROM plan_installments WHERE payment <> principal + interest")
    assert bad == [(0,)]
    # Only the chosen plans keep their schedules; the spilled candidates are gone.
    unchosen = _read(
        db,
        "SELECT count(*) FROM plan_installments i JOIN plans p USING (plan_id) WHERE NOT chosen",
    )
    assert unchosen == [(0,)]
    assert not scratch_root(db).exists()
    # A loan sent to manual review is an answer: it alone never makes a run partial.
    failed = _read(
        db,
        "SELECT count(DISTINCT loan_id) FROM plan_failures WHERE run_id = ? "
        "AND stage <> 'manual_review'",
        [summary.run_id],
    )[0][0]
    assert (runs[0][1] == "partial") == (failed > 0)
    assert summary.counts["failures"] == failed


def test_threads_run_then_rerun_replaces(demo_db):
    first = replan(demo_db, AS_OF, runner="threads", workers=2)
    assert first.status in ("succeeded", "partial")
    assert first.counts["loans_replanned"] > 10
    assert 0 <= first.selection["gap"] < 1e-3
    _check_run(demo_db, first)
    plans_before = _read(demo_db, "SELECT count(*) FROM plans")[0][0]

    second = replan(demo_db, AS_OF, runner="threads", workers=2)
    assert second.run_id != first.run_id
    _check_run(demo_db, second)
    assert _read(demo_db, "SELECT count(*) FROM plans")[0][0] == plans_before
    assert _read(demo_db, "SELECT count(*) FROM plans WHERE run_id = ?", [first.run_id]) == [(0,)]
    triggers = _read(demo_db, "SELECT count(DISTINCT run_id), count(*) FROM replan_triggers")
    assert triggers[0][0] == 1 and triggers[0][1] >= second.counts["eligible"]
    # The analysts' views answer.
    assert _read(demo_db, "SELECT count(*) FROM run_summary")[0][0] == 1
    adherence = _read(demo_db, "SELECT count(*), sum(installments_due) FROM plan_adherence")
    assert adherence[0][0] == second.counts["loans_replanned"] and adherence[0][1] == 0
    _plan_matches_the_run(demo_db, second.run_id)


def _plan_matches_the_run(db: Path, run_id: str) -> None:
    """``repayplan plan LOAN`` shows, for a re-planned loan, exactly the candidates the
    nightly weighed: the same alternatives, schedules and expected outcomes."""
    import json

    from repayplan.portfolio.stored_plan import plan

    rows = _read(
        db,
        "SELECT loan_id, list(alternative ORDER BY plan_id), "
        "list(CAST(round(total_paid * 100) AS BIGINT) ORDER BY plan_id), "
        "list(metrics ORDER BY plan_id) FROM plans WHERE run_id = ? GROUP BY loan_id "
        "HAVING count(*) > 2 ORDER BY loan_id LIMIT 6",
        [run_id],
    )
    assert len(rows) == 6
    for loan_id, names, paid, metrics in rows:
        shown = {a.name: a for a in plan(db, loan_id).alternatives}
        assert sorted(shown) == sorted(names), loan_id
        for name, cents, text in zip(names, paid, metrics, strict=True):
            alt, stored = shown[name], json.loads(text)
            assert alt.schedule.total_paid == cents, (loan_id, name)
            for key in ("charge_off_24m", "expected_value", "max_payment_to_income"):
                assert alt.metrics.get(key) == stored.get(key), (loan_id, name, key)


def test_missed_installment_warns_and_is_replanned_next_night(demo_db):
    first = replan(demo_db, AS_OF, runner="threads", workers=2)
    restructured = _read(demo_db, "SELECT count(*) FROM latest_plan WHERE alternative <> 'keep'")
    assert restructured[0][0] > 0
    later = date(2025, 8, 31)  # no payment arrives: every plan misses its first installments
    second = replan(demo_db, later, runner="threads", workers=2)
    warned = _read(
        demo_db,
        "SELECT count(*) FROM replan_triggers WHERE run_id = ? AND "
        "list_contains(reasons, 'off_track')",
        [second.run_id],
    )
    assert warned[0][0] > 0
    assert second.counts["reasons"]["off_track"] == warned[0][0]
    # The first night's results are kept beside the second's (different as_of).
    dates = _read(demo_db, "SELECT DISTINCT as_of FROM runs ORDER BY 1")
    assert [d for (d,) in dates] == [AS_OF, later]
    assert _read(demo_db, "SELECT count(*) FROM plans WHERE run_id = ?", [first.run_id])[0][0] > 0


def test_failing_loan_is_recorded_and_run_completes(demo_db):
    con = connect(demo_db)
    loan_id = con.execute(
        "SELECT loan_id FROM loans WHERE status = 'delinquent' AND remaining_term > 0 "
        "ORDER BY loan_id LIMIT 1"
    ).fetchall()[0][0]
    con.execute(
        "UPDATE borrowers SET monthly_income = 0 WHERE borrower_id = "
        "(SELECT borrower_id FROM loans WHERE loan_id = ?)",
        [loan_id],
    )
    con.close()
    summary = replan(demo_db, AS_OF, runner="threads", workers=2)
    assert summary.status == "partial"
    rows = _read(demo_db, "SELECT stage, reason FROM plan_failures WHERE loan_id = ?", [loan_id])
    assert rows and rows[0][0] == "input" and "monthly_income" in rows[0][1]
    assert summary.counts["loans_replanned"] > 10
    _check_run(demo_db, summary)


@pytest.mark.parametrize("runner", ["processes", "dask"])
def test_other_runners_give_the_same_run(demo_db, runner):
    summary = replan(demo_db, AS_OF, runner=runner, workers=2)
    _check_run(demo_db, summary)
    assert summary.runner == runner
    assert summary.counts["chunks"] >= 2
    reference = replan(demo_db, AS_OF, runner="threads", workers=2)
    assert reference.counts["candidates"] == summary.counts["candidates"]
    assert reference.selection["objective"] == pytest.approx(
        summary.selection["objective"], rel=1e-4
    )


def _holds_file(pid: int, path: Path) -> bool:
    try:
        return any(
            os.readlink(f"/proc/{pid}/fd/{fd}") == str(path) for fd in os.listdir(f"/proc/{pid}/fd")
        )
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False


def test_killed_run_leaves_nothing_and_rerun_completes(demo_db, prefect_server):
    cli = Path(sys.executable).parent / "repayplan"
    env = {**os.environ, "PREFECT_API_URL": prefect_server}
    proc = subprocess.Popen(
        [
            str(cli),
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
    # Kill it in the parallel stage: it opened the database (run row, triggers) and closed
    # it again before the candidates tasks. The first open is the options check (read only,
    # before the flow starts); the second is the run's.
    deadline = time.monotonic() + 120
    opened = holding = 0
    while time.monotonic() < deadline and proc.poll() is None:
        holds = _holds_file(proc.pid, demo_db.resolve())
        if holds and not holding:
            opened += 1
        elif not holds and holding and opened >= 2:
            break
        holding = holds
        time.sleep(0.02)
    assert proc.poll() is None, "the run finished before it could be killed"
    time.sleep(1.0)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _read(demo_db, "SELECT status::VARCHAR FROM runs") == [("running",)]
    assert _read(demo_db, "SELECT count(*) FROM plans") == [(0,)]

    summary = replan(demo_db, AS_OF, runner="threads", workers=2)
    statuses = _read(demo_db, "SELECT status::VARCHAR, count(*) FROM runs GROUP BY ALL ORDER BY 1")
    assert dict(statuses) == {"interrupted": 1, summary.status: 1}
    assert summary.counts["interrupted_runs_marked"] == 1
    _check_run(demo_db, summary)


@pytest.mark.parametrize("runner", ["processes", "dask"])
def test_chunk_workers_run_plain_python_without_prefect(runner):
    """The chunks' workers never import Prefect, so they can never start a Prefect server
    of their own (as workers of Prefect's process-pool task runner did without an API)."""
    from repayplan.flows.chunks import ChunkPool

    from .worker_probe import imports_prefect

    with ChunkPool(runner, 1) as pool:
        assert pool.run(imports_prefect) is False
        assert pool.worker_count() == 1


def test_run_without_prefect_gives_the_same_run_and_no_server(demo_db):
    """``replan(prefect=False)`` (``--no-prefect``): the same steps, no Prefect imported."""
    code = (
        "import sys\n"
        "from datetime import date\n"
        "from repayplan.flows.run import replan\n"
        f"s = replan({str(demo_db)!r}, date.fromisoformat({AS_OF.isoformat()!r}), "
        "runner='processes', workers=2, prefect=False)\n"
        "assert 'prefect' not in sys.modules, 'prefect imported'\n"
        "print(s.run_id, s.counts['candidates'], s.selection['objective'])\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=600
    )
    assert out.returncode == 0, out.stderr[-2000:]
    run_id, candidates, objective = out.stdout.split()[-3:]
    runs = _read(demo_db, "SELECT run_id FROM runs WHERE status <> 'interrupted'")
    assert runs == [(run_id,)]
    reference = replan(demo_db, AS_OF, runner="threads", workers=2)
    _check_run(demo_db, reference)
    assert reference.counts["candidates"] == int(candidates)
    assert reference.selection["objective"] == pytest.approx(float(objective), rel=1e-4)


def test_an_empty_portfolio_is_a_run_not_an_error(tmp_path):
    db = tmp_path / "empty.duckdb"
    connect(db).close()
    summary = replan(db, AS_OF, runner="processes", workers=2, prefect=False)
    assert summary.status == "succeeded"
    assert summary.counts["loans_replanned"] == 0
    assert _read(db, "SELECT status::VARCHAR FROM runs") == [("succeeded",)]
