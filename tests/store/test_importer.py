from __future__ import annotations

import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from repayplan.errors import InputError
from repayplan.store.importer import import_files

# ruff: noqa: E501  (the CSV fixtures below are easier to read unwrapped)

AS_OF = date(2026, 6, 30)
BORROWERS = """borrower_id,monthly_income,essential_expenses,other_debt_payments,segment,full_name,national_id,phone,income_seasonality
C-1,4200.00,1800,150.50,salaried,Maria Lopez,AB 123-456,+34 600 111 222,
C-2,2500,1100,0,seasonal,Jon Ek,ZX998877,555 0101,"0.5;0.5;0.6;0.8;1;1.1;1.2;1.5;1.7;1.5;1;0.6"
C-3,abc,1000,0,gig,,,,
C-4,3000,900,0,pirate,,,,
C-5,3100,900.123,0,,,,12,
C-6,3100,900,0,,,,,
C-6,3200,900,0,,,,,
"""
LOANS = """loan_id,borrower_id,product,principal,annual_rate_percent,term_months,origination_date,outstanding_principal,arrears_amount,days_past_due,frequency
A-1,C-1,car,20000,7.5,60,2024-01-31,15000,,0,monthly
A-2,C-2,consumer_instalment,5000,18.25,24,2025-09-15,4200,410.20,45,quarterly
A-3,C-1,mortgage,250000,4.1,360,2020-05-01,230000,,,
A-4,C-9,car,20000,7.5,60,2024-01-31,15000,,0,
A-5,C-1,credit_card,2000,39.9,36,2025-01-01,1500,,,
A-6,C-1,car,20000,7.5,50,2024-01-31,15000,,0,quarterly
A-7,C-1,car,20000,7.5,60,2027-01-31,15000,,0,
A-8,C-1,boat,-5,7.5,60,2024-02-30,15000,,0,
"""
PAYMENTS = """loan_id,payment_date,amount
A-1,2024-02-29,400.00
A-1,2024-03-31,400.00
A-1,2024-03-31,400.00
A-2,2025-12-15,700
A-9,2025-12-15,700
A-1,2023-12-01,50
A-1,2024-04-30,-3
"""


def _files(tmp_path: Path) -> dict[str, Path]:
    out = {}
    for name, text in (("borrowers", BORROWERS), ("loans", LOANS), ("payments", PAYMENTS)):
        out[name] = tmp_path / f"{name}.csv"
        out[name].write_text(text)
    return out


def _snapshot(db: Path) -> dict[str, list]:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return {
            t: con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall()
            for t in ("borrowers", "loans", "payments", "contract_installments")
        }
    finally:
        con.close()


