"""A small demo portfolio shared by the portfolio tests (copied per test that writes)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from repayplan.store import init_demo
from tests.demo_copy import copy_demo

AS_OF = date(2025, 6, 30)


@pytest.fixture(scope="session")
def demo_db_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "portfolio.duckdb"
    init_demo(path, loans=400, seed=11, as_of=AS_OF)
    return path


@pytest.fixture
def demo_db(demo_db_master: Path, tmp_path: Path) -> Path:
    return copy_demo(demo_db_master, tmp_path)
