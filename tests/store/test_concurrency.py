"""Many users, one portfolio — with real processes: the published copy, writers that queue,
the run lock, the event inbox, and killed writers (docs/concurrency.md)."""

from __future__ import annotations

import json
import multiprocessing as mp
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import date
from pathlib import Path

import duckdb
import pytest

from repayplan.errors import InputError
from repayplan.store import connect
from repayplan.store.demo import init_demo
from repayplan.store.events import (
    IdempotencyConflict,
    apply_events,
    inbox_path,
    read_events,
    record_event,
    register_event_handler,
    unregister_event_handler,
)
from repayplan.store.publish import (
    analyst_path,
    connect_published,
    list_snapshots,
    publish,
    snapshot_at,
    snapshot_dir,
)
from repayplan.store.runlock import RunInProgress, run_in_progress, run_lock

AS_OF = date(2026, 6, 30)
CLI = Path(sys.executable).parent / "duckdb"


@pytest.fixture(scope="module")
def master(tmp_path_factory) -> Path:
    db = tmp_path_factory.mktemp("conc") / "portfolio.duckdb"
    init_demo(db, loans=300, seed=3, as_of=AS_OF)
    return db


@pytest.fixture
def db(master: Path, tmp_path: Path) -> Path:
    target = tmp_path / master.name
    shutil.copy(master, target)
    shutil.copy(f"{master}.pii-key", f"{target}.pii-key")
    return target


