"""The SQL behind every figure of the morning report, one named query per figure.

Each query reads only what a nightly run stored (``runs``, ``plans``, ``plan_installments``,
``replan_triggers``, ``plan_failures``, the tracking views, and the simulation tables when
present) and takes the run as ``$run_id``. ``docs/report.md`` prints the same text (a test
checks that), so an analyst can reproduce any number of the report in DuckDB. Money is in
currency units (``DECIMAL(18,2)`` as stored), shares and PDs are fractions.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Query:
    """One figure's SQL: ``name`` (also its anchor in the report), the figure it feeds and
    the statement (parameter ``$run_id``)."""

    name: str
    figure: str
    sql: str


#: The main cause of a manual review, read off the planner's reason text (its first clause
#: names the constraint that stopped each alternative).
_CAUSE = """CASE
           WHEN reason LIKE '%yield floor%' THEN 'yield floor: no affordable plan keeps NPV'
           WHEN reason LIKE '%affordab%' THEN 'affordability: income too low for any plan'
           WHEN reason LIKE '%minimum payment%' THEN 'minimum payment above what is affordable'
           WHEN reason LIKE '%no single constraint%' THEN 'constraints jointly infeasible'
           ELSE 'other' END"""

QUERIES: tuple[Query, ...] = (
    Query(
        "run",
        "Header and the at-a-glance panel (status, counts, selection gap, policy)",
        """SELECT run_id, kind, as_of, status::VARCHAR AS status, started_at, finished_at,
       policy_id, loans_considered, loans_replanned, plans_written, message,
       selection_method, selection_objective, selection_bound, selection_gap,
       counts, timings, solver_stats, parameters
FROM runs WHERE run_id = $run_id""",
    ),
    Query(
        "triggers",
        "Why loans were picked: loans per trigger reason (a loan can have several)",
        """SELECT reason, count(*) AS loans,
       count(*) FILTER (WHERE eligible) AS eligible,
       count(*) FILTER (WHERE NOT eligible) AS not_eligible
FROM (SELECT unnest(reasons) AS reason, eligible
      FROM replan_triggers WHERE run_id = $run_id)
GROUP BY reason ORDER BY loans DESC, reason""",
    ),
    Query(
        "ineligible",
        "Triggered loans that were not re-planned, by reason",
        r"""SELECT regexp_replace(ineligible_reason, '\d{4}-\d{2}-\d{2}', '(a date)', 'g')
           AS reason,
       count(*) AS loans
FROM replan_triggers WHERE run_id = $run_id AND NOT eligible
GROUP BY 1 ORDER BY loans DESC, reason""",
    ),
    Query(
        "alternatives",
        "Chosen alternatives: loans, concession, PD and expected loss per alternative",
        """SELECT alternative, count(*) AS loans, sum(concession) AS concession,
       avg(pd) AS avg_pd, sum(expected_loss) AS expected_loss,
       sum(forborne_principal) AS forborne_principal
FROM plans WHERE run_id = $run_id AND chosen
GROUP BY alternative ORDER BY loans DESC, alternative""",
    ),
    Query(
        "limits",
        "Portfolio limits: use, limit, multiplier (concession budget, collection floors, "
        "segment caps, review capacity)",
        """SELECT l.key AS name,
       CAST(l.value->>'used' AS DOUBLE) AS used,
       CAST(l.value->>'limit' AS DOUBLE) AS "limit",
       CAST(l.value->>'relaxed_to' AS DOUBLE) AS relaxed_to,
       CAST(l.value->>'price' AS DOUBLE) AS price
FROM runs, json_each(runs.solver_stats->'selection'->'limits') AS l
WHERE runs.run_id = $run_id""",
    ),
    Query(
        "loans",
        "PD and expected loss before (the contract, `keep`) and after (the chosen plan), "
        "per re-planned loan; also the largest concessions",
        """WITH chosen AS (
    SELECT * FROM plans WHERE run_id = $run_id AND chosen),
keep AS (
    SELECT loan_id, pd, expected_loss, npv FROM plans
    WHERE run_id = $run_id AND alternative = 'keep')
SELECT c.loan_id, b.segment::VARCHAR AS segment, c.alternative, c.status::VARCHAR AS status,
       c.annual_rate_percent, c.term_periods, c.concession, c.forborne_principal,
       c.max_pti, k.pd AS pd_before, c.pd AS pd_after,
       k.expected_loss AS expected_loss_before, c.expected_loss AS expected_loss_after,
       k.npv AS npv_before, c.npv AS npv_after
