"""The report's charts: matplotlib figures rendered to inline SVG text.

matplotlib draws to SVG with no JavaScript and no network, so the report opens from the file
system anywhere; text stays text (``svg.fonttype = none``) so the page's font is used and
the charts stay small and searchable. Figures are built with the object API (no pyplot, no
global state), so rendering is safe inside a Prefect task thread. Every chart has a title
and axis labels; money axes name the currency.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence

import matplotlib as mpl
from matplotlib.figure import Figure
from matplotlib.ticker import FuncFormatter, PercentFormatter

NAVY = "#1f3b5c"
TEAL = "#2a9d8f"
AMBER = "#e9a23b"
RED = "#c8553d"
GREY = "#aab4bf"
LIGHT = "#e8ecf0"
PALETTE = (NAVY, TEAL, AMBER, RED, "#6c8ebf", "#8d6cab", "#5b8c5a", GREY)

_STYLE = {
    "svg.fonttype": "none",
    "svg.hashsalt": "repayplan-report",
    "font.family": "sans-serif",
    "font.sans-serif": ["Inter", "Segoe UI", "Helvetica", "Arial", "DejaVu Sans"],
    "font.size": 9.5,
    "axes.titlesize": 11,
    "axes.titleweight": "bold",
    "axes.titlelocation": "left",
    "axes.titlepad": 10,
    "axes.edgecolor": "#c5ccd3",
    "axes.labelcolor": "#3d4852",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.axisbelow": True,
    "grid.color": "#e6e9ed",
    "grid.linewidth": 0.8,
    "xtick.color": "#3d4852",
    "ytick.color": "#3d4852",
    "legend.frameon": False,
}


def money_formatter(currency: str) -> FuncFormatter:
    """Axis ticks as compact amounts: 1.2k, 3.4M (the currency is in the axis label)."""

    def fmt(value: float, _pos: int | None = None) -> str:
        return compact(value)

    return FuncFormatter(fmt)


def compact(value: float) -> str:
    """12 345 → ``12.3k``, 4 500 000 → ``4.5M`` (currency units, sign kept)."""
    a = abs(value)
    for div, suffix in ((1e9, "bn"), (1e6, "M"), (1e3, "k")):
        if a >= div:
            return f"{value / div:,.1f}{suffix}".replace(".0" + suffix, suffix)
    return f"{value:,.0f}" if a >= 10 or a == 0 else f"{value:,.2f}"


def _figure(width: float, height: float) -> Figure:
    with mpl.rc_context(_STYLE):
        return Figure(figsize=(width, height), dpi=96, layout="constrained")


def to_svg(fig: Figure, label: str) -> str:
    """``fig`` as an inline ``<svg>`` element that scales to its container, with an
    accessible ``aria-label``."""
    buf = io.StringIO()
    with mpl.rc_context(_STYLE):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None})
    text = buf.getvalue()
    text = text[text.index("<svg") :]
    # Scale with the page: keep the viewBox, drop the fixed size.
    text = re.sub(r'<svg([^>]*?) width="[^"]*" height="[^"]*"', r"<svg\1", text, count=1)
    text = text.replace("<svg", f'<svg role="img" aria-label="{_attr(label)}"', 1)
    return text


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def _styled(fn):
    def wrapper(*args, **kwargs):
        with mpl.rc_context(_STYLE):
            return fn(*args, **kwargs)

    wrapper.__doc__ = fn.__doc__
    wrapper.__name__ = fn.__name__
    return wrapper


@_styled
def hbar(
    labels: Sequence[str],
    values: Sequence[float],
    title: str,
    xlabel: str,
    *,
    color: str = NAVY,
    money: bool = False,
    currency: str = "",
) -> str:
    """Horizontal bars, largest on top, each labelled with its value."""
    n = max(len(labels), 1)
    fig = _figure(6.4, 0.9 + 0.36 * n)
    ax = fig.add_subplot()
    ys = list(range(len(labels)))[::-1]
    bars = ax.barh(ys, values, color=color, height=0.62)
    ax.set_yticks(ys, [str(s) for s in labels])
    ax.set_title(title)
    ax.set_xlabel(xlabel)
    ax.grid(axis="y", visible=False)
    if money:
        ax.xaxis.set_major_formatter(money_formatter(currency))
    top = max([float(v) for v in values] + [1.0])
    ax.set_xlim(0, top * 1.18)
    ax.bar_label(
        bars,
        labels=[compact(float(v)) if money else f"{float(v):,.0f}" for v in values],
        padding=3,
        fontsize=8.5,
        color="#3d4852",
    )
    return to_svg(fig, title)


@_styled
def bullet(used: float, limit: float | None, title: str, currency: str) -> str:
    """One bar of what was used against a limit drawn as a marker (a bullet chart)."""
    fig = _figure(6.4, 1.55)
    ax = fig.add_subplot()
    end = max(used, limit or 0.0, 1.0) * 1.05
    if limit:
        ax.barh([0], [limit], color=LIGHT, height=0.8, label=f"budget {compact(limit)}")
        ax.axvline(limit, color=NAVY, lw=2)
    ax.barh([0], [used], color=TEAL, height=0.42, label=f"spent {compact(used)}")
    share = f" ({used / limit * 100:.1f}% of the budget)" if limit else ""
    inside = used > 0.6 * end
    ax.annotate(
        f"spent {compact(used)}{share}",
        (used, 0),
        xytext=(-6 if inside else 6, 0),
        textcoords="offset points",
        va="center",
        ha="right" if inside else "left",
        fontsize=9,
        color="#ffffff" if inside else "#1d2733",
        fontweight="bold",
    )
    ax.set_yticks([])
    ax.set_xlim(0, end)
    ax.xaxis.set_major_formatter(money_formatter(currency))
    ax.set_xlabel(f"concession ({currency}, at the hurdle rate)")
    ax.set_title(title)
    ax.grid(axis="y", visible=False)
    ax.legend(loc="lower right", ncols=2, fontsize=8.5, bbox_to_anchor=(1, 1.02))
    return to_svg(fig, title)


@_styled
def grouped_bars(
    categories: Sequence[str],
    series: dict[str, Sequence[float]],
    title: str,
    ylabel: str,
    *,
    currency: str = "",
    money: bool = True,
    percent: bool = False,
    colors: Sequence[str] = PALETTE,
    errors: dict[str, tuple[Sequence[float], Sequence[float]]] | None = None,
) -> str:
    """Vertical bars, one group per category, one bar per series (optional interval bars:
    ``errors[series] = (low, high)`` absolute ends)."""
    fig = _figure(6.4, 3.1)
    ax = fig.add_subplot()
    k = max(len(series), 1)
    width = 0.8 / k
    for j, (name, values) in enumerate(series.items()):
        xs = [i + (j - (k - 1) / 2) * width for i in range(len(categories))]
        vals = [float(v) for v in values]
        yerr = None
        if errors and name in errors:
            lo, hi = errors[name]
            yerr = [
                [max(v - float(a), 0.0) for v, a in zip(vals, lo, strict=True)],
                [max(float(b) - v, 0.0) for v, b in zip(vals, hi, strict=True)],
            ]
        ax.bar(
            xs,
            vals,
            width * 0.92,
            label=name,
            color=colors[j % len(colors)],
            yerr=yerr,
            capsize=3 if yerr else 0,
            error_kw={"ecolor": "#3d4852", "elinewidth": 1},
        )
    # Long names on two lines so that neighbours never overlap.
    names = [str(c) if len(str(c)) <= 10 else str(c).replace(" ", "\n", 1) for c in categories]
    ax.set_xticks(range(len(categories)), names)
    ax.set_title(title)
    ax.set_ylabel(ylabel)
    ax.grid(axis="x", visible=False)
    if percent:
        ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    elif money:
        ax.yaxis.set_major_formatter(money_formatter(currency))
    if len(series) > 1:
        ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8.5)
    return to_svg(fig, title)


@_styled
def floors_chart(
    months: Sequence[str], expected: Sequence[float], floors: Sequence[float], currency: str
) -> str:
    """Expected collections per month (bars) against each month's floor (a tick line)."""
    title = "Expected collections vs floors, next 3 months"
    fig = _figure(6.4, 3.0)
    ax = fig.add_subplot()
    xs = range(len(months))
    ax.bar(xs, expected, 0.55, color=TEAL, label="expected (chosen plans)")
    for i, f in zip(xs, floors, strict=True):
        ax.hlines(f, i - 0.38, i + 0.38, color=RED, lw=2.5, label="floor" if i == 0 else None)
    for i, (e, f) in enumerate(zip(expected, floors, strict=True)):
        ax.annotate(
            f"{(e / f - 1) * 100:+.1f}% vs floor" if f else "",
            (i, max(e, f)),
            xytext=(0, 4),
            textcoords="offset points",
            ha="center",
            fontsize=8.5,
            color="#3d4852",
        )
    ax.set_xticks(list(xs), list(months))
    ax.set_ylabel(f"expected cash in ({currency})")
    ax.yaxis.set_major_formatter(money_formatter(currency))
    ax.set_ylim(0, max([*expected, *floors, 1.0]) * 1.18)
    ax.set_title(title)
    ax.grid(axis="x", visible=False)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8.5)
    return to_svg(fig, title)


