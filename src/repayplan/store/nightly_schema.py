"""Schema of the nightly re-planning run (migration 2): triggers, failures, selection gap,
the ``interrupted`` run status, and the analysts' tracking views.

- ``replan_triggers``: one row per loan a run looked at for a reason (``reasons`` is a list
  of ``new_arrears``, ``hardship_request``, ``income_drop``, ``off_track``,
  ``scheduled_review``, ``all``), whether it was eligible and, if not, why.
- ``plan_failures``: one row per loan a run could not plan or whose chosen plan failed the
  compliance check: the stage (``input``, ``quote``, ``compliance``) and the reason.
- ``runs`` gains ``selection_method``, ``selection_objective`` / ``selection_bound``
  (currency units) and ``selection_gap`` (a fraction), and the status ``interrupted`` (a run
  that was killed; set by the next run's writer).
- ``plan_adherence``: per loan's latest chosen plan, the installments due up to the loan's
  ``as_of``, planned versus actually paid since the plan's run, and how many installments
  the payments do not cover (``installments_missed``).
- ``early_warning``: the restructured plans (chosen alternative other than ``keep``) that
  missed an installment — the next nightly run re-plans them (trigger ``off_track``).
"""

from __future__ import annotations

from collections.abc import Sequence

#: The run status this migration adds to migration 1's.
INTERRUPTED = "interrupted"


def nightly_statements(run_statuses: Sequence[str]) -> tuple[str, ...]:
    """Migration 2's statements; ``run_statuses`` are migration 1's run statuses.

    :mod:`repayplan.store.schema` assembles the migrations and passes them in: this module
    does not import it, so the schema's pieces are put together in one direction only.
    """
    status_list = ", ".join(f"'{s}'" for s in (*run_statuses, INTERRUPTED))
    return (f"CREATE TYPE run_status_v2 AS ENUM ({status_list})", *_STATEMENTS)


_STATEMENTS: tuple[str, ...] = (
    "ALTER TABLE runs ALTER status TYPE run_status_v2",
    "ALTER TABLE runs ADD COLUMN selection_method VARCHAR",
    "ALTER TABLE runs ADD COLUMN selection_objective DOUBLE",
    "ALTER TABLE runs ADD COLUMN selection_bound DOUBLE",
    "ALTER TABLE runs ADD COLUMN selection_gap DOUBLE",
    """CREATE TABLE replan_triggers (
        run_id VARCHAR NOT NULL, loan_id VARCHAR NOT NULL, reasons VARCHAR[] NOT NULL,
        eligible BOOLEAN NOT NULL, ineligible_reason VARCHAR
    )""",
    """CREATE TABLE plan_failures (
        run_id VARCHAR NOT NULL, loan_id VARCHAR NOT NULL, stage VARCHAR NOT NULL,
        reason VARCHAR NOT NULL
    )""",
    """CREATE VIEW plan_adherence AS
    WITH plan AS (
        SELECT p.plan_id, p.loan_id, p.run_id, p.alternative, r.as_of AS plan_as_of,
               l.as_of AS as_of
        FROM latest_plan p JOIN runs r USING (run_id) JOIN loans l USING (loan_id)),
    due AS (
        SELECT i.plan_id, i.due_date, i.payment,
               sum(i.payment) OVER (PARTITION BY i.plan_id ORDER BY i.number) AS planned_cum
        FROM plan_installments i JOIN plan USING (plan_id)
        WHERE i.due_date <= plan.as_of),
    paid AS (
        SELECT plan.plan_id, sum(pay.amount) AS paid_to_date, max(pay.payment_date) AS last_paid
        FROM plan JOIN payments pay USING (loan_id)
        WHERE pay.payment_date > plan.plan_as_of AND pay.payment_date <= plan.as_of
        GROUP BY plan.plan_id)
    SELECT plan.loan_id, plan.plan_id, plan.run_id, plan.alternative, plan.plan_as_of,
           plan.as_of,
           count(due.due_date) AS installments_due,
           coalesce(sum(due.payment), 0) AS planned_to_date,
           coalesce(any_value(paid.paid_to_date), 0) AS paid_to_date,
           coalesce(sum(due.payment), 0) - coalesce(any_value(paid.paid_to_date), 0)
               AS shortfall,
           round(coalesce(any_value(paid.paid_to_date), 0) / nullif(sum(due.payment), 0), 6)
               AS adherence_ratio,
           count(due.due_date) FILTER (
               WHERE due.planned_cum > coalesce(paid.paid_to_date, 0)) AS installments_missed,
           min(due.due_date) FILTER (
               WHERE due.planned_cum > coalesce(paid.paid_to_date, 0)) AS first_missed_due_date,
           any_value(paid.last_paid) AS last_payment_date
    FROM plan LEFT JOIN due USING (plan_id) LEFT JOIN paid USING (plan_id)
    GROUP BY ALL""",
    """CREATE VIEW early_warning AS
    SELECT loan_id, plan_id, run_id, alternative, plan_as_of, as_of, installments_missed,
           first_missed_due_date, shortfall, adherence_ratio
    FROM plan_adherence
    WHERE alternative <> 'keep' AND installments_missed > 0""",
)