FROM chosen c LEFT JOIN keep k USING (loan_id)
LEFT JOIN loans l USING (loan_id) LEFT JOIN borrowers b USING (borrower_id)
ORDER BY c.concession DESC, c.loan_id""",
    ),
    Query(
        "failures",
        "Manual reviews (no feasible plan, by main cause) and failures (by stage and reason)",
        f"""SELECT stage,
       CASE WHEN stage = 'manual_review' THEN {_CAUSE}
            ELSE reason END AS reason,
       count(*) AS loans, min(loan_id) AS example_loan
FROM plan_failures WHERE run_id = $run_id
GROUP BY 1, 2 ORDER BY stage = 'manual_review' DESC, loans DESC, reason""",
    ),
    Query(
        "reviews",
        "Chosen restructures that need a person's approval (relaxed, forbearance, or a "
        "concession above the policy's review threshold)",
        """SELECT p.loan_id, p.alternative, p.status::VARCHAR AS status, p.concession,
       p.forborne_principal,
       concat_ws('; ',
           CASE WHEN p.status = 'relaxed' THEN 'needed a declared relaxation' END,
           CASE WHEN p.forborne_principal > 0 THEN 'forbears principal' END,
           CASE WHEN p.concession > CAST(r.parameters->'policy'->>'review_concession_threshold'
                                         AS DOUBLE)
                THEN 'concession above the review threshold' END) AS why
FROM plans p JOIN runs r USING (run_id)
WHERE p.run_id = $run_id AND p.chosen AND p.alternative <> 'keep'
  AND (p.status = 'relaxed' OR p.forborne_principal > 0
       OR p.concession > CAST(r.parameters->'policy'->>'review_concession_threshold' AS DOUBLE))
ORDER BY p.concession DESC, p.loan_id""",
    ),
    Query(
        "adherence",
        "How restructured plans of earlier runs are performing: for each loan, the plan in "
        "force before this run (the newest chosen by an earlier run), planned against paid "
        "up to this run's as_of",
        """WITH this AS (SELECT as_of FROM runs WHERE run_id = $run_id),
plan AS (
    SELECT p.plan_id, p.loan_id, p.run_id, p.alternative, r.as_of AS plan_as_of
    FROM plans p JOIN runs r USING (run_id)
    WHERE p.chosen AND r.as_of < (SELECT as_of FROM this)
      AND r.status IN ('succeeded', 'partial')
    QUALIFY row_number() OVER (
        PARTITION BY p.loan_id ORDER BY r.as_of DESC, p.created_at DESC, p.plan_id DESC) = 1),
restructured AS (SELECT * FROM plan WHERE alternative <> 'keep'),
due AS (
    SELECT i.plan_id, i.due_date, i.payment,
           sum(i.payment) OVER (PARTITION BY i.plan_id ORDER BY i.number) AS planned_cum
    FROM plan_installments i JOIN restructured USING (plan_id)
    WHERE i.due_date <= (SELECT as_of FROM this)),
paid AS (
    SELECT s.plan_id, sum(pay.amount) AS paid_to_date
    FROM restructured s JOIN payments pay USING (loan_id)
    WHERE pay.payment_date > s.plan_as_of AND pay.payment_date <= (SELECT as_of FROM this)
    GROUP BY s.plan_id)
SELECT s.loan_id, s.alternative, s.run_id, s.plan_as_of,
       count(due.due_date) AS installments_due,
       coalesce(sum(due.payment), 0) AS planned_to_date,
       coalesce(any_value(paid.paid_to_date), 0) AS paid_to_date,
       coalesce(sum(due.payment), 0) - coalesce(any_value(paid.paid_to_date), 0) AS shortfall,
       coalesce(any_value(paid.paid_to_date), 0) / nullif(sum(due.payment), 0)
           AS adherence_ratio,
       count(due.due_date) FILTER (
           WHERE due.planned_cum > coalesce(paid.paid_to_date, 0)) AS installments_missed,
       min(due.due_date) FILTER (
           WHERE due.planned_cum > coalesce(paid.paid_to_date, 0)) AS first_missed_due_date,
       list_contains(t.reasons, 'off_track') AS replanned_tonight
