"""The portfolio schema: ENUM types, tables, macros and analyst views, as versioned migrations.

Each migration is applied once, in order, inside one transaction, and recorded in
``schema_migrations``; :func:`migrate` is what :func:`repayplan.store.connection.connect`
calls on every open. Money is ``DECIMAL(18,2)`` (currency units, exact), rates are
``annual_rate_percent DECIMAL(7,4)`` (what an analyst reads), dates are ``DATE``.

Large fact tables (installments, payments, truth, income observations) carry no primary key
on purpose: DuckDB keeps an in-memory ART index per key, which would cost gigabytes for a
million-loan portfolio; the writers keep them unique instead.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import duckdb

from repayplan.store.nightly_schema import nightly_statements

SEGMENTS = ("salaried", "self_employed", "gig", "seasonal")
PRODUCTS = ("consumer_instalment", "credit_card", "car", "mortgage")
FREQUENCIES = (
    "weekly",
    "biweekly",
    "semimonthly",
    "monthly",
    "bimonthly",
    "quarterly",
    "semiannual",
    "yearly",
)
#: Months per period of the month-based cycles (the ones contracts in the store may use).
FREQUENCY_MONTHS = {"monthly": 1, "bimonthly": 2, "quarterly": 3, "semiannual": 6, "yearly": 12}
BUCKETS = ("current", "dpd_1_30", "dpd_31_60", "dpd_61_90", "dpd_90_plus")
LOAN_STATUSES = ("active", "delinquent", "defaulted", "closed", "restructured")
HARDSHIP_REASONS = ("job_loss", "illness", "business_downturn", "seasonal", "other")
HARDSHIP_STATUSES = ("open", "approved", "declined", "closed")
RUN_STATUSES = ("running", "succeeded", "partial", "failed", "cancelled")
PLAN_STATUSES = (
    "ok",
    "relaxed",
    "manual_review",
    "infeasible",
    "proposed",
    "approved",
    "rejected",
    "active",
    "superseded",
)

#: The policy every new database starts with (fractions per year unless the name says
#: otherwise); ``policy_versions`` keeps later versions beside it.
DEFAULT_POLICY = {
    "hurdle_rate": "0.05",
    "max_concession": "0.10",
    "rate_floor": "0.02",
    "rate_cap": "0.36",
    "pti_cap": "0.40",
    "concession_budget": "5000000.00",
    "segment_caps": {"salaried": 0.10, "self_employed": 0.15, "gig": 0.15, "seasonal": 0.20},
    "review_capacity": 200,
    "cool_down_months": 6,
    "max_restructures": 2,
    "max_term_months": 480,
    "max_holiday_months": 3,
    "min_payment": "10.00",
    "lgd": "0.45",
    "default_cost": "0.5",
    "collection_floor_share": "0.8",
}


def _enum(name: str, values: Sequence[str]) -> str:
    quoted = ", ".join(f"'{v}'" for v in values)
    return f"CREATE TYPE {name} AS ENUM ({quoted})"


_MONEY = "DECIMAL(18,2)"

_V1_TYPES = [
    _enum("segment", SEGMENTS),
    _enum("product", PRODUCTS),
    _enum("frequency", FREQUENCIES),
    _enum("delinquency_bucket", BUCKETS),
    _enum("loan_status", LOAN_STATUSES),
    _enum("hardship_reason", HARDSHIP_REASONS),
    _enum("hardship_status", HARDSHIP_STATUSES),
    _enum("run_status", RUN_STATUSES),
    _enum("plan_status", PLAN_STATUSES),
]

_V1_TABLES = [
    """CREATE TABLE store_meta (key VARCHAR PRIMARY KEY, value VARCHAR NOT NULL)""",
    f"""CREATE TABLE borrowers (
        borrower_id VARCHAR PRIMARY KEY,          -- pseudonym (HMAC of the lender's id)
        segment segment,
        monthly_income {_MONEY} NOT NULL,         -- usual net income per month
        essential_expenses {_MONEY} NOT NULL,     -- per month
        other_debt_payments {_MONEY} NOT NULL,    -- per month, other lenders
        income_seasonality DOUBLE[12],            -- Jan..Dec factors averaging 1
        income_volatility DOUBLE,                 -- sd of log monthly income
        full_name_token VARCHAR,                  -- HMAC tokens, never plaintext
        national_id_token VARCHAR,
        phone_token VARCHAR,
        source VARCHAR NOT NULL                   -- 'demo' or the import id
    )""",
    f"""CREATE TABLE loans (
        loan_id VARCHAR PRIMARY KEY,
        borrower_id VARCHAR NOT NULL,
        product product NOT NULL,
        principal {_MONEY} NOT NULL,              -- amount financed at origination
        annual_rate_percent DECIMAL(7,4) NOT NULL,
        term_months INTEGER NOT NULL,
        frequency frequency NOT NULL,
        origination_date DATE NOT NULL,
        outstanding_principal {_MONEY} NOT NULL,  -- not yet due
        accrued_interest {_MONEY} NOT NULL,       -- since the last due date
        arrears_amount {_MONEY} NOT NULL,         -- past-due installments unpaid
        penalty_fees {_MONEY} NOT NULL,
        days_past_due INTEGER NOT NULL,
        delinquency_bucket delinquency_bucket NOT NULL,
        status loan_status NOT NULL,
        restructure_count INTEGER NOT NULL,
        last_restructure_date DATE,
        cure_count INTEGER NOT NULL,              -- times it returned to current
        regular_payment {_MONEY},                 -- installment of the contract in force
        remaining_term INTEGER,                   -- installments due after as_of
        next_due_date DATE,
        as_of DATE NOT NULL,                      -- date the balances refer to
        source VARCHAR NOT NULL
    )""",
    f"""CREATE TABLE contract_installments (
        loan_id VARCHAR NOT NULL, number INTEGER NOT NULL, due_date DATE NOT NULL,
        payment {_MONEY} NOT NULL, principal {_MONEY} NOT NULL, interest {_MONEY} NOT NULL,
        balance {_MONEY} NOT NULL                 -- scheduled balance after this installment
    )""",
    f"""CREATE TABLE payments (
        loan_id VARCHAR NOT NULL, payment_date DATE NOT NULL,
        seq INTEGER NOT NULL,                     -- 1, 2, ... for several on one day
        amount {_MONEY} NOT NULL, due_date DATE, installment_number INTEGER,
        source VARCHAR NOT NULL
    )""",
    f"""CREATE TABLE income_observations (
        borrower_id VARCHAR NOT NULL, month DATE NOT NULL, income {_MONEY} NOT NULL
    )""",
    """CREATE TABLE hardship_requests (
        request_id VARCHAR PRIMARY KEY, loan_id VARCHAR NOT NULL, requested_on DATE NOT NULL,
        reason hardship_reason NOT NULL, expected_recovery_date DATE,
        income_factor DOUBLE,                     -- income during hardship / usual income
        status hardship_status NOT NULL
    )""",
    """CREATE TABLE policy_versions (
        policy_id VARCHAR PRIMARY KEY, created_at TIMESTAMP NOT NULL, description VARCHAR,
        parameters JSON NOT NULL, active BOOLEAN NOT NULL
    )""",
    """CREATE TABLE runs (
        run_id VARCHAR PRIMARY KEY, kind VARCHAR, as_of DATE NOT NULL,
        started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP, status run_status NOT NULL,
        parameters JSON, policy_id VARCHAR,
        loans_considered INTEGER, loans_replanned INTEGER, plans_written INTEGER,
        counts JSON, timings JSON, solver_stats JSON, message VARCHAR
    )""",
    f"""CREATE TABLE plans (
        plan_id VARCHAR PRIMARY KEY, run_id VARCHAR, loan_id VARCHAR NOT NULL,
        alternative VARCHAR NOT NULL, chosen BOOLEAN NOT NULL, status plan_status NOT NULL,
        annual_rate_percent DECIMAL(7,4), term_periods INTEGER, frequency frequency,
        objective DOUBLE, total_paid {_MONEY}, total_interest {_MONEY}, npv {_MONEY},
        apr_percent DOUBLE, pd DOUBLE, expected_loss {_MONEY}, max_pti DOUBLE,
        concession {_MONEY}, forborne_principal {_MONEY}, metrics JSON, explanation VARCHAR,
        solver VARCHAR, created_at TIMESTAMP NOT NULL
    )""",
    f"""CREATE TABLE plan_installments (
        plan_id VARCHAR NOT NULL, number INTEGER NOT NULL, due_date DATE NOT NULL,
        payment {_MONEY} NOT NULL, principal {_MONEY} NOT NULL, interest {_MONEY} NOT NULL,
        balance {_MONEY} NOT NULL
    )""",
    """CREATE TABLE imports (
        import_id VARCHAR PRIMARY KEY, started_at TIMESTAMP NOT NULL, finished_at TIMESTAMP,
        files JSON, counts JSON
    )""",
    """CREATE TABLE rejected_rows (
        import_id VARCHAR, run_id VARCHAR, source_file VARCHAR NOT NULL,
        row_number BIGINT,                        -- 1-based data row, header not counted
        record_id VARCHAR, field VARCHAR, reason VARCHAR NOT NULL,
        rejected_at TIMESTAMP NOT NULL
    )""",
    """CREATE TABLE risk_models (
        model_id VARCHAR PRIMARY KEY, fitted_at TIMESTAMP NOT NULL, kind VARCHAR NOT NULL,
        features JSON, metrics JSON, artifact_path VARCHAR, active BOOLEAN NOT NULL
    )""",
    """CREATE TABLE risk_scores (
        loan_id VARCHAR NOT NULL, scored_at TIMESTAMP NOT NULL, model_id VARCHAR,
        monthly_hazard DOUBLE NOT NULL, pd_12m DOUBLE
    )""",
    """CREATE TABLE behaviour_truth (
        parameter VARCHAR PRIMARY KEY, value DOUBLE NOT NULL, description VARCHAR NOT NULL
    )""",
    """CREATE TABLE loan_month_truth (
        loan_id VARCHAR NOT NULL, month DATE NOT NULL, due_date DATE NOT NULL,
        payment_to_income DOUBLE NOT NULL, shock BOOLEAN NOT NULL,
        arrears_installments INTEGER NOT NULL,    -- installments unpaid before this due date
        true_hazard DOUBLE NOT NULL, missed BOOLEAN NOT NULL
    )""",
]

_V1_MACROS = [
    # One definition of the buckets, used by every writer and open to analysts.
    """CREATE MACRO bucket_of(dpd) AS CAST(CASE
        WHEN dpd <= 0 THEN 'current' WHEN dpd <= 30 THEN 'dpd_1_30'
        WHEN dpd <= 60 THEN 'dpd_31_60' WHEN dpd <= 90 THEN 'dpd_61_90'
        ELSE 'dpd_90_plus' END AS delinquency_bucket)""",
    # Exact: cents (BIGINT) to DECIMAL(18,2) with no floating point on the way.
    "CREATE MACRO money_of_cents(c) AS CAST(CAST(c AS DECIMAL(18,0)) * 0.01 AS DECIMAL(18,2))",
]

_V1_VIEWS = [
    """CREATE VIEW portfolio_status AS
    SELECT l.delinquency_bucket, b.segment, l.product,
           count(*) AS loans,
           sum(l.outstanding_principal) AS outstanding_principal,
           sum(l.arrears_amount) AS arrears_amount,
           sum(l.penalty_fees) AS penalty_fees,
           round(count(*) / sum(count(*)) OVER (), 6) AS share_of_loans,
           round(sum(l.outstanding_principal)
                 / nullif(sum(sum(l.outstanding_principal)) OVER (), 0), 6) AS share_of_balance
    FROM loans l LEFT JOIN borrowers b USING (borrower_id)
    WHERE l.status <> 'closed'
    GROUP BY ALL""",
    """CREATE VIEW latest_plan AS
    SELECT * FROM plans WHERE chosen
    QUALIFY row_number() OVER (PARTITION BY loan_id ORDER BY created_at DESC, plan_id DESC) = 1""",
    """CREATE VIEW plan_vs_contract AS
    WITH contract_left AS (
        SELECT c.loan_id, count(*) AS contract_periods_left,
               sum(c.payment) AS contract_total_left
        FROM contract_installments c JOIN loans l USING (loan_id)
        WHERE c.due_date > l.as_of GROUP BY c.loan_id),
    plan_totals AS (
        SELECT plan_id, sum(payment) AS plan_total, max(payment) AS plan_max_payment,
               arg_min(payment, number) AS plan_first_payment
        FROM plan_installments GROUP BY plan_id)
    SELECT p.loan_id, p.plan_id, p.run_id, p.alternative, p.status,
           l.annual_rate_percent AS contract_rate_percent,
           p.annual_rate_percent AS plan_rate_percent,
           l.regular_payment AS contract_payment,
           t.plan_first_payment, t.plan_max_payment,
           cl.contract_periods_left, p.term_periods AS plan_periods,
           l.arrears_amount + l.penalty_fees AS overdue_amount,
           cl.contract_total_left, t.plan_total,
           t.plan_total - cl.contract_total_left AS plan_minus_contract_total,
           p.forborne_principal, p.pd, p.expected_loss
    FROM latest_plan p JOIN loans l USING (loan_id)
    LEFT JOIN contract_left cl USING (loan_id)
    LEFT JOIN plan_totals t USING (plan_id)""",
    """CREATE VIEW run_summary AS
    SELECT r.run_id, r.kind, r.as_of, r.status, r.policy_id, r.started_at, r.finished_at,
           date_diff('millisecond', r.started_at, r.finished_at) / 1000.0 AS seconds,
           r.loans_considered, r.loans_replanned, r.plans_written,
           count(p.plan_id) FILTER (WHERE p.chosen) AS plans_chosen,
           count(p.plan_id) FILTER (WHERE p.status = 'manual_review') AS manual_reviews,
           sum(p.concession) FILTER (WHERE p.chosen) AS concession_total,
           sum(p.forborne_principal) FILTER (WHERE p.chosen) AS forborne_total,
           r.solver_stats
    FROM runs r LEFT JOIN plans p USING (run_id)
    GROUP BY ALL""",
]


@dataclass(frozen=True)
class Migration:
    """One schema version: its number, what it does, and the statements that do it."""

    version: int
    description: str
    statements: tuple[str, ...]


def _seed_default_policy() -> str:
    params = json.dumps(DEFAULT_POLICY).replace("'", "''")
    return (
        "INSERT INTO policy_versions VALUES ('default-v1', current_timestamp, "
        f"'Default policy shipped with repayplan', '{params}', true)"
    )


_SIMULATION_STATEMENTS = (
    """CREATE TABLE simulation_runs (
        sim_id VARCHAR PRIMARY KEY,
        run_id VARCHAR,                           -- nightly run simulated (may be NULL)
        as_of DATE, created_at TIMESTAMP,
        behaviour VARCHAR,                        -- 'truth' | 'fitted'
        paths INTEGER, seed BIGINT, loans INTEGER,
        horizons VARCHAR,                         -- e.g. '12,24' (months)
        params JSON, seconds DOUBLE
    )""",
    """CREATE TABLE simulation_results (
        sim_id VARCHAR NOT NULL,
        policy VARCHAR NOT NULL,                  -- contract, waterfall, nightly, optimize, …
        concession_budget DOUBLE,                 -- frontier points only (currency units)
        segment VARCHAR NOT NULL,                 -- 'all' or a segment
        metric VARCHAR NOT NULL,                  -- charge_off, dpd90, cure_rate, lender_npv,
                                                  -- borrower_paid, concession, charge_off_cut
        horizon_months INTEGER,
        estimate DOUBLE, ci_low DOUBLE, ci_high DOUBLE,  -- fractions; 95 % bootstrap
        versus VARCHAR                            -- NULL: a level; else the paired baseline
    )""",
    # Champion–challenger: which arm of the nightly's policy experiment chose the plan.
    "ALTER TABLE plans ADD COLUMN arm VARCHAR",
)

#: Offer lifecycle (migration 5): ``docs/offers.md``.
OFFER_STATUSES = (
    "offered",
    "accepted",
    "approved",
    "booked",
    "rejected",
    "expired",
    "cancelled",
    "undone",
)
API_KEY_ROLES = ("platform", "reviewer")

_OFFER_STATEMENTS = (
    _enum("offer_status", OFFER_STATUSES),
    f"""CREATE TABLE offers (
        offer_id VARCHAR PRIMARY KEY,
        loan_id VARCHAR NOT NULL,
        batch_id VARCHAR NOT NULL,                -- offers presented together
        source VARCHAR NOT NULL,                  -- nightly | hardship | quote
        plan_id VARCHAR, run_id VARCHAR,          -- the nightly's plan and run, if any
        alternative VARCHAR NOT NULL,
        as_of DATE NOT NULL,                      -- the balances the plan starts from
        contract_version INTEGER NOT NULL,        -- the loan's contract version it replaces
        created_at TIMESTAMP NOT NULL, expires_at TIMESTAMP NOT NULL,   -- UTC
        needs_review BOOLEAN NOT NULL,            -- booked only after a second person approves
        annual_rate_percent DECIMAL(7,4) NOT NULL, frequency frequency NOT NULL,
        term_periods INTEGER NOT NULL,
        first_payment {_MONEY} NOT NULL, max_payment {_MONEY} NOT NULL,
        total_paid {_MONEY} NOT NULL, total_interest {_MONEY} NOT NULL,
        apr_percent DOUBLE, irr_annual_percent DOUBLE,  -- IRR method (PBOC 2021 No. 3)
        max_pti DOUBLE, explanation VARCHAR, metrics JSON,
        engine_version VARCHAR NOT NULL, policy_id VARCHAR, model_id VARCHAR
    )""",
    f"""CREATE TABLE offer_installments (
        offer_id VARCHAR NOT NULL, number INTEGER NOT NULL, due_date DATE NOT NULL,
        payment {_MONEY} NOT NULL, principal {_MONEY} NOT NULL, interest {_MONEY} NOT NULL,
        balance {_MONEY} NOT NULL
    )""",
    # Audit: one row per transition, appended, never updated.
    """CREATE TABLE offer_transitions (
        offer_id VARCHAR NOT NULL, changed_at TIMESTAMP NOT NULL, -- UTC
        from_status offer_status, to_status offer_status NOT NULL,
        actor VARCHAR NOT NULL,                   -- API key name, borrower:<loan>, system
        event_id VARCHAR,                         -- the inbox event that caused it
        note VARCHAR
    )""",
    # Every state a loan's contract had: appended at each booking and undo.
    f"""CREATE TABLE contract_versions (
        loan_id VARCHAR NOT NULL, version INTEGER NOT NULL,
        event VARCHAR NOT NULL,                   -- superseded | booked | undone | restored
        offer_id VARCHAR, recorded_at TIMESTAMP NOT NULL, actor VARCHAR NOT NULL,
        annual_rate_percent DECIMAL(7,4) NOT NULL, frequency frequency NOT NULL,
        outstanding_principal {_MONEY} NOT NULL, accrued_interest {_MONEY} NOT NULL,
        arrears_amount {_MONEY} NOT NULL, penalty_fees {_MONEY} NOT NULL,
        days_past_due INTEGER NOT NULL, delinquency_bucket delinquency_bucket NOT NULL,
        status loan_status NOT NULL, restructure_count INTEGER NOT NULL,
        last_restructure_date DATE, regular_payment {_MONEY}, remaining_term INTEGER,
        next_due_date DATE, as_of DATE NOT NULL
    )""",
    f"""CREATE TABLE contract_version_installments (
        loan_id VARCHAR NOT NULL, version INTEGER NOT NULL, event VARCHAR NOT NULL,
        recorded_at TIMESTAMP NOT NULL,
        number INTEGER NOT NULL, due_date DATE NOT NULL,
        payment {_MONEY} NOT NULL, principal {_MONEY} NOT NULL, interest {_MONEY} NOT NULL,
        balance {_MONEY} NOT NULL
    )""",
    _enum("api_key_role", API_KEY_ROLES),
    """CREATE TABLE api_keys (
        name VARCHAR PRIMARY KEY,                 -- platform or person; the audit names it
        role api_key_role NOT NULL,
        key_sha256 VARCHAR NOT NULL UNIQUE,       -- the key itself is never stored
        created_at TIMESTAMP NOT NULL, revoked_at TIMESTAMP
    )""",
    """CREATE VIEW offer_status AS
    SELECT o.*, coalesce(t.to_status, 'offered')::offer_status AS recorded_status,
           CASE WHEN coalesce(t.to_status, 'offered') IN ('offered', 'accepted')
                     AND o.expires_at < (now() AT TIME ZONE 'UTC') THEN 'expired'
                ELSE coalesce(t.to_status, 'offered') END::offer_status AS status,
           t.changed_at AS status_at, t.actor AS status_by
    FROM offers o LEFT JOIN (
        SELECT * FROM offer_transitions
        QUALIFY row_number() OVER (PARTITION BY offer_id ORDER BY changed_at DESC,
            array_position(['offered', 'accepted', 'approved', 'booked', 'rejected', 'expired',
                            'cancelled', 'undone'], to_status::VARCHAR) DESC) = 1) t
    USING (offer_id)""",
    # The contract in force: the booked offer of each loan whose latest contract version is a
    # booking (an undo restores an earlier one).
    """CREATE VIEW booked_contract AS
    SELECT v.loan_id, v.version, v.offer_id, o.plan_id, o.run_id, o.alternative, o.as_of,
           v.recorded_at AS booked_at
    FROM (SELECT * FROM contract_versions WHERE event IN ('booked', 'restored')
          QUALIFY row_number() OVER (PARTITION BY loan_id ORDER BY recorded_at DESC,
                                     version DESC) = 1) v
    JOIN offers o USING (offer_id)
    WHERE v.event = 'booked'""",
    # Tracking measures the plan in force: the booked contract where the loan has one, else
    # (a book that does not use the offer lifecycle) the latest chosen plan, as before.
    """CREATE OR REPLACE VIEW plan_adherence AS
    WITH plan AS (
        SELECT b.offer_id AS schedule_id, coalesce(b.plan_id, b.offer_id) AS plan_id,
               b.loan_id, b.run_id, b.alternative, b.as_of AS plan_as_of, l.as_of AS as_of,
               b.offer_id, true AS in_force
        FROM booked_contract b JOIN loans l USING (loan_id)
        UNION ALL
        SELECT p.plan_id, p.plan_id, p.loan_id, p.run_id, p.alternative, r.as_of, l.as_of,
               NULL, false
        FROM latest_plan p JOIN runs r USING (run_id) JOIN loans l USING (loan_id)
        WHERE p.loan_id NOT IN (SELECT loan_id FROM booked_contract)),
    schedule AS (
        SELECT offer_id AS schedule_id, number, due_date, payment FROM offer_installments
        WHERE offer_id IN (SELECT schedule_id FROM plan WHERE in_force)
        UNION ALL
        SELECT plan_id, number, due_date, payment FROM plan_installments
        WHERE plan_id IN (SELECT schedule_id FROM plan WHERE NOT in_force)),
    due AS (
        SELECT s.schedule_id, s.due_date, s.payment,
               sum(s.payment) OVER (PARTITION BY s.schedule_id ORDER BY s.number) AS planned_cum
        FROM schedule s JOIN plan USING (schedule_id)
        WHERE s.due_date <= plan.as_of),
    paid AS (
        SELECT plan.schedule_id, sum(pay.amount) AS paid_to_date,
               max(pay.payment_date) AS last_paid
        FROM plan JOIN payments pay USING (loan_id)
        WHERE pay.payment_date > plan.plan_as_of AND pay.payment_date <= plan.as_of
        GROUP BY plan.schedule_id)
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
           any_value(paid.last_paid) AS last_payment_date,
           plan.offer_id, plan.in_force
    FROM plan LEFT JOIN due USING (schedule_id) LEFT JOIN paid USING (schedule_id)
    GROUP BY plan.loan_id, plan.plan_id, plan.run_id, plan.alternative, plan.plan_as_of,
             plan.as_of, plan.offer_id, plan.in_force""",
)

MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "portfolio schema: enums, tables, bucket macro, analyst views, default policy",
        tuple(_V1_TYPES + _V1_TABLES + _V1_MACROS + _V1_VIEWS + [_seed_default_policy()]),
    ),
    Migration(
        2,
        "nightly re-planning: triggers, failures, selection gap, interrupted runs, tracking views",
        nightly_statements(RUN_STATUSES),
    ),
    Migration(
        3,
        "policy simulation results; champion-challenger arm of each plan",
        _SIMULATION_STATEMENTS,
    ),
    Migration(
        4,
        "event inbox: the service's events applied by the writer, once each",
        (
            """CREATE TABLE events (
                event_id VARCHAR PRIMARY KEY,         -- unique per event (the inbox's)
                seq BIGINT NOT NULL,                  -- order in the inbox (1, 2, ...)
                idempotency_key VARCHAR,              -- the caller's key, if any
                kind VARCHAR NOT NULL,                -- e.g. offer.accepted
                subject_id VARCHAR NOT NULL,          -- pseudonymous id (offer, loan)
                actor VARCHAR,                        -- who (an API key's name)
                payload JSON NOT NULL,                -- money in integer cents
                recorded_at TIMESTAMP NOT NULL,       -- UTC, when the service recorded it
                applied_at TIMESTAMP NOT NULL,        -- UTC, when the writer applied it
                applied_by VARCHAR NOT NULL           -- run id, or apply-events
            )""",
        ),
    ),
    Migration(
        5,
        "offer lifecycle: offers, transitions (audit), contract versions, API keys",
        _OFFER_STATEMENTS,
    ),
)

SCHEMA_VERSION = MIGRATIONS[-1].version


def current_version(con: duckdb.DuckDBPyConnection) -> int:
    """The highest migration applied to ``con``'s database (0 for an empty database)."""
    exists = con.execute(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'schema_migrations'"
    ).fetchall()[0][0]
    if not exists:
        return 0
    return con.execute("SELECT coalesce(max(version), 0) FROM schema_migrations").fetchall()[0][0]


def migrate(con: duckdb.DuckDBPyConnection) -> list[int]:
    """Apply every migration newer than the database's version; return the versions applied.

    Each migration runs in its own transaction together with its ``schema_migrations`` row,
    so a failure leaves the database at the previous version.
    """
    con.execute(
        "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, "
        "description VARCHAR NOT NULL, applied_at TIMESTAMP NOT NULL)"
    )
    have = current_version(con)
    applied = []
    for migration in MIGRATIONS:
        if migration.version <= have:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            for statement in migration.statements:
                con.execute(statement)
            con.execute(
                "INSERT INTO schema_migrations VALUES (?, ?, current_timestamp)",
                [migration.version, migration.description],
            )
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        applied.append(migration.version)
    return applied
