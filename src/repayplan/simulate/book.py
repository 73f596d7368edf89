"""The starting point of a simulation: the selected loans as they stand, read from the store.

One :class:`Book` holds per-loan and per-borrower arrays (money in integer cents) and the
``loans_for_planning`` records that the policies turn into plans. Which loans:

- ``run``: the loans a nightly run re-planned (``--run-id``, default the latest);
- ``triggered``: the loans tonight's triggers would pick (eligible ones);
- ``distressed``: loans in arrears or with an open or approved hardship request;
- ``all``: every open loan.

``sample`` keeps a seeded random subset of that many loans (the same for every policy).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from repayplan.errors import InputError
from repayplan.risk.outcomes import unpaid_installments
from repayplan.store.queries import loans_for_planning
from repayplan.store.schema import SEGMENTS

SELECTIONS = ("run", "triggered", "distressed", "all")

_OPEN = "('active', 'delinquent', 'restructured')"

_STATE = """
SELECT l.loan_id, l.borrower_id,
       coalesce(list_position(?, b.segment::VARCHAR) - 1, 0) AS segment_code,
       CAST((l.outstanding_principal + l.accrued_interest + l.arrears_amount + l.penalty_fees)
            * 100 AS BIGINT) AS exposure,
       CAST(l.arrears_amount * 100 AS BIGINT) AS arrears,
       CAST(l.penalty_fees * 100 AS BIGINT) AS fees,
       CAST(coalesce(l.regular_payment, 0) * 100 AS BIGINT) AS regular_payment,
       CASE l.frequency WHEN 'monthly' THEN 1 WHEN 'bimonthly' THEN 2 WHEN 'quarterly' THEN 3
            WHEN 'semiannual' THEN 6 ELSE 12 END AS months,
       l.days_past_due,
       CAST(b.monthly_income * 100 AS BIGINT) AS income,
       coalesce(b.income_seasonality, [1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0])
           AS season,
       coalesce(b.income_volatility, 0.0) AS volatility,
       h.income_factor AS hardship_factor, h.expected_recovery_date
FROM loans l JOIN wanted_frame w USING (loan_id)
JOIN borrowers b USING (borrower_id)
LEFT JOIN (
    SELECT loan_id, income_factor, expected_recovery_date FROM hardship_requests
    WHERE status IN ('open', 'approved')
    QUALIFY row_number() OVER (PARTITION BY loan_id ORDER BY requested_on DESC, request_id DESC)
        = 1) h USING (loan_id)
