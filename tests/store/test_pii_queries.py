from __future__ import annotations

from decimal import Decimal

import duckdb
import pytest

from repayplan.errors import InputError
from repayplan.store.connection import connect
from repayplan.store.pii import ENV_VAR, Pseudonymiser, key_file_for, pseudonymiser_for
from repayplan.store.queries import loan_for_planning, loans_for_planning


def test_key_file_is_private_and_stable(tmp_path, monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)
    db = tmp_path / "p.duckdb"
    con = connect(db)
    first = pseudonymiser_for(con, db).tokens("full_name", ["Ana  Garcia"])
    assert key_file_for(db).stat().st_mode & 0o777 == 0o600
    again = pseudonymiser_for(con, db).tokens("full_name", ["ana garcia"])
    assert first == again and len(first[0]) == 32


def test_another_key_is_refused(tmp_path, monkeypatch):
    db = tmp_path / "p.duckdb"
    con = connect(db)
    monkeypatch.setenv(ENV_VAR, "first-key-0123456789")
    pseudonymiser_for(con, db)
    monkeypatch.setenv(ENV_VAR, "other-key-0123456789")
    with pytest.raises(InputError, match="another key"):
        pseudonymiser_for(con, db)
    monkeypatch.setenv(ENV_VAR, "short")
    with pytest.raises(InputError, match="at least 16"):
        pseudonymiser_for(con, db)


def test_tokens_depend_on_key_and_kind():
    a, b = Pseudonymiser(b"k" * 32), Pseudonymiser(b"j" * 32)
    assert a.tokens("phone", ["+1 555-0101"]) == a.tokens("phone", ["+1 (555) 0101"])
    assert a.tokens("phone", ["5550101"]) != b.tokens("phone", ["5550101"])
    assert a.tokens("borrower", ["x"])[0].startswith("B")
    assert a.tokens("national_id", [None, ""]) == [None, None]


def test_loan_for_planning_in_code_units(demo_db):
    db, _ = demo_db
    con = duckdb.connect(str(db), read_only=True)
    loan_id = con.execute(
        "SELECT loan_id FROM loans WHERE status = 'delinquent' ORDER BY loan_id LIMIT 1"
    ).fetchall()[0][0]
    loan = loan_for_planning(con, loan_id)
    raw = con.execute(
        "SELECT outstanding_principal, annual_rate_percent, regular_payment FROM loans "
        "WHERE loan_id = ?",
        [loan_id],
    ).fetchall()[0]
    assert loan["outstanding_principal"] == int(raw[0] * 100)
    assert loan["annual_rate"] == raw[1] / 100 and isinstance(loan["annual_rate"], Decimal)
    assert loan["regular_payment"] == int(raw[2] * 100)
    assert len(loan["income_seasonality"]) == 12 and loan["days_past_due"] > 0
    for key in ("accrued_interest", "arrears_amount", "penalty_fees", "monthly_income",
                "essential_expenses", "other_debt_payments", "remaining_term", "frequency",
                "product", "segment", "hardship", "expected_recovery_date", "next_due_date",
                "base_monthly_hazard"):  # fmt: skip
        assert key in loan
    with pytest.raises(InputError, match="no such loan"):
        loan_for_planning(con, "missing")
    ids = [r[0] for r in con.execute("SELECT loan_id FROM loans LIMIT 50").fetchall()]
    frame = loans_for_planning(con, [*ids, "missing"])
    assert len(frame) == 50 and frame["outstanding_principal"].dtype.kind == "i"
    con.close()
