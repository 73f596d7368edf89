"""The import's rules: per field, as SQL conditions the read evaluates on each row's text
(:func:`row_checks`), and across rows, on the staged rows (:func:`check_across_rows`).
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import duckdb

from repayplan.store.importer.columns import ID, MONTHS_CASE
from repayplan.store.importer.staging import good, staged
from repayplan.store.schema import FREQUENCY_MONTHS, PRODUCTS, SEGMENTS

_MAX_MONEY = "1000000000"  # one billion currency units: keeps contract arithmetic in int64
MAX_RATE_PERCENT = 500  # balance × rate_e4 × 12 months stays below 2⁶³ (store.contract)
_MOST_OWED = (
    "TRY_CAST(principal AS DOUBLE) * pow(1 + TRY_CAST(annual_rate_percent AS DOUBLE) / 1200, "
    "greatest(TRY_CAST(term_months AS DOUBLE), 12))"
)


def _money_checks(col: str, *, positive: bool, required: bool) -> list[tuple[str, str, str]]:
    v = f"TRY_CAST({col} AS DECIMAL(38,10))"
    checks = [
        (col, f"{col} IS NOT NULL AND {v} IS NULL", f"'not a number: ' || left({col}, 40)"),
        (col, f"{v} <> round({v}, 2)", f"'more than 2 decimals: ' || left({col}, 40)"),
        (col, f"{v} < 0" if not positive else f"{v} <= 0",
         f"'must be {'positive' if positive else 'zero or more'}, got ' || {col}"),
        (col, f"{v} > {_MAX_MONEY}", f"'too large (max {_MAX_MONEY}): ' || {col}"),
    ]  # fmt: skip
    if required:
        checks.insert(0, (col, f"{col} IS NULL", "'required'"))
    return checks


def _int_checks(col: str, lo: int, hi: int, *, required: bool) -> list[tuple[str, str, str]]:
    # Through DECIMAL: a cast to an integer type would round 12.5 to 13 without a word.
    d = f"TRY_CAST({col} AS DECIMAL(38,10))"
    v = f"TRY_CAST({d} AS BIGINT)"
    checks = [
        (col, f"{col} IS NOT NULL AND ({d} IS NULL OR {d} <> trunc({d}))",
         f"'not a whole number: ' || left({col}, 40)"),
        (col, f"{d} = trunc({d}) AND {v} NOT BETWEEN {lo} AND {hi}",
         f"'must be between {lo} and {hi}, got ' || left({col}, 40)"),
    ]  # fmt: skip
    if required:
        checks.insert(0, (col, f"{col} IS NULL", "'required'"))
    return checks


def _date_checks(col: str, as_of: date, *, required: bool) -> list[tuple[str, str, str]]:
    v = f"TRY_CAST({col} AS DATE)"
    checks = [
        (col, f"{col} IS NOT NULL AND {v} IS NULL",
         f"'not a date (YYYY-MM-DD): ' || left({col}, 40)"),
        (col, f"{v} > DATE '{as_of.isoformat()}'", f"'is after the as-of date {as_of}: ' || {col}"),
        (col, f"{v} < DATE '1900-01-01'", f"'is before 1900: ' || {col}"),
    ]  # fmt: skip
    if required:
        checks.insert(0, (col, f"{col} IS NULL", "'required'"))
    return checks


def _enum_check(col: str, values: tuple[str, ...]) -> tuple[str, str, str]:
    allowed = ", ".join(f"'{v}'" for v in values)
    return (
        col,
        f"{col} IS NOT NULL AND lower({col}) NOT IN ({allowed})",
        f"'unknown {col} ' || left({col}, 40) || '; use one of {', '.join(values)}'",
    )


def row_checks(kind: str, cap: Decimal, as_of: date) -> list[tuple[str, str, str]]:
    """``(field, failing condition, reason)`` in SQL over one row's text columns (the
    file's values, trimmed, empty as NULL) for every rule that needs no other row."""
    if kind == "borrowers":
        return [
            ("borrower_id", "borrower_id IS NULL", "'required'"),
            *_money_checks("monthly_income", positive=True, required=True),
            *_money_checks("essential_expenses", positive=False, required=True),
            *_money_checks("other_debt_payments", positive=False, required=True),
            _enum_check("segment", SEGMENTS),
            ("income_seasonality",
             "income_seasonality IS NOT NULL AND (len(season) IS DISTINCT FROM 12 "
             "OR list_min(season) < 0 OR list_count(season) < 12 "
             "OR abs(list_avg(season) - 1) > 0.1)",
             "'needs 12 non-negative monthly factors (Jan..Dec) averaging 1'"),
            ("income_volatility",
             "income_volatility IS NOT NULL AND NOT coalesce(TRY_CAST(income_volatility AS DOUBLE) "
             "BETWEEN 0 AND 3, false)",
             "'must be a number between 0 and 3 (sd of log monthly income)'"),
            # On the plaintext, in the read that tokenises it; the reason never echoes it.
            ("phone",
             "phone IS NOT NULL AND length(regexp_replace(phone, '[^0-9]', '', 'g')) "
             "NOT BETWEEN 6 AND 15",
             "'not a phone number (6 to 15 digits)'"),
        ]  # fmt: skip
    if kind == "loans":
        rate = "TRY_CAST(annual_rate_percent AS DECIMAL(38,10))"
        accepted = ", ".join(FREQUENCY_MONTHS)
        return [
            ("loan_id", "loan_id IS NULL", "'required'"),
            ("borrower_id", "borrower_id IS NULL", "'required'"),
            ("product", "product IS NULL", "'required'"),
            _enum_check("product", PRODUCTS),
            *_money_checks("principal", positive=True, required=True),
            ("annual_rate_percent", "annual_rate_percent IS NULL", "'required'"),
            ("annual_rate_percent", f"annual_rate_percent IS NOT NULL AND {rate} IS NULL",
             "'not a number: ' || left(annual_rate_percent, 40)"),
            ("annual_rate_percent", f"{rate} <> round({rate}, 4)", "'more than 4 decimals'"),
            ("annual_rate_percent", f"{rate} < 0", "'must be zero or more'"),
            ("annual_rate_percent", f"{rate} > {cap}",
             f"'rate ' || annual_rate_percent || '% is above the cap of {cap}%'"),
            ("annual_rate_percent", f"{rate} > {MAX_RATE_PERCENT} AND {rate} <= {cap}",
             f"'rate ' || annual_rate_percent || '% is above {MAX_RATE_PERCENT}%, the most "
             "the store handles'"),
            *_int_checks("term_months", 1, 600, required=True),
            *_date_checks("origination_date", as_of, required=True),
            *_money_checks("outstanding_principal", positive=False, required=True),
            # At most the principal with every month's interest capitalised over the term
            # (restructured loans legitimately owe a little more than they borrowed).
            ("outstanding_principal",
             f"TRY_CAST(outstanding_principal AS DOUBLE) > {_MOST_OWED} + 0.01",
             "'is more than the principal with all its interest capitalised over the term "
             f"(' || round({_MOST_OWED}, 2) || '): ' || left(outstanding_principal, 40)"),
            *_money_checks("accrued_interest", positive=False, required=False),
            *_money_checks("arrears_amount", positive=False, required=False),
            *_money_checks("penalty_fees", positive=False, required=False),
            *_int_checks("days_past_due", 0, 36500, required=False),
            ("frequency",
             f"frequency IS NOT NULL AND lower(frequency) NOT IN "
             f"({', '.join(repr(f) for f in FREQUENCY_MONTHS)})",
             "'unsupported frequency ' || left(frequency, 40) || '; the store keeps "
             f"month-based contracts: use one of {accepted}'"),
            ("term_months",
             "TRY_CAST(term_months AS BIGINT) % (CASE lower(coalesce(frequency, 'monthly')) "
             f"{MONTHS_CASE} ELSE 1 END) <> 0",
             "'term of ' || term_months || ' months is not a whole number of ' "
             "|| coalesce(frequency, 'monthly') || ' periods'"),
        ]  # fmt: skip
    return [
        ("loan_id", "loan_id IS NULL", "'required'"),
        *_date_checks("payment_date", as_of, required=True),
        *_money_checks("amount", positive=True, required=True),
        ("due_date", "due_date IS NOT NULL AND TRY_CAST(due_date AS DATE) IS NULL",
         "'not a date (YYYY-MM-DD): ' || left(due_date, 40)"),
    ]  # fmt: skip