def _spawn(code: str, *args: str) -> subprocess.Popen:
    """A Python process running ``code`` (``sys.argv[1:]`` = ``args``)."""
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _wait_for(path: Path, proc: subprocess.Popen, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert proc.poll() is None, proc.communicate()
        assert time.monotonic() < deadline, "the helper process never got ready"
        time.sleep(0.02)


def _count(path: Path, sql: str) -> int:
    con = duckdb.connect(str(path), read_only=True)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


# --- the published copy --------------------------------------------------------------------


def test_demo_is_published_and_the_package_index_cli_opens_it(master):
    copy = analyst_path(master)
    assert copy == master.with_name("portfolio.analyst.duckdb") and copy.exists()
    # Storage version 68 (DuckDB 1.5), which duckdb-cli 1.5.6 reads; the engine is 2.0's.
    with open(copy, "rb") as f:
        header = f.read(20)
    assert header[8:12] == b"DUCK" and int.from_bytes(header[12:20], "little") == 68
    queries = (
        "SELECT count(*) FROM loans",
        "SELECT delinquency_bucket, sum(loans) AS loans FROM portfolio_status "
        "GROUP BY ALL ORDER BY delinquency_bucket",
        "SELECT count(*) FROM run_summary",
        "SELECT money_of_cents(12345), bucket_of(45)",
        "SELECT value FROM store_meta WHERE key = 'published_reason'",
    )
    out = subprocess.run(
        [str(CLI), "-readonly", "-json", str(copy), "-c", ";\n".join(queries)],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    assert '"count_star()":300' in out.replace(" ", "")
    assert '"dpd_31_60"' in out and '"demo"' in out


def test_an_engine_file_in_duckdb_2_storage_is_published_as_a_15_copy(tmp_path):
    db = tmp_path / "old.duckdb"
    duckdb.connect(str(db)).close()  # made by DuckDB 2.0 itself, before this design
    con = connect(db)  # migrates it
    con.execute("INSERT INTO policy_versions VALUES ('p2', current_timestamp, 'x', '{}', false)")
    done = publish(db, "old-file", con=con)
    con.close()
    with open(db, "rb") as f:
        assert int.from_bytes(f.read(20)[12:20], "little") > 68  # DuckDB 2.0 storage
    with open(done.path, "rb") as f:
        assert int.from_bytes(f.read(20)[12:20], "little") == 68
    refused = subprocess.run(
        [str(CLI), "-readonly", str(db), "-c", "SELECT 1"], capture_output=True, text=True
    )
    assert refused.returncode != 0 and "version number" in refused.stderr
    out = subprocess.run(
        [
            str(CLI),
            "-readonly",
            "-csv",
            str(done.path),
            "-c",
            "SELECT count(*) FROM policy_versions; SELECT bucket_of(45)",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "2" in out.splitlines() and "dpd_31_60" in out


def test_reader_keeps_its_state_while_a_writer_writes_and_publishes(db):
    publish(db, "first")
    reader = _spawn(
        """
        import sys, time, json, duckdb
        con = duckdb.connect(sys.argv[1], read_only=True)
        seen = []
        seen.append(con.execute("SELECT count(*) FROM policy_versions").fetchone()[0])
        open(sys.argv[2], "w").close()
        while not __import__("os").path.exists(sys.argv[3]):
            time.sleep(0.02)
        seen.append(con.execute("SELECT count(*) FROM policy_versions").fetchone()[0])
        con.close()
        con = duckdb.connect(sys.argv[1], read_only=True)
        seen.append(con.execute("SELECT count(*) FROM policy_versions").fetchone()[0])
        print(json.dumps(seen))
        """,
        str(analyst_path(db)),
        str(db.parent / "reading"),
        str(db.parent / "written"),
    )
    _wait_for(db.parent / "reading", reader)
    # The reader holds the published file open; the writer is not blocked.
    con = connect(db, wait_s=0)
    con.execute("INSERT INTO policy_versions VALUES ('p2', current_timestamp, 'x', '{}', false)")
    publish(db, "second", con=con)
    con.close()
    (db.parent / "written").touch()
    out, err = reader.communicate(timeout=60)
    assert reader.returncode == 0, err
    assert json.loads(out) == [1, 1, 2]  # old state while open, the new one on reconnect


def test_snapshots_are_kept_for_audit(db, monkeypatch):
    monkeypatch.setenv("REPAYPLAN_KEEP_SNAPSHOTS", "2")
    first = publish(db, "nightly-a")
    con = connect(db)
    con.execute("DELETE FROM payments")
    con.close()
    publish(db, "nightly-b")
    third = publish(db, "nightly-c")
    kept = list_snapshots(db)
    assert [s.reason for s in kept] == ["nightly-b", "nightly-c"]  # the oldest pruned
    assert os.path.samefile(third.snapshot, analyst_path(db))
    assert snapshot_at(db, third.published_at).path == third.snapshot
    with pytest.raises(InputError, match="no snapshot"):
        snapshot_at(db, first.published_at)
    old = connect_published(db, kept[0].path)
    assert old.execute("SELECT count(*) FROM payments").fetchone()[0] == 0
    old.close()
    assert not list(snapshot_dir(db).glob(".tmp-*"))


def test_killed_publication_leaves_the_last_copy_whole(db):
    publish(db, "before")
    loans = _count(analyst_path(db), "SELECT count(*) FROM loans")
    killed = 0
    for delay in (0.05, 0.15, 0.3):
        proc = _spawn(
            """
            import sys
            from repayplan.store.publish import publish
            while True:
                publish(sys.argv[1], "loop")
            """,
            str(db),
        )
        time.sleep(1.5 + delay)  # start-up, then somewhere inside a publication
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        killed += 1
        # The analyst file is always a whole, consistent copy.
        assert _count(analyst_path(db), "SELECT count(*) FROM loans") == loans
    assert killed == 3
    publish(db, "after")  # removes what killed publications left
    assert not list(snapshot_dir(db).glob(".tmp-*"))
    assert not list(db.parent.glob(".portfolio.analyst.duckdb.*"))


# --- writers queue; readers of the engine are named -------------------------------------------


_HOLD = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
open(sys.argv[3], "w").close()
time.sleep(float(sys.argv[4]))
con.close()
"""


def test_a_writer_waits_for_another_then_writes(db):
    holder = _spawn(_HOLD, str(db), "rw", str(db.parent / "held"), "2")
    _wait_for(db.parent / "held", holder)
    tic = time.monotonic()
    con = connect(db, wait_s=60)
    waited = time.monotonic() - tic
    con.close()
    holder.wait(timeout=30)
    assert 0.5 < waited < 30


def test_an_engine_reader_left_open_is_named_when_a_writer_gives_up(db):
    holder = _spawn(_HOLD, str(db), "ro", str(db.parent / "held"), "30")
    try:
        _wait_for(db.parent / "held", holder)
        with pytest.raises(InputError) as info:
            connect(db, wait_s=0.5)
        message = str(info.value)
        assert f"process {holder.pid}" in message and "published copy" in message
    finally:
        holder.kill()
        holder.wait()


def test_killed_writer_leaves_nothing_half_visible(db):
    publish(db, "before")
    before = _count(db, "SELECT count(*) FROM payments")
    proc = _spawn(
        """
        import sys
        from repayplan.store import connect
        con = connect(sys.argv[1])
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM payments")
        con.execute("INSERT INTO payments SELECT loan_id, payment_date, seq + 100, amount, "
                    "due_date, installment_number, 'half' FROM payments")
        open(sys.argv[2], "w").close()
        import time; time.sleep(60)
        """,
        str(db),
        str(db.parent / "mid-transaction"),
    )
    _wait_for(db.parent / "mid-transaction", proc)
    # Readers of the published copy meanwhile: the last committed state.
    assert _count(analyst_path(db), "SELECT count(*) FROM payments") == before
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _count(db, "SELECT count(*) FROM payments WHERE source = 'half'") == 0
    assert _count(db, "SELECT count(*) FROM payments") == before
    assert _count(analyst_path(db), "SELECT count(*) FROM payments") == before


# --- one run at a time ---------------------------------------------------------------------


def test_second_run_is_refused_then_waits_and_a_killed_holder_frees_the_lock(db):
    holder = _spawn(
        """
        import sys, time
        from repayplan.store.runlock import run_lock
        with run_lock(sys.argv[1], "run-one"):
            open(sys.argv[2], "w").close()
            time.sleep(float(sys.argv[3]))
        """,
        str(db),
        str(db.parent / "locked"),
        "60",
    )
    _wait_for(db.parent / "locked", holder)
    assert run_in_progress(db)["run_id"] == "run-one"
    with pytest.raises(RunInProgress) as info, run_lock(db, "run-two"):
        pass
    message = str(info.value)
    assert "run run-one" in message and f"process {holder.pid}" in message
    assert "was not started" in message and "--wait" in message
    holder.send_signal(signal.SIGKILL)  # the kernel releases a dead process's lock
    holder.wait()
    with run_lock(db, "run-three", wait_s=10):
        assert run_in_progress(db) is not None
    assert run_in_progress(db) is None


# --- the event inbox -----------------------------------------------------------------------


def _service(db: str, worker: int, n: int) -> None:
    """A service process: records ``n`` acceptances, retrying each once (a client retry)."""
    for i in range(n):
        for _ in range(2):
            event = record_event(
                db,
                "offer.accepted",
                f"offer-{worker}-{i}",
                {"loan_id": f"L{worker}-{i}", "installment_cents": 12345 + i},
                idempotency_key=f"svc{worker}:{i}",
                actor=f"platform-{worker}",
            )
            assert event.event_id


def _applier(db: str, stop_after: float) -> None:
    """The writer applying the inbox in a loop while the services record."""
    register_event_handler("offer.accepted", _log_applied)
    deadline = time.monotonic() + stop_after
    while time.monotonic() < deadline:
        apply_events(db, publish=False)
        time.sleep(0.05)


def _log_applied(con: duckdb.DuckDBPyConnection, events) -> None:
    con.execute("CREATE TABLE IF NOT EXISTS applied_log (event_id VARCHAR)")
    con.register("applied_now", events)
    con.execute("INSERT INTO applied_log SELECT event_id FROM applied_now")
    con.unregister("applied_now")


def test_events_recorded_by_many_processes_are_applied_once_each(db):
    ctx = mp.get_context("spawn")
    workers, per_worker = 4, 40
    services = [ctx.Process(target=_service, args=(str(db), w, per_worker)) for w in range(workers)]
    applier = ctx.Process(target=_applier, args=(str(db), 6.0))
    applier.start()
    for p in services:
        p.start()
    for p in [*services, applier]:
        p.join(timeout=120)
        assert p.exitcode == 0
    register_event_handler("offer.accepted", _log_applied)
    try:
        final = apply_events(db)  # whatever arrived after the applier stopped
        # Nothing left: applying again applies nothing (and publishes when asked).
        assert apply_events(db, publish=True).applied == 0
    finally:
        unregister_event_handler("offer.accepted")
    total = workers * per_worker
    assert len(read_events(db)) == total  # the retries recorded nothing
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT count(*), count(DISTINCT event_id), count(DISTINCT idempotency_key), "
            "max(seq) FROM events"
        ).fetchone()
        assert rows == (total, total, total, total)
        # The handler saw every event exactly once, across the applier process and this one.
        logged = con.execute("SELECT count(*), count(DISTINCT event_id) FROM applied_log")
        assert logged.fetchone() == (total, total)
        assert final.watermark == total
        assert con.execute("SELECT payload->>'installment_cents' FROM events LIMIT 1").fetchone()
    finally:
        con.close()
    # The applied events are in the published copy.
    assert _count(analyst_path(db), "SELECT count(*) FROM events") == total


def test_event_idempotency_and_the_inbox_is_append_only(db):
    first = record_event(db, "offer.accepted", "o1", {"a": 1}, idempotency_key="k1")
    again = record_event(db, "offer.accepted", "o1", {"a": 1}, idempotency_key="k1")
    assert again.duplicate and again.event_id == first.event_id and not first.duplicate
    with pytest.raises(IdempotencyConflict, match=first.event_id):
        record_event(db, "offer.accepted", "o1", {"a": 2}, idempotency_key="k1")
    with pytest.raises(InputError, match=r"payload\.borrower\.full_name"):
        record_event(db, "offer.accepted", "o1", {"borrower": {"full_name": "x"}})
    with pytest.raises(InputError, match="kind"):
        record_event(db, "Offer Accepted", "o1", {})
    raw = sqlite3.connect(inbox_path(db))
    try:
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute("UPDATE events SET kind = 'x'")
        with pytest.raises(sqlite3.DatabaseError, match="append-only"):
            raw.execute("DELETE FROM events")
    finally:
        raw.close()


def test_a_failing_handler_applies_nothing_and_the_events_stay_pending(db):
    record_event(db, "offer.rejected", "o9", {"why": "test"})

    def broken(con, events):
        con.execute("INSERT INTO store_meta VALUES ('half-applied', 'yes')")
        raise RuntimeError("handler bug")

    register_event_handler("offer.rejected", broken)
    try:
        with pytest.raises(RuntimeError):
            apply_events(db)
    finally:
        unregister_event_handler("offer.rejected")
    assert _count(db, "SELECT count(*) FROM events") == 0
    assert _count(db, "SELECT count(*) FROM store_meta WHERE key = 'half-applied'") == 0
    assert apply_events(db).applied == 1


def _readme_statements() -> list[str]:
    import re

    # The analysts' queries live in the SQL how-to since the README became the front door.
    root = Path(__file__).parents[2]
    pages = (root / "README.md", root / "docs" / "how-to" / "query-sql.md")
    readme = "\n".join(p.read_text() for p in pages)
    from repayplan.demo import EXAMPLE_QUERIES

    text = "\n".join([*re.findall(r"```sql\n(.*?)```", readme, re.S), *EXAMPLE_QUERIES])
    lines = [ln for ln in text.splitlines() if not ln.strip().startswith("--")]
    return [s.strip() for s in "\n".join(lines).split(";") if s.strip()]


def test_readme_and_demo_queries_run_on_the_published_copy(master):
    statements = _readme_statements()
    assert len(statements) >= 10
    con = connect_published(master)
    try:
        for sql in statements:
            con.execute(sql).fetchall()  # DuckDB 2.0 (Python)
    finally:
        con.close()
    out = subprocess.run(  # DuckDB 1.5.6 (the CLI)
        [str(CLI), "-readonly", "-bail", str(analyst_path(master)), "-c", ";\n".join(statements)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0 and "Error" not in out.stderr, out.stderr
