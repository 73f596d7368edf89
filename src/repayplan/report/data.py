"""Read what one nightly run stored into frames the report renders (read-only; no SQL but
:mod:`repayplan.report.queries`)."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd

from repayplan.errors import InputError
from repayplan.report.queries import BY_NAME
from repayplan.store.connection import connect

#: Loans drilled into: every manual review first, then the largest concessions, up to this many.
DRILLDOWN_MAX = 20
#: Largest-concession loans drilled into (when there is room after the manual reviews).
DRILLDOWN_TOP_CONCESSIONS = 8
#: The report's currency when the store names none (``store_meta`` key ``currency``).
DEFAULT_CURRENCY = "EUR"


@dataclass
class ReportData:
    """Everything one report shows. Frames are the results of the named queries; money in
    currency units, PDs and shares as fractions."""

    run: dict[str, Any]
    currency: str
    frames: dict[str, pd.DataFrame] = field(default_factory=dict)
    drilldown_loans: list[str] = field(default_factory=list)
    simulation: dict[str, Any] | None = None

    @property
    def run_id(self) -> str:
        return str(self.run["run_id"])

    @property
    def as_of(self) -> date:
        return self.run["as_of"]

    def frame(self, name: str) -> pd.DataFrame:
        return self.frames[name]

    @property
    def restructured(self) -> pd.DataFrame:
        """Re-planned loans whose chosen plan changes the contract (not ``keep``)."""
        loans = self.frames["loans"]
        return loans[loans["alternative"] != "keep"]

    @property
    def manual_review(self) -> pd.DataFrame:
        """``plan_failures`` rows of stage ``manual_review`` (loans with no feasible plan)."""
        failures = self.frames["failures"]
        return failures[failures["stage"] == "manual_review"]

    @property
    def failed(self) -> pd.DataFrame:
        """``plan_failures`` rows of every other stage (input, quote, compliance)."""
        failures = self.frames["failures"]
        return failures[failures["stage"] != "manual_review"]


def _frame(con: duckdb.DuckDBPyConnection, name: str, **params: Any) -> pd.DataFrame:
    sql = BY_NAME[name].sql
    return con.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql}).df()


def _has_table(con: duckdb.DuckDBPyConnection, table: str) -> bool:
    rows = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = ?", [table]
    ).fetchall()
    return bool(rows[0][0])


def resolve_run(con: duckdb.DuckDBPyConnection, run_id: str | None) -> str:
    """``run_id`` if the store has it, else (``None``) the newest finished (``succeeded`` or
    ``partial``) nightly run: latest ``as_of``, then latest finish."""
    if run_id is not None:
        found = con.execute("SELECT count(*) FROM runs WHERE run_id = ?", [run_id]).fetchall()
        if not found[0][0]:
            raise InputError("no such run", field="run_id", record=run_id)
        return run_id
    rows = con.execute(
        "SELECT run_id FROM runs WHERE status IN ('succeeded', 'partial') "
        "AND coalesce(kind, 'nightly') = 'nightly' "
        "ORDER BY as_of DESC, finished_at DESC NULLS LAST, started_at DESC LIMIT 1"
    ).fetchall()
    if not rows:
        raise InputError("the store has no finished run to report on", field="run_id")
    return str(rows[0][0])


def _currency(con: duckdb.DuckDBPyConnection) -> str:
    rows = con.execute("SELECT value FROM store_meta WHERE key = 'currency'").fetchall()
    return str(rows[0][0]) if rows else DEFAULT_CURRENCY


def _json(value: Any) -> Any:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return {}
    return json.loads(value) if isinstance(value, str) else value


def load(db: str | Path, run_id: str | None = None, currency: str | None = None) -> ReportData:
    """Read run ``run_id`` (default: the newest finished run) of the store ``db``."""
    if not Path(db).exists():
        raise InputError("no such database file", field="db", record=str(db))
    con = connect(db, read_only=True)
    try:
        run_id = resolve_run(con, run_id)
        run_row = _frame(con, "run", run_id=run_id).iloc[0].to_dict()
        for key in ("counts", "timings", "solver_stats", "parameters"):
            run_row[key] = _json(run_row[key])
        if isinstance(run_row["as_of"], pd.Timestamp):
            run_row["as_of"] = run_row["as_of"].date()
        data = ReportData(run=run_row, currency=currency or _currency(con))
        for name in (
            "triggers",
            "ineligible",
            "alternatives",
            "limits",
            "loans",
            "failures",
            "reviews",
            "adherence",
            "book_restructured",
            "manual_review_loans",
        ):
            data.frames[name] = _frame(con, name, run_id=run_id)
        data.drilldown_loans = _drilldown_loans(data)
        loans = data.drilldown_loans
        data.frames["drilldown_plans"] = _frame(con, "drilldown_plans", run_id=run_id, loans=loans)
        data.frames["drilldown_schedules"] = _frame(
            con, "drilldown_schedules", run_id=run_id, loans=loans
        )
        if _has_table(con, "simulation_runs") and _has_table(con, "simulation_results"):
            sims = _frame(con, "simulation_run", run_id=run_id)
            if len(sims):
                sim = sims.iloc[0].to_dict()
                data.simulation = {
                    "run": sim,
                    "results": _frame(con, "simulation_results", sim_id=sim["sim_id"]),
                }
    finally:
        con.close()
    return data


def _drilldown_loans(data: ReportData) -> list[str]:
    """Loans in manual review (no feasible plan, or a chosen plan needing approval), then the
    largest concessions, at most :data:`DRILLDOWN_MAX`."""
    picked: list[str] = [str(v) for v in data.frames["manual_review_loans"]["loan_id"]]
    picked += [str(v) for v in data.frames["reviews"]["loan_id"]]
    top = data.restructured
    top = top[top["concession"].astype(float) > 0]["loan_id"].head(DRILLDOWN_TOP_CONCESSIONS)
    picked = list(dict.fromkeys(picked))[: DRILLDOWN_MAX - min(len(top), DRILLDOWN_MAX // 2)]
    picked = list(dict.fromkeys([*picked, *map(str, top)]))
    return picked[:DRILLDOWN_MAX]
