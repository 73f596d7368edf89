"""The morning report as one self-contained HTML page (inline CSS, SVG charts, a small
sorting script; nothing loaded from anywhere). Pure: :class:`ReportData` in, text out."""

from __future__ import annotations

import html
import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

import pandas as pd

import repayplan.report.charts as charts
from repayplan.report.assets import CSP, CSS, JS
from repayplan.report.data import ReportData
from repayplan.report.queries import BY_NAME

#: The sections of the report, in order: (anchor, title). Tests check each one is present.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("glance", "At a glance"),
    ("triggers", "Re-planned loans and why"),
    ("alternatives", "Chosen alternatives"),
    ("concession", "Concession against the budget"),
    ("collections", "Expected collections against the floors"),
    ("risk", "Default risk before and after"),
    ("limits", "Portfolio limits: which bound, and what relaxing each is worth"),
    ("reviews", "Manual reviews and failures"),
    ("performance", "How earlier restructured plans are performing"),
    ("simulation", "Policy simulation"),
    ("drilldown", "Loan drill-down"),
)

LIMIT_KIND_FLOOR = "collection floor month "
#: Most rows a table shows (the page stays small for a million-loan book).
TABLE_ROWS_MAX = 500
#: Most loans drawn in the PD scatter (the largest concessions first).
SCATTER_POINTS_MAX = 2000


def esc(value: Any) -> str:
    """HTML-escaped text of ``value`` (``None`` and NaN as an empty string)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return html.escape(str(value), quote=True)


def _num(value: Any) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def money(value: Any, digits: int = 2) -> str:
    """``1234.5`` → ``1,234.50`` (currency units; the currency is in the column header)."""
    f = _num(value)
    return "–" if f is None else f"{f:,.{digits}f}"


def pct(value: Any, digits: int = 1) -> str:
    """A fraction as a percentage: ``0.1234`` → ``12.3%``."""
    f = _num(value)
    return "–" if f is None else f"{f * 100:.{digits}f}%"


def count(value: Any) -> str:
    f = _num(value)
    return "–" if f is None else f"{f:,.0f}"


@dataclass(frozen=True)
class Col:
    """A table column: the frame's ``key``, the header text and the kind of value
    (``text``, ``money``, ``pct``, ``int``, ``num``, ``date``)."""

    key: str
    header: str
    kind: str = "text"


_FORMAT: dict[str, Callable[[Any], str]] = {
    "money": money,
    "pct": pct,
    "int": count,
    "num": lambda v: "–" if _num(v) is None else f"{_num(v):,.4g}",
    "date": lambda v: "" if v is None or v is pd.NaT else esc(str(v)[:10]),
    "text": esc,
}


def table(
    rows: pd.DataFrame | Sequence[dict[str, Any]],
    cols: Sequence[Col],
    *,
    table_id: str | None = None,
    scroll: bool = False,
    row_class: Callable[[dict[str, Any]], str] | None = None,
    limit: int = TABLE_ROWS_MAX,
) -> str:
    """A sortable HTML table of ``rows`` (numbers carry their raw value in ``data-v``); at
    most ``limit`` rows are shown, with a note saying how many the query gives."""
    records = rows.to_dict("records") if isinstance(rows, pd.DataFrame) else list(rows)
    total = len(records)
    records = records[:limit]
    head = "".join(
        f'<th class="{"num" if c.kind in ("money", "pct", "int", "num", "fmt") else ""}" '
        f'scope="col">{esc(c.header)}</th>'
        for c in cols
    )
    body = []
    for rec in records:
        cells = []
        for c in cols:
            v = rec.get(c.key)
            if c.kind == "fmt":  # (shown text, raw value to sort by)
                shown, raw = v
                cells.append(f'<td class="num" data-v="{_num(raw) or 0}">{esc(shown)}</td>')
                continue
            text = _FORMAT[c.kind](v)
            if c.kind in ("money", "pct", "int", "num"):
                raw = _num(v)
                cells.append(f'<td class="num" data-v="{"" if raw is None else raw}">{text}</td>')
            else:
                cells.append(f"<td>{text}</td>")
        cls = row_class(rec) if row_class else ""
        body.append(f'<tr class="{cls}">' + "".join(cells) + "</tr>")
    ident = f' id="{esc(table_id)}"' if table_id else ""
    out = (
        f'<table class="data sortable"{ident}><thead><tr>{head}</tr></thead>'
        f"<tbody>{''.join(body)}</tbody></table>"
    )
    if total > len(records):
        out += (
            f'<p class="note">Showing the first {count(len(records))} of {count(total)} rows; '
            "the section's SQL gives them all.</p>"
        )
    return f'<div class="scroll">{out}</div>' if scroll else out


def _sql(*names: str) -> str:
    parts = "".join(
        f'<p class="note">{esc(BY_NAME[n].figure)} — query <code>{n}</code></p>'
        f'<pre class="sql">{esc(BY_NAME[n].sql)}</pre>'
        for n in names
    )
    return f'<details class="sql"><summary>SQL behind this section</summary>{parts}</details>'


def _section(anchor: str, lead: str, body: str, *sql: str) -> str:
    title = dict(SECTIONS)[anchor]
    return (
        f'<section class="card" id="{anchor}"><h2>{esc(title)}</h2>'
        f'<p class="lead">{lead}</p>{body}{_sql(*sql) if sql else ""}</section>'
    )


def _empty(text: str) -> str:
    return f'<p class="empty">{esc(text)}</p>'


def _figure(svg: str) -> str:
    return f'<figure class="chart">{svg}</figure>'


# --------------------------------------------------------------------------- derived figures


@dataclass(frozen=True)
class LimitRow:
    """One portfolio limit as the report reads it (money in currency units)."""

    name: str
    used: float
    limit: float
    relaxed_to: float
    price: float
    money: bool
    binding: bool
    step: float
    worth: float
    advice: str


def _step(limit: float) -> float:
    """The relaxation step a person thinks in: 10,000 for large budgets, a tenth of the
    limit's order of magnitude below that."""
    if limit >= 100_000:
        return 10_000.0
    return float(10 ** max(math.floor(math.log10(max(abs(limit), 10.0))) - 1, 0))


