"""One small demo portfolio with a fitted risk model, shared by the risk tests (built once)."""

from __future__ import annotations

from datetime import date

import pytest
from threadpoolctl import threadpool_limits

from repayplan.risk.pd_model import fit
from repayplan.store.demo import init_demo

AS_OF = date(2025, 6, 30)


@pytest.fixture(scope="session")
def risk_db(tmp_path_factory):
    """The issue's acceptance book: 10,000 demo loans, seed 7, with behavioural ground truth."""
    db = tmp_path_factory.mktemp("risk") / "portfolio.duckdb"
    init_demo(db, loans=10_000, seed=7, as_of=AS_OF)
    return db


@pytest.fixture(scope="session")
def fitted(risk_db):
    """The report of one ``fit`` on ``risk_db`` (later tests score with that model)."""
    return fit(risk_db)


@pytest.fixture(scope="session", autouse=True)
def _one_thread_per_library():
    """The test machine has 2 cores shared with other suites: BLAS/OpenMP thread pools then
    spin against each other (a fit measured 4× slower), so the tests run them single-threaded."""
    with threadpool_limits(limits=1):
        yield
