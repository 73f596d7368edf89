"""End-to-end flow tests share one Prefect test server and one small demo portfolio."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from repayplan.prefect_env import configure

configure()

from prefect.testing.utilities import prefect_test_harness  # noqa: E402

from repayplan.store import init_demo  # noqa: E402
from tests.demo_copy import copy_demo  # noqa: E402

AS_OF = date(2025, 6, 30)


@pytest.fixture(scope="session", autouse=True)
def prefect_server():
    """One temporary Prefect server (and database) for the whole session; yields its URL."""
    from prefect.settings import PREFECT_API_URL

    with prefect_test_harness(server_startup_timeout=120):
        yield PREFECT_API_URL.value()


@pytest.fixture(scope="session")
def demo_master(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("flows") / "portfolio.duckdb"
    init_demo(path, loans=600, seed=5, as_of=AS_OF)
    return path


@pytest.fixture
def demo_db(demo_master: Path, tmp_path: Path) -> Path:
    return copy_demo(demo_master, tmp_path)