def limit_rows(data: ReportData) -> list[LimitRow]:
    """The limits stored by the run's selection, with what relaxing each is worth."""
    cur = data.currency
    out = []
    for rec in data.frame("limits").to_dict("records"):
        name = str(rec["name"])
        used, limit = float(rec["used"]), float(rec["limit"])
        relaxed = _num(rec.get("relaxed_to"))
        relaxed = limit if relaxed is None else relaxed
        price = _num(rec.get("price")) or 0.0
        is_money = name == "concession budget" or name.startswith(LIMIT_KIND_FLOOR)
        floor = name.startswith(LIMIT_KIND_FLOOR)
        gap = (used - relaxed) if floor else (relaxed - used)
        tight = gap <= max(1e-6 * abs(relaxed), 0.01 if is_money else 0.5)
        binding = price > 1e-9 or (tight and relaxed != 0)
        step = _step(limit) if is_money else 1.0
        worth = price * step
        if name == "concession budget":
            what = f"One more {money(step, 0)} {cur} of concession budget"
        elif floor:
            what = f"Lowering the month-{name[-1]} floor by {money(step, 0)} {cur}"
        elif name.startswith("segment cap"):
            what = f"Allowing one more restructure in {name.removeprefix('segment cap ')}"
        elif name == "review capacity":
            what = "One more manual-review slot"
        else:
            what = f"Relaxing {name} by {money(step, 0)}"
        if price > 1e-9:
            advice = (
                f"{what} would add about {money(worth, 0)} {cur} of expected value "
                "(NPV at the hurdle rate less expected loss)."
            )
        elif binding:
            advice = f"{what}: at its limit, but relaxing it would add no measurable value."
        else:
            slack = money(gap, 0) + (f" {cur}" if is_money else "")
            advice = f"Not binding ({slack} to spare): relaxing it adds nothing."
        if relaxed != limit:
            advice = (
                f"Could not be met: {money(limit, 0)} required, relaxed to {money(relaxed, 0)}. "
                + advice
            )
        out.append(
            LimitRow(name, used, limit, relaxed, price, is_money, binding, step, worth, advice)
        )
    return out


@dataclass(frozen=True)
class Headline:
    """The figures of the at-a-glance panel and the Prefect summary."""

    considered: int
    triggered: int
    replanned: int
    restructured: int
    kept: int
    concession: float
    budget: float | None
    manual_review: int
    needs_approval: int
    failed: int
    el_before: float
    el_after: float
    pd_before: float | None
    pd_after: float | None
    binding: list[LimitRow]
    earlier_plans: int
    earlier_on_track: int
    early_warnings: int
    replanned_off_track: int
    book_restructured: int
    book_current: int


def headline(data: ReportData) -> Headline:
    """The at-a-glance figures, all from the run's stored rows."""
    run = data.run
    counts = run.get("counts") or {}
    loans = data.frame("loans")
    restructured = data.restructured
    el_before = float(restructured["expected_loss_before"].astype(float).sum())
    el_after = float(restructured["expected_loss_after"].astype(float).sum())
    pd_b = restructured["pd_before"].astype(float)
    pd_a = restructured["pd_after"].astype(float)
    limits = limit_rows(data)
    budget = next((r.limit for r in limits if r.name == "concession budget"), None)
    adherence = data.frame("adherence")
    book = data.frame("book_restructured")
    return Headline(
        considered=int(run.get("loans_considered") or 0),
        triggered=int(counts.get("triggered", 0)),
        replanned=len(loans),
        restructured=len(restructured),
        kept=len(loans) - len(restructured),
        concession=float(data.frame("alternatives")["concession"].astype(float).sum()),
        budget=budget,
        manual_review=int(data.manual_review["loans"].sum()),
        needs_approval=len(data.frame("reviews")),
        failed=int(data.failed["loans"].sum()),
        el_before=el_before,
        el_after=el_after,
        pd_before=float(pd_b.mean()) if len(pd_b) else None,
        pd_after=float(pd_a.mean()) if len(pd_a) else None,
        binding=[r for r in limits if r.binding],
        earlier_plans=len(adherence),
        earlier_on_track=int((adherence["installments_missed"] == 0).sum()),
        early_warnings=int((adherence["installments_missed"] > 0).sum()),
        replanned_off_track=int(
            ((adherence["installments_missed"] > 0) & adherence["replanned_tonight"].fillna(False))
            .astype(bool)
            .sum()
        ),
        book_restructured=int(book["loans"].sum()),
        book_current=int(book.loc[book["bucket"] == "current", "loans"].sum()),
    )


# --------------------------------------------------------------------------- sections


def _kpi(label: str, value: str, sub: str = "", cls: str = "") -> str:
    return (
        f'<div class="kpi {cls}"><div class="label">{esc(label)}</div>'
        f'<div class="value">{value}</div><div class="sub">{sub}</div></div>'
    )


