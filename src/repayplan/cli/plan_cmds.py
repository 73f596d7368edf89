"""``repayplan quote`` and ``repayplan plan``: thin shells over :func:`repayplan.plans.quote.quote`
and :func:`repayplan.plans.quote.plan`."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import typer
from rich.table import Table

from repayplan.cli.app import app, console, emit_json
from repayplan.errors import InputError
from repayplan.finance import to_cents
from repayplan.plans.alternative import Quote
from repayplan.plans.case import LoanCase, Policy
from repayplan.plans.quote import plan as plan_loan
from repayplan.plans.quote import quote as quote_case

HARDSHIP_CHOICES = ("job_loss", "illness", "business_downturn", "seasonal", "none")


def _cents(value: str, name: str) -> int:
    try:
        cents = to_cents(value)
    except (InvalidOperation, ValueError, InputError):
        raise InputError(f"not an amount: {value!r}", field=name, record="quote") from None
    if cents < 0:
        raise InputError(f"must not be negative, got {value}", field=name, record="quote")
    return cents


def _seasonality(text: str | None) -> tuple[float, ...]:
    if text is None:
        return (1.0,) * 12
    try:
        factors = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise InputError(
            f"not 12 comma-separated numbers: {text!r}",
            field="--income-seasonality",
            record="quote",
        ) from None
    if len(factors) != 12:
        raise InputError(
            f"needs 12 factors (January first), got {len(factors)}",
            field="--income-seasonality",
            record="quote",
        )
    return factors


def _show(result: Quote, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_dict())
        return
    table = Table(title=f"status: {result.status} · solver: {result.solver}")
    for col in ("plan", "rate %", "term", "first", "largest", "total paid", "max PTI"):
        table.add_column(col, overflow="fold")
    for alt in result.alternatives:
        pays = [i.payment for i in alt.schedule.installments]
        pti = alt.metrics.get("max_payment_to_income")
        table.add_row(
            alt.name,
            str((alt.annual_rate * 100).normalize()),
            f"{alt.term_periods} {alt.frequency}",
            str(Decimal(pays[0]).scaleb(-2)),
            str(Decimal(max(pays)).scaleb(-2)),
            str(alt.metrics.get("total_paid", "")),
            "" if pti is None else f"{pti:.1%}",
        )
    console.print(table)
    for alt in result.alternatives:
        console.print(f"[bold]{alt.name}[/bold]: {alt.explanation}", highlight=False)
    for reason in result.reasons:
        console.print(f"• {reason}", highlight=False)


@app.command()
def quote(
    balance: str = typer.Option(..., help="Outstanding principal, currency units."),
    annual_rate: str = typer.Option(..., help="Contract annual rate in percent (12 = 12%)."),
    monthly_income: str = typer.Option(..., help="Gross monthly income, currency units."),
    essential_expenses: str = typer.Option(..., help="Essential monthly spending, currency units."),
    other_debt: str = typer.Option("0", help="Other debt payments per month, currency units."),
    income_seasonality: str | None = typer.Option(
        None, help="12 comma-separated income factors, January first."
    ),
    arrears: str = typer.Option("0", help="Past-due principal and interest, currency units."),
    penalty_fees: str = typer.Option("0", help="Penalty fees owed, currency units."),
    max_term: int = typer.Option(480, help="Longest plan allowed, months."),
    hardship: str = typer.Option("none", help="|".join(HARDSHIP_CHOICES)),
    strategy: str = typer.Option("optimize", help="optimize|waterfall|contract"),
    preset: str | None = typer.Option(None, help="Waterfall rules preset (hamp)."),
    fixed_costs: str = typer.Option("0", help="Fixed housing costs per month, currency units."),
    remaining_term: int = typer.Option(60, help="Months left on the contract."),
    solver: str = typer.Option("fast", help="Solver strategy (see benchmarks/README.md)."),
    recovery_months: int | None = typer.Option(
        None, help="Months until income recovers from the hardship."
    ),
    hardship_income_factor: float = typer.Option(
        1.0, help="Share of normal income during the hardship (0.6 = 60%)."
    ),
    start: str | None = typer.Option(None, help="Plan start date (ISO); first due a month later."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Plans for one borrower, without a database."""
    if hardship not in HARDSHIP_CHOICES:
        raise InputError(
            f"unknown reason {hardship!r}; use one of " + ", ".join(HARDSHIP_CHOICES),
            field="--hardship",
            record="quote",
        )
    try:
        rate = Decimal(annual_rate) / 100
        begin = date.fromisoformat(start) if start else date.today()
    except (InvalidOperation, ValueError):
        raise InputError(
            f"not a percent / ISO date: {annual_rate!r} / {start!r}", field="--annual-rate"
        ) from None
    case = LoanCase(
        outstanding_principal=_cents(balance, "--balance"),
        annual_rate=rate,
        remaining_term=remaining_term,
        monthly_income=_cents(monthly_income, "--monthly-income"),
        essential_expenses=_cents(essential_expenses, "--essential-expenses"),
        other_debt=_cents(other_debt, "--other-debt"),
        fixed_costs=_cents(fixed_costs, "--fixed-costs"),
        arrears=_cents(arrears, "--arrears"),
        penalty_fees=_cents(penalty_fees, "--penalty-fees"),
        income_seasonality=_seasonality(income_seasonality),
        hardship=None if hardship == "none" else hardship,
        recovery_months=recovery_months,
        hardship_income_factor=hardship_income_factor,
        start=begin,
    )
    if max_term < 1:
        raise InputError(f"must be at least 1 month, got {max_term}", field="--max-term")
    policy = Policy(max_term_months=max_term)
    _show(quote_case(case, policy, strategy=strategy, solver=solver, preset=preset), as_json)


@app.command()
def plan(
    loan_id: str = typer.Argument(..., help="The stored loan's id."),
    db: Path = typer.Option(..., help="DuckDB portfolio file."),
    strategy: str = typer.Option("optimize", help="optimize|waterfall|contract"),
    preset: str | None = typer.Option(None, help="Waterfall rules preset (hamp)."),
    solver: str = typer.Option("fast", help="Solver strategy."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable output."),
) -> None:
    """Plans for a stored loan (read from the portfolio's published copy when there is one,
    so it never holds the engine file a writer needs)."""
    from repayplan.store.publish import connect_reader
    from repayplan.store.queries import loan_for_planning

    if not db.exists():
        raise InputError("no such file", field="--db", record=str(db))
    con = connect_reader(db)
    try:
        record = loan_for_planning(con, loan_id)
    finally:
        con.close()
    result = plan_loan(record, loan_id=loan_id, strategy=strategy, solver=solver, preset=preset)
    _show(result, as_json)
