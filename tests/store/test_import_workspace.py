"""What an import leaves on disk and in the database: the private staging workspace holds no
plaintext personal data and is removed afterwards, a failure inside the load leaves the
portfolio as it was, and unsupported frequencies get a message naming the accepted ones."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import duckdb
import pytest

from repayplan.errors import InputError, ScrubbedError
from repayplan.store.importer import import_files, pipeline
from repayplan.store.importer import load as load_step

AS_OF = date(2026, 6, 30)
BORROWERS = """borrower_id,monthly_income,essential_expenses,other_debt_payments,full_name,national_id,phone
CUST-77,4200.00,1800,150.50,Maria Lopez,AB 123-456,+34 600 111 222
CUST-78,2500,1100,0,Jon Ek,ZX998877,555 0101
"""  # noqa: E501
LOANS = """loan_id,borrower_id,product,principal,annual_rate_percent,term_months,origination_date,outstanding_principal,frequency
A-1,CUST-77,car,20000,7.5,60,2024-01-31,15000,monthly
A-2,CUST-78,consumer_instalment,5000,18.25,24,2025-09-15,4200,quarterly
A-3,CUST-78,consumer_instalment,5000,18.25,24,2025-09-15,4200,weekly
"""  # noqa: E501
PAYMENTS = """loan_id,payment_date,amount
A-1,2024-02-29,400.00
A-1,2024-03-31,400.00
"""
SECRETS = (b"Maria Lopez", b"Lopez", b"123-456", b"ZX998877", b"600 111", b"CUST-77")


def _files(folder: Path) -> dict[str, Path]:
    out = {}
    for kind, text in (("borrowers", BORROWERS), ("loans", LOANS), ("payments", PAYMENTS)):
        out[kind] = folder / f"{kind}.csv"
        out[kind].write_text(text)
    return out


def _workspaces(db: Path) -> list[Path]:
    return sorted(db.parent.glob(f".{db.name}.import-*"))


def test_staging_and_spill_files_hold_no_plaintext_and_are_removed(tmp_path, monkeypatch):
    db = tmp_path / "p.duckdb"
    seen: list[bytes] = []
    load = pipeline.load

    def inspect_then_load(con, *args):
        # Everything the import wrote to disk so far, with the staging tables flushed.
        con.execute("CHECKPOINT stage")
        (work,) = _workspaces(db)
        seen.extend(p.read_bytes() for p in work.rglob("*") if p.is_file())
        return load(con, *args)

    monkeypatch.setattr(pipeline, "load", inspect_then_load)
    summary = import_files(db, **_files(tmp_path), as_of=AS_OF)
    assert summary.loaded == {"borrowers": 2, "loans": 2, "payments": 2}
    # The check can see plaintext: the staged loan ids (not personal) are there as written.
    assert any(b"A-2" in blob for blob in seen)
    for secret in SECRETS:
        assert not any(secret in blob for blob in seen), secret
        assert secret not in db.read_bytes()
    assert _workspaces(db) == []


def test_a_failure_inside_the_load_leaves_nothing_half_written(tmp_path, monkeypatch):
    db = tmp_path / "p.duckdb"
    files = _files(tmp_path)
    import_files(db, borrowers=files["borrowers"], as_of=AS_OF)
    tables = ("borrowers", "loans", "contract_installments", "payments", "loan_month_truth",
              "rejected_rows", "imports")  # fmt: skip

    def counts() -> dict[str, int]:
        con = duckdb.connect(str(db), read_only=True)
        try:
            return {t: con.execute(f"SELECT count(*) FROM {t}").fetchone()[0] for t in tables}
        finally:
            con.close()

    before = counts()

    def fail(con):
        raise RuntimeError("disk full")

    # The last step of the transaction, after loans, contracts and payments are written.
    monkeypatch.setattr(load_step, "derive_payment_record", fail)
    # Leaves the importer scrubbed (its message could have quoted an input line).
    with pytest.raises(ScrubbedError, match="RuntimeError: disk full"):
        import_files(db, **files, as_of=AS_OF)
    assert counts() == before
    assert _workspaces(db) == []
    monkeypatch.undo()
    import_files(db, **files, as_of=AS_OF)
    after = counts()
    assert after["loans"] == 2 and after["payments"] == 2 and after["loan_month_truth"] > 0


def test_unsupported_frequency_names_the_accepted_ones(tmp_path):
    db = tmp_path / "p.duckdb"
    import_files(db, **_files(tmp_path), as_of=AS_OF)
    con = duckdb.connect(str(db), read_only=True)
    (reason,) = con.execute("SELECT reason FROM rejected_rows WHERE field = 'frequency'").fetchone()
    con.close()
    assert "weekly" in reason
    assert "monthly, bimonthly, quarterly, semiannual, yearly" in reason


def test_memory_limit_is_applied_and_small_limits_still_load(tmp_path):
    db = tmp_path / "p.duckdb"
    summary = import_files(db, **_files(tmp_path), as_of=AS_OF, memory_limit="64MB")
    assert summary.loaded["loans"] == 2


def test_unreadable_file_and_bad_memory_limit_are_clear_errors(tmp_path):
    db = tmp_path / "p.duckdb"
    fake = tmp_path / "loans.parquet"
    fake.write_text(LOANS)
    with pytest.raises(InputError, match="cannot read the file"):
        import_files(db, loans=fake, as_of=AS_OF)
    with pytest.raises(InputError, match="not a memory size"):
        import_files(db, **_files(tmp_path), as_of=AS_OF, memory_limit="512MB'; DROP TABLE x")
    assert _workspaces(db) == []


def test_reimport_updates_values_and_keeps_what_the_file_leaves_out(tmp_path):
    db = tmp_path / "p.duckdb"
    files = _files(tmp_path)
    import_files(db, **files, as_of=AS_OF)
    con = duckdb.connect(str(db))
    con.execute("UPDATE loans SET restructure_count = 1, cure_count = 2 WHERE loan_id = 'A-1'")
    con.execute("UPDATE borrowers SET segment = 'gig'")
    con.close()
    again = tmp_path / "again"
    again.mkdir()
    (again / "borrowers.csv").write_text(
        "borrower_id,monthly_income,essential_expenses,other_debt_payments\nCUST-77,5000,1800,0\n"
    )
    (again / "loans.csv").write_text(LOANS.replace("15000,monthly", "14000,monthly"))
    summary = import_files(
        db, borrowers=again / "borrowers.csv", loans=again / "loans.csv", as_of=AS_OF
    )
    assert summary.loaded == {"borrowers": 1, "loans": 2}
    con = duckdb.connect(str(db), read_only=True)
    try:
        rows = con.execute(
            "SELECT monthly_income, segment::VARCHAR, full_name_token IS NOT NULL, "
            "phone_token IS NOT NULL FROM borrowers ORDER BY monthly_income"
        ).fetchall()
        loan = con.execute(
            "SELECT outstanding_principal, status::VARCHAR, restructure_count, cure_count "
            "FROM loans WHERE loan_id = 'A-1'"
        ).fetchone()
        counts = con.execute("SELECT count(*) FROM borrowers").fetchone()[0]
    finally:
        con.close()
    assert counts == 2
    # CUST-78 untouched; CUST-77's income updated, its segment and tokens kept.
    assert rows == [(2500, "gig", True, True), (5000, "gig", True, True)]
    assert loan == (14000, "restructured", 1, 2)
