"""The report's summary as Markdown and small tables (what the nightly publishes to Prefect).

No Prefect here: plain text and lists of rows, published by ``repayplan.flows.artifacts``.
"""

from __future__ import annotations

from typing import Any

from repayplan.report.data import ReportData
from repayplan.report.render import count, headline, limit_rows, money, pct


def summary_markdown(data: ReportData, report_file: str | None = None) -> str:
    """The at-a-glance panel as Markdown (money in the report's currency)."""
    h = headline(data)
    cur = data.currency
    run = data.run
    budget = f" of {money(h.budget, 0)} budget" if h.budget else ""
    lines = [
        f"# Nightly run {data.run_id} — as of {data.as_of} — {run.get('status')}",
        "",
        "| | |",
        "|---|---|",
        f"| loans considered | {count(h.considered)} |",
        f"| triggered | {count(h.triggered)} |",
        f"| re-planned | {count(h.replanned)} |",
        f"| restructured | {count(h.restructured)} |",
        f"| concession ({cur}) | {money(h.concession)}{budget} |",
        f"| expected loss before → after ({cur}) | {money(h.el_before)} → {money(h.el_after)} |",
        f"| mean PD before → after | {pct(h.pd_before)} → {pct(h.pd_after)} |",
        f"| manual review (no feasible plan) | {count(h.manual_review)} |",
        f"| plans to approve | {count(h.needs_approval)} |",
        f"| failures | {count(h.failed)} |",
        f"| earlier restructured plans keeping up | {count(h.earlier_on_track)} of "
        f"{count(h.earlier_plans)} |",
        "",
    ]
    if h.replanned == 0:
        lines.append("**No loan was re-planned in this run.**")
    if h.binding:
        lines.append("**Binding limits**")
        lines += [f"- {r.name}: {r.advice}" for r in h.binding]
    else:
        lines.append("No portfolio limit bound.")
    if data.simulation is None:
        lines += ["", "No simulation for this run."]
    if run.get("message"):
        lines += ["", f"_{run['message']}_"]
    if report_file:
        lines += ["", f"Full report: `{report_file}`"]
    return "\n".join(lines) + "\n"


def _records(frame, columns: dict[str, str]) -> list[dict[str, Any]]:
    out = []
    for rec in frame.to_dict("records"):
        row = {}
        for key, label in columns.items():
            v = rec.get(key)
            row[label] = float(v) if hasattr(v, "as_tuple") else v
        out.append(row)
    return out


def summary_tables(data: ReportData) -> dict[str, list[dict[str, Any]]]:
    """Small tables under stable names: ``triggers``, ``alternatives``, ``limits``,
    ``failures`` (rows as dicts; money in currency units)."""
    cur = data.currency
    return {
        "triggers": _records(data.frame("triggers"), {"reason": "trigger", "loans": "loans"}),
        "alternatives": _records(
            data.frame("alternatives"),
            {
                "alternative": "alternative",
                "loans": "loans",
                "concession": f"concession ({cur})",
                "expected_loss": f"expected loss ({cur})",
            },
        ),
        "limits": [
            {
                "limit": r.name,
                "used": round(r.used, 2),
                "limit_value": round(r.limit, 2),
                "binding": r.binding,
                f"worth of one step ({cur})": round(r.worth, 2),
            }
            for r in limit_rows(data)
        ],
        "failures": _records(
            data.frame("failures"),
            {"stage": "stage", "reason": "reason", "loans": "loans"},
        ),
    }
