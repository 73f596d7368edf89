"""What a prepayment does to the contract in force: a shorter term (same installment) or a
lower installment (same term), and the interest each saves. Prepayment is always free of
penalty. Side-effect free (Fineract's "preview"): nothing is recorded.

The prepayment is paid with the first installment due on or after its date; the balance
after that installment falls by the amount and the rest of the contract is re-run at the
contract rate (30/360 period rates, half-even cents, the last installment settles).
"""

from __future__ import annotations

from datetime import date
from fractions import Fraction
from typing import Any

import duckdb

from repayplan.errors import InputError
from repayplan.finance.money import div_round_half_even
from repayplan.finance.schedule import annuity_installment
from repayplan.risk.metrics import money
from repayplan.store.schema import FREQUENCY_MONTHS


def _run(balance: int, factor: Fraction, payments: list[int]) -> list[tuple[int, int]]:
    """(payment, interest) per period until the balance is repaid (the last settles)."""
    out = []
    for k, pay in enumerate(payments):
        interest = div_round_half_even(balance * factor.numerator, factor.denominator)
        due = balance + interest
        pay = due if k == len(payments) - 1 or pay >= due else pay
        out.append((pay, interest))
        balance = due - pay
        if balance <= 0:
            break
    return out


def preview_prepayment(
    con: duckdb.DuckDBPyConnection, loan_id: str, amount_cents: int, on: date
) -> dict[str, Any]:
    """The two ways ``amount_cents`` paid on ``on`` can shorten or lower loan ``loan_id``'s
    contract (``con``: the published copy). Money in the answer: strings of currency units."""
    rec = f"loan {loan_id}"
    loan = con.execute(
        "SELECT CAST(annual_rate_percent AS VARCHAR), frequency::VARCHAR, status::VARCHAR, "
        "CAST(outstanding_principal * 100 AS BIGINT), as_of FROM loans WHERE loan_id = ?",
        [loan_id],
    ).fetchone()
    if loan is None:
        raise InputError("no such loan in the portfolio", field="loan_id", record=rec)
    rate, freq, status, outstanding, as_of = loan
    if status == "closed":
        raise InputError("the loan is closed", field="loan_id", record=rec)
    if on < as_of:
        raise InputError(f"must be on or after the loan's as_of {as_of}", field="date", record=rec)
    if amount_cents <= 0:
        raise InputError("must be more than 0", field="amount", record=rec)
    rows = con.execute(
        "SELECT number, due_date, CAST(payment * 100 AS BIGINT), CAST(interest * 100 AS BIGINT),"
        " CAST(balance * 100 AS BIGINT) FROM contract_installments "
        "WHERE loan_id = ? AND due_date >= ? ORDER BY number",
        [loan_id, on],
    ).fetchall()
    if not rows:
        raise InputError("no installment falls due on or after this date", field="date", record=rec)
    first, rest = rows[0], rows[1:]
    balance = first[4]
    if amount_cents > balance:
        raise InputError(
            f"is more than the balance after the installment of {first[1]} "
            f"({money(balance)}); that amount repays the loan in full",
            field="amount",
            record=rec,
        )
    months = FREQUENCY_MONTHS.get(freq, 1)
    factor = Fraction(rate) / 100 * months / 12
    left = balance - amount_cents
    contract_interest = sum(r[3] for r in rest)
    regular = rest[0][2] if rest else first[2]
    shorter = _run(left, factor, [regular] * len(rest)) if rest and left else []
    level = annuity_installment(left, [factor] * len(rest)) if rest and left else 0
    lower = _run(left, factor, [level] * len(rest)) if rest and left else []

    def option(kind: str, run: list[tuple[int, int]]) -> dict[str, Any]:
        interest = sum(i for _, i in run)
        return {
            "kind": kind,
            "installment": money(run[0][0]) if run else "0.00",
            "last_installment": money(run[-1][0]) if run else "0.00",
            "installments_left": len(run),
            "interest_left": money(interest),
            "interest_saved": money(contract_interest - interest),
        }

    return {
        "loan_id": loan_id,
        "paid_with_installment_due": first[1].isoformat(),
        "amount": money(amount_cents),
        "penalty": "0.00",
        "balance_before": money(balance),
        "balance_after": money(left),
        "contract": {
            "installment": money(regular),
            "installments_left": len(rest),
            "interest_left": money(contract_interest),
        },
        "options": [option("shorter_term", shorter), option("lower_installment", lower)],
        "outstanding_principal": money(int(outstanding)),
    }
