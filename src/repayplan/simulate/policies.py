"""What each policy would do with every loan of a book: one :class:`PlanSet` per policy.

- ``contract``: the contract in force (``contract_installments`` after ``as_of``), arrears left
  as they are;
- ``waterfall``: the HAMP waterfall (:func:`repayplan.plans.baselines.waterfall_plan`);
- ``nightly``: the plans a stored nightly run chose (``keep`` = the contract);
- ``optimize``: what the engine chooses now — candidates from
  :func:`repayplan.portfolio.candidates.generate_candidates` and one plan per loan from
  :func:`repayplan.portfolio.selection.select_plans` under the active policy's limits (the
  nightly's own code path, in process, nothing written);
- a template name (``balanced``, ``lowest_installment`` …): that alternative for every loan
  where it is feasible, the contract elsewhere.

Plans become month-grid arrays column-wise (one pass over long installment rows), so a
policy costs one vectorised step however many loans it plans.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from repayplan.errors import InputError
from repayplan.plans.alternative import Alternative
from repayplan.plans.baselines import waterfall_plan
from repayplan.plans.quote import case_from_record, quote
from repayplan.plans.templates import template_names
from repayplan.portfolio.nightly_policy import NightlyPolicy
from repayplan.risk.burden import BurdenCurve
from repayplan.risk.miss_model import months_per_period
from repayplan.risk.outcomes import month_offsets
from repayplan.simulate.book import Book
from repayplan.simulate.engine import PlanSet

BASELINES = ("contract", "waterfall")
POLICIES = ("contract", "waterfall", "nightly", "optimize")


def check_policies(names: list[str]) -> list[str]:
    """``names`` without duplicates; an unknown name is an InputError listing the known ones."""
    known = (*POLICIES, *template_names())
    for name in names:
        if name not in known:
            raise InputError(
                f"unknown policy {name!r}; use {', '.join(POLICIES)} or a template "
                f"({', '.join(template_names())})",
                field="policies",
            )
    return list(dict.fromkeys(names))


@dataclass
class Rows:
    """Long installment rows of the plans that replace contracts: ``loan`` (book index),
    ``due`` (datetime64[D]), ``payment`` and ``balance`` (cents), ``months`` per period and
    ``name`` per loan in ``loans``."""

    loan: np.ndarray
    due: np.ndarray
    payment: np.ndarray
    balance: np.ndarray
    loans: np.ndarray
    months: np.ndarray
    name: np.ndarray

    @classmethod
    def empty(cls) -> Rows:
        """No replaced contract."""
        z = np.empty(0, dtype=np.int64)
        return cls(z, np.empty(0, "datetime64[D]"), z, z, z, z, np.empty(0, dtype=object))


def plan_set(
    book: Book,
    contract: Rows,
    replaced: Rows,
    *,
    horizon: int,
    hurdle_rate: float,
) -> PlanSet:
    """Merge the contract rows with the replacing plans (``replaced.loans`` take theirs)."""
    n = book.size
    is_new = np.zeros(n, dtype=bool)
    is_new[replaced.loans] = True
    keep = ~is_new[contract.loan]
    loan = np.concatenate([contract.loan[keep], replaced.loan])
    due = np.concatenate([contract.due[keep], replaced.due])
    payment = np.concatenate([contract.payment[keep], replaced.payment]).astype(np.float64)
    balance = np.concatenate([contract.balance[keep], replaced.balance]).astype(np.float64)
    m = month_offsets(book.as_of, due) if due.size else np.empty(0, np.int64)
    months = book.months.copy()
    months[replaced.loans] = replaced.months
    names = np.full(n, "contract", dtype=object)
    names[replaced.loans] = replaced.name
    disc = 1.0 + hurdle_rate / 12.0
    pay = np.zeros((n, horizon))
    owed = np.zeros((n, horizon))
    inside = m <= horizon
    np.add.at(pay, (loan[inside], m[inside] - 1), payment[inside])
    np.maximum.at(owed, (loan[inside], m[inside] - 1), balance[inside] + payment[inside])
    out = ~inside
    tail_pv = np.zeros(n)
    tail_paid = np.zeros(n)
    owed_end = np.zeros(n)
    np.add.at(tail_pv, loan[out], payment[out] * disc ** -(m[out] - horizon).astype(float))
    np.add.at(tail_paid, loan[out], payment[out])
    np.maximum.at(owed_end, loan[out], balance[out] + payment[out])
    last = np.zeros(n, dtype=np.int64)
    np.maximum.at(last, loan, m)
    pv = np.zeros(n)
    np.add.at(pv, loan, payment * disc ** -m.astype(float))
    concession = np.where(is_new, np.maximum(book.exposure - pv, 0.0), 0.0)
    unpaid0 = np.where(is_new, 0, book.unpaid)
    arrears0 = np.where(is_new, 0, book.arrears + book.fees).astype(np.float64)
    dpd_months = book.records["days_past_due"].to_numpy(dtype=np.int64) // 30
    return PlanSet(
        pay=pay,
        owed=owed,
        months=months,
        unpaid0=unpaid0,
        arrears0=arrears0,
        oldest0=np.where(unpaid0 > 0, -dpd_months, 0),
        last_month=last,
        tail_pv=tail_pv,
        tail_paid=tail_paid,
        owed_end=owed_end,
        concession=concession,
        restructured=is_new,
        names=names,
    )


def contract_rows(con: duckdb.DuckDBPyConnection, book: Book) -> Rows:
    """The contract installments still to come of every book loan."""
    con.register(
        "sim_loans",
        pa.table({"loan_id": pa.array(book.loan_ids.tolist(), pa.string()),
                  "i": pa.array(np.arange(book.size), pa.int64())}),
    )  # fmt: skip
    try:
        frame = con.execute(
            "SELECT s.i, c.due_date, CAST(c.payment * 100 AS BIGINT) AS payment, "
            "CAST(c.balance * 100 AS BIGINT) AS balance "
            "FROM contract_installments c JOIN sim_loans s USING (loan_id) "
            "WHERE c.due_date > ? ORDER BY s.i, c.due_date",
            [book.as_of],
        ).df()
    finally:
        con.unregister("sim_loans")
    return Rows(
        loan=frame["i"].to_numpy(dtype=np.int64),
        due=frame["due_date"].to_numpy(dtype="datetime64[D]"),
        payment=frame["payment"].to_numpy(dtype=np.int64),
        balance=frame["balance"].to_numpy(dtype=np.int64),
        loans=np.empty(0, np.int64),
        months=np.empty(0, np.int64),
        name=np.empty(0, dtype=object),
    )


def rows_from_tables(book: Book, plans: pd.DataFrame, installments: pd.DataFrame) -> Rows:
    """Rows of the restructures among ``plans`` (columns ``plan_id``, ``loan_id``,
    ``alternative``, ``frequency``) with their ``installments`` (``plan_id``, ``due_date``,
    ``payment``, ``balance`` in cents); ``keep`` plans leave the contract in place."""
    plans = plans[plans["alternative"] != "keep"]
    index = pd.Series(np.arange(book.size), index=book.loan_ids)
    plans = plans[plans["loan_id"].isin(index.index)]
    if plans.empty:
        return Rows.empty()
    loan_of = pd.Series(index[plans["loan_id"]].to_numpy(), index=plans["plan_id"].to_numpy())
    inst = installments[installments["plan_id"].isin(loan_of.index)]
    return Rows(
        loan=loan_of[inst["plan_id"]].to_numpy(dtype=np.int64),
        due=pd.to_datetime(inst["due_date"]).to_numpy(dtype="datetime64[D]"),
        payment=inst["payment"].to_numpy(dtype=np.int64),
        balance=inst["balance"].to_numpy(dtype=np.int64),
        loans=loan_of.to_numpy(dtype=np.int64),
        months=np.array([months_per_period(str(f)) for f in plans["frequency"]], np.int64),
        name=plans["alternative"].to_numpy(dtype=object),
    )


def stored_rows(con: duckdb.DuckDBPyConnection, book: Book, run_id: str) -> Rows:
    """The restructures a stored nightly run chose for the book's loans."""
    plans = con.execute(
        "SELECT plan_id, loan_id, alternative, frequency::VARCHAR AS frequency FROM plans "
        "WHERE run_id = ? AND chosen",
        [run_id],
    ).df()
    inst = con.execute(
        "SELECT i.plan_id, i.due_date, CAST(i.payment * 100 AS BIGINT) AS payment, "
        "CAST(i.balance * 100 AS BIGINT) AS balance FROM plan_installments i "
        "JOIN plans p USING (plan_id) WHERE p.run_id = ? AND p.chosen AND p.alternative <> 'keep' "
        "ORDER BY i.plan_id, i.number",
        [run_id],
    ).df()
    return rows_from_tables(book, plans, inst)


