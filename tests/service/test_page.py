"""The borrower page in headless Chromium (Debian's chromium + chromedriver, driven by
Selenium): fill the form, see the options, accept one, see it booked — on a phone-sized
screen, in English and Simplified Chinese, with nothing loaded from outside the service."""

from __future__ import annotations

import json

import duckdb
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from repayplan.store.publish import analyst_path
from tests.browser import browser

PHONE = "390,844"


@pytest.fixture
def phone():
    driver = browser(PHONE)
    try:
        yield driver
    finally:
        driver.quit()


def _fill(driver, values: dict[str, str]) -> None:
    for field, value in values.items():
        box = driver.find_element(By.ID, field)
        box.clear()
        box.send_keys(value)


def _clean(driver, server) -> None:
    """No console errors, no request outside the service, nothing wider than the screen."""
    console = [e for e in driver.get_log("browser") if e["level"] == "SEVERE"]
    assert console == [], console
    urls = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            urls.append(message["params"]["request"]["url"])
    assert urls and all(u.startswith((server.url, "data:")) for u in urls), urls
    width = driver.execute_script("return [document.documentElement.scrollWidth, innerWidth]")
    assert width[0] <= width[1], width


def test_a_quote_on_a_phone_in_english(server, phone):
    phone.get(server.url + "/borrower/?lang=en")
    wait = WebDriverWait(phone, 30)
    wait.until(lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("data-ready") == "1")
    assert phone.title == "Your repayment options"
    _fill(phone, {"f-balance": "12000", "f-rate": "18", "f-term": "36", "f-income": "3000",
                  "f-spending": "1400", "f-debts": "200"})
    phone.find_element(By.ID, "btn-quote").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#options .option")))
    cards = phone.find_elements(By.CSS_SELECTOR, "#options .option")
    assert len(cards) >= 2
    first = cards[0]
    for cls in ("v-installment", "v-term", "v-total", "v-share", "v-apr", "v-irr"):
        assert first.find_element(By.CLASS_NAME, cls).text.strip() not in ("", "—"), cls
    assert "€" in first.find_element(By.CLASS_NAME, "v-installment").text
    assert "Annualised rate (IRR method)" in first.text and "APR" in first.text
    assert first.find_elements(By.CSS_SELECTOR, "svg rect")
    assert first.find_element(By.CLASS_NAME, "why").text
    # Phone-sized: the options stack in one column.
    xs = {c.location["x"] for c in cards}
    assert len(xs) == 1
    # Inputs that cannot give any plan say so, and why.
    _fill(phone, {"f-income": "1000", "f-spending": "900", "f-debts": "100"})
    phone.find_element(By.ID, "btn-quote").click()
    note = wait.until(ec.visibility_of_element_located((By.ID, "no-plan")))
    assert "cannot offer a plan" in note.text and "take all of your income" in note.text
    assert not phone.find_elements(By.CSS_SELECTOR, "#options .option")
    # A bad number names the field.
    _fill(phone, {"f-income": "abc"})
    phone.find_element(By.ID, "btn-quote").click()
    err = wait.until(ec.visibility_of_element_located((By.ID, "form-error")))
    assert "Monthly income" in err.text
    _clean(phone, server)


def test_from_the_lenders_link_to_a_booked_plan_in_chinese(server, phone):
    con = duckdb.connect(str(analyst_path(server.db)), read_only=True)
    try:
        loan = con.execute(
            "SELECT loan_id FROM loans WHERE status = 'delinquent' ORDER BY loan_id DESC LIMIT 1"
        ).fetchone()[0]
    finally:
        con.close()
    status, _, link = server.request(
        "POST", f"/v1/loans/{loan}/borrower-link", {}, server.auth("platform-a")
    )
    assert status == 200
    phone.get(server.url + link["url"] + "&lang=zh-CN")
    wait = WebDriverWait(phone, 60)
    wait.until(lambda d: d.find_element(By.TAG_NAME, "html").get_attribute("data-ready") == "1")
    assert phone.title == "您的还款方案"
    facts = phone.find_element(By.ID, "loan-facts").text
    assert "未还本金" in facts and "每期还款" in facts
    _fill(phone, {"f-income": "1500"})
    phone.find_element(By.CSS_SELECTOR, "#f-hardship option[value='job_loss']").click()
    phone.find_element(By.ID, "btn-quote").click()
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#options .option .accept")))
    card = phone.find_element(By.CSS_SELECTOR, "#options .option[data-review='false']")
    offer_id = card.get_attribute("data-offer")
    assert "年化利率（IRR法）" in card.text and "APR" in card.text
    card.find_element(By.CLASS_NAME, "accept").click()
    wait.until(lambda d: d.find_element(By.ID, "status").get_attribute("data-booked") == offer_id)
    assert "已生效" in phone.find_element(By.ID, "status").text
    assert "booked" in card.get_attribute("class")
    got = server.request("GET", f"/v1/offers/{offer_id}", headers=server.auth("platform-a"))[2]
    assert got["status"] == "booked"
    wait.until(lambda d: "restructured" in d.find_element(By.ID, "loan-facts").text)
    _clean(phone, server)
