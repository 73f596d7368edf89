"""``repayplan quote`` and ``repayplan plan``: thin shells over :func:`repayplan.plans.quote.quote`
and :func:`repayplan.portfolio.stored_plan.plan`."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import typer

from repayplan.cli.app import app, column, console, emit_json, table
from repayplan.errors import InputError
from repayplan.finance import to_cents
from repayplan.finance.seasonality import seasonality_problem
from repayplan.plans.alternative import Quote
from repayplan.plans.case import MAX_RECOVERY_MONTHS, LoanCase, Policy
from repayplan.plans.quote import quote as quote_case
from repayplan.portfolio.stored_plan import plan as plan_stored

#: Plan cycles as the quote table shows them (it must fit 80 columns).
_FREQ_SHORT = {
    "monthly": "mo",
    "quarterly": "qtr",
    "yearly": "yr",
    "bimonthly": "2mo",
    "semiannual": "6mo",
    "weekly": "wk",
    "biweekly": "2wk",
    "semimonthly": "½mo",
}
HARDSHIP_CHOICES = ("job_loss", "illness", "business_downturn", "seasonal", "none")


def _cents(value: str, name: str) -> int:
    try:
        cents = to_cents(value, field=name, exact=True)
    except InputError as exc:
        raise InputError(exc.reason, field=name, record="quote") from None
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
            f"not 12 comma-separated numbers: {text[:60]!r}",
            field="--income-seasonality",
            record="quote",
        ) from None
    problem = seasonality_problem(factors)
    if problem:
        raise InputError(problem, field="--income-seasonality", record="quote")
    return factors


def _rate(text: str) -> Decimal:
    """A rate typed in percent as a fraction: finite, 0 to 1000 %."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise InputError(
            f"not a percentage: {text[:40]!r}", field="--annual-rate", record="quote"
        ) from None
    if not value.is_finite() or not 0 <= value < 1000:
        raise InputError(
            f"must be a percentage from 0 to below 1000, got {text[:40]}",
            field="--annual-rate",
            record="quote",
        )
    return value / 100


def _start(text: str | None) -> date:
    if not text:
        return date.today()
    try:
        begin = date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(
            f"not a date: {text[:40]!r} (use YYYY-MM-DD)", field="--start", record="quote"
        ) from None
    if not date(1900, 1, 1) <= begin <= date(2200, 12, 31):
        raise InputError(
            f"must be between 1900-01-01 and 2200-12-31, got {begin}",
            field="--start",
            record="quote",
        )
    return begin


def _months(value: int, name: str, low: int, high: int) -> int:
    if not low <= value <= high:
        raise InputError(
            f"must be between {low} and {high} months, got {value}", field=name, record="quote"
        )
    return value


def _show(result: Quote, as_json: bool) -> None:
    if as_json:
        emit_json(result.to_dict())
        return
    out = table(f"status: {result.status} · solver: {result.solver}")
    for col in ("plan", "rate %", "term", "first", "largest", "total paid", "max PTI"):
        column(out, col, numeric=col not in ("plan", "term"))
    for alt in result.alternatives:
        pays = [i.payment for i in alt.schedule.installments]
        pti = alt.metrics.get("max_payment_to_income")
        out.add_row(
            alt.name,
            str((alt.annual_rate * 100).normalize()),
            f"{alt.term_periods} {_FREQ_SHORT.get(alt.frequency, alt.frequency)}",
            str(Decimal(pays[0]).scaleb(-2)),
            str(Decimal(max(pays)).scaleb(-2)),
            str(alt.metrics.get("total_paid", "")),
            "" if pti is None else f"{pti:.1%}",
        )
    console.print(out)
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
    rate = _rate(annual_rate)
    begin = _start(start)
    _months(max_term, "--max-term", 1, 600)
    _months(remaining_term, "--remaining-term", 0, 600)
    if recovery_months is not None:
        _months(recovery_months, "--recovery-months", 0, MAX_RECOVERY_MONTHS)
    if not 0 <= hardship_income_factor <= 1:  # NaN fails too
        raise InputError(
            f"must be a share of normal income between 0 and 1, got {hardship_income_factor}",
            field="--hardship-income-factor",
            record="quote",
        )
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
    """Plans for a stored loan, as tonight's nightly run would offer them (library:
    repayplan.portfolio.stored_plan.plan)."""
    result = plan_stored(db, loan_id, strategy=strategy, solver=solver, preset=preset)
    _show(result, as_json)
