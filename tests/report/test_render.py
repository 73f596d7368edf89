"""The morning report of runs with nothing re-planned, with failures, and with a simulation;
the CLI; and the docs page carrying every figure's SQL."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from typer.testing import CliRunner

from repayplan.cli import app
from repayplan.errors import InputError
from repayplan.report import report
from repayplan.report.queries import QUERIES
from repayplan.report.render import SECTIONS
from repayplan.store import connect

from .conftest import AS_OF, record_run

DOCS = Path(__file__).resolve().parents[2] / "docs" / "report.md"


def _figures(page: str) -> dict:
    block = re.search(r'<script type="application/json" id="report-figures">(.*?)</script>', page)
    assert block, "the page carries its figures"
    return json.loads(block.group(1))


def _sections_present(page: str) -> None:
    for anchor, title in SECTIONS:
        assert f'id="{anchor}"' in page, anchor
        assert title.split(":")[0] in page


def _loans(db: Path, n: int, where: str = "status <> 'closed'") -> list[str]:
    con = connect(db, read_only=True)
    try:
        rows = con.execute(f"SELECT loan_id FROM loans WHERE {where} ORDER BY loan_id LIMIT {n}")
        return [r[0] for r in rows.fetchall()]
    finally:
        con.close()


def test_zero_replanned_run_renders_and_says_so(book, tmp_path):
    record_run(book, "20250630-zero")
    result = report(book, run_id="20250630-zero", out=tmp_path)
    page = result.path.read_text()
    _sections_present(page)
    assert "No loan was re-planned in this run" in page
    assert "No simulation for this run" in page
    assert "No failures" in page
    figures = _figures(page)
    assert figures["loans_replanned"] == 0 and figures["loans_restructured"] == 0
    assert figures["concession"] == 0 and figures["failed"] == 0
    assert result.path.name == "report-20250630-zero.html"


def test_run_with_failures_renders_reasons_and_manual_reviews(book, tmp_path):
    bad, review = _loans(book, 2), _loans(book, 2, "status = 'delinquent'")
    failures = [
        (bad[0], "input", f"loan {bad[0]}: monthly_income: must be > 0"),
        (bad[1], "quote", "ValueError: no schedule"),
        *[(loan, "manual_review", "no plan meets the yield floor") for loan in review],
    ]
    triggers = [(loan, ["new_arrears"], True, None) for loan in (*bad, *review)]
    record_run(
        book,
        "20250630-fail",
        status="partial",
        failures=failures,
        triggers=triggers,
        message="2 loans could not be planned (see plan_failures)",
    )
    result = report(book, run_id="20250630-fail", out=tmp_path)
    page = result.path.read_text()
    _sections_present(page)
    figures = _figures(page)
    assert figures["failed"] == 2 and figures["manual_review"] == 2
    assert "Failures: 2 loans could not be planned" in page
    assert "monthly_income: must be &gt; 0" in page
    assert "no plan meets the yield floor" in page
    assert 'class="status partial"' in page
    # Manual-review loans are drilled into, with their contract's remaining installments.
    for loan in review:
        assert f'id="loan-{loan}"' in page
    assert "contract" in page[page.index('id="drilldown"') :]


def test_latest_is_the_newest_finished_run_and_errors_name_the_field(book, tmp_path):
    with pytest.raises(InputError, match="no finished run"):
        report(book, out=tmp_path)
    record_run(book, "20250630-a")
    assert report(book, latest=True, out=tmp_path).run_id == "20250630-a"
    with pytest.raises(InputError, match="run_id: no such run"):
        report(book, run_id="nope", out=tmp_path)
    with pytest.raises(InputError, match="either a run id or --latest"):
        report(book, run_id="20250630-a", latest=True, out=tmp_path)


def _add_simulation(db: Path, run_id: str) -> None:
    """A small synthetic simulation in the contract of ``repayplan simulate``'s tables."""
    con = connect(db)
    try:
        con.execute(
            """CREATE TABLE IF NOT EXISTS simulation_runs(sim_id VARCHAR PRIMARY KEY,
            run_id VARCHAR, as_of DATE, created_at TIMESTAMP, behaviour VARCHAR,
            paths INTEGER, seed BIGINT, loans INTEGER, horizons VARCHAR, params JSON,
            seconds DOUBLE)"""
        )
        con.execute(
            """CREATE TABLE IF NOT EXISTS simulation_results(sim_id VARCHAR, policy VARCHAR,
            concession_budget DOUBLE, segment VARCHAR, metric VARCHAR, horizon_months INTEGER,
            estimate DOUBLE, ci_low DOUBLE, ci_high DOUBLE, versus VARCHAR)"""
        )
        con.execute(
            "INSERT INTO simulation_runs VALUES ('sim-1', ?, ?, now()::TIMESTAMP, 'truth', "
            "200, 7, 50, '12,24', '{}', 3.5)",
            [run_id, AS_OF],
        )
        rows = []
        levels = {"contract": (0.21, 0.0), "waterfall": (0.073, 0.03), "nightly": (0.159, 0.01)}
        for policy, (charge, concession) in levels.items():
            for hz, k in ((12, 1.0), (24, 1.4)):
                rows.append(
                    (
                        policy,
                        None,
                        "all",
                        "charge_off",
                        hz,
                        charge * k,
                        charge * k - 0.02,
                        charge * k + 0.02,
                        None,
                    )
                )
                rows.append(
                    (
                        policy,
                        None,
                        "all",
                        "concession",
                        hz,
                        concession,
                        concession,
                        concession,
                        None,
                    )
                )
        rows.append(("nightly", None, "all", "charge_off", 12, 0.086, 0.06, 0.11, "waterfall"))
        for budget, (charge, concession) in {
            1e4: (0.15, 0.005),
            5e4: (0.10, 0.02),
            1e5: (0.07, 0.04),
        }.items():
            rows.append(
                (
                    "optimize",
                    budget,
                    "all",
                    "charge_off",
                    24,
                    charge,
                    charge - 0.01,
                    charge + 0.01,
                    None,
                )
            )
            rows.append(
                (
                    "optimize",
                    budget,
                    "all",
                    "concession",
                    24,
                    concession,
                    concession,
                    concession,
                    None,
                )
            )
        con.executemany(
            "INSERT INTO simulation_results VALUES ('sim-1', ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows
        )
    finally:
        con.close()