def _glance(data: ReportData, h: Headline) -> str:
    cur = data.currency
    share = (
        f"{h.concession / h.budget * 100:.1f}% of the {money(h.budget, 0)} budget"
        if (h.budget)
        else "no budget set"
    )
    saved = h.el_before - h.el_after
    kpis = "".join(
        [
            _kpi("Loans re-planned", count(h.replanned), f"of {count(h.triggered)} triggered"),
            _kpi(
                "Restructured",
                count(h.restructured),
                f"{count(h.kept)} kept their contract",
                "good" if h.restructured else "",
            ),
            _kpi(f"Concession ({cur})", money(h.concession, 0), share),
            _kpi(
                f"Expected loss {'saved' if saved >= 0 else 'added'} ({cur})",
                money(abs(saved), 0),
                f"{money(h.el_before, 0)} → {money(h.el_after, 0)} on restructured loans",
                "good" if saved > 0 else "warn" if saved < 0 else "",
            ),
            _kpi(
                "Manual review",
                count(h.manual_review + h.needs_approval),
                f"{count(h.manual_review)} no feasible plan · {count(h.needs_approval)} to approve",
                "warn" if h.manual_review else "",
            ),
            _kpi("Failures", count(h.failed), "loans not planned", "warn" if h.failed else ""),
            _kpi(
                "Earlier plans on track",
                f"{count(h.earlier_on_track)} / {count(h.earlier_plans)}"
                if h.earlier_plans
                else "–",
                f"{count(h.early_warnings)} early warnings"
                if h.earlier_plans
                else "none tracked yet",
                "warn" if h.early_warnings else "",
            ),
        ]
    )
    items = []
    if h.replanned == 0:
        items.append("<li><b>No loan was re-planned in this run.</b></li>")
    else:
        reasons = data.frame("triggers")
        why = ", ".join(
            f"{esc(r['reason']).replace('_', ' ')} ({count(r['loans'])})"
            for r in reasons.head(4).to_dict("records")
        )
        items.append(
            f"<li><b>{count(h.restructured)} loans were restructured</b> out of "
            f"{count(h.replanned)} re-planned ({count(h.triggered)} triggered): {why}.</li>"
        )
    items.append(
        f"<li><b>It cost {money(h.concession, 0)} {esc(cur)}</b> of concession ({share}); "
        f"on the restructured loans expected loss goes from {money(h.el_before, 0)} to "
        f"{money(h.el_after, 0)} {esc(cur)} and mean PD from {pct(h.pd_before)} to "
        f"{pct(h.pd_after)}.</li>"
    )
    if h.binding:
        top = max(h.binding, key=lambda r: r.worth)
        others = len(h.binding) - 1
        more = f" ({others} more bound)" if others else ""
        items.append(f"<li><b>Binding limit: {esc(top.name)}</b>{more}. {esc(top.advice)}</li>")
    else:
        items.append("<li><b>No portfolio limit bound</b>: every plan was chosen on merit.</li>")
    if h.earlier_plans:
        items.append(
            f"<li><b>Earlier restructured plans: {count(h.earlier_on_track)} of "
            f"{count(h.earlier_plans)} keeping up</b>; {count(h.early_warnings)} early "
            f"warnings, {count(h.replanned_off_track)} of them re-planned tonight as off "
            "track.</li>"
        )
    else:
        items.append(
            "<li><b>No restructured plan of an earlier run is being tracked yet</b>; of the "
            f"{count(h.book_restructured)} open loans restructured before, "
            f"{count(h.book_current)} are current.</li>"
        )
    if h.failed:
        items.append(
            f"<li><b>{count(h.failed)} loans failed</b> to plan: see the reasons below.</li>"
        )
    sim = data.simulation
    if sim is None:
        items.append("<li>No simulation for this run.</li>")
    return (
        f'<div class="kpis" id="kpis">{kpis}</div>'
        f'<section class="glance" id="glance"><h2>At a glance</h2><ul>{"".join(items)}</ul>'
        "</section>"
    )


def _triggers(data: ReportData, h: Headline) -> str:
    trig = data.frame("triggers")
    inel = data.frame("ineligible")
    if trig.empty:
        body = _empty("No loan was re-planned in this run: no trigger fired.")
    else:
        chart = charts.hbar(
            [str(r).replace("_", " ") for r in trig["reason"]],
            trig["loans"].astype(float).tolist(),
            "Loans per trigger",
            "loans (a loan may have several reasons)",
        )
        tables = table(
            trig,
            [
                Col("reason", "trigger"),
                Col("loans", "loans", "int"),
                Col("eligible", "re-planned", "int"),
                Col("not_eligible", "not eligible", "int"),
            ],
            table_id="t-triggers",
        )
        if not inel.empty:
            tables += '<h3 class="note">Triggered but not re-planned</h3>' + table(
                inel, [Col("reason", "reason"), Col("loans", "loans", "int")]
            )
        body = f'<div class="grid2"><div>{_figure(chart)}</div><div>{tables}</div></div>'
    lead = (
        f"{count(h.triggered)} loans of {count(h.considered)} open ones were triggered; "
        f"{count(h.replanned)} were re-planned."
    )
    return _section("triggers", lead, body, "triggers", "ineligible")


