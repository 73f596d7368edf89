"""The morning report of real nightly runs: written by the flow, numbers matching the store,
published to Prefect, and opened in headless Chromium (no console error, no request out)."""

from __future__ import annotations

import html
import json
import os
import re
import shutil
from datetime import date
from pathlib import Path

import duckdb
import pytest

from repayplan.flows.run import replan
from repayplan.report.render import SECTIONS, money
from repayplan.store import connect
from tests.browser import browser
from tests.demo_copy import copy_demo

from .conftest import AS_OF

pytestmark = pytest.mark.flows

ROOT = Path(__file__).resolve().parents[2]
#: Where the first-screen screenshot is kept after the test (``build/`` is not committed).
ARTIFACTS = ROOT / "build" / "test-artifacts"
LATER = date(2025, 8, 31)  # no payment arrives after AS_OF: the first night's plans miss


@pytest.fixture(scope="module")
def nights(demo_master: Path, tmp_path_factory: pytest.TempPathFactory):
    """Two nights on one book: the first with a loan that cannot be planned (income 0),
    the second two months later, when the first night's restructured plans are behind."""
    db = copy_demo(demo_master, tmp_path_factory.mktemp("nights"))
    con = connect(db)
    con.execute(
        "UPDATE borrowers SET monthly_income = 0 WHERE borrower_id = (SELECT borrower_id "
        "FROM loans WHERE status = 'delinquent' AND remaining_term > 0 ORDER BY loan_id LIMIT 1)"
    )
    con.close()
    first = replan(db, AS_OF, runner="threads", workers=2)
    second = replan(db, LATER, runner="threads", workers=2)
    return db, first, second


def _one(db: Path, sql: str, params: list) -> object:
    con = duckdb.connect(str(db), read_only=True)
    try:
        return con.execute(sql, params).fetchall()[0][0]
    finally:
        con.close()


def _figures(page: str) -> dict:
    block = re.search(r'<script type="application/json" id="report-figures">(.*?)</script>', page)
    assert block
    return json.loads(block.group(1))


def _check_against_store(db: Path, run_id: str, page: str) -> dict:
    for anchor, _ in SECTIONS:
        assert f'id="{anchor}"' in page, anchor
    f = _figures(page)
    chosen = "FROM plans WHERE run_id = ? AND chosen"
    assert f["loans_replanned"] == _one(db, f"SELECT count(*) {chosen}", [run_id])
    assert f["loans_restructured"] == _one(
        db, f"SELECT count(*) {chosen} AND alternative <> 'keep'", [run_id]
    )
    concession = float(_one(db, f"SELECT coalesce(sum(concession), 0) {chosen}", [run_id]))
    assert f["concession"] == pytest.approx(concession, abs=0.005)
    before, after = _one(
        db,
        "SELECT [sum(k.expected_loss), sum(c.expected_loss)] FROM plans c JOIN plans k "
        "ON k.loan_id = c.loan_id AND k.run_id = c.run_id AND k.alternative = 'keep' "
        "WHERE c.run_id = ? AND c.chosen AND c.alternative <> 'keep'",
        [run_id],
    )
    assert f["expected_loss_before"] == pytest.approx(float(before or 0), abs=0.005)
    assert f["expected_loss_after"] == pytest.approx(float(after or 0), abs=0.005)
    failures = "SELECT count(DISTINCT loan_id) FROM plan_failures WHERE run_id = ? AND stage"
    assert f["failed"] == _one(db, f"{failures} <> 'manual_review'", [run_id])
    assert f["manual_review"] == _one(db, f"{failures} = 'manual_review'", [run_id])
    triggered = _one(db, "SELECT count(*) FROM replan_triggers WHERE run_id = ?", [run_id])
    assert f["loans_triggered"] == triggered
    limits = json.loads(_one(db, "SELECT solver_stats FROM runs WHERE run_id = ?", [run_id]))
    stored = limits["selection"]["limits"]
    assert page.count("<tr") >= len(stored)
    for name, lim in stored.items():
        assert lim["price"] >= 0
        assert f"<td>{html.escape(name)}</td>" in page  # one row per limit
    # What a person reads matches too: the panel shows the same counts and amounts.
    kpis = page[page.index('id="kpis"') : page.index('id="glance"')]
    assert f">{f['loans_restructured']:,}<" in kpis
    assert money(concession, 0) in kpis
    return f


def test_nightly_writes_the_report_and_its_numbers_match_the_store(nights):
    db, first, second = nights
    assert first.status == "partial" and first.report and second.report
    page1 = Path(first.report).read_text()
    f1 = _check_against_store(db, first.run_id, page1)
    assert f1["failed"] >= 1 and "monthly_income" in page1
    assert Path(first.report).parent == db.parent / "reports"

    page2 = Path(second.report).read_text()
    f2 = _check_against_store(db, second.run_id, page2)
    # The second night tracks the first night's restructured plans; all are behind, and the
    # early warnings are the loans the run re-planned as off track.
    assert f2["earlier_plans_tracked"] == f1["loans_restructured"] > 0
    off_track = _one(
        db,
        "SELECT count(*) FROM replan_triggers WHERE run_id = ? "
        "AND list_contains(reasons, 'off_track')",
        [second.run_id],
    )
    assert f2["early_warnings"] == off_track > 0
    assert "early warnings" in page2
    # No personal data: borrower tokens never appear, only pseudonymous loan ids.
    con = duckdb.connect(str(db), read_only=True)
    tokens = [t for (t,) in con.execute("SELECT full_name_token FROM borrowers").fetchall() if t]
    con.close()
    assert not any(t in page2 for t in tokens[:200])