def rows_from_alternatives(book: Book, chosen: dict[int, Alternative]) -> Rows:
    """Rows of one alternative per book loan index in ``chosen``."""
    if not chosen:
        return Rows.empty()
    loans = np.fromiter(chosen, dtype=np.int64, count=len(chosen))
    counts = [len(chosen[i].schedule.installments) for i in loans.tolist()]
    inst = [row for i in loans.tolist() for row in chosen[i].schedule.installments]
    return Rows(
        loan=np.repeat(loans, counts),
        due=np.array([r.due_date for r in inst], dtype="datetime64[D]"),
        payment=np.fromiter((r.payment for r in inst), dtype=np.int64, count=len(inst)),
        balance=np.fromiter((r.balance for r in inst), dtype=np.int64, count=len(inst)),
        loans=loans,
        months=np.array([months_per_period(chosen[i].frequency) for i in loans.tolist()]),
        name=np.array([chosen[i].name for i in loans.tolist()], dtype=object),
    )


def _cases(book: Book) -> list:
    records = book.records.to_dict("records")
    cases = []
    for rec in records:
        try:
            cases.append(case_from_record(rec, loan_id=str(rec["loan_id"]), as_of=book.as_of))
        except InputError:
            cases.append(None)
    return cases


def waterfall_rows(book: Book, policy: NightlyPolicy, curve: BurdenCurve) -> Rows:
    """The HAMP waterfall for every book loan it can modify (others keep the contract)."""
    chosen: dict[int, Alternative] = {}
    for i, case in enumerate(_cases(book)):
        if case is None:
            continue
        try:
            chosen[i] = waterfall_plan(case, policy.plan, "hamp", curve=curve)
        except InputError:
            continue
    return rows_from_alternatives(book, chosen)


def template_rows(
    book: Book, template: str, policy: NightlyPolicy, curve: BurdenCurve, solver: str = "fast"
) -> Rows:
    """Template ``template`` for every book loan where it is feasible."""
    chosen: dict[int, Alternative] = {}
    for i, case in enumerate(_cases(book)):
        if case is None:
            continue
        try:
            offer = quote(case, policy.plan, solver=solver, templates=(template,), curve=curve)
        except InputError:
            continue
        if offer.alternatives:
            chosen[i] = offer.alternatives[0]
    return rows_from_alternatives(book, chosen)


def hurdle_of(policy: NightlyPolicy) -> float:
    """The policy's hurdle rate as a float fraction."""
    return float(Decimal(policy.plan.hurdle_rate))
