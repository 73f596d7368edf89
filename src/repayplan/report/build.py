"""``report``: one run's stored results → one self-contained HTML file."""

from __future__ import annotations

import os
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from repayplan.errors import InputError
from repayplan.report.data import ReportData, load
from repayplan.report.render import SECTIONS, figures, render

#: Where reports go unless told otherwise: ``reports/`` beside the database file.
REPORT_FOLDER = "reports"


@dataclass
class ReportResult:
    """The file written and the headline figures (money in currency units)."""

    path: Path
    run_id: str
    as_of: str
    status: str
    sections: tuple[str, ...]
    figures: dict[str, Any]
    bytes: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``repayplan report --json``)."""
        return {
            "path": str(self.path),
            "run_id": self.run_id,
            "as_of": self.as_of,
            "status": self.status,
            "sections": list(self.sections),
            "figures": self.figures,
            "bytes": self.bytes,
        }


def report_path(db: str | Path, run_id: str, out: str | Path | None = None) -> Path:
    """``out/report-<run_id>.html`` (``out`` defaults to ``reports/`` beside ``db``)."""
    folder = Path(out) if out is not None else Path(db).resolve().parent / REPORT_FOLDER
    return folder / f"report-{run_id}.html"


def report(
    db: str | Path,
    run_id: str | None = None,
    latest: bool = False,
    out: str | Path | None = None,
    currency: str | None = None,
) -> ReportResult:
    """Write the morning report of run ``run_id`` (or, with ``latest`` or no id, the newest
    finished run) of the store ``db`` into the folder ``out``; returns where and what.

    Reads only what the run stored. The file is written whole to a temporary name and then
    renamed, so a reader never sees half a report. ``currency`` labels amounts (default:
    ``store_meta.currency``, else EUR).
    """
    if run_id is not None and latest:
        raise InputError("give either a run id or --latest, not both", field="run_id")
    return write_report(load(db, run_id=run_id, currency=currency), db, out)


def write_report(data: ReportData, db: str | Path, out: str | Path | None = None) -> ReportResult:
    """Render ``data`` (already loaded from ``db``) into its file under ``out``."""
    page = render(data)
    path = report_path(db, data.run_id, out)
    path.parent.mkdir(parents=True, exist_ok=True)
    # A unique temporary name opened with "x" (unlike mkstemp, it keeps the umask's mode).
    tmp = path.parent / f".{path.name}.{uuid.uuid4().hex[:8]}.tmp"
    try:
        with open(tmp, "x", encoding="utf-8") as fh:
            fh.write(page)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return ReportResult(
        path=path,
        run_id=data.run_id,
        as_of=data.as_of.isoformat(),
        status=str(data.run.get("status")),
        sections=tuple(a for a, _ in SECTIONS),
        figures=figures(data),
        bytes=len(page.encode("utf-8")),
    )