def test_the_run_is_published_to_prefect(nights, prefect_server):
    import httpx

    from repayplan.flows.artifacts import LINK_KEY, SUMMARY_KEY, TABLE_KEYS

    second = nights[2]
    keys = [SUMMARY_KEY, LINK_KEY, *TABLE_KEYS.values()]
    # The server's REST API (Prefect 3.8's sync client sends nulls this endpoint rejects).
    response = httpx.post(
        f"{prefect_server}/artifacts/filter",
        json={"artifacts": {"key": {"any_": keys}}, "limit": 200, "sort": "CREATED_DESC"},
        timeout=30,
    )
    response.raise_for_status()
    found = response.json()
    by_key: dict[str, list] = {}
    for art in found:
        by_key.setdefault(art["key"], []).append(art)
    assert {SUMMARY_KEY, LINK_KEY, TABLE_KEYS["alternatives"], TABLE_KEYS["limits"]} <= set(by_key)
    summaries = [a["data"] for a in by_key[SUMMARY_KEY]]
    assert any(second.run_id in s and "restructured" in s for s in summaries)
    links = [a["data"] for a in by_key[LINK_KEY]]
    assert any(Path(second.report).resolve().as_uri() in str(link) for link in links)


def _browser():
    """Debian's chromium driven by its chromedriver (shared with the borrower-page tests)."""
    return browser()


def test_report_opens_in_headless_chromium_offline(nights, tmp_path):
    from selenium.webdriver.common.by import By

    second = nights[2]
    page = Path(second.report).resolve()
    browser = _browser()
    try:
        browser.get(page.as_uri())
        assert browser.find_element(By.TAG_NAME, "html").get_attribute("data-report-ready") == "1"
        assert "Morning report" in browser.title
        shot = tmp_path / "report-first-screen.png"
        assert browser.save_screenshot(str(shot))
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        shutil.copy(shot, ARTIFACTS / shot.name)
        if os.environ.get("REPAYPLAN_UPDATE_DOCS_SCREENSHOT"):
            shutil.copy(shot, ROOT / "docs" / "img" / "report.png")
        # Sorting: a click sorts the trigger table by loans, largest first on the second.
        header = browser.find_element(By.CSS_SELECTOR, "#t-triggers th:nth-child(2)")
        header.click()
        header.click()
        assert header.get_attribute("aria-sort") == "descending"
        cells = browser.find_elements(By.CSS_SELECTOR, "#t-triggers tbody td:nth-child(2)")
        values = [float(c.get_attribute("data-v")) for c in cells]
        assert values == sorted(values, reverse=True)
        # Every chart is an inline SVG; every section is there.
        assert len(browser.find_elements(By.CSS_SELECTOR, "figure.chart svg")) >= 8
        for anchor, _ in SECTIONS:
            assert browser.find_elements(By.ID, anchor)
        console = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert console == [], console
        requests = []
        for entry in browser.get_log("performance"):
            message = json.loads(entry["message"])["message"]
            if message["method"] == "Network.requestWillBeSent":
                requests.append(message["params"]["request"]["url"])
        assert requests, "the performance log records the page's own load"
        outside = [u for u in requests if not u.startswith(("file://", "data:"))]
        assert outside == [], outside
    finally:
        browser.quit()
    assert shot.stat().st_size > 20_000


def test_demo_prints_the_path_of_its_report(tmp_path):
    from typer.testing import CliRunner

    from repayplan.cli import app

    db = tmp_path / "demo.duckdb"
    result = CliRunner().invoke(
        app, ["demo", "--db", str(db), "--loans", "600", "--seed", "5", "--runner", "threads"]
    )
    assert result.exit_code == 0, result.output
    printed = re.search(
        r"morning report of this run.*?: (\S+\.html)", result.output.replace("\n", "")
    )
    assert printed, result.output
    path = Path(printed.group(1))
    assert path.is_file() and path.parent == (tmp_path / "reports").resolve()
    assert 'id="glance"' in path.read_text()
    # It ends by saying how to start the quote service and where the borrower page is.
    tail = result.output.strip().splitlines()[-3:]
    assert "repayplan serve-api --db" in "\n".join(tail)
    assert tail[-1].endswith("http://127.0.0.1:8000/borrower/")


def test_report_shows_a_real_simulation_of_the_run(nights, tmp_path):
    from repayplan.report import report
    from repayplan.simulate import simulate

    db, first, _second = nights
    sim = simulate(
        db,
        ["contract", "waterfall", "nightly", "optimize"],
        run_id=first.run_id,
        paths=20,
        frontier=[0.0, 5_000.0, 50_000.0],
    )
    page = report(db, run_id=first.run_id, out=tmp_path).path.read_text()
    section = page[page.index('id="simulation"') : page.index('id="drilldown"')]
    assert "No simulation for this run" not in section
    assert sim.sim_id in section
    assert "Charge-off per policy" in section and "Efficient frontier" in section
    assert 'id="t-policies"' in section and "waterfall" in section
