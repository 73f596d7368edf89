"""The simulator against the generator itself: started from a demo book's state twelve months
before its as_of, the contract's simulated outcomes match what the generator produced."""

from __future__ import annotations

from datetime import date

import duckdb
import numpy as np
import pandas as pd

from repayplan.finance import add_months
from repayplan.risk.oracle import true_params
from repayplan.simulate.behaviour import TruthBehaviour
from repayplan.simulate.book import Book
from repayplan.simulate.engine import run_paths
from repayplan.simulate.policies import Rows, plan_set
from repayplan.store.schema import SEGMENTS

from .conftest import AS_OF

CUT = add_months(AS_OF, -12)
PATHS = 300

# Loans open at CUT: a due date after it (charged-off and repaid loans have none), their
# unpaid installments going into that due date, and the shock at the last one before it.
_STATE = """
WITH nxt AS (
    SELECT loan_id, arg_min(arrears_installments, due_date) AS unpaid FROM loan_month_truth
    WHERE due_date > $cut GROUP BY loan_id),
prev AS (
    SELECT loan_id, arg_max(shock, due_date) AS shock FROM loan_month_truth
    WHERE due_date <= $cut GROUP BY loan_id),
outcome AS (
    SELECT t.loan_id, bool_or(t.missed AND (t.arrears_installments + 1) * (CASE l.frequency
        WHEN 'monthly' THEN 1 WHEN 'quarterly' THEN 3 ELSE 12 END) >= 6) AS charged_off
    FROM loan_month_truth t JOIN loans l USING (loan_id)
    WHERE t.due_date > $cut AND t.due_date <= $cut + INTERVAL 12 MONTH GROUP BY ALL)
SELECT l.loan_id, l.borrower_id, list_position($segments, b.segment::VARCHAR) - 1 AS seg,
       CASE l.frequency WHEN 'monthly' THEN 1 WHEN 'quarterly' THEN 3 ELSE 12 END AS months,
       n.unpaid, coalesce(p.shock, false) AS shock, coalesce(o.charged_off, false) AS charged_off,
       CAST(b.monthly_income * 100 AS BIGINT) AS income, b.income_seasonality AS season,
       b.income_volatility AS volatility
FROM nxt n JOIN loans l USING (loan_id) JOIN borrowers b USING (borrower_id)
LEFT JOIN prev p USING (loan_id) LEFT JOIN outcome o USING (loan_id)
WHERE l.origination_date <= $cut
ORDER BY l.loan_id"""


def _book_at_cut(con: duckdb.DuckDBPyConnection) -> tuple[Book, Rows, np.ndarray, np.ndarray]:
    frame = con.execute(_STATE, {"cut": CUT, "segments": list(SEGMENTS)}).df()
    inst = con.execute(
        "SELECT loan_id, due_date, CAST(payment * 100 AS BIGINT) AS payment, "
        "CAST(balance * 100 AS BIGINT) AS balance FROM contract_installments "
        "WHERE due_date > ? ORDER BY loan_id, due_date",
        [CUT],
    ).df()
    inst = inst[inst["loan_id"].isin(frame["loan_id"])]
    index = pd.Series(np.arange(len(frame)), index=frame["loan_id"])
    borrowers, borrower = np.unique(frame["borrower_id"].to_numpy(dtype=str), return_inverse=True)
    first = np.zeros(borrowers.size, dtype=np.int64)
    first[borrower[::-1]] = np.arange(len(frame))[::-1]
    first_pay = inst.groupby("loan_id")["payment"].first().reindex(frame["loan_id"]).to_numpy()
    unpaid = frame["unpaid"].to_numpy(dtype=np.int64)
    n = len(frame)
    book = Book(
        as_of=CUT,
        loan_ids=frame["loan_id"].to_numpy(dtype=object),
        borrower=borrower,
        segment=frame["seg"].to_numpy(dtype=np.int64),
        exposure=np.maximum(inst.groupby("loan_id")["balance"].max().reindex(
            frame["loan_id"]).to_numpy(dtype=np.int64), 1),
        arrears=unpaid * first_pay,
        fees=np.zeros(n, dtype=np.int64),
        regular_payment=first_pay,
        months=frame["months"].to_numpy(dtype=np.int64),
        unpaid=unpaid,
        hardship_factor=np.ones(n),
        recovery_month=np.zeros(n, dtype=np.int64),
        borrower_ids=borrowers,
        income=frame["income"].to_numpy(dtype=np.int64)[first],
        season=np.stack([np.asarray(s, float) for s in frame["season"]])[first],
        volatility=frame["volatility"].to_numpy(dtype=float)[first],
        records=pd.DataFrame({"days_past_due": unpaid * frame["months"].to_numpy() * 30}),
    )  # fmt: skip
    rows = Rows(
        loan=index[inst["loan_id"]].to_numpy(dtype=np.int64),
        due=inst["due_date"].to_numpy(dtype="datetime64[D]"),
        payment=inst["payment"].to_numpy(dtype=np.int64),
        balance=inst["balance"].to_numpy(dtype=np.int64),
        loans=np.empty(0, np.int64),
        months=np.empty(0, np.int64),
        name=np.empty(0, dtype=object),
    )
    shock = np.zeros(borrowers.size, dtype=bool)
    np.logical_or.at(shock, borrower, frame["shock"].to_numpy(dtype=bool))
    return book, rows, shock, frame["charged_off"].to_numpy(dtype=bool)


def test_contract_outcomes_match_the_generators_own_history(truth_book):
    con = duckdb.connect(str(truth_book), read_only=True)
    try:
        book, contract, shock, realised = _book_at_cut(con)
        params = true_params(con)
    finally:
        con.close()
    assert book.size > 2_500 and realised.sum() > 50
    plans = plan_set(book, contract, Rows.empty(), horizon=12, hurdle_rate=0.05)
    out = run_paths(
        book, plans, TruthBehaviour(params, shock), paths=PATHS, seed=1, lgd=0.45,
        hurdle_rate=0.05,
    )  # fmt: skip
    charged = (out.charge_month > 0) & (out.charge_month <= 12)
    names = book.segment_names()
    # The generator's one realisation lies inside the simulated distribution of the count —
    # for the whole book and for every segment (0.5 %–99.5 % of the paths).
    for segment in ("all", *SEGMENTS):
        mask = np.ones(book.size, bool) if segment == "all" else names == segment
        if mask.sum() < 100:
            continue
        counts = charged[mask].sum(axis=0)
        lo, hi = np.percentile(counts, [0.5, 99.5])
        assert lo <= realised[mask].sum() <= hi, (segment, lo, realised[mask].sum(), hi)
    # And the mean rate agrees within sampling error of the realised rate.
    p_sim = charged.mean()
    p_real = realised.mean()
    se = np.sqrt(p_real * (1 - p_real) / book.size)
    assert abs(p_sim - p_real) < 3 * se, (p_sim, p_real, se)


def test_simulation_is_paired_and_reproducible(truth_book):
    con = duckdb.connect(str(truth_book), read_only=True)
    try:
        book, contract, shock, _ = _book_at_cut(con)
        params = true_params(con)
    finally:
        con.close()
    plans = plan_set(book, contract, Rows.empty(), horizon=12, hurdle_rate=0.05)
    runs = [
        run_paths(book, plans, TruthBehaviour(params, shock), paths=20, seed=4, lgd=0.45,
                  hurdle_rate=0.05)
        for _ in range(2)
    ]  # fmt: skip
    assert np.array_equal(runs[0].charge_month, runs[1].charge_month)
    assert np.allclose(runs[0].npv, runs[1].npv)
    assert date(2024, 6, 30) == CUT
