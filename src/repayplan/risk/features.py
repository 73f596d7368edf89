"""The risk model's feature frame: one row per open loan and observation date, built in SQL.

Everything a feature uses is known at the observation date ``obs``: the borrower's usual
income, expenses, other debts, seasonality and volatility; the contract installment in force;
the loan's product, rate, age and restructure history; and its payment record up to ``obs``
(installments missed, arrears cleared). The payment record comes from the ``missed`` /
``arrears_installments`` columns of ``loan_month_truth`` — what a servicing system records
per due date — never from its true hazard, shock or realised-income columns.

Target (training frames only): ``default_12m`` = 1 when, at a due date in ``(obs, obs + 12
months]``, the installments unpaid cover three months or more (three monthly installments, one
quarterly, one yearly): the usual "90+ days past due" definition of default. Loans already in
that state at ``obs``, and loans with no installment due after ``obs`` (closed, charged off,
prepaid), are not in the frame.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import duckdb
import pandas as pd

from repayplan.errors import InputError

#: Months in arrears that count as default (90+ days past due).
DEFAULT_MONTHS_IN_ARREARS = 3
#: Months of history the delinquency features look back over, and the outcome window.
HORIZON_MONTHS = 12

NUMERIC_FEATURES = (
    "pti",  # contract installment per month ÷ usual monthly income
    "pti_peak",  # the same in the lowest-income due month of the next 12 (seasonality)
    "dti",  # (installment per month + other debt payments) ÷ income
    "expense_ratio",  # essential expenses ÷ income
    "residual_ratio",  # 1 − (installment + other debts + expenses) ÷ income
    "season_amplitude",  # max − min of the 12 seasonal income factors
    "income_volatility",  # sd of log monthly income
    "log_income",
    "annual_rate",  # fraction
    "loan_age_months",
    "term_progress",  # loan age ÷ contract term
    "months_in_arrears",  # unpaid installments × months per period, at obs
    "misses_6m",
    "misses_12m",
    "misses_total",
    "arrears_cleared",  # times the arrears went back to zero (cure or restructure)
    "months_since_miss",  # capped at 120; 120 when never missed
    "restructured",  # 1 when restructured on or before obs
)
CATEGORICAL_FEATURES = ("product", "segment", "frequency")
FEATURES = NUMERIC_FEATURES + CATEGORICAL_FEATURES

_MONTHS = """CASE l.frequency WHEN 'monthly' THEN 1 WHEN 'bimonthly' THEN 2 WHEN 'quarterly'
    THEN 3 WHEN 'semiannual' THEN 6 WHEN 'yearly' THEN 12 END"""

# The arrears state and installment at obs, from history (any obs before the portfolio's
# as_of): the first due date after obs says how many installments were unpaid going in, and
# its contract row holds the installment in force.
_STATE_FROM_HISTORY = f"""
state AS (
    SELECT o.obs_date, t.loan_id,
           min(t.due_date) AS next_due,
           arg_min(t.arrears_installments, t.due_date) AS unpaid,
           max(((t.arrears_installments + t.missed::INT) * {_MONTHS}
                >= {DEFAULT_MONTHS_IN_ARREARS})::INT) AS default_12m
    FROM obs o
    JOIN loan_month_truth t
      ON t.due_date > o.obs_date AND t.due_date <= o.obs_date + INTERVAL {HORIZON_MONTHS} MONTH
    JOIN loans l USING (loan_id)
    GROUP BY ALL),
state_inst AS (
    SELECT s.*, c.payment AS installment
    FROM state s JOIN contract_installments c
      ON c.loan_id = s.loan_id AND c.due_date = s.next_due)"""

# At the portfolio's as_of the loans table holds the state: the installment in force and the
# arrears, which are whole unpaid installments. A loan past maturity with arrears still open
# has no next due date; its seasonality is read from the month after as_of.
_STATE_FROM_LOANS = """
state_inst AS (
    SELECT o.obs_date, l.loan_id, l.next_due_date AS next_due,
           CAST(round(l.arrears_amount / l.regular_payment) AS INTEGER) AS unpaid,
           l.regular_payment AS installment
    FROM obs o CROSS JOIN loans l
    WHERE l.status IN ('active', 'delinquent', 'restructured')
      AND l.regular_payment > 0)"""

_HISTORY = f"""
marked AS (
    SELECT loan_id, due_date, missed,
           (arrears_installments + missed::INT > 0
            AND lead(arrears_installments) OVER w = 0) AS cleared
    FROM loan_month_truth
    WINDOW w AS (PARTITION BY loan_id ORDER BY due_date)),
