"""Matured loans (no contract period left: past maturity with a balance, or charged off):
re-amortised over a new term and offered a settlement, from the library and the CLI."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from repayplan.cli import app
from repayplan.errors import InputError
from repayplan.plans.case import LoanCase, Policy
from repayplan.plans.horizon import default_term
from repayplan.plans.model import build_program
from repayplan.plans.quote import quote, quote_many
from repayplan.plans.templates import get_template, templates_for

from .support import loan_cases, rates
from .test_quote import check_alternative

POLICY = Policy()
MATURED = LoanCase(
    outstanding_principal=1_200_000,
    annual_rate=Decimal("0.14"),
    remaining_term=0,
    monthly_income=400_000,
    essential_expenses=200_000,
    arrears=300_000,
    penalty_fees=40_000,
    start=date(2025, 3, 31),
)


def test_a_matured_loan_is_a_valid_case_and_a_negative_term_is_not():
    assert MATURED.matured and not replace(MATURED, remaining_term=1).matured
    with pytest.raises(InputError) as err:
        replace(MATURED, remaining_term=-1)
    assert err.value.field == "remaining_term"


def test_matured_loans_get_a_new_term_and_the_settlement_template():
    names = templates_for(None, "consumer", has_arrears=True, matured=True)
    assert "reamortise" in names and "settlement" in names
    assert "settlement" not in templates_for(None, "consumer", has_arrears=True)
    assert default_term(MATURED, POLICY, get_template("balanced")) == POLICY.matured_term_months
    assert default_term(MATURED, POLICY, get_template("reamortise")) == 120
    assert default_term(MATURED, POLICY, get_template("settlement")) == POLICY.settlement_months
    # A settlement's term and concession come from the policy whatever the remaining term.
    prog = build_program(replace(MATURED, remaining_term=48), POLICY, "settlement")
    assert prog.periods == POLICY.settlement_months
    assert prog.concession_limit == POLICY.settlement_discount
    assert prog.max_waiver == int(MATURED.exposure * POLICY.settlement_discount)


def test_quote_for_a_matured_loan_offers_alternatives():
    result = quote(MATURED, POLICY)
    assert result.status in ("ok", "relaxed")
    alts = {a.name: a for a in result.alternatives}
    assert {"balanced", "reamortise", "settlement"} <= set(alts)
    for alt in result.alternatives:
        check_alternative(MATURED, POLICY, alt)
    settle = alts["settlement"]
    assert settle.term_periods <= POLICY.settlement_months
    forgiven = Decimal(settle.metrics["principal_forgiven"])
    assert forgiven > 0 and "forgiven for settling" in settle.explanation
    assert Decimal(settle.metrics["total_paid"]) < Decimal(alts["balanced"].metrics["total_paid"])
    assert alts["reamortise"].term_periods > alts["balanced"].term_periods
    assert "principal_forgiven" not in alts["balanced"].metrics


def test_a_settlement_out_of_reach_is_not_offered_and_says_why():
    poor = replace(MATURED, monthly_income=250_000, essential_expenses=150_000, arrears=500_000)
    result = quote(poor, POLICY)
    assert result.alternatives  # the re-amortised plans still are
    assert "settlement" not in {a.name for a in result.alternatives}
    assert any(r.startswith("settlement: not offered") for r in result.reasons)


def test_baselines_for_a_matured_loan():
    contract = quote(MATURED, POLICY, strategy="contract").alternatives[0]
    assert contract.term_periods == 1 and "matured" in contract.explanation
    assert contract.schedule.installments[-1].balance == 0
    waterfall = quote(MATURED, POLICY, strategy="waterfall").alternatives[0]
    assert waterfall.term_periods > 1 and "re-amortised" in waterfall.explanation


def test_quote_many_plans_a_stored_matured_loan():
    record = {
        "loan_id": "M1",
        "outstanding_principal": 900_000,
        "annual_rate": Decimal("0.1"),
        "remaining_term": 0,
        "monthly_income": 400_000,
        "essential_expenses": 150_000,
        "arrears_amount": 100_000,
    }
    (result,) = quote_many([record], POLICY, as_of=date(2025, 6, 30))
    assert result.status in ("ok", "relaxed") and result.alternatives
    assert "settlement" in {a.name for a in result.alternatives}


def test_cli_quote_with_remaining_term_zero():
    args = [
        "quote",
        "--balance",
        "12000",
        "--annual-rate",
        "14",
        "--monthly-income",
        "4000",
        "--essential-expenses",
        "2000",
        "--arrears",
        "3000",
        "--remaining-term",
        "0",
        "--start",
        "2025-03-31",
        "--json",
    ]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout)
    assert data["status"] in ("ok", "relaxed")
    names = [a["name"] for a in data["alternatives"]]
    assert "settlement" in names and "reamortise" in names


matured_borrowers = loan_cases(
    # (a level plan over 60 months pays more than the minimum payment: a regular level *at*
    # the minimum has a run of minimum payments by design)
    principal=st.integers(300_000, 3_000_000),
    rate=rates("0.35"),
    term=st.just(0),
    hardship=st.sampled_from([None, "job_loss"]),
    hardship_income_factor=0.6,
    start=date(2025, 1, 31),
    arrears=st.integers(0, 500_000),
    penalty_fees=st.integers(0, 50_000),
)


@settings(max_examples=8, deadline=None)
@given(case=matured_borrowers)
def test_every_matured_alternative_is_exact_affordable_and_lawful(case):
    result = quote(case, POLICY)
    assert result.status in ("ok", "relaxed", "manual_review")
    assert result.alternatives or result.reasons
    for alt in result.alternatives:
        check_alternative(case, POLICY, alt)
        if alt.name == "settlement":
            assert alt.term_periods <= POLICY.settlement_months
