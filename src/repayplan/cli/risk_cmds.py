"""CLI of the risk model: ``repayplan risk fit`` and ``repayplan risk score``."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import typer

from repayplan.cli.app import app, console, emit_json, parse_date
from repayplan.cli.app import table as new_table
from repayplan.errors import InputError
from repayplan.risk.pd_model import fit, score
from repayplan.store.connection import DEFAULT_DB

risk_app = typer.Typer(help="Default-risk model: fit, validate and score.", no_args_is_help=True)
app.add_typer(risk_app, name="risk")


def _parse_date(text: str | None) -> date | None:
    return parse_date(text, "as_of")


def _existing(db: Path) -> Path:
    if not db.exists():
        raise InputError("no such database file", field="db", record=str(db))
    return db


@risk_app.command("fit")
def fit_cmd(
    db: Path = typer.Option(DEFAULT_DB, "--db", help="Portfolio DuckDB file."),
    as_of: str = typer.Option(
        None, "--as-of", help="T of the validation windows (YYYY-MM-DD); default the book's."
    ),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Fit and validate the PD models out of time; store them (library: risk.pd_model.fit)."""
    report = fit(_existing(db), as_of=_parse_date(as_of))
    if json_out:
        emit_json(report.to_dict())
        return
    table = new_table(f"Out-of-time holdout {report.windows['holdout_obs_date']} (12 months)")
    for column in ("model", "AUC", "oracle AUC", "Brier", "calibration error", "mean PD"):
        table.add_column(column, justify="left" if column == "model" else "right")
    for kind, m in report.candidates.items():
        oracle = "n/a" if m["oracle_auc"] is None else f"{m['oracle_auc']:.4f}"
        marker = " (active)" if kind == report.kind else ""
        table.add_row(
            kind + marker,
            f"{m['auc']:.4f}",
            oracle,
            f"{m['brier']:.4f}",
            f"{m['calibration_error']:.4f}",
            f"{m['mean_pd']:.2%}",
        )
    console.print(table)
    curve = report.burden_curve
    points = ", ".join(f"{r:.2f}→{f:.2f}" for r, f in zip(curve.ratios, curve.factors, strict=True))
    console.print(f"Burden curve g (payment-to-income → hazard factor): {points}")
    console.print(
        f"Model {report.model_id} saved to {report.artifact_path} in {report.seconds:.1f} s"
    )


@risk_app.command("score")
def score_cmd(
    db: Path = typer.Option(DEFAULT_DB, "--db", help="Portfolio DuckDB file."),
    as_of: str = typer.Option(None, "--as-of", help="Score date (YYYY-MM-DD); default the book's."),
    json_out: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Score the open loans with the active model into risk_scores (library: pd_model.score)."""
    summary = score(_existing(db), as_of=_parse_date(as_of))
    if json_out:
        emit_json(summary.to_dict())
        return
    table = new_table(f"Risk scores as of {summary.as_of} (model {summary.model_id})")
    table.add_column("loans scored", justify="right")
    table.add_column("already 90+ dpd", justify="right")
    table.add_column("mean 12-month PD", justify="right")
    table.add_column("mean monthly base hazard", justify="right")
    table.add_column("loans / s", justify="right")
    d = summary.to_dict()
    table.add_row(
        f"{summary.loans:,}",
        f"{summary.in_default:,}",
        f"{summary.mean_pd_12m:.2%}",
        f"{summary.mean_monthly_hazard:.3%}",
        f"{d['loans_per_second']:,}",
    )
    console.print(table)
