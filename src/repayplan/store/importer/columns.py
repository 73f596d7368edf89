"""The columns of the three files: required and optional (by kind), and the typed staging
columns computed from their text in the read that stages a file (:mod:`.read`).
"""

from __future__ import annotations

from repayplan.store.schema import FREQUENCY_MONTHS

REQUIRED = {
    "borrowers": ("borrower_id", "monthly_income", "essential_expenses", "other_debt_payments"),
    "loans": (
        "loan_id",
        "borrower_id",
        "product",
        "principal",
        "annual_rate_percent",
        "term_months",
        "origination_date",
        "outstanding_principal",
    ),
    "payments": ("loan_id", "payment_date", "amount"),
}
OPTIONAL = {
    "borrowers": (
        "segment",
        "income_seasonality",
        "income_volatility",
        "full_name",
        "national_id",
        "phone",
    ),
    "loans": (
        "accrued_interest",
        "arrears_amount",
        "penalty_fees",
        "days_past_due",
        "frequency",
    ),
    "payments": ("due_date",),
}


# "[1, 1.2, ...]", "1;1.2;..." or "1 1.2 ..." as a list of doubles (NULL where not numbers).
SEASON = "TRY_CAST(regexp_split_to_array(trim(income_seasonality, '[] '), '[;,\\s]+') AS DOUBLE[])"
ID = {"borrowers": "borrower_id", "loans": "loan_id", "payments": "loan_id"}
KINDS = ("borrowers", "loans", "payments")
MONTHS_CASE = " ".join(f"WHEN '{k}' THEN {v}" for k, v in FREQUENCY_MONTHS.items())


def _money(col: str, default: str | None = None) -> str:
    text = col if default is None else f"coalesce({col}, '{default}')"
    return f"TRY_CAST({text} AS DECIMAL(18,2)) AS {col}"


# The typed staging columns, computed from the text columns of the file (and, for
# borrowers, ``season`` and ``phone_ok``, computed from the plaintext in the same read).
TYPED = {
    "borrowers": (
        "pii_borrower(borrower_id) AS borrower_id",
        "lower(segment) AS segment",
        _money("monthly_income"),
        _money("essential_expenses"),
        _money("other_debt_payments"),
        "season",
        "TRY_CAST(income_volatility AS DOUBLE) AS income_volatility",
        "pii_full_name(full_name) AS full_name_token",
        "pii_national_id(national_id) AS national_id_token",
        "pii_phone(phone) AS phone_token",
    ),
    "loans": (
        "loan_id",
        "pii_borrower(borrower_id) AS borrower_id",
        "lower(product) AS product",
        _money("principal"),
        "TRY_CAST(annual_rate_percent AS DECIMAL(7,4)) AS annual_rate_percent",
        "TRY_CAST(term_months AS INTEGER) AS term_months",
        "lower(coalesce(frequency, 'monthly')) AS frequency",
        "TRY_CAST(origination_date AS DATE) AS origination_date",
        _money("outstanding_principal"),
        _money("accrued_interest", "0"),
        _money("arrears_amount", "0"),
        _money("penalty_fees", "0"),
        "TRY_CAST(coalesce(days_past_due, '0') AS INTEGER) AS days_past_due",
    ),
    "payments": (
        "loan_id",
        "TRY_CAST(payment_date AS DATE) AS payment_date",
        _money("amount"),
        "TRY_CAST(due_date AS DATE) AS due_date",
    ),
}
