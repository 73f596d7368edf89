"""The morning report: what a nightly run decided, why, and what it is expected to do.

:func:`report` reads one run's stored results (read-only) and writes one self-contained HTML
page; :func:`summary_markdown` and :func:`summary_tables` give the same summary in the forms
the nightly flow publishes as Prefect artifacts. Every figure's SQL is in
:mod:`repayplan.report.queries` (and in ``docs/report.md``).
"""

from __future__ import annotations

from repayplan.report.build import ReportResult, report, report_path
from repayplan.report.summary import summary_markdown, summary_tables

__all__ = ["ReportResult", "report", "report_path", "summary_markdown", "summary_tables"]