history AS (
    SELECT s.obs_date, s.loan_id,
           count_if(h.missed AND h.due_date > s.obs_date - INTERVAL 6 MONTH) AS misses_6m,
           count_if(h.missed AND h.due_date > s.obs_date - INTERVAL {HORIZON_MONTHS} MONTH)
               AS misses_12m,
           count_if(h.missed) AS misses_total,
           count_if(h.cleared) AS arrears_cleared,
           max(h.due_date) FILTER (WHERE h.missed) AS last_miss
    FROM state_inst s JOIN marked h ON h.loan_id = s.loan_id AND h.due_date <= s.obs_date
    GROUP BY ALL)"""

_SELECT = f"""
SELECT s.loan_id, s.obs_date, {{target}}
       l.product::VARCHAR AS product, b.segment::VARCHAR AS segment,
       l.frequency::VARCHAR AS frequency,
       s.installment / {_MONTHS} / b.monthly_income AS pti,
       s.installment / {_MONTHS} / b.monthly_income
           / list_min(list_transform(range(0, {HORIZON_MONTHS} // {_MONTHS}),
               lambda j: b.income_seasonality[
                   ((month(coalesce(s.next_due, s.obs_date + INTERVAL 1 MONTH)) - 1
                     + j * {_MONTHS}) % 12) + 1]))
           AS pti_peak,
       (s.installment / {_MONTHS} + b.other_debt_payments) / b.monthly_income AS dti,
       b.essential_expenses / b.monthly_income AS expense_ratio,
       1 - (s.installment / {_MONTHS} + b.other_debt_payments + b.essential_expenses)
           / b.monthly_income AS residual_ratio,
       list_max(b.income_seasonality) - list_min(b.income_seasonality) AS season_amplitude,
       coalesce(b.income_volatility, 0) AS income_volatility,
       ln(b.monthly_income) AS log_income,
       l.annual_rate_percent / 100 AS annual_rate,
       date_diff('month', l.origination_date, s.obs_date) AS loan_age_months,
       date_diff('month', l.origination_date, s.obs_date) / l.term_months AS term_progress,
       s.unpaid * {_MONTHS} AS months_in_arrears,
       coalesce(h.misses_6m, 0) AS misses_6m,
       coalesce(h.misses_12m, 0) AS misses_12m,
       coalesce(h.misses_total, 0) AS misses_total,
       coalesce(h.arrears_cleared, 0) AS arrears_cleared,
       least(coalesce(date_diff('month', h.last_miss, s.obs_date), 120), 120)
           AS months_since_miss,
       (l.last_restructure_date IS NOT NULL AND l.last_restructure_date <= s.obs_date)::INT
           AS restructured
FROM state_inst s
JOIN loans l USING (loan_id)
JOIN borrowers b USING (borrower_id)
LEFT JOIN history h ON h.loan_id = s.loan_id AND h.obs_date = s.obs_date
WHERE b.monthly_income > 0 AND l.origination_date <= s.obs_date {{where}}
ORDER BY s.obs_date, s.loan_id"""


def portfolio_as_of(con: duckdb.DuckDBPyConnection) -> date:
    """The date the portfolio's balances refer to (latest ``loans.as_of``)."""
    row = con.execute("SELECT max(as_of) FROM loans").fetchone()
    if row is None or row[0] is None:
        raise InputError("the portfolio has no loans", field="loans", record="database")
    return row[0]


def training_frame(con: duckdb.DuckDBPyConnection, obs_dates: Sequence[date]) -> pd.DataFrame:
    """Features and the ``default_12m`` target for every open loan at each of ``obs_dates``
    (each at least 12 months before the portfolio's as_of, so its outcome is known)."""
    _require_history(con)
    sql = (
        "WITH obs AS (SELECT unnest(?::DATE[]) AS obs_date),"
        + _STATE_FROM_HISTORY
        + ","
        + _HISTORY
        + _SELECT.format(
            target="s.default_12m,",
            where=f"AND s.unpaid * {_MONTHS} < {DEFAULT_MONTHS_IN_ARREARS}",
        )
    )
    return _typed(con.execute(sql, [list(obs_dates)]).df())


def scoring_frame(con: duckdb.DuckDBPyConnection, as_of: date | None = None) -> pd.DataFrame:
    """Features of every open loan at ``as_of`` (default: the portfolio's as_of, using the
    loans table's current state; an earlier date re-creates the state from history).

    A loan already 90+ days past due is in default by definition; it is scored as the loan
    it becomes once a restructure capitalises its arrears (arrears state 0, restructured 1),
    which is the hazard a restructuring plan needs. ``in_default`` marks those rows.
    """
    current = portfolio_as_of(con)
    when = as_of or current
    if when > current:
        raise InputError(f"{when} is after the portfolio's as_of {current}", field="as_of")
    if when == current:
        sql = "WITH obs AS (SELECT ?::DATE AS obs_date)," + _STATE_FROM_LOANS + ","
        params: list = [when]
    else:
        _require_history(con)
        sql = "WITH obs AS (SELECT unnest(?::DATE[]) AS obs_date)," + _STATE_FROM_HISTORY + ","
        params = [[when]]
    sql += _HISTORY + _SELECT.format(target="", where="")
    frame = _typed(con.execute(sql, params).df())
    frame["in_default"] = frame["months_in_arrears"] >= DEFAULT_MONTHS_IN_ARREARS
    frame.loc[frame["in_default"], "months_in_arrears"] = 0.0
    frame.loc[frame["in_default"], "restructured"] = 1.0
    return frame


def _require_history(con: duckdb.DuckDBPyConnection) -> None:
    row = con.execute("SELECT count(*) FROM loan_month_truth").fetchone()
    if not row or row[0] == 0:
        raise InputError(
            "no payment history per due date to learn from (loan_month_truth is empty)",
            field="loan_month_truth",
            record="database",
        )


def _typed(frame: pd.DataFrame) -> pd.DataFrame:
    for name in NUMERIC_FEATURES:
        frame[name] = frame[name].astype("float64")
    for name in CATEGORICAL_FEATURES:
        frame[name] = frame[name].astype("string")
    if "default_12m" in frame:
        frame["default_12m"] = frame["default_12m"].astype("int8")
    return frame
