"""Who needs a new plan tonight: delinquency rolled forward to the run date, the re-planning
triggers, and the eligibility rules — all in SQL, so cost grows linearly with the book.

Triggers (a loan can have several; ``reasons`` lists them):

- ``new_arrears``: past due, and it became so since the previous completed run (every
  past-due loan on the first run);
- ``hardship_request``: an ``open`` hardship request dated on or before the run date;
- ``income_drop``: observed income over the last three months, each divided by the usual
  income × that month's seasonal factor, averages below ``1 − income_drop_threshold``;
- ``off_track``: a restructured plan missed an installment (the ``early_warning`` view);
- ``scheduled_review``: a restructured loan whose plan (or restructure) is at least
  ``review_interval_months`` old;
- ``all``: every open loan, when the run's scope is ``"all"`` (a stress scenario or a full
  re-plan).

Eligibility: a loan restructured ``max_restructures`` times, or less than
``cool_down_months`` ago, is not re-planned; the reason is kept in ``ineligible_reason``.
"""

from __future__ import annotations

from datetime import date

import duckdb
import pandas as pd

from repayplan.errors import InputError
from repayplan.portfolio.nightly_policy import NightlyPolicy

SCOPES = ("triggered", "all")
OPEN_STATUSES = ("active", "delinquent", "restructured")
_OPEN = ", ".join(f"'{s}'" for s in OPEN_STATUSES)

# Roll each open loan from its own as_of to the run date on its contract: installments that
# fell due are added to arrears (their principal leaves the outstanding balance), payments
# received are taken off, and days past due count from the oldest installment the payments
# do not cover (first in, first out).
_ROLL_FORWARD = f"""
WITH open AS (
    SELECT loan_id, as_of, arrears_amount, days_past_due FROM loans
    WHERE status IN ({_OPEN}) AND as_of < $as_of),
due AS (
    SELECT c.loan_id, c.due_date, c.payment, c.principal,
           sum(c.payment) OVER (PARTITION BY c.loan_id ORDER BY c.number) AS cum_due
    FROM contract_installments c JOIN open o USING (loan_id)
    WHERE c.due_date > o.as_of AND c.due_date <= $as_of),
paid AS (
    SELECT p.loan_id, sum(p.amount) AS paid FROM payments p JOIN open o USING (loan_id)
    WHERE p.payment_date > o.as_of AND p.payment_date <= $as_of GROUP BY ALL),
nxt AS (
    SELECT c.loan_id, min(c.due_date) AS next_due_date, count(*) AS remaining_term
    FROM contract_installments c JOIN open o USING (loan_id)
    WHERE c.due_date > $as_of GROUP BY ALL),
rolled AS (
    SELECT o.loan_id, o.as_of, o.arrears_amount, o.days_past_due,
           coalesce(p.paid, 0) AS paid,
           coalesce(sum(d.payment), 0) AS due_total,
           coalesce(sum(d.principal), 0) AS principal_due,
           count(d.due_date) AS fell_due,
           -- oldest new installment not covered once the old arrears are paid off
           min(d.due_date) FILTER (
               WHERE d.cum_due > coalesce(p.paid, 0) - o.arrears_amount) AS oldest_new_unpaid
    FROM open o LEFT JOIN due d USING (loan_id) LEFT JOIN paid p USING (loan_id)
    GROUP BY ALL)
SELECT r.loan_id,
       greatest(r.arrears_amount + r.due_total - r.paid, 0) AS arrears_amount,
       r.principal_due, r.fell_due,
       CASE WHEN r.arrears_amount + r.due_total - r.paid <= 0 THEN 0
            WHEN r.arrears_amount > 0 AND r.paid < r.arrears_amount
                THEN r.days_past_due + date_diff('day', r.as_of, $as_of)
            ELSE date_diff('day', r.oldest_new_unpaid, $as_of) END AS days_past_due,
       n.next_due_date, coalesce(n.remaining_term, 0) AS remaining_term
FROM rolled r LEFT JOIN nxt n USING (loan_id)
"""


def update_delinquency(con: duckdb.DuckDBPyConnection, as_of: date) -> int:
    """Bring every open loan whose balances refer to an earlier date forward to ``as_of``:
    arrears, outstanding principal, days past due, bucket, status (``active`` ↔
    ``delinquent``; ``restructured`` stays), next due date and remaining term, in one
    transaction. Loans already at ``as_of`` or later are left alone, so this is idempotent.
    Returns the number of loans rolled forward."""
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE rolled AS {_ROLL_FORWARD}", {"as_of": as_of})
        count = con.execute("SELECT count(*) FROM rolled").fetchone()[0]
        con.execute(
            """UPDATE loans SET
                   arrears_amount = r.arrears_amount,
                   outstanding_principal = greatest(loans.outstanding_principal
                                                    - r.principal_due, 0),
                   accrued_interest = CASE WHEN r.fell_due > 0 THEN 0
                                           ELSE loans.accrued_interest END,
                   days_past_due = r.days_past_due,
                   delinquency_bucket = bucket_of(r.days_past_due),
                   status = CASE WHEN loans.status = 'restructured' THEN loans.status
                                 WHEN r.days_past_due > 0 THEN 'delinquent'
                                 ELSE 'active' END,
                   next_due_date = r.next_due_date,
                   remaining_term = r.remaining_term,
                   as_of = $as_of
               FROM rolled r WHERE loans.loan_id = r.loan_id""",
            {"as_of": as_of},
        )
        con.execute("DROP TABLE rolled")
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise
    return int(count)


