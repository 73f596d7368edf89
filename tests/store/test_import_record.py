"""The per-due-date payment record an import derives (``loan_month_truth``), and an imported
book that ``risk fit`` accepts."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from repayplan.risk.pd_model import fit
from repayplan.store.demo import init_demo
from repayplan.store.importer import import_files, payment_record

D = np.datetime64


def _record(dues, payments, as_of, *, closed=False, tolerance=100):
    """``payment_record`` of one loan: ``dues`` and ``payments`` as (date, cents) lists."""
    return payment_record(
        np.zeros(len(dues), dtype=np.int64),
        np.array([D(d) for d, _ in dues], dtype="datetime64[D]"),
        np.array([c for _, c in dues], dtype=np.int64),
        np.zeros(len(payments), dtype=np.int64),
        np.array([D(d) for d, _ in payments], dtype="datetime64[D]"),
        np.array([c for _, c in payments], dtype=np.int64),
        np.array([D(as_of)], dtype="datetime64[D]"),
        np.array([closed]),
        tolerance,
    )


DUES = [("2026-01-31", 10_000), ("2026-02-28", 10_000), ("2026-03-31", 10_000),
        ("2026-04-30", 10_000)]  # fmt: skip


def test_paid_within_the_period_is_not_missed():
    # A few days late (before the next due date) and a day after the last due is fine.
    pays = [("2026-02-03", 10_000), ("2026-03-01", 10_000), ("2026-04-02", 10_000),
            ("2026-05-01", 10_000)]  # fmt: skip
    rec = _record(DUES, pays, "2026-05-10")
    assert rec["missed"].tolist() == [False] * 4
    assert rec["arrears"].tolist() == [0] * 4


def test_a_miss_then_paying_only_the_current_installment_keeps_one_in_arrears():
    pays = [("2026-02-28", 10_000), ("2026-03-31", 10_000), ("2026-04-30", 10_000)]
    rec = _record(DUES, pays, "2026-05-10")
    assert rec["missed"].tolist() == [True, False, False, False]
    assert rec["arrears"].tolist() == [0, 1, 1, 1]


def test_paying_the_arrears_is_a_cure_and_consecutive_misses_accumulate():
    # Misses Jan and Feb, pays everything plus a late fee in March, then pays April.
    pays = [("2026-03-31", 30_500), ("2026-04-30", 10_000)]
    rec = _record(DUES, pays, "2026-05-10")
    assert rec["missed"].tolist() == [True, True, False, False]
    assert rec["arrears"].tolist() == [0, 1, 2, 0]


def test_shortfalls_within_the_tolerance_are_not_misses_until_they_add_up():
    pays = [(d, 9_950) for d, _ in DUES]
    rec = _record(DUES, pays, "2026-05-10", tolerance=100)
    # Short by 0.50, 1.00, 1.50, 2.00 cumulatively: the third is a miss, and it stays unpaid.
    assert rec["missed"].tolist() == [False, False, True, False]
    assert rec["arrears"].tolist() == [0, 0, 0, 1]


def test_a_closed_loan_stops_at_its_last_payment_and_only_due_dates_to_as_of_count():
    # Prepaid with the February installment: nothing is recorded after it.
    pays = [("2026-01-31", 10_000), ("2026-02-28", 30_000)]
    rec = _record(DUES, pays, "2026-05-10", closed=True)
    assert rec["due_date"].tolist() == [date(2026, 1, 31), date(2026, 2, 28)]
    assert not rec["missed"].any()
    # Closed with no payment at all: no record.
    assert _record(DUES, [], "2026-05-10", closed=True)["loan"].size == 0


def test_loans_do_not_share_payments():
    dues = DUES[:3]
    rec = payment_record(
        np.repeat([0, 1], 3),
        np.array([D(d) for d, _ in dues] * 2, dtype="datetime64[D]"),
        np.full(6, 10_000),
        np.array([0]),
        np.array([D("2026-01-15")], dtype="datetime64[D]"),
        np.array([1_000_000]),  # loan 0 overpays; loan 1 pays nothing
        np.array([D("2026-04-10")] * 2, dtype="datetime64[D]"),
        np.array([False, False]),
    )
    assert rec["missed"].tolist() == [False] * 3 + [True] * 3
    assert rec["arrears"].tolist() == [0, 0, 0, 0, 1, 2]


AS_OF = date(2025, 6, 30)


def _export(demo: Path, folder: Path) -> dict[str, Path]:
    """The demo book as import CSVs (the importer's columns)."""
    queries = {
        "borrowers": """SELECT borrower_id, monthly_income, essential_expenses,
            other_debt_payments, segment,
            array_to_string(list_transform(income_seasonality, lambda x: x::VARCHAR), ';')
                AS income_seasonality, income_volatility FROM borrowers""",
        "loans": """SELECT loan_id, borrower_id, product, principal, annual_rate_percent,
            term_months, origination_date, outstanding_principal, accrued_interest,
            arrears_amount, penalty_fees, days_past_due, frequency FROM loans""",
        "payments": "SELECT loan_id, payment_date, amount, due_date FROM payments "
        "ORDER BY loan_id, payment_date, seq",
    }
    con = duckdb.connect(str(demo), read_only=True)
    try:
        out = {}
        for kind, sql in queries.items():
            out[kind] = folder / f"{kind}.csv"
            con.execute(f"COPY ({sql}) TO '{out[kind]}' (HEADER)")
        return out
    finally:
        con.close()


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    """A 2,500-loan demo book, exported to CSV and imported into a fresh database."""
    folder = tmp_path_factory.mktemp("imported")
    demo = folder / "demo.duckdb"
    init_demo(demo, loans=2_500, seed=5, as_of=AS_OF)
    db = folder / "imported.duckdb"
    summary = import_files(db, **_export(demo, folder), as_of=AS_OF)
    assert sum(summary.rejected.values()) == 0
    return demo, db


def test_derived_record_matches_the_demo_truth(imported):
    demo, db = imported
    con = duckdb.connect(str(db), read_only=True)
    try:
        con.execute(f"ATTACH '{demo}' AS demo (READ_ONLY)")
        # Loans the demo never restructured (the import rebuilds the original contract)
        # and never charged off (the demo stops recording then; the import goes on).
        agree, rows = con.execute(
            """SELECT avg((i.missed = t.missed AND i.arrears_installments
                           = t.arrears_installments)::INT), count(*)
            FROM loan_month_truth i
            JOIN demo.loan_month_truth t USING (loan_id, due_date)
            JOIN demo.loans l USING (loan_id)
            WHERE l.restructure_count = 0 AND l.status <> 'defaulted'"""
        ).fetchone()
        assert rows > 20_000
        assert agree > 0.995
        misses = con.execute(
            "SELECT count_if(missed), count(*), count_if(isnan(true_hazard)), "
            "count_if(shock) FROM loan_month_truth"
        ).fetchone()
        assert misses[0] > 500 and misses[2] == misses[1] and misses[3] == 0
    finally:
        con.close()


def test_installment_remaining_term_and_next_due_date_agree_with_the_schedules(imported):
    _, db = imported
    con = duckdb.connect(str(db), read_only=True)
    try:
        wrong, matured = con.execute(
            """WITH c AS (
                SELECT c.loan_id, arg_min(c.payment, c.number) AS payment,
                    count(*) FILTER (WHERE c.due_date > l.as_of) AS remaining,
                    min(c.due_date) FILTER (WHERE c.due_date > l.as_of) AS next_due
                FROM contract_installments c JOIN loans l USING (loan_id) GROUP BY c.loan_id)
            SELECT count_if(l.regular_payment IS DISTINCT FROM c.payment
                            OR l.remaining_term IS DISTINCT FROM c.remaining
                            OR l.next_due_date IS DISTINCT FROM c.next_due),
                   count_if(l.next_due_date IS NULL)
            FROM loans l JOIN c USING (loan_id)"""
        ).fetchone()
    finally:
        con.close()
    assert wrong == 0 and matured > 0


def test_risk_fit_works_on_an_imported_book(imported):
    _, db = imported
    with threadpool_limits(limits=1):
        report = fit(db)
    assert report.oracle_auc is None  # an imported book has no ground truth
    assert report.auc > 0.7
    assert report.windows["train_rows"] > 1_000


def test_reimport_leaves_the_record_unchanged(imported, tmp_path):
    demo, db = imported
    files = _export(demo, tmp_path)
    con = duckdb.connect(str(db), read_only=True)
    before = con.execute("SELECT * FROM loan_month_truth ORDER BY loan_id, due_date").fetchall()
    con.close()
    import_files(db, payments=files["payments"], as_of=AS_OF)
    con = duckdb.connect(str(db), read_only=True)
    after = con.execute("SELECT * FROM loan_month_truth ORDER BY loan_id, due_date").fetchall()
    con.close()
    assert len(after) == len(before)
    # NaN != NaN: compare the rows with the hazard left out.
    assert [r[:6] + r[7:] for r in after] == [r[:6] + r[7:] for r in before]