ORDER BY l.loan_id"""


@dataclass
class Book:
    """The loans to simulate (index ``i``) and their borrowers (index ``b``).

    Per loan: ``loan_ids``, ``borrower`` (index into the borrower arrays), ``segment``
    (code into ``SEGMENTS``), ``exposure`` / ``arrears`` / ``fees`` / ``regular_payment``
    (cents), ``months`` per period, ``unpaid`` installments at ``as_of``,
    ``hardship_factor`` (income share during a reported hardship, 1 without) and
    ``recovery_month`` (months after as_of when it is expected to end; large when unknown).
    Per borrower: ``borrower_ids``, ``income`` (usual monthly cents), ``season`` (12
    factors), ``volatility`` (sd of log income). ``records``: the ``loans_for_planning``
    rows, in loan order.
    """

    as_of: date
    loan_ids: np.ndarray
    borrower: np.ndarray
    segment: np.ndarray
    exposure: np.ndarray
    arrears: np.ndarray
    fees: np.ndarray
    regular_payment: np.ndarray
    months: np.ndarray
    unpaid: np.ndarray
    hardship_factor: np.ndarray
    recovery_month: np.ndarray
    borrower_ids: np.ndarray
    income: np.ndarray
    season: np.ndarray
    volatility: np.ndarray
    records: pd.DataFrame

    @property
    def size(self) -> int:
        """Number of loans."""
        return int(self.loan_ids.size)

    def segment_names(self) -> np.ndarray:
        """Segment name of every loan."""
        return np.asarray(SEGMENTS, dtype=object)[self.segment]


def latest_run(con: duckdb.DuckDBPyConnection) -> str | None:
    """The newest completed nightly run (succeeded or partial), or None."""
    row = con.execute(
        "SELECT run_id FROM runs WHERE status IN ('succeeded', 'partial') "
        "ORDER BY started_at DESC LIMIT 1"
    ).fetchone()
    return None if row is None else str(row[0])


def select_loans(
    con: duckdb.DuckDBPyConnection,
    selection: str,
    as_of: date,
    *,
    run_id: str | None = None,
    sample: int | None = None,
    seed: int = 0,
) -> list[str]:
    """Loan ids of ``selection`` (see the module docstring), sorted, optionally sampled."""
    if selection not in SELECTIONS:
        raise InputError(
            f"unknown selection {selection!r}; use one of {', '.join(SELECTIONS)}",
            field="loans",
        )
    if selection == "run":
        run_id = run_id or latest_run(con)
        if run_id is None:
            raise InputError("no completed nightly run to take loans from", field="loans")
        ids = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT p.loan_id FROM plans p JOIN loans l USING (loan_id) "
                f"WHERE p.run_id = ? AND p.chosen AND l.status IN {_OPEN}",
                [run_id],
            ).fetchall()
        ]
    elif selection == "triggered":
        from repayplan.portfolio.nightly_policy import active_policy
        from repayplan.portfolio.triggers import select_for_replanning

        triggers = select_for_replanning(con, as_of, active_policy(con), "triggered")
        ids = triggers.loc[triggers["eligible"], "loan_id"].astype(str).tolist()
    else:
        where = (
            "(l.arrears_amount > 0 OR l.loan_id IN (SELECT loan_id FROM hardship_requests "
            "WHERE status IN ('open', 'approved')))"
            if selection == "distressed"
            else "true"
        )
        ids = [
            r[0]
            for r in con.execute(
                f"SELECT loan_id FROM loans l WHERE l.status IN {_OPEN} AND {where}"
            ).fetchall()
        ]
    ids = sorted(set(ids))
    if sample is not None:
        if sample < 1:
            raise InputError("must be at least 1", field="sample")
        if sample < len(ids):
            pick = np.random.default_rng([seed, 99]).choice(len(ids), sample, replace=False)
            ids = sorted(ids[i] for i in pick)
    if not ids:
        raise InputError(f"selection {selection!r} has no open loans", field="loans")
    return ids


def load_book(con: duckdb.DuckDBPyConnection, loan_ids: list[str], as_of: date) -> Book:
    """The :class:`Book` of ``loan_ids`` as of ``as_of`` (loans in id order)."""
    con.register("wanted_frame", pa.table({"loan_id": pa.array(loan_ids, pa.string())}))
    try:
        frame = con.execute(_STATE, [list(SEGMENTS)]).df()
    finally:
        con.unregister("wanted_frame")
    records = loans_for_planning(con, frame["loan_id"].tolist())
    borrowers, borrower = np.unique(frame["borrower_id"].to_numpy(dtype=str), return_inverse=True)
    first = np.zeros(borrowers.size, dtype=np.int64)
    first[borrower[::-1]] = np.arange(len(frame))[::-1]
    regular = frame["regular_payment"].to_numpy(dtype=np.int64)
    arrears = frame["arrears"].to_numpy(dtype=np.int64)
    unpaid = np.fromiter(
        (unpaid_installments(int(a), int(r)) for a, r in zip(arrears, regular, strict=True)),
        dtype=np.int64,
        count=arrears.size,
    )
    factor = frame["hardship_factor"].astype(float).fillna(1.0).to_numpy()
    recovery = pd.to_datetime(frame["expected_recovery_date"])
    months_left = ((recovery.dt.year - as_of.year) * 12 + (recovery.dt.month - as_of.month)).fillna(
        10_000
    )
    season = (
        np.stack([np.asarray(s, dtype=float) for s in frame["season"]])
        if len(frame)
        else (np.ones((0, 12)))
    )
    return Book(
        as_of=as_of,
        loan_ids=frame["loan_id"].to_numpy(dtype=object),
        borrower=borrower.astype(np.int64),
        segment=frame["segment_code"].to_numpy(dtype=np.int64),
        exposure=frame["exposure"].to_numpy(dtype=np.int64),
        arrears=arrears,
        fees=frame["fees"].to_numpy(dtype=np.int64),
        regular_payment=regular,
        months=frame["months"].to_numpy(dtype=np.int64),
        unpaid=unpaid,
        hardship_factor=np.clip(factor, 0.0, 1.0),
        recovery_month=np.maximum(months_left.to_numpy(dtype=np.int64), 0),
        borrower_ids=borrowers,
        income=frame["income"].to_numpy(dtype=np.int64)[first],
        season=season[first],
        volatility=frame["volatility"].to_numpy(dtype=float)[first],
        records=records,
    )
