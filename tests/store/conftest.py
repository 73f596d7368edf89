"""A small demo portfolio shared by the store tests (built once per session)."""

from __future__ import annotations

from datetime import date

import pytest

from repayplan.store.demo import init_demo

AS_OF = date(2026, 6, 30)


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("demo") / "portfolio.duckdb"
    summary = init_demo(db, loans=4000, seed=11, as_of=AS_OF)
    return db, summary
