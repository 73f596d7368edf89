"""Dated cash flows from ``date,amount`` text (the ``repayplan apr`` input), validated.

Pure: takes the text's lines, not a path. Amounts are currency units with at most two
decimals, negative for money advanced to the borrower, positive for payments and fees.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from datetime import date
from decimal import Decimal, InvalidOperation

from repayplan.errors import InputError
from repayplan.finance.money import to_cents

REQUIRED_COLUMNS = ("date", "amount")


def parse_cashflows(lines: Iterable[str], source: str = "cash flows") -> list[tuple[date, int]]:
    """Parse CSV text with a ``date,amount`` header into ``(date, cents)`` pairs, in file order.

    Every row must be valid — an APR from a partial set of flows would be wrong, so the first
    bad row raises InputError naming ``source``, its line number and the field. Blank lines
    are skipped; other columns are ignored.
    """
    try:
        return _parse(lines, source)
    except csv.Error as exc:  # a NUL byte, an unterminated quote at the end
        raise InputError(f"not CSV text ({exc})", field="file", record=source) from None


def _parse(lines: Iterable[str], source: str) -> list[tuple[date, int]]:
    reader = csv.DictReader(lines)
    header = [(name or "").strip().lower() for name in reader.fieldnames or []]
    missing = [col for col in REQUIRED_COLUMNS if col not in header]
    if missing:
        raise InputError(
            f"missing column(s) {', '.join(missing)} (the header must have date,amount)",
            field=missing[0],
            record=source,
        )
    reader.fieldnames = header
    flows: list[tuple[date, int]] = []
    for row in reader:
        line = reader.line_num
        if not any((v or "").strip() for v in row.values() if isinstance(v, str)):
            continue
        record = f"{source} line {line}"
        flows.append(
            (_parse_date(row.get("date"), record), _parse_amount(row.get("amount"), record))
        )
    if not any(v > 0 for _, v in flows):
        raise InputError("no payments (positive amounts)", field="amount", record=source)
    if not any(v < 0 for _, v in flows):
        raise InputError("no advance (a negative amount)", field="amount", record=source)
    return flows


def _parse_date(text: str | None, record: str) -> date:
    value = (text or "").strip()
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise InputError(
            f"not a date: {value!r} (use YYYY-MM-DD)", field="date", record=record
        ) from None


def _parse_amount(text: str | None, record: str) -> int:
    value = (text or "").strip()
    try:
        amount = Decimal(value)
    except InvalidOperation:
        raise InputError(f"not an amount: {value!r}", field="amount", record=record) from None
    if not amount.is_finite() or amount.as_tuple().exponent < -2:
        raise InputError(
            f"{value!r} is not an amount with at most 2 decimals", field="amount", record=record
        )
    try:
        return to_cents(amount, field="amount")
    except InputError as exc:
        raise InputError(exc.reason, field="amount", record=record) from None
