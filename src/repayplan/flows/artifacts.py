"""Publish a nightly run's morning report to Prefect: the file, a Markdown summary, table
artifacts and a link, under stable keys so the Prefect UI shows each run's outcome."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from repayplan.report import summary_markdown, summary_tables
from repayplan.report.build import write_report
from repayplan.report.data import load

log = logging.getLogger(__name__)

#: Artifact keys (Prefect keeps every run's version under the same key).
SUMMARY_KEY = "nightly-summary"
LINK_KEY = "nightly-report"
TABLE_KEYS = {
    "triggers": "nightly-triggers",
    "alternatives": "nightly-alternatives",
    "limits": "nightly-limits",
    "failures": "nightly-failures",
}


def publish_report(
    db: str, run_id: str, out: str | None = None, *, artifacts: bool = True
) -> dict[str, Any]:
    """Write run ``run_id``'s report and publish it as artifacts of the current flow run.
    Returns ``{"path": ..., "artifacts": [keys]}``. With ``artifacts`` (the default) it must
    run inside a flow or task run; without, only the file is written (a run without
    Prefect) and Prefect is not imported."""
    data = load(db, run_id=run_id)
    result = write_report(data, db, out)
    path = Path(result.path).resolve()
    if not artifacts:
        return {"path": str(path), "artifacts": []}
    from prefect.artifacts import (
        create_link_artifact,
        create_markdown_artifact,
        create_table_artifact,
    )

    create_markdown_artifact(
        summary_markdown(data, str(path)),
        key=SUMMARY_KEY,
        description=f"Morning report summary of run {run_id}",
    )
    keys = [SUMMARY_KEY]
    for name, rows in summary_tables(data).items():
        if rows:
            create_table_artifact(rows, key=TABLE_KEYS[name], description=f"{name} of run {run_id}")
            keys.append(TABLE_KEYS[name])
    create_link_artifact(
        path.as_uri(),
        link_text=f"Morning report {run_id} ({path.name})",
        key=LINK_KEY,
        description=f"The self-contained HTML report of run {run_id}",
    )
    keys.append(LINK_KEY)
    return {"path": str(path), "artifacts": keys}
