from __future__ import annotations

import json
from datetime import date

import duckdb
import pytest
from typer.testing import CliRunner

from repayplan.cli import app
from repayplan.store.demo import init_demo
from tests.store.conftest import AS_OF


def _q(db, sql):
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_every_bucket_and_status_in_plausible_shares(demo_db):
    _, summary = demo_db
    shares = summary.bucket_shares
    assert 0.80 <= shares["current"] <= 0.95
    assert 0.008 <= shares["dpd_1_30"] <= 0.06
    assert 0.003 <= shares["dpd_31_60"] <= 0.04
    assert 0.001 <= shares["dpd_61_90"] <= 0.03
    assert 0.02 <= shares["dpd_90_plus"] <= 0.15
    status = summary.status_shares
    for name, lo, hi in [("active", 0.5, 0.85), ("closed", 0.05, 0.3), ("defaulted", 0.01, 0.12),
                         ("delinquent", 0.01, 0.1), ("restructured", 0.01, 0.1)]:  # fmt: skip
        assert lo <= status[name] <= hi, name


def test_build_is_complete_and_the_views_add_up(demo_db):
    db, summary = demo_db
    assert _q(db, "SELECT value FROM store_meta WHERE key = 'demo_status'") == [("complete",)]
    (open_loans,) = _q(db, "SELECT count(*) FROM loans WHERE status <> 'closed'")[0]
    loans, share = _q(db, "SELECT sum(loans), sum(share_of_loans) FROM portfolio_status")[0]
    assert loans == open_loans
    assert share == pytest.approx(1.0, abs=1e-4)  # each share is rounded to 6 places
    assert summary.rows["loans"] == 4000


def test_cured_loans_and_hardship_reasons_exist(demo_db):
    db, _ = demo_db
    (cured,) = _q(db, "SELECT count(*) FROM loans WHERE cure_count > 0 AND days_past_due = 0")[0]
    assert cured > 0.05 * 4000
    reasons = {r[0] for r in _q(db, "SELECT DISTINCT reason::VARCHAR FROM hardship_requests")}
    assert {"job_loss", "illness", "business_downturn", "seasonal"} <= reasons
    products = dict(_q(db, "SELECT product::VARCHAR, count(*) FROM loans GROUP BY 1"))
    assert set(products) == {"consumer_instalment", "credit_card", "car", "mortgage"}
    (near_cap,) = _q(db, "SELECT count(*) FROM loans WHERE annual_rate_percent >= 33")[0]
    assert near_cap > 0


def test_seasonality_is_present_in_observed_income(demo_db):
    db, _ = demo_db
    rows = dict(_q(db, """
        SELECT month(o.month), avg(o.income / b.monthly_income) FROM income_observations o
        JOIN borrowers b USING (borrower_id) WHERE b.segment = 'seasonal'
        GROUP BY 1"""))  # fmt: skip
    assert rows[9] / rows[2] > 2.0  # harvest against winter
    factors = _q(db, "SELECT list_avg(income_seasonality) FROM borrowers")
    assert all(abs(f[0] - 1) < 1e-9 for f in factors)


def test_balances_reconcile_with_the_contract_and_history(demo_db):
    db, _ = demo_db
    bad = _q(db, """
        SELECT l.loan_id FROM loans l JOIN contract_installments c USING (loan_id)
        WHERE l.restructure_count = 0 AND l.status <> 'closed'
        GROUP BY l.loan_id, l.principal HAVING sum(c.principal) <> l.principal""")  # fmt: skip
    assert bad == []
    # The outstanding principal is the contract balance after the last due date, except where
    # that very due date capitalised arrears into a restructured contract.
    mismatched = _q(db, """
        WITH last_due AS (
            SELECT loan_id, arg_max(balance, number) AS balance, max(due_date) AS due_date
            FROM contract_installments c JOIN loans l USING (loan_id)
            WHERE c.due_date <= l.as_of GROUP BY loan_id)
        SELECT count(*) FROM loans l LEFT JOIN last_due d USING (loan_id)
        WHERE l.status <> 'closed' AND l.last_restructure_date IS DISTINCT FROM d.due_date
          AND l.outstanding_principal <> coalesce(d.balance, l.principal)""")  # fmt: skip
    assert mismatched == [(0,)]
    assert _q(db, f"SELECT count(*) FROM payments WHERE payment_date > DATE '{AS_OF}'") == [(0,)]
    assert _q(db, "SELECT count(*) FROM loans WHERE days_past_due > 0 AND arrears_amount = 0") == [
        (0,)
    ]


def test_same_seed_same_portfolio_other_seed_other(tmp_path):
    digest = "SELECT sum(hash(loan_id, outstanding_principal, days_past_due, status)) FROM loans"
    a, b, c = (tmp_path / f"{n}.duckdb" for n in "abc")
    init_demo(a, loans=600, seed=3, as_of=date(2025, 3, 31))
    init_demo(b, loans=600, seed=3, as_of=date(2025, 3, 31))
    init_demo(c, loans=600, seed=4, as_of=date(2025, 3, 31))
    assert _q(a, digest) == _q(b, digest) != _q(c, digest)


def test_chunks_do_not_change_counts(tmp_path):
    summary = init_demo(tmp_path / "p.duckdb", loans=900, seed=5, as_of=AS_OF, chunk_loans=200)
    assert summary.loans == 900
    assert _q(tmp_path / "p.duckdb", "SELECT count(DISTINCT loan_id) FROM loans") == [(900,)]


def test_cli_init_demo_json(tmp_path):
    db = tmp_path / "cli.duckdb"
    result = CliRunner().invoke(
        app, ["init-demo", "--db", str(db), "--loans", "300", "--as-of", "2026-01-15", "--json"]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["loans"] == 300 and out["as_of"] == "2026-01-15"
    assert (tmp_path / "cli.duckdb.pii-key").stat().st_mode & 0o777 == 0o600
