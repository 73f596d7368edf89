"""The oracle: the demo generator's own 12-month default probability, to score a model against.

For each (loan, observation date) the oracle knows what the generator drew for the next 12
months — each due date's true payment-to-income and income-shock state (``loan_month_truth``)
and the true parameters (``behaviour_truth``) — but not the coin flips that decide whether an
installment is missed. It propagates the distribution of installments in arrears through the
true miss hazard, cures and restructures, due date by due date, and returns the exact
probability of reaching the default state (three months in arrears) within the window. No
model that only sees the past can beat it on average; its AUC is the ceiling the fitted
model is measured against.
"""

from __future__ import annotations

import math

import duckdb
import numpy as np
import pandas as pd

from repayplan.risk.features import DEFAULT_MONTHS_IN_ARREARS, HORIZON_MONTHS
from repayplan.store.behaviour import BehaviourParams, true_hazard
from repayplan.store.schema import FREQUENCY_MONTHS, SEGMENTS

_STATES = DEFAULT_MONTHS_IN_ARREARS  # unpaid installments 0, 1, 2 before default (monthly)

_PATHS = f"""
SELECT f.row_id, t.payment_to_income AS pti, t.shock, t.arrears_installments AS unpaid,
       list_position(?, b.segment::VARCHAR) - 1 AS segment_code,
       l.frequency::VARCHAR AS frequency,
       row_number() OVER (PARTITION BY f.row_id ORDER BY t.due_date) - 1 AS step
FROM oracle_rows f
JOIN loan_month_truth t
  ON t.loan_id = f.loan_id AND t.due_date > f.obs_date
 AND t.due_date <= f.obs_date + INTERVAL {HORIZON_MONTHS} MONTH
JOIN loans l ON l.loan_id = f.loan_id
JOIN borrowers b USING (borrower_id)
ORDER BY f.row_id, step"""


def true_params(con: duckdb.DuckDBPyConnection) -> BehaviourParams:
    """The generator's parameters as stored in ``behaviour_truth`` (defaults where absent)."""
    rows = dict(con.execute("SELECT parameter, value FROM behaviour_truth").fetchall())
    known = BehaviourParams.__dataclass_fields__
    return BehaviourParams(**{k: v for k, v in rows.items() if k in known})


def oracle_pd(con: duckdb.DuckDBPyConnection, rows: pd.DataFrame) -> np.ndarray:
    """True 12-month default probability of each ``rows`` entry (columns ``loan_id``,
    ``obs_date``), in the order given (fractions)."""
    params = true_params(con)
    frame = pd.DataFrame(
        {"row_id": np.arange(len(rows)), "loan_id": rows["loan_id"], "obs_date": rows["obs_date"]}
    )
    con.register("oracle_rows", frame)
    try:
        path = con.execute(_PATHS, [list(SEGMENTS)]).df()
    finally:
        con.unregister("oracle_rows")
    n, steps = len(rows), int(path["step"].max()) + 1 if len(path) else 0
    pti = np.zeros((n, steps))
    shock = np.zeros((n, steps), dtype=bool)
    live = np.zeros((n, steps), dtype=bool)
    r, s = path["row_id"].to_numpy(), path["step"].to_numpy()
    pti[r, s] = path["pti"].to_numpy()
    shock[r, s] = path["shock"].to_numpy(dtype=bool)
    live[r, s] = True
    seg = np.zeros(n, dtype=np.int64)
    months = np.ones(n, dtype=np.int64)
    start = np.zeros(n, dtype=np.int64)
    first = s == 0
    seg[r[first]] = path["segment_code"].to_numpy()[first]
    months[r[first]] = path["frequency"].map(FREQUENCY_MONTHS).to_numpy()[first]
    start[r[first]] = path["unpaid"].to_numpy()[first]
    # Unpaid installments that make default: 3 monthly, 2 bimonthly, 1 quarterly or longer.
    limit = np.array([math.ceil(DEFAULT_MONTHS_IN_ARREARS / m) for m in months])
    return _absorb(params, pti, shock, live, seg, limit, start)


def _absorb(
    p: BehaviourParams,
    pti: np.ndarray,
    shock: np.ndarray,
    live: np.ndarray,
    seg: np.ndarray,
    limit: np.ndarray,
    start: np.ndarray,
) -> np.ndarray:
    """Probability of reaching ``limit`` unpaid installments along each row's path."""
    n = seg.size
    dist = np.zeros((n, _STATES))
    dist[np.arange(n), np.minimum(start, _STATES - 1)] = 1.0
    defaulted = np.zeros(n)
    ks = np.arange(_STATES)
    for t in range(pti.shape[1]):
        h = true_hazard(pti[:, t, None], shock[:, t, None], ks[None, :], seg[:, None], p)
        miss = dist * h
        pay = dist - miss
        new = np.zeros_like(dist)
        new[:, 0] = pay[:, 0] + p.cure_probability * pay[:, 1:].sum(axis=1)
        new[:, 1:] += (1 - p.cure_probability) * pay[:, 1:]
        into_default = (ks[None, :] + 1) >= limit[:, None]
        defaulted_now = (miss * into_default).sum(axis=1)
        new[:, 1:] += (miss * ~into_default)[:, :-1]
        eligible = ks >= p.restructure_min_arrears
        moved = new[:, eligible].sum(axis=1) * p.restructure_probability
        new[:, eligible] *= 1 - p.restructure_probability
        new[:, 0] += moved
        step = live[:, t]
        dist = np.where(step[:, None], new, dist)
        defaulted += np.where(step, defaulted_now, 0.0)
    return defaulted