def _alternatives(data: ReportData, h: Headline) -> str:
    alts = data.frame("alternatives")
    cur = data.currency
    if alts.empty:
        body = _empty("No plan was chosen in this run.")
    else:
        chart = charts.hbar(
            [str(a).replace("_", " ") for a in alts["alternative"]],
            alts["loans"].astype(float).tolist(),
            "Chosen plan per loan",
            "loans",
            color=charts.TEAL,
        )
        tab = table(
            alts,
            [
                Col("alternative", "alternative"),
                Col("loans", "loans", "int"),
                Col("concession", f"concession ({cur})", "money"),
                Col("avg_pd", "mean PD", "pct"),
                Col("expected_loss", f"expected loss ({cur})", "money"),
                Col("forborne_principal", f"forborne ({cur})", "money"),
            ],
            table_id="t-alternatives",
        )
        body = f'<div class="grid2 wide"><div>{_figure(chart)}</div><div>{tab}</div></div>'
    lead = (
        "<code>keep</code> is the contract as it stands; every other alternative is an "
        "optimised plan (schedules, reasons and figures in the drill-down)."
    )
    return _section("alternatives", lead, body, "alternatives")


def _concession(data: ReportData, h: Headline) -> str:
    cur = data.currency
    chart = charts.bullet(h.concession, h.budget, "Concession spent against the budget", cur)
    loans = data.restructured
    by_seg = (
        loans.assign(concession=loans["concession"].astype(float))
        .groupby("segment", dropna=False)["concession"]
        .agg(["count", "sum"])
        .reset_index()
        .rename(columns={"count": "loans", "sum": "concession"})
        .sort_values("concession", ascending=False)
    )
    seg = (
        table(
            by_seg,
            [
                Col("segment", "segment"),
                Col("loans", "restructured loans", "int"),
                Col("concession", f"concession ({cur})", "money"),
            ],
        )
        if len(by_seg)
        else _empty("No concession: no loan was restructured.")
    )
    share = f"{h.concession / h.budget * 100:.2f}%" if h.budget else "–"
    lead = (
        f"Concession = exposure less the plan's NPV at the hurdle rate (what the lender gives "
        f"up). Spent <b>{money(h.concession)} {esc(cur)}</b> of "
        f"{money(h.budget) if h.budget else 'no'} {esc(cur)} budget ({share})."
    )
    body = f'<div class="grid2"><div>{_figure(chart)}</div><div>{seg}</div></div>'
    return _section("concession", lead, body, "alternatives", "limits", "loans")


def _collections(data: ReportData, h: Headline) -> str:
    cur = data.currency
    rows = [r for r in limit_rows(data) if r.name.startswith(LIMIT_KIND_FLOOR)]
    if not rows:
        return _section(
            "collections",
            "Expected cash per month of the chosen plans, against the policy's floors.",
            _empty("No collection floors were set for this run."),
            "limits",
        )
    rows.sort(key=lambda r: r.name)
    months = [f"month {r.name[-1]}" for r in rows]
    chart = charts.floors_chart(months, [r.used for r in rows], [r.relaxed_to for r in rows], cur)
    tab = table(
        [
            {
                "month": m,
                "expected": r.used,
                "floor": r.limit,
                "margin": r.used - r.relaxed_to,
                "state": "binding" if r.binding else "met",
            }
            for m, r in zip(months, rows, strict=True)
        ],
        [
            Col("month", "month after the run"),
            Col("expected", f"expected ({cur})", "money"),
            Col("floor", f"floor ({cur})", "money"),
            Col("margin", f"margin ({cur})", "money"),
            Col("state", "state"),
        ],
        table_id="t-collections",
    )
    lead = (
        "Expected cash in each of the next three months from the re-planned loans (each "
        "installment × the probability the borrower has not defaulted by then), as the "
        "selection counted it, against the policy's floor."
    )
    body = f'<div class="grid2"><div>{_figure(chart)}</div><div>{tab}</div></div>'
    return _section("collections", lead, body, "limits")


def _risk(data: ReportData, h: Headline) -> str:
    cur = data.currency
    loans = data.restructured
    if loans.empty:
        return _section(
            "risk",
            "PD and expected loss of the contract (before) against the chosen plan (after).",
            _empty("No loan was restructured: risk is unchanged."),
            "loans",
        )
    f = loans.assign(
        el_b=loans["expected_loss_before"].astype(float),
        el_a=loans["expected_loss_after"].astype(float),
    )
    per_alt = f.groupby("alternative")[["el_b", "el_a"]].sum().reset_index()
    bars = charts.grouped_bars(
        [str(a).replace("_", " ") for a in per_alt["alternative"]],
        {"before (contract)": per_alt["el_b"].tolist(), "after (chosen)": per_alt["el_a"].tolist()},
        "Expected loss before and after, by chosen plan",
        f"expected loss ({cur})",
        currency=cur,
        colors=(charts.GREY, charts.TEAL),
    )
    drawn = loans.head(SCATTER_POINTS_MAX)  # ordered by concession, largest first
    scatter = charts.scatter_before_after(
        drawn["pd_before"].astype(float).tolist(),
        drawn["pd_after"].astype(float).tolist(),
        "PD per restructured loan"
        + (f" (largest {count(len(drawn))} concessions)" if len(drawn) < len(loans) else ""),
    )
    summary = table(
        [
            {
                "what": "mean PD",
                "before": pct(h.pd_before),
                "after": pct(h.pd_after),
                "change": f"{((h.pd_after or 0) - (h.pd_before or 0)) * 100:+.1f} pts",
            },
            {
                "what": f"expected loss ({cur})",
                "before": money(h.el_before),
                "after": money(h.el_after),
                "change": money(h.el_after - h.el_before),
            },
        ],
        [Col("what", ""), Col("before", "before"), Col("after", "after"), Col("change", "change")],
        table_id="t-risk",
    )
    lead = (
        f"{count(len(loans))} restructured loans: the contract's PD and LGD-weighted expected "
        "loss (before) against the chosen plan's, both computed exactly on the cent-exact "
        "schedules."
    )
    body = (
        f'<div class="grid2"><div>{_figure(bars)}</div><div>{_figure(scatter)}</div></div>{summary}'
    )
    return _section("risk", lead, body, "loans")


