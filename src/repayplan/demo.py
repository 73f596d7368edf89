"""``repayplan demo``: build the demo portfolio, fit the risk model, re-plan it once; the
run writes its morning report (``reports/`` beside the database) and the demo prints its path.

The re-plan covers the loans the triggers select (new arrears, hardship requests, income
drops, scheduled reviews: about a tenth of the open book), so a 10,000-loan demo finishes in
a few minutes on two cores.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

from repayplan.errors import InputError
from repayplan.flows.run import replan
from repayplan.portfolio.replan import RUNNERS, RunSummary
from repayplan.store.connection import DEFAULT_DB, connect
from repayplan.store.demo import init_demo

log = logging.getLogger(__name__)

#: Three queries an analyst starts with (also printed by ``repayplan demo``).
EXAMPLE_QUERIES = (
    "-- the latest run: counts, seconds, selection gap\n"
    "SELECT run_id, as_of, status, loans_considered, loans_replanned, selection_method,\n"
    "       selection_gap, timings FROM runs ORDER BY started_at DESC LIMIT 1;",
    "-- chosen plans of the latest run by alternative, with the concession they give\n"
    "SELECT alternative, count(*) AS loans, sum(concession) AS concession,\n"
    "       avg(pd) AS avg_pd FROM latest_plan GROUP BY ALL ORDER BY loans DESC;",
    "-- why loans were picked, and which could not be planned\n"
    "SELECT reason, count(*) FROM (SELECT unnest(reasons) AS reason FROM replan_triggers)\n"
    "GROUP BY reason ORDER BY 2 DESC;\n"
    "SELECT stage, left(reason, 60) AS reason, count(*) FROM plan_failures GROUP BY ALL;",
)


def service_hint(db: str | Path, host: str = "127.0.0.1", port: int = 8000) -> str:
    """How to start the quote service on ``db`` and where the borrower page is (printed last
    by ``repayplan demo``)."""
    return (
        "The quote service and the borrower page (docs/service.md):\n"
        f"  repayplan api-key platform-a --db {db} --role platform   # prints a key once\n"
        f"  repayplan serve-api --db {db} --host {host} --port {port}\n"
        f"  API: http://{host}:{port}/v1 (docs http://{host}:{port}/docs) · "
        f"borrower page: http://{host}:{port}/borrower/"
    )


@dataclass
class DemoResult:
    """What the demo built and where: the database, the fitted model (or why not) and the
    run summary."""

    db: str
    loans: int
    as_of: date
    risk_model: str
    run: RunSummary
    queries: tuple[str, ...] = field(default=EXAMPLE_QUERIES)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``repayplan demo --json``)."""
        return {
            "db": self.db,
            "loans": self.loans,
            "as_of": self.as_of.isoformat(),
            "risk_model": self.risk_model,
            "run": self.run.to_dict(),
            "queries": list(self.queries),
            "report": self.run.report,
            "service": service_hint(self.db),
        }


def _fit_risk(db: str | Path) -> str:
    try:
        from repayplan.risk import pd_model
    except ImportError as exc:
        return f"not fitted ({exc})"
    try:
        report = pd_model.fit(db)
    except InputError as exc:
        return f"not fitted ({exc})"
    return f"{report.kind} {report.model_id} (AUC {report.auc:.3f})"


#: The demo keeps this share of loans on the champion policy (the HAMP waterfall), so the
#: champion–challenger comparison has data; a lender's own books start at 0.
DEMO_CHAMPION_SHARE = 0.05


def _demo_policy(db: str | Path) -> None:
    """Activate the default policy with the demo's champion share (one new version)."""
    from repayplan.store.schema import DEFAULT_POLICY

    params = {**DEFAULT_POLICY, "champion_share": DEMO_CHAMPION_SHARE}
    con = connect(db)
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute("UPDATE policy_versions SET active = false WHERE active")
        con.execute(
            "INSERT INTO policy_versions VALUES ('demo-v1', current_timestamp, ?, ?::JSON, true) "
            "ON CONFLICT DO UPDATE SET parameters = excluded.parameters, active = true",
            ["Default policy with a 5 % champion arm (demo)", json.dumps(params)],
        )
        con.execute("COMMIT")
    finally:
        con.close()


def demo(
    db: str | Path = DEFAULT_DB,
    loans: int = 10_000,
    seed: int = 7,
    as_of: date | None = None,
    runner: str = "processes",
    workers: int = 2,
) -> DemoResult:
    """Replace ``db`` by a fresh demo portfolio of ``loans`` loans, fit the risk model (when
    the risk layer can), and re-plan the triggered loans once as of the portfolio date.
    The run's options are checked before anything is built."""
    if runner not in RUNNERS:
        raise InputError(
            f"unknown runner {runner!r}; use one of {', '.join(RUNNERS)}", field="runner"
        )
    if not 1 <= workers <= 256:
        raise InputError(f"must be between 1 and 256, got {workers}", field="workers")
    summary = init_demo(db, loans=loans, seed=seed, as_of=as_of)
    _demo_policy(db)
    model = _fit_risk(db)
    run = replan(db, summary.as_of, runner=runner, workers=workers)
    return DemoResult(str(db), summary.loans, summary.as_of, model, run)