_SELECT = f"""
WITH open AS (
    SELECT l.loan_id, l.days_past_due, l.status, l.restructure_count, l.last_restructure_date,
           b.segment::VARCHAR AS segment, b.borrower_id, b.monthly_income,
           b.income_seasonality
    FROM loans l LEFT JOIN borrowers b USING (borrower_id)
    WHERE l.status IN ({_OPEN})),
previous AS (
    SELECT max(as_of) AS as_of FROM runs
    WHERE status IN ('succeeded', 'partial') AND as_of < $as_of),
hardship AS (
    SELECT DISTINCT loan_id FROM hardship_requests
    WHERE status = 'open' AND requested_on <= $as_of),
income AS (
    SELECT o.loan_id,
           avg(i.income / nullif(o.monthly_income
               * coalesce(o.income_seasonality[month(i.month)], 1.0), 0)) AS income_ratio
    FROM open o JOIN income_observations i USING (borrower_id)
    WHERE i.month <= $as_of AND i.month > $as_of - INTERVAL 3 MONTH
    GROUP BY ALL),
warned AS (SELECT DISTINCT loan_id FROM early_warning),
-- Plans of earlier dates only: a re-run of the same date must select the same loans.
planned AS (
    SELECT p.loan_id, max(r.as_of) AS plan_as_of FROM plans p JOIN runs r USING (run_id)
    WHERE p.chosen AND r.as_of < $as_of GROUP BY ALL),
flags AS (
    SELECT o.loan_id, o.segment, o.status, o.restructure_count, o.last_restructure_date,
           list_filter([
               CASE WHEN o.days_past_due > 0 AND o.status <> 'restructured' AND (
                        (SELECT as_of FROM previous) IS NULL
                        OR o.days_past_due <= date_diff('day', (SELECT as_of FROM previous),
                                                        $as_of))
                    THEN 'new_arrears' END,
               CASE WHEN h.loan_id IS NOT NULL THEN 'hardship_request' END,
               CASE WHEN i.income_ratio < 1 - $drop THEN 'income_drop' END,
               CASE WHEN w.loan_id IS NOT NULL THEN 'off_track' END,
               CASE WHEN o.status = 'restructured'
                         AND coalesce(pl.plan_as_of, o.last_restructure_date)
                             <= $as_of - to_months($review) THEN 'scheduled_review' END,
               CASE WHEN $everyone THEN 'all' END], lambda x: x IS NOT NULL) AS reasons
    FROM open o
    LEFT JOIN hardship h USING (loan_id) LEFT JOIN income i USING (loan_id)
    LEFT JOIN warned w USING (loan_id) LEFT JOIN planned pl USING (loan_id))
SELECT loan_id, segment, status::VARCHAR AS status, reasons,
       len(reasons) > 0 AND ineligible IS NULL AS eligible,
       CASE WHEN len(reasons) > 0 THEN ineligible END AS ineligible_reason
FROM (
    SELECT *,
           CASE WHEN restructure_count >= $max_restructures
                    THEN 'restructured ' || restructure_count || ' times (policy maximum '
                         || $max_restructures || ')'
                WHEN last_restructure_date > $as_of - to_months($cool_down)
                    THEN 'in cool-down until '
                         || strftime(last_restructure_date + to_months($cool_down), '%Y-%m-%d')
           END AS ineligible
    FROM flags)
ORDER BY loan_id
"""


def select_for_replanning(
    con: duckdb.DuckDBPyConnection, as_of: date, policy: NightlyPolicy, scope: str = "triggered"
) -> pd.DataFrame:
    """Every open loan with its re-planning triggers and eligibility at ``as_of``.

    Returns one row per open loan (``active``, ``delinquent``, ``restructured``), in loan-id
    order: ``loan_id``, ``segment``, ``status``, ``reasons`` (list of trigger names, empty
    when nothing calls for a new plan), ``eligible`` (has a reason and passes the eligibility
    rules) and ``ineligible_reason`` (why a triggered loan is not re-planned, else None). ``scope``
    ``"all"`` gives every open loan the reason ``all``.
    """
    if scope not in SCOPES:
        raise InputError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}", field="scope")
    return con.execute(
        _SELECT,
        {
            "as_of": as_of,
            "drop": policy.income_drop_threshold,
            "review": policy.review_interval_months,
            "everyone": scope == "all",
            "max_restructures": policy.max_restructures,
            "cool_down": policy.cool_down_months,
        },
    ).df()