def _limits(data: ReportData, h: Headline) -> str:
    cur = data.currency
    rows = limit_rows(data)
    if not rows:
        return _section(
            "limits",
            "The selection's limits and their multipliers.",
            _empty("The run stored no portfolio limits (no loan reached the selection)."),
            "limits",
        )
    recs = [
        {
            "name": r.name,
            "used": (money(r.used, 2 if r.money else 0), r.used),
            "limit": (money(r.limit, 2 if r.money else 0), r.limit),
            "state": "binding" if r.binding else "slack",
            "price": (f"{r.price:,.4f}" if r.price < 10 else money(r.price), r.price),
            "worth": r.worth if r.price > 1e-9 else 0.0,
            "advice": r.advice,
            "unit": cur if r.money else "loans",
        }
        for r in rows
    ]
    tab = table(
        recs,
        [
            Col("name", "limit"),
            Col("used", "used", "fmt"),
            Col("limit", "limit", "fmt"),
            Col("unit", "unit"),
            Col("state", "state"),
            Col("price", f"multiplier ({cur} of value per unit)", "fmt"),
            Col("worth", f"worth of one step ({cur})", "money"),
            Col("advice", "what relaxing it is worth"),
        ],
        table_id="t-limits",
        row_class=lambda r: "chosen" if r["state"] == "binding" else "",
    )
    sel = data.run
    gap = sel.get("selection_gap")
    lead = (
        f"Selection by <code>{esc(sel.get('selection_method'))}</code>, objective "
        f"{money(sel.get('selection_objective'), 0)} {esc(cur)} of expected value, "
        f"gap {pct(gap, 3) if gap is not None else '–'} to the LP bound. A multiplier is the "
        "LP relaxation's value of one more unit of the limit (per currency unit of budget or "
        "floor, per loan of a cap or review slot): a local estimate, good for small steps."
    )
    return _section("limits", lead, tab, "limits")


def _reviews(data: ReportData, h: Headline) -> str:
    cur = data.currency
    fails = data.frame("failures")
    reviews = data.frame("reviews")
    parts = []
    mr = data.manual_review
    if len(mr):
        per_loan = data.frame("manual_review_loans").assign(
            short=lambda f: f["reason"].map(lambda r: r if len(r) <= 220 else r[:220] + " …")
        )
        parts.append(
            f"<h3>No feasible plan: {count(h.manual_review)} loans kept their contract and "
            "wait for a person</h3>"
            + table(
                mr,
                [
                    Col("reason", "main cause"),
                    Col("loans", "loans", "int"),
                    Col("example_loan", "example loan"),
                ],
                table_id="t-manual",
            )
            + '<details><summary class="note">Each loan with the planner\'s reason '
            "(the full text per alternative is in the drill-down)</summary>"
            + table(
                per_loan,
                [Col("loan_id", "loan"), Col("cause", "main cause"), Col("short", "reason")],
                table_id="t-manual-loans",
                scroll=True,
            )
            + "</details>"
        )
    else:
        parts.append(
            "<h3>No feasible plan</h3>" + _empty("Every re-planned loan had a feasible plan.")
        )
    if len(reviews):
        parts.append(
            f"<h3>Chosen plans to approve: {count(len(reviews))}</h3>"
            + table(
                reviews,
                [
                    Col("loan_id", "loan"),
                    Col("alternative", "plan"),
                    Col("status", "status"),
                    Col("concession", f"concession ({cur})", "money"),
                    Col("forborne_principal", f"forborne ({cur})", "money"),
                    Col("why", "why it needs approval"),
                ],
                table_id="t-approve",
                scroll=len(reviews) > 12,
            )
        )
    else:
        parts.append("<h3>Chosen plans to approve</h3>" + _empty("No chosen plan needs approval."))
    failed = data.failed
    if len(failed):
        parts.append(
            f"<h3>Failures: {count(h.failed)} loans could not be planned</h3>"
            + table(
                failed,
                [
                    Col("stage", "stage"),
                    Col("reason", "reason"),
                    Col("loans", "loans", "int"),
                    Col("example_loan", "example loan"),
                ],
                table_id="t-failures",
            )
        )
    else:
        parts.append("<h3>Failures</h3>" + _empty("No failures: every triggered loan was planned."))
    status = esc(data.run.get("status"))
    msg = esc(data.run.get("message") or "")
    lead = f"Run status <b>{status}</b>. {msg}" if msg else f"Run status <b>{status}</b>."
    del fails
    return _section("reviews", lead, "".join(parts), "failures", "manual_review_loans", "reviews")


