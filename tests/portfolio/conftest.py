"""A small demo portfolio shared by the portfolio tests (copied per test that writes)."""

from __future__ import annotations

import shutil
from datetime import date
from pathlib import Path

import pytest

from repayplan.store import init_demo

AS_OF = date(2025, 6, 30)


@pytest.fixture(scope="session")
def demo_db_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("demo") / "portfolio.duckdb"
    init_demo(path, loans=400, seed=11, as_of=AS_OF)
    return path


@pytest.fixture
def demo_db(demo_db_master: Path, tmp_path: Path) -> Path:
    target = tmp_path / "portfolio.duckdb"
    shutil.copy(demo_db_master, target)
    key = Path(str(demo_db_master) + ".pii-key")
    if key.exists():
        shutil.copy(key, Path(str(target) + ".pii-key"))
    return target
