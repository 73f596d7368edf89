from __future__ import annotations

import json

import duckdb
import pytest

from repayplan.store.connection import connect
from repayplan.store.schema import BUCKETS, MIGRATIONS, SCHEMA_VERSION, current_version, migrate

TABLES = {
    "borrowers", "loans", "payments", "plans", "plan_installments", "runs", "rejected_rows",
    "contract_installments", "income_observations", "hardship_requests", "policy_versions",
    "risk_scores", "risk_models", "behaviour_truth", "loan_month_truth", "schema_migrations",
}  # fmt: skip
VIEWS = {"portfolio_status", "latest_plan", "plan_vs_contract", "run_summary"}


def test_new_database_gets_every_table_view_and_the_latest_version(tmp_path):
    con = connect(tmp_path / "p.duckdb")
    tables = {r[0] for r in con.execute("SELECT table_name FROM duckdb_tables()").fetchall()}
    views = {
        r[0]
        for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()
    }
    assert tables >= TABLES
    assert views >= VIEWS
    assert current_version(con) == SCHEMA_VERSION == MIGRATIONS[-1].version
    for view in VIEWS:
        con.execute(f"SELECT * FROM {view}").fetchall()


def test_migrations_apply_once(tmp_path):
    db = tmp_path / "p.duckdb"
    connect(db).close()
    con = duckdb.connect(str(db))
    assert migrate(con) == []
    assert con.execute("SELECT count(*) FROM schema_migrations").fetchone()[0] == len(MIGRATIONS)


def test_money_is_decimal_18_2_and_statuses_are_enums(tmp_path):
    con = connect(tmp_path / "p.duckdb")
    cols = dict(con.execute(
        "SELECT column_name, data_type FROM information_schema.columns WHERE table_name = 'loans'"
    ).fetchall())  # fmt: skip
    for money in ("principal", "outstanding_principal", "arrears_amount", "penalty_fees"):
        assert cols[money] == "DECIMAL(18,2)"
    assert cols["annual_rate_percent"] == "DECIMAL(7,4)"
    with pytest.raises(duckdb.ConversionException):
        con.execute("SELECT 'late'::loan_status").fetchall()


@pytest.mark.parametrize(
    ("dpd", "bucket"),
    [(0, 0), (1, 1), (30, 1), (31, 2), (60, 2), (61, 3), (90, 3), (91, 4), (400, 4)],
)
def test_bucket_boundaries(dpd, bucket):
    con = connect(":memory:")
    assert con.execute("SELECT bucket_of(?)::VARCHAR", [dpd]).fetchone()[0] == BUCKETS[bucket]


def test_money_of_cents_is_exact():
    con = connect(":memory:")
    got = con.execute(
        "SELECT money_of_cents(c)::VARCHAR FROM unnest([1, -5, 123456789012345]) t(c)"
    )
    assert [r[0] for r in got.fetchall()] == ["0.01", "-0.05", "1234567890123.45"]


def test_default_policy_is_seeded():
    con = connect(":memory:")
    params = json.loads(
        con.execute("SELECT parameters FROM policy_versions WHERE active").fetchone()[0]
    )
    keys = ("hurdle_rate", "max_concession", "rate_floor", "pti_cap", "concession_budget",
            "segment_caps", "review_capacity", "cool_down_months", "max_restructures")  # fmt: skip
    assert set(keys) <= set(params)