def _performance(data: ReportData, h: Headline) -> str:
    cur = data.currency
    adh = data.frame("adherence")
    book = data.frame("book_restructured")
    parts = []
    if len(adh):
        missed = adh["installments_missed"].astype(int)
        buckets = {
            "on track": int((missed == 0).sum()),
            "1 missed": int((missed == 1).sum()),
            "2+ missed": int((missed >= 2).sum()),
        }
        chart = charts.hbar(
            list(buckets),
            list(buckets.values()),
            "Restructured plans of earlier runs",
            "plans",
            color=charts.TEAL,
        )
        ratio = adh["paid_to_date"].astype(float).sum() / max(
            adh["planned_to_date"].astype(float).sum(), 1e-9
        )
        warn = adh[missed > 0].assign(
            tonight=lambda f: f["replanned_tonight"].map(lambda v: "yes (off_track)" if v else "")
        )
        tab = (
            table(
                warn,
                [
                    Col("loan_id", "loan"),
                    Col("alternative", "plan"),
                    Col("plan_as_of", "planned on", "date"),
                    Col("installments_missed", "missed", "int"),
                    Col("shortfall", f"shortfall ({cur})", "money"),
                    Col("adherence_ratio", "paid / planned", "pct"),
                    Col("first_missed_due_date", "first missed", "date"),
                    Col("tonight", "re-planned tonight"),
                ],
                table_id="t-early-warning",
                scroll=len(warn) > 12,
            )
            if len(warn)
            else _empty("No early warnings: every tracked plan is keeping up.")
        )
        parts.append(
            f'<div class="grid2"><div>{_figure(chart)}</div><div><p>{count(len(adh))} plans '
            f"tracked up to {esc(data.as_of)}, {pct(ratio)} of the amount due paid. "
            f"<b>{count(len(warn))} early warnings</b> (a missed installment; the run re-plans "
            f"them, trigger <code>off_track</code>):</p></div></div>{tab}"
        )
    else:
        parts.append(
            _empty(
                "No restructured plan of an earlier run has installments due yet "
                "(this is the first run, or the earlier plans have not come due)."
            )
        )
    if len(book):
        chart = charts.hbar(
            [str(b).replace("_", " ") for b in book["bucket"]],
            book["loans"].astype(float).tolist(),
            "Open loans restructured before, by delinquency today",
            "loans",
            color=charts.NAVY,
        )
        tab = table(
            book,
            [
                Col("bucket", "delinquency"),
                Col("loans", "loans", "int"),
                Col("outstanding_principal", f"outstanding ({cur})", "money"),
            ],
            table_id="t-book-restructured",
        )
        parts.append(
            f"<h3>The whole book: {count(h.book_current)} of {count(h.book_restructured)} open "
            f"loans restructured before are current</h3>"
            f'<div class="grid2"><div>{_figure(chart)}</div><div>{tab}</div></div>'
        )
    lead = (
        "For each loan, the restructured plan in force before this run (chosen by an earlier "
        "run): planned against paid up to this run's date, as the views "
        "<code>plan_adherence</code> and <code>early_warning</code> compute it for the latest "
        "plans; and every open loan ever restructured, by delinquency today."
    )
    return _section("performance", lead, "".join(parts), "adherence", "book_restructured")