def test_simulation_section_shows_policies_and_frontier(book, tmp_path):
    record_run(book, "20250630-sim")
    _add_simulation(book, "20250630-sim")
    page = report(book, run_id="20250630-sim", out=tmp_path).path.read_text()
    sim = page[page.index('id="simulation"') : page.index('id="drilldown"')]
    assert "No simulation for this run" not in sim
    assert "sim-1" in sim and 'id="t-policies"' in sim and 'id="t-differences"' in sim
    assert "Charge-off per policy" in sim and "Efficient frontier" in sim
    assert "waterfall" in sim and "contract" in sim
    assert "7.3% [5.3%, 9.3%]" in sim  # the waterfall's 12-month charge-off with its interval
    assert _figures(page)["simulation"] is True


def test_cli_report_json(book, tmp_path):
    record_run(book, "20250630-cli")
    result = CliRunner().invoke(
        app, ["report", "--db", str(book), "--latest", "--out", str(tmp_path), "--json"]
    )
    assert result.exit_code == 0, result.output
    payload = json.loads(result.stdout)
    assert payload["run_id"] == "20250630-cli"
    assert Path(payload["path"]).is_file()
    assert payload["sections"] == [a for a, _ in SECTIONS]


def test_docs_show_the_sql_of_every_figure():
    text = DOCS.read_text()
    for query in QUERIES:
        assert query.sql in text, f"docs/report.md lacks the SQL of {query.name}"
    assert "img/report.png" in text