def check_across_rows(con: duckdb.DuckDBPyConnection, kind: str) -> None:
    """Add the errors that need other rows: duplicate ids in the file, references to
    borrowers / loans neither in the database nor among the file's good rows, payments
    before their loan's origination."""
    rid = ID[kind]
    if kind != "payments":
        # Which of two rows with one id is right cannot be known: reject them all.
        con.execute(
            f"INSERT INTO stage.errors SELECT '{kind}', row_number, {rid}, '{rid}', "
            f"'duplicate {rid}: appears ' || n || ' times in this file' FROM (SELECT "
            f"row_number, {rid}, count(*) OVER (PARTITION BY {rid}) AS n FROM stage.{kind} "
            f"WHERE {rid} IS NOT NULL) WHERE n > 1"
        )
    if kind == "loans":
        in_file = (
            "AND s.borrower_id NOT IN " + good("borrowers", "borrower_id")
            if staged(con, "borrowers")
            else ""
        )
        con.execute(
            "INSERT INTO stage.errors SELECT 'loans', s.row_number, s.loan_id, 'borrower_id', "
            "'unknown borrower (not in the database nor in the borrowers file)' "
            "FROM stage.loans s WHERE s.borrower_id IS NOT NULL "
            f"AND s.borrower_id NOT IN (SELECT borrower_id FROM main.borrowers) {in_file}"
        )
    if kind == "payments":
        # The file's loan replaces the database's: its origination date is the one to check.
        file_loans = (
            good("loans", "loan_id, origination_date")
            if staged(con, "loans")
            else "(SELECT NULL::VARCHAR AS loan_id, NULL::DATE AS origination_date WHERE false)"
        )
        con.execute(
            f"""INSERT INTO stage.errors
            SELECT 'payments', row_number, loan_id, e.field, e.reason FROM (
                SELECT s.row_number, s.loan_id, unnest(list_filter([
                    CASE WHEN g.loan_id IS NULL AND l.loan_id IS NULL THEN
                        {{'field': 'loan_id', 'reason':
                          'unknown loan (not in the database nor in the loans file)'}} END,
                    CASE WHEN s.payment_date < coalesce(g.origination_date, l.origination_date)
                        THEN {{'field': 'payment_date', 'reason':
                          'is before the loan was originated: ' || s.payment_date}} END],
                    lambda e: e IS NOT NULL)) AS e
                FROM stage.payments s
                LEFT JOIN {file_loans} g USING (loan_id)
                LEFT JOIN (SELECT loan_id, origination_date FROM main.loans) l USING (loan_id)
                WHERE s.loan_id IS NOT NULL AND len(s.errs) = 0)"""
        )