def _simulation(data: ReportData) -> str:
    sim = data.simulation
    if sim is None:
        return _section(
            "simulation",
            "Each policy's plans run forward month by month with the same random numbers.",
            _empty("No simulation for this run (run `repayplan simulate` to add one)."),
            "simulation_run",
            "simulation_results",
        )
    meta = sim["run"]
    res: pd.DataFrame = sim["results"].copy()
    res["segment"] = res["segment"].fillna("all")
    level = res[res["versus"].isna() & (res["segment"] == "all") & res["concession_budget"].isna()]
    horizons = sorted({int(h) for h in level["horizon_months"].dropna()})
    parts = [
        f'<p class="note">Simulation <code>{esc(meta.get("sim_id"))}</code>: behaviour '
        f"<b>{esc(meta.get('behaviour'))}</b>, {count(meta.get('paths'))} paths, "
        f"{count(meta.get('loans'))} loans, seed {esc(meta.get('seed'))}, horizons "
        f"{esc(meta.get('horizons'))} months. Money metrics are shares of exposure; intervals "
        "are 95% bootstrap intervals.</p>"
    ]
    charge = level[level["metric"] == "charge_off"]
    if len(charge):
        policies = list(dict.fromkeys(charge["policy"]))
        series, errors = {}, {}
        for hz in horizons:
            rows = charge[charge["horizon_months"] == hz].set_index("policy")
            est = [float(rows["estimate"].get(p, float("nan"))) for p in policies]
            lo = [float(rows["ci_low"].get(p, e)) for p, e in zip(policies, est, strict=True)]
            hi = [float(rows["ci_high"].get(p, e)) for p, e in zip(policies, est, strict=True)]
            series[f"{hz} months"] = [0.0 if math.isnan(e) else e for e in est]
            errors[f"{hz} months"] = (lo, hi)
        parts.append(
            _figure(
                charts.grouped_bars(
                    policies,
                    series,
                    "Charge-off per policy (share of exposure, 95% interval)",
                    "charged off",
                    percent=True,
                    money=False,
                    errors=errors,
                )
            )
        )
    # One row per policy, one column per metric × horizon.
    recs: dict[str, dict[str, Any]] = {}
    cols = [Col("policy", "policy")]
    for (metric, hz), rows in level.groupby(["metric", "horizon_months"], sort=True):
        key = f"{metric}_{int(hz)}"
        cols.append(Col(key, f"{metric.replace('_', ' ')} {int(hz)}m", "text"))
        for r in rows.to_dict("records"):
            rec = recs.setdefault(str(r["policy"]), {"policy": r["policy"]})
            rec[key] = f"{pct(r['estimate'])} [{pct(r['ci_low'])}, {pct(r['ci_high'])}]"
    if recs:
        parts.append(table(list(recs.values()), cols, table_id="t-policies", scroll=True))
    diffs = res[res["versus"].notna() & (res["segment"] == "all")]
    if len(diffs):
        parts.append(
            "<h3>Paired differences</h3>"
            + table(
                diffs,
                [
                    Col("policy", "policy"),
                    Col("versus", "versus"),
                    Col("metric", "metric"),
                    Col("horizon_months", "months", "int"),
                    Col("estimate", "difference", "pct"),
                    Col("ci_low", "low", "pct"),
                    Col("ci_high", "high", "pct"),
                ],
                table_id="t-differences",
                scroll=len(diffs) > 12,
            )
        )
    frontier = res[res["concession_budget"].notna() & (res["segment"] == "all")]
    frontier = frontier[frontier["versus"].isna()]
    if len(frontier):
        # Charge-off at its longest horizon; concession is stored at its own horizon.
        co_all = frontier[frontier["metric"] == "charge_off"]
        hz = int(co_all["horizon_months"].max()) if co_all["horizon_months"].notna().any() else None
        co = co_all if hz is None else co_all[co_all["horizon_months"] == hz]
        co = co.drop_duplicates("concession_budget").set_index("concession_budget")
        cc = frontier[frontier["metric"] == "concession"]
        cc = cc.sort_values("horizon_months").drop_duplicates("concession_budget", keep="last")
        cc = cc.set_index("concession_budget")
        points = [
            (
                float(cc.loc[b, "estimate"]),
                float(co.loc[b, "estimate"]),
                float(co.loc[b, "ci_low"]),
                float(co.loc[b, "ci_high"]),
            )
            for b in co.index
            if b in cc.index
        ]
        marks = {}
        for name in ("waterfall", "contract", "nightly"):
            lv = level[level["policy"] == name]
            c1 = lv[(lv["metric"] == "charge_off") & (lv["horizon_months"] == hz)]
            c2 = lv[lv["metric"] == "concession"].sort_values("horizon_months")
            if len(c1):
                x = float(c2["estimate"].iloc[-1]) if len(c2) else 0.0
                r = c1.iloc[0]
                marks[name] = (x, float(r["estimate"]), float(r["ci_low"]), float(r["ci_high"]))
        if points:
            parts.append(
                "<h3>Efficient frontier</h3>"
                + _figure(
                    charts.frontier_chart(
                        points,
                        marks,
                        f"Charge-off against concession{f' at {hz} months' if hz else ''}",
                        "concession (share of exposure)",
                        "charged off (share of exposure)",
                    )
                )
            )
    lead = (
        "Each policy's plans run forward month by month (income, misses, cures, charge-off, "
        "prepayment) with the same random numbers for every policy."
    )
    return _section("simulation", lead, "".join(parts), "simulation_run", "simulation_results")


_SIDE_BY_SIDE = (
    ("status", "status", "text"),
    ("annual_rate_percent", "rate (% a year)", "num"),
    ("term_periods", "installments", "int"),
    ("frequency", "frequency", "text"),
    ("total_paid", "total paid", "money"),
    ("npv", "NPV at hurdle", "money"),
    ("apr_percent", "APR (%)", "num"),
    ("pd", "PD", "pct"),
    ("expected_loss", "expected loss", "money"),
    ("max_pti", "max payment / income", "pct"),
    ("concession", "concession", "money"),
    ("forborne_principal", "forborne principal", "money"),
)