def test_good_rows_load_bad_rows_are_recorded_and_reimport_changes_nothing(tmp_path):
    db = tmp_path / "p.duckdb"
    summary = import_files(db, **_files(tmp_path), as_of=AS_OF)
    assert summary.read == {"borrowers": 7, "loans": 8, "payments": 7}
    assert summary.loaded == {"borrowers": 2, "loans": 3, "payments": 4}
    con = duckdb.connect(str(db), read_only=True)
    rejected = con.execute(
        "SELECT source_file, row_number, field, reason FROM rejected_rows ORDER BY ALL"
    ).fetchall()
    by_row = {(Path(f).stem, r, fld): reason for f, r, fld, reason in rejected}
    assert "not a number" in by_row[("borrowers", 3, "monthly_income")]
    assert "unknown segment" in by_row[("borrowers", 4, "segment")]
    assert "more than 2 decimals" in by_row[("borrowers", 5, "essential_expenses")]
    assert "phone" in by_row[("borrowers", 5, "phone")]
    assert "duplicate" in by_row[("borrowers", 6, "borrower_id")]
    assert "duplicate" in by_row[("borrowers", 7, "borrower_id")]
    assert "unknown borrower" in by_row[("loans", 4, "borrower_id")]
    assert "above the cap of 36%" in by_row[("loans", 5, "annual_rate_percent")]
    assert "whole number of quarterly" in by_row[("loans", 6, "term_months")]
    assert "after the as-of date" in by_row[("loans", 7, "origination_date")]
    assert {("loans", 8, f) for f in ("product", "principal", "origination_date")} <= set(by_row)
    assert "unknown loan" in by_row[("payments", 5, "loan_id")]
    assert "before the loan was originated" in by_row[("payments", 6, "payment_date")]
    assert "positive" in by_row[("payments", 7, "amount")]
    # Loaded loans carry a contract that reconciles and the derived fields.
    a1 = con.execute(
        "SELECT status::VARCHAR, regular_payment, remaining_term, next_due_date, "
        "delinquency_bucket::VARCHAR FROM loans WHERE loan_id = 'A-1'"
    ).fetchone()
    assert a1[0] == "active" and a1[2] == 60 - 29 and a1[3] == date(2026, 7, 31)
    a2 = con.execute(
        "SELECT status::VARCHAR, delinquency_bucket::VARCHAR FROM loans WHERE loan_id = 'A-2'"
    ).fetchone()
    assert a2 == ("delinquent", "dpd_31_60")
    sums = con.execute(
        "SELECT l.loan_id, sum(c.principal) = l.principal FROM loans l "
        "JOIN contract_installments c USING (loan_id) GROUP BY l.loan_id, l.principal"
    ).fetchall()
    assert all(ok for _, ok in sums) and len(sums) == 3
    season = con.execute(
        "SELECT list_avg(income_seasonality) FROM borrowers WHERE segment = 'seasonal'"
    ).fetchone()[0]
    assert season == pytest.approx(1.0)
    con.close()

    before = _snapshot(db)
    again = import_files(db, **_files(tmp_path), as_of=AS_OF)
    assert again.loaded == summary.loaded
    assert _snapshot(db) == before


def test_no_personal_data_in_plaintext(tmp_path):
    db = tmp_path / "p.duckdb"
    import_files(db, **_files(tmp_path), as_of=AS_OF)
    con = duckdb.connect(str(db), read_only=True)
    columns = con.execute(
        "SELECT table_name, column_name FROM information_schema.columns "
        "WHERE data_type = 'VARCHAR' AND table_schema = 'main'"
    ).fetchall()
    text = " ".join(
        str(v)
        for table, col in columns
        for (v,) in con.execute(f'SELECT "{col}" FROM "{table}"').fetchall()
    )
    con.close()
    for secret in ("Maria", "Lopez", "123-456", "AB123456", "600 111", "C-1", "C-2"):
        assert secret not in text
    raw = db.read_bytes()
    assert b"Maria Lopez" not in raw and b"ZX998877" not in raw


def test_parquet_and_payments_only(tmp_path):
    db = tmp_path / "p.duckdb"
    files = _files(tmp_path)
    for kind in ("borrowers", "loans"):
        pq = tmp_path / f"{kind}.parquet"
        pd.read_csv(files[kind], dtype=str).to_parquet(pq)
        files[kind] = pq
    import_files(db, borrowers=files["borrowers"], loans=files["loans"], as_of=AS_OF)
    summary = import_files(db, payments=files["payments"], as_of=AS_OF)
    assert summary.loaded == {"payments": 4}


def test_missing_file_and_missing_column_are_clear_errors(tmp_path):
    db = tmp_path / "p.duckdb"
    with pytest.raises(InputError, match="no such file"):
        import_files(db, loans=tmp_path / "nope.csv")
    bad = tmp_path / "loans.csv"
    bad.write_text("loan_id,borrower_id\nx,y\n")
    with pytest.raises(InputError, match=r"missing required column.*product"):
        import_files(db, loans=bad)


def test_cli_error_is_one_line_with_exit_code_2(tmp_path):
    exe = Path(sys.executable).parent / "repayplan"
    result = subprocess.run(
        [str(exe), "import", "--db", str(tmp_path / "p.duckdb"),
         "--loans", str(tmp_path / "x.csv")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error:") and "no such file" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
