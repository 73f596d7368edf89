"""A small demo portfolio (no run yet) and runs recorded through the store's own writer."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import pyarrow as pa
import pytest

from repayplan.portfolio.candidates import FAILURE_SCHEMA, INSTALLMENT_SCHEMA, PLAN_SCHEMA
from repayplan.store import connect, init_demo
from repayplan.store.results import RunRecord, RunTables, start_run, write_run
from tests.demo_copy import copy_demo

AS_OF = date(2025, 6, 30)


@pytest.fixture(scope="session")
def book_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("report") / "portfolio.duckdb"
    init_demo(path, loans=200, seed=3, as_of=AS_OF)
    return path


@pytest.fixture
def book(book_master: Path, tmp_path: Path) -> Path:
    return copy_demo(book_master, tmp_path)


def record_run(
    db: Path,
    run_id: str,
    *,
    status: str = "succeeded",
    failures: list[tuple[str, str, str]] = (),
    triggers: list[tuple[str, list[str], bool, str | None]] = (),
    message: str | None = None,
) -> str:
    """Record a finished run with no plans (and the given failure and trigger rows) through
    ``store.results``, the writer the nightly uses."""
    con = connect(db)
    try:
        run = RunRecord(run_id=run_id, as_of=AS_OF, policy_id="default-v1")
        run.parameters = {"policy": {"review_concession_threshold": 1000.0}}
        start_run(con, run)
        run.status = status
        run.finished_at = datetime.now()
        run.loans_considered = 200
        run.counts = {"triggered": len(triggers), "failures": len(failures)}
        run.message = message
        run.solver_stats = {"selection": {"limits": {}, "feasible": True, "reasons": []}}
        tables = RunTables(
            plans=PLAN_SCHEMA.empty_table(),
            installments=INSTALLMENT_SCHEMA.empty_table(),
            chosen=[],
            triggers=pa.table(
                {
                    "loan_id": pa.array([t[0] for t in triggers], pa.string()),
                    "reasons": pa.array([t[1] for t in triggers], pa.list_(pa.string())),
                    "eligible": pa.array([t[2] for t in triggers], pa.bool_()),
                    "ineligible_reason": pa.array([t[3] for t in triggers], pa.string()),
                }
            ),
            failures=pa.table(
                {
                    name: pa.array([f[i] for f in failures], pa.string())
                    for i, name in enumerate(FAILURE_SCHEMA.names)
                }
            ),
        )
        write_run(con, run, tables)
    finally:
        con.close()
    return run_id
