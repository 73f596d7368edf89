"""The nightly's part in the offer lifecycle: offers for the plans a run chose, and the
expiry of open offers past their ``expires_at`` — called by the flow right after the run's
results are committed (``portfolio.replan.finish_run(after_write=...)``)."""

from __future__ import annotations

from typing import Any

import duckdb

from repayplan.offers.lifecycle import create_run_offers, expire_offers


def offer_run_plans(con: duckdb.DuckDBPyConnection, run: Any) -> dict[str, int]:
    """Offer the run's chosen plans (``keep`` left out) and expire stale offers; returns
    the counts kept in the run's ``counts`` (``offers_created``, ``offers_expired``)."""
    return {
        "offers_created": create_run_offers(con, run.run_id),
        "offers_expired": expire_offers(con),
    }