@_styled
def scatter_before_after(before: Sequence[float], after: Sequence[float], title: str) -> str:
    """PD before (contract) against after (chosen plan), one dot per restructured loan."""
    fig = _figure(4.6, 3.6)
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color=GREY, lw=1, ls="--")
    ax.scatter(before, after, s=14, color=NAVY, alpha=0.7, edgecolors="none")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=0))
    ax.set_xlabel("PD before (contract)")
    ax.set_ylabel("PD after (chosen plan)")
    ax.set_title(title)
    return to_svg(fig, title)


@_styled
def schedules_chart(
    series: dict[str, tuple[Sequence, Sequence[float]]], title: str, currency: str
) -> str:
    """Payment per installment date, one step line per schedule."""
    fig = _figure(6.4, 2.4)
    ax = fig.add_subplot()
    for j, (name, (dates, payments)) in enumerate(series.items()):
        ax.step(
            list(dates),
            [float(p) for p in payments],
            where="post",
            lw=1.8,
            color=PALETTE[j % len(PALETTE)],
            label=name,
        )
    ax.set_ylabel(f"payment ({currency})")
    ax.yaxis.set_major_formatter(money_formatter(currency))
    ax.set_ylim(bottom=0)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8.5)
    return to_svg(fig, title)


@_styled
def frontier_chart(
    points: Sequence[tuple[float, float, float, float]],
    marks: dict[str, tuple[float, float, float, float]],
    title: str,
    xlabel: str,
    ylabel: str,
) -> str:
    """The efficient frontier: (concession, charge-off, low, high) points joined in order of
    concession, with the baselines (``marks``) as labelled markers."""
    fig = _figure(6.4, 3.2)
    ax = fig.add_subplot()
    if points:
        xs, ys, lo, hi = zip(*sorted(points), strict=True)
        ax.fill_between(xs, lo, hi, color=TEAL, alpha=0.15, lw=0, label="95% interval")
        ax.plot(xs, ys, "-o", color=TEAL, ms=4, label="optimised, by concession budget")
    shapes = ("s", "D", "^", "v", "P")
    for j, (name, (x, y, lo_, hi_)) in enumerate(marks.items()):
        ax.errorbar(
            [x],
            [y],
            yerr=[[max(y - lo_, 0)], [max(hi_ - y, 0)]],
            fmt=shapes[j % len(shapes)],
            color=(RED, NAVY, AMBER, GREY, "#8d6cab")[j % 5],
            ms=7,
            capsize=3,
            label=name,
        )
    ax.xaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    ax.yaxis.set_major_formatter(PercentFormatter(1.0, decimals=1))
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=8.5)
    return to_svg(fig, title)