FROM restructured s LEFT JOIN due USING (plan_id) LEFT JOIN paid USING (plan_id)
LEFT JOIN replan_triggers t ON t.run_id = $run_id AND t.loan_id = s.loan_id
GROUP BY s.plan_id, s.loan_id, s.alternative, s.run_id, s.plan_as_of, t.reasons
ORDER BY installments_missed DESC, shortfall DESC, s.loan_id""",
    ),
    Query(
        "book_restructured",
        "Every open loan restructured before (by any run or before the engine), by "
        "delinquency bucket today",
        """SELECT delinquency_bucket::VARCHAR AS bucket, count(*) AS loans,
       sum(outstanding_principal) AS outstanding_principal
FROM loans WHERE restructure_count > 0 AND status <> 'closed'
GROUP BY delinquency_bucket ORDER BY delinquency_bucket""",
    ),
    Query(
        "manual_review_loans",
        "Loans with no feasible plan (they keep their contract and go to a person)",
        f"""SELECT loan_id, {_CAUSE} AS cause, reason
FROM plan_failures
WHERE run_id = $run_id AND stage = 'manual_review' ORDER BY loan_id""",
    ),
    Query(
        "drilldown_plans",
        "Drill-down: every alternative of a loan side by side (loans in manual review and "
        "the largest concessions)",
        """SELECT loan_id, plan_id, alternative, chosen, status::VARCHAR AS status,
       annual_rate_percent, term_periods, frequency::VARCHAR AS frequency, total_paid,
       npv, apr_percent, pd, expected_loss, max_pti, concession, forborne_principal,
       explanation
FROM plans WHERE run_id = $run_id AND loan_id IN (SELECT unnest($loans))
ORDER BY loan_id, chosen DESC, alternative = 'keep' DESC, alternative""",
    ),
    Query(
        "drilldown_schedules",
        "Drill-down: the chosen plan's schedule and the contract's remaining installments",
        """SELECT p.loan_id, 'chosen: ' || p.alternative AS schedule, i.number, i.due_date,
       i.payment, i.principal, i.interest, i.balance
FROM plan_installments i JOIN plans p USING (plan_id)
WHERE p.run_id = $run_id AND p.chosen AND p.loan_id IN (SELECT unnest($loans))
UNION ALL
SELECT c.loan_id, 'contract', c.number, c.due_date, c.payment, c.principal, c.interest,
       c.balance
FROM contract_installments c
WHERE c.loan_id IN (SELECT unnest($loans))
  AND c.due_date > (SELECT as_of FROM runs WHERE run_id = $run_id)
ORDER BY loan_id, schedule, number""",
    ),
    Query(
        "simulation_run",
        "Simulation of this run (the newest for its run_id, else the newest for its as_of)",
        """SELECT s.* FROM simulation_runs s, runs r
WHERE r.run_id = $run_id AND (s.run_id = r.run_id OR (s.run_id IS NULL AND s.as_of = r.as_of))
ORDER BY s.run_id IS NULL, s.created_at DESC LIMIT 1""",
    ),
    Query(
        "simulation_results",
        "Policy comparison and efficient frontier (rows of that simulation, `$sim_id`)",
        """SELECT policy, concession_budget, segment, metric, horizon_months, estimate,
       ci_low, ci_high, versus
FROM simulation_results WHERE sim_id = $sim_id
ORDER BY policy, metric, horizon_months, concession_budget""",
    ),
)

BY_NAME: dict[str, Query] = {q.name: q for q in QUERIES}

BEGIN, END = (
    "<!-- sql:begin (python -m repayplan.report.queries docs/report.md) -->",
    "<!-- sql:end -->",
)


def markdown() -> str:
    """Every query as a Markdown section (what ``docs/report.md`` carries)."""
    return "".join(f"\n### `{q.name}` — {q.figure}\n\n```sql\n{q.sql}\n```\n" for q in QUERIES)


def update_docs(path: str) -> None:
    """Rewrite the part of ``path`` between the markers with :func:`markdown`."""
    from pathlib import Path

    text = Path(path).read_text()
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    Path(path).write_text(f"{head}{BEGIN}\n{markdown()}\n{END}{tail}")


if __name__ == "__main__":
    import sys

    update_docs(sys.argv[1])
