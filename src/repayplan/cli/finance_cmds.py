"""``repayplan schedule`` and ``repayplan apr``: thin shells over ``repayplan.finance``."""

from __future__ import annotations

from datetime import date
from decimal import Decimal, InvalidOperation
from pathlib import Path

import typer

from repayplan.cli.app import app, column, console, emit_json
from repayplan.cli.app import table as new_table
from repayplan.errors import InputError
from repayplan.finance import (
    AprResult,
    DayCount,
    Frequency,
    IrrResult,
    Method,
    apr,
    build_schedule,
    format_cents,
    parse_cashflows,
    to_cents,
)

_PERCENT_PLACES = Decimal("0.000001")


def _percent(text: str, field: str) -> Decimal:
    """A rate typed in percent ("9.4822") as a fraction (Decimal("0.094822"))."""
    try:
        value = Decimal(text.strip())
    except InvalidOperation:
        raise InputError(f"not a percentage: {text[:40]!r}", field=field) from None
    if not value.is_finite() or abs(value) > 10**6:
        raise InputError(f"not a finite percentage: {text[:40]!r}", field=field)
    return value / 100


def _date(text: str | None, field: str) -> date:
    if text is None:
        return date.today()
    try:
        return date.fromisoformat(text.strip())
    except ValueError:
        raise InputError(f"not a date: {text[:40]!r} (use YYYY-MM-DD)", field=field) from None


def _as_percent(fraction: Decimal) -> float:
    """A rate fraction as a percent number with 6 decimals, for JSON and tables."""
    return float((fraction * 100).quantize(_PERCENT_PLACES))


@app.command("schedule")
def schedule_cmd(
    principal: str = typer.Option(..., help="Amount financed, currency units (e.g. 100 or 99.50)."),
    annual_rate: str = typer.Option(
        ..., help="Nominal annual rate in percent (9.4822 = 9.4822 %)."
    ),
    periods: int = typer.Option(..., help="Number of installments."),
    frequency: str = typer.Option(
        "monthly", help=f"Payment cycle: {', '.join(f.value for f in Frequency)}."
    ),
    start: str | None = typer.Option(None, help="Funding date YYYY-MM-DD (default: today)."),
    day_count: str = typer.Option(
        "30/360", help=f"Day count: {', '.join(d.value for d in DayCount)}."
    ),
    method: str = typer.Option("annuity", help=f"{', '.join(m.value for m in Method)}."),
    installment_multiple: str = typer.Option(
        "0.01", help="Round the installment to a multiple of this (currency units; 1 = whole)."
    ),
    grace_periods: int = typer.Option(0, help="Interest-only periods at the start."),
    balloon: str = typer.Option("0", help="Amount left for the last installment (units)."),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable JSON on stdout."),
) -> None:
    """Build a repayment schedule (interest per period rounded half-even to the cent)."""
    result = build_schedule(
        principal=to_cents(principal, field="principal", exact=True),
        annual_rate=_percent(annual_rate, "annual_rate"),
        periods=periods,
        frequency=Frequency.parse(frequency),
        start=_date(start, "start"),
        day_count=DayCount.parse(day_count),
        method=Method.parse(method),
        installment_multiple=to_cents(
            installment_multiple, field="installment_multiple", exact=True
        ),
        grace_periods=grace_periods,
        balloon=to_cents(balloon, field="balloon", exact=True),
    )
    if as_json:
        emit_json(result.to_dict())
        return
    table = new_table(f"Schedule: {format_cents(result.principal)} over {periods} periods")
    for name in ("No.", "Due date", "Payment", "Principal", "Interest", "Balance"):
        column(table, name, numeric=name != "Due date")
    for row in result.installments:
        table.add_row(
            str(row.number),
            row.due_date.isoformat(),
            *(format_cents(v) for v in (row.payment, row.principal, row.interest, row.balance)),
        )
    table.add_section()
    table.add_row(
        "Total",
        "",
        format_cents(result.total_paid),
        format_cents(result.principal),
        format_cents(result.total_interest),
        "",
    )
    console.print(table)


@app.command("apr")
def apr_cmd(
    cashflows: Path = typer.Option(
        ..., help="CSV with columns date,amount (negative = to the borrower, positive = paid)."
    ),
    method: str = typer.Option(
        "actuarial", help="actuarial (US Reg Z Appendix J) or irr (PBoC 2021 No. 3)."
    ),
    periods_per_year: int | None = typer.Option(
        None, help="irr only: periods per year (default: inferred from the dates)."
    ),
    as_json: bool = typer.Option(False, "--json", help="Machine-readable JSON on stdout."),
) -> None:
    """Annual percentage rate of dated cash flows (actuarial APR, or IRR-method rates)."""
    try:
        text = cashflows.read_text(encoding="utf-8-sig")
    except OSError as exc:
        raise InputError(f"cannot read: {exc.strerror}", record=str(cashflows)) from None
    except UnicodeDecodeError as exc:
        raise InputError(
            f"not UTF-8 text (byte {exc.start + 1}); save the file as UTF-8 CSV",
            field="--cashflows",
            record=str(cashflows),
        ) from None
    flows = parse_cashflows(text.splitlines(), source=str(cashflows))
    result = apr(flows, method=method, periods_per_year=periods_per_year)
    payload = _rate_payload(result)
    if as_json:
        emit_json(payload)
        return
    table = new_table(f"Rates of {cashflows.name} ({method})")
    column(table, "measure")
    column(table, "value", numeric=True)
    for key, value in payload.items():
        table.add_row(
            key.replace("_", " "), f"{value:.4f} %" if key.endswith("percent") else str(value)
        )
    console.print(table)


def _rate_payload(result: AprResult | IrrResult) -> dict[str, object]:
    """The JSON keys of ``repayplan apr``: percent numbers with 6 decimals."""
    if isinstance(result, AprResult):
        return {
            "apr_percent": _as_percent(result.apr),
            "unit_period": result.unit_period,
            "unit_periods_per_year": float(round(result.unit_periods_per_year, 6)),
        }
    return {
        "periodic_rate_percent": _as_percent(result.periodic_rate),
        "nominal_annual_rate_percent": _as_percent(result.nominal_annual_rate),
        "effective_annual_rate_percent": _as_percent(result.effective_annual_rate),
        "periods_per_year": result.periods_per_year,
    }