def _drilldown(data: ReportData) -> str:
    cur = data.currency
    loans = data.drilldown_loans
    if not loans:
        return _section(
            "drilldown",
            "Loans in manual review and the largest concessions.",
            _empty("No loan went to manual review and none got a concession."),
            "drilldown_plans",
            "drilldown_schedules",
        )
    plans = data.frame("drilldown_plans")
    sched = data.frame("drilldown_schedules")
    review_why = dict(
        zip(data.frame("reviews")["loan_id"], data.frame("reviews")["why"], strict=True)
    )
    failures_by_loan = _failure_reasons(data)
    out = []
    for i, loan in enumerate(loans):
        lp = plans[plans["loan_id"] == loan]
        detail = ""
        if loan in failures_by_loan:
            cause, reason = failures_by_loan[loan]
            tag = "no feasible plan: " + cause
            items = "".join(f"<li>{esc(part)}</li>" for part in reason.split("; "))
            detail = (
                '<p class="note">Why each alternative was not offered:</p>'
                f'<ul class="note">{items}</ul>'
            )
        elif loan in review_why:
            tag = "to approve: " + str(review_why[loan])
        else:
            chosen = lp[lp["chosen"]]
            conc = float(chosen["concession"].iloc[0]) if len(chosen) else 0.0
            tag = f"large concession: {money(conc)} {cur}"
        header = "".join(
            f'<th scope="col">{esc(a)}{" ✔ chosen" if c else ""}</th>'
            for a, c in zip(lp["alternative"], lp["chosen"], strict=True)
        )
        rows = []
        for key, label, kind in _SIDE_BY_SIDE:
            cells = "".join(
                f'<td class="{"num" if kind != "text" else ""}">{_FORMAT[kind](v)}</td>'
                for v in lp[key]
            )
            unit = f" ({cur})" if kind == "money" else ""
            rows.append(f'<tr><th scope="row">{esc(label)}{esc(unit)}</th>{cells}</tr>')
        expl = "".join(
            f"<li><b>{esc(a)}</b>: {esc(e)}</li>"
            for a, e in zip(lp["alternative"], lp["explanation"], strict=True)
            if e
        )
        side = (
            f'<div class="scroll" style="max-height:none"><table class="data side">'
            f"<thead><tr><th></th>{header}</tr></thead><tbody>{''.join(rows)}</tbody></table></div>"
            f'<ul class="note">{expl}</ul>'
        )
        ls = sched[sched["loan_id"] == loan]
        chart = ""
        if len(ls):
            series = {
                str(name): (
                    pd.to_datetime(g["due_date"]).tolist(),
                    g["payment"].astype(float).tolist(),
                )
                for name, g in ls.groupby("schedule", sort=True)
            }
            chart = _figure(charts.schedules_chart(series, f"Payments of loan {loan}", cur))
            chosen_rows = ls[ls["schedule"] != "contract"]
            shown = chosen_rows if len(chosen_rows) else ls
            chart += (
                f'<details><summary class="note">Schedule ({esc(shown["schedule"].iloc[0])}, '
                f"{count(len(shown))} installments)</summary>"
                + table(
                    shown,
                    [
                        Col("number", "#", "int"),
                        Col("due_date", "due", "date"),
                        Col("payment", f"payment ({cur})", "money"),
                        Col("principal", f"principal ({cur})", "money"),
                        Col("interest", f"interest ({cur})", "money"),
                        Col("balance", f"balance ({cur})", "money"),
                    ],
                    scroll=True,
                )
                + "</details>"
            )
        opened = " open" if i == 0 else ""
        out.append(
            f'<details class="loan" id="loan-{esc(loan)}"{opened}><summary>Loan {esc(loan)}'
            f'<span class="tag">{esc(tag)}</span></summary><div class="body">{detail}{side}{chart}'
            "</div></details>"
        )
    lead = (
        f"{count(len(loans))} loans: those in manual review first, then the largest "
        "concessions. Every alternative side by side; the chosen plan's schedule against the "
        "contract's remaining installments (the writer keeps only chosen schedules)."
    )
    return _section("drilldown", lead, "".join(out), "drilldown_plans", "drilldown_schedules")


def _failure_reasons(data: ReportData) -> dict[str, tuple[str, str]]:
    """Loan → (main cause, the planner's reason) for the loans with no feasible plan."""
    frame = data.frame("manual_review_loans")
    return {
        str(k): (str(c), str(r))
        for k, c, r in zip(frame["loan_id"], frame["cause"], frame["reason"], strict=True)
    }


def figures(data: ReportData) -> dict[str, Any]:
    """The headline figures of ``data`` (what the at-a-glance panel shows)."""
    h = headline(data)
    return {
        "loans_considered": h.considered,
        "loans_triggered": h.triggered,
        "loans_replanned": h.replanned,
        "loans_restructured": h.restructured,
        "concession": round(h.concession, 2),
        "concession_budget": h.budget,
        "expected_loss_before": round(h.el_before, 2),
        "expected_loss_after": round(h.el_after, 2),
        "manual_review": h.manual_review,
        "to_approve": h.needs_approval,
        "failed": h.failed,
        "binding_limits": [r.name for r in h.binding],
        "earlier_plans_tracked": h.earlier_plans,
        "early_warnings": h.early_warnings,
        "simulation": data.simulation is not None,
        "currency": data.currency,
    }


def render(data: ReportData, generated_at: datetime | None = None) -> str:
    """The report page of ``data`` as HTML text."""
    h = headline(data)
    run = data.run
    status = str(run.get("status"))
    started = run.get("started_at")
    finished = run.get("finished_at")
    seconds = ""
    if isinstance(started, (datetime, pd.Timestamp)) and isinstance(
        finished, (datetime, pd.Timestamp)
    ):
        seconds = f" · {(finished - started).total_seconds():,.0f} s"
    as_of = run.get("as_of")
    as_of_text = as_of.isoformat() if isinstance(as_of, date) else esc(as_of)
    toc = "".join(f'<a href="#{a}">{esc(t.split(":")[0])}</a>' for a, t in SECTIONS)
    body = "".join(
        [
            _glance(data, h),
            _triggers(data, h),
            _alternatives(data, h),
            _concession(data, h),
            _collections(data, h),
            _risk(data, h),
            _limits(data, h),
            _reviews(data, h),
            _performance(data, h),
            _simulation(data),
            _drilldown(data),
        ]
    )
    gen = (generated_at or datetime.now()).strftime("%Y-%m-%d %H:%M")
    # Machine-readable headline figures (not executed: a JSON data block).
    figures_json = json.dumps(figures(data), default=str).replace("</", "<\\/")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="repayplan-run-id" content="{esc(data.run_id)}">
<title>Morning report · run {esc(data.run_id)} · as of {as_of_text}</title>
<style>{CSS}</style></head>
<body>
<header class="top"><h1>Morning report — nightly run of {as_of_text}
<span class="status {esc(status)}">{esc(status)}</span></h1>
<div class="meta">run <code>{esc(data.run_id)}</code> · policy {esc(run.get("policy_id"))} ·
{count(h.considered)} open loans considered{seconds} · amounts in {esc(data.currency)}</div>
</header>
<nav class="toc">{toc}</nav>
<main>{body}</main>
<footer>repayplan morning report · generated {gen} from the run's stored results only ·
every figure's SQL is under its section</footer>
<script type="application/json" id="report-figures">{figures_json}</script>
<script>{JS}</script>
</body></html>
"""
