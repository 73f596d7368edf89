"""Demo books for the simulation tests: one whose generator never restructures (so its own
history is the contract's outcome), and one with a fitted risk model."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest
from threadpoolctl import threadpool_limits

from repayplan.risk.pd_model import fit
from repayplan.store.behaviour import BehaviourParams
from repayplan.store.demo import init_demo

AS_OF = date(2025, 6, 30)


@pytest.fixture(scope="session")
def truth_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """4,000 demo loans (seed 3) whose lender never restructured: the generator's history
    after any date is what the contract led to."""
    db = tmp_path_factory.mktemp("sim") / "truth.duckdb"
    init_demo(
        db, loans=4_000, seed=3, as_of=AS_OF, params=BehaviourParams(restructure_probability=0.0)
    )
    return db


@pytest.fixture(scope="session")
def fitted_book(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """3,000 demo loans (seed 5) with a fitted risk model (PD, burden curve, miss model)."""
    db = tmp_path_factory.mktemp("sim") / "fitted.duckdb"
    init_demo(db, loans=3_000, seed=5, as_of=AS_OF)
    with threadpool_limits(limits=1):
        fit(db)
    return db
