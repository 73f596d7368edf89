"""A small demo portfolio for the offer tests (built once per session, copied per test)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from repayplan.store import init_demo
from tests.demo_copy import copy_demo

AS_OF = date(2025, 6, 30)


@pytest.fixture(scope="session")
def offers_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("offers") / "portfolio.duckdb"
    init_demo(path, loans=200, seed=7, as_of=AS_OF)
    return path


@pytest.fixture
def book(offers_master: Path, tmp_path: Path) -> Path:
    return copy_demo(offers_master, tmp_path)
