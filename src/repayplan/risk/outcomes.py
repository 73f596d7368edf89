"""What a plan is expected to lead to under the lender's behaviour model: charge-off and value.

A plan is valued by propagating the distribution of unpaid installments through its schedule,
due date by due date, with :class:`~repayplan.risk.miss_model.MissModel` (exact for that
Markov chain; no sampling). At each due date a borrower with ``k`` installments unpaid misses
with probability ``h_k`` (the model's hazard at the plan's payment-to-income) and goes to
``k + 1``; otherwise pays the installment and, when delinquent, clears all arrears with the
cure probability. When the unpaid installments cover
:data:`~repayplan.risk.miss_model.CHARGE_OFF_MONTHS` months the loan is charged off and the
lender recovers ``1 − LGD`` of what is owed; arrears still open after the last installment
are charged off too.

Everything is computed for a whole batch of plans at once (one numpy step per due date), so a
chunk of thousands of candidates costs milliseconds. Money in cents (floats: expectations),
probabilities as fractions, months counted from the valuation date.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import numpy as np

from repayplan.risk.miss_model import MissModel, charge_off_installments


def month_offsets(as_of: date, due: np.ndarray) -> np.ndarray:
    """Month of each due date (datetime64[D]) counted from ``as_of``: a date in the month
    after as_of up to its day of month is month 1 (at least 1)."""
    a = np.datetime64(as_of, "D")
    a_m = a.astype("datetime64[M]")
    d_m = due.astype("datetime64[M]")
    day = (due - d_m.astype("datetime64[D]")).astype(np.int64)
    a_day = int((a - a_m.astype("datetime64[D]")).astype(np.int64))
    months = (d_m - a_m).astype(np.int64) + (day > a_day)
    return np.maximum(months, 1)


def unpaid_installments(arrears: int, regular_payment: int | None) -> int:
    """Whole installments a past-due amount (cents) stands for: at least 1 when anything is
    past due."""
    if arrears <= 0:
        return 0
    if not regular_payment or regular_payment <= 0:
        return 1
    return max(1, round(arrears / regular_payment))


@dataclass
class PlanBatch:
    """Plans padded to a common number of periods ``T`` (entries past a plan's end are 0).

    ``pay``: scheduled payment per period (cents); ``owed``: what is owed just before the
    payment (balance after it + the payment, cents); ``due_month``: months after the
    valuation date of each due date (1-based; 0 past the end); ``income``: the borrower's
    expected income in the period (cents per period: seasonality and any hardship factor
    included); ``months``: months per period; ``segment``: segment code; ``unpaid0`` /
    ``arrears0``: installments unpaid and their amount (cents) when the plan starts (0 for a
    restructure, which clears them).
    """

    pay: np.ndarray
    owed: np.ndarray
    due_month: np.ndarray
    income: np.ndarray
    months: np.ndarray
    segment: np.ndarray
    unpaid0: np.ndarray
    arrears0: np.ndarray

    @property
    def size(self) -> int:
        """Number of plans."""
        return int(self.pay.shape[0])


def pad_batch(
    pays: Sequence[np.ndarray],
    owed: Sequence[np.ndarray],
    due_months: Sequence[np.ndarray],
    incomes: Sequence[np.ndarray],
    months: Sequence[int],
    segments: Sequence[int],
    unpaid0: Sequence[int],
    arrears0: Sequence[float],
) -> PlanBatch:
    """A :class:`PlanBatch` from one array per plan (ragged lengths), built column-wise."""
    n = len(pays)
    lengths = np.fromiter((len(p) for p in pays), dtype=np.int64, count=n)
    width = int(lengths.max()) if n else 0
    rows = np.repeat(np.arange(n), lengths)
    cols = np.concatenate([np.arange(k) for k in lengths]) if n else np.empty(0, np.int64)

    def padded(parts: Sequence[np.ndarray], dtype: type) -> np.ndarray:
        out = np.zeros((n, width), dtype=dtype)
        if n:
            out[rows, cols] = np.concatenate([np.asarray(p, dtype=dtype) for p in parts])
        return out

    return PlanBatch(
        pay=padded(pays, np.float64),
        owed=padded(owed, np.float64),
        due_month=padded(due_months, np.int64),
        income=padded(incomes, np.float64),
        months=np.asarray(months, dtype=np.int64),
        segment=np.asarray(segments, dtype=np.int64),
        unpaid0=np.asarray(unpaid0, dtype=np.int64),
        arrears0=np.asarray(arrears0, dtype=np.float64),
    )


@dataclass
class Outcomes:
    """Expected outcomes per plan (arrays of the batch's length).

    ``charge_off_12`` / ``charge_off_24`` / ``charge_off``: probability of charge-off within
    12 and 24 months and over the plan's life; ``expected_npv``: expected cash received plus
    recoveries, discounted at the hurdle (cents); ``collections``: expected cash in months
    1, 2, 3 (shape ``(n, 3)``, cents, undiscounted).
    """

    charge_off_12: np.ndarray
    charge_off_24: np.ndarray
    charge_off: np.ndarray
    expected_npv: np.ndarray
    collections: np.ndarray


def plan_outcomes(
    batch: PlanBatch, model: MissModel, *, lgd: float, hurdle_rate: float
) -> Outcomes:
    """Propagate every plan of ``batch`` through ``model`` (see the module docstring).

    ``lgd``: loss given default (fraction); ``hurdle_rate``: nominal annual discount rate
    (fraction; monthly compounding).
    """
    n, width = batch.pay.shape
    limit = np.array([charge_off_installments(int(m)) for m in batch.months], dtype=np.int64)
    states = int(limit.max()) if n else 1  # alive states k = 0 .. limit − 1
    k = np.arange(states)
    alive_state = k[None, :] < limit[:, None]
    pi = np.zeros((n, states))
    start = np.minimum(batch.unpaid0, limit - 1)
    pi[np.arange(n), start] = 1.0
    arrears_unit = np.where(batch.unpaid0 > 0, batch.arrears0 / np.maximum(batch.unpaid0, 1), 0.0)
    disc_rate = 1.0 + hurdle_rate / 12.0
    q = model.cure_probability
    recovery = 1.0 - lgd
    co12 = np.zeros(n)
    co24 = np.zeros(n)
    total_co = np.zeros(n)
    npv = np.zeros(n)
    collections = np.zeros((n, 3))
    unit = arrears_unit.copy()
    for t in range(width):
        pay = batch.pay[:, t]
        due = batch.due_month[:, t]
        live = (due > 0) & (pay > 0)
        if not live.any():
            continue
        unit = np.where(live & (pay > 0), np.maximum(pay, 0.0), unit)
        pti = np.where(batch.income[:, t] > 0, pay / np.maximum(batch.income[:, t], 1.0), 10.0)
        h = model.hazard(pti[:, None], k[None, :], batch.segment[:, None])
        h = np.where(alive_state, h, 0.0)
        arrears_k = k[None, :] * unit[:, None]
        paid = pi * (1.0 - h)
        cure_mass = paid[:, 1:].sum(axis=1) * q
        cash = paid.sum(axis=1) * pay + (paid[:, 1:] * arrears_k[:, 1:]).sum(axis=1) * q
        new = np.zeros_like(pi)
        new[:, 0] = paid[:, 0] + cure_mass
        new[:, 1:] = pi[:, :-1] * h[:, :-1] + paid[:, 1:] * (1.0 - q)
        last = limit - 1
        rows = np.arange(n)
        charged = pi[rows, last] * h[rows, last]
        # The mass that rolled past the last alive state is the charge-off: drop it.
        over = k[None, :] >= limit[:, None]
        new = np.where(over, 0.0, new)
        owed = batch.owed[:, t] + limit * unit
        discount = disc_rate ** (-due.astype(np.float64))
        value = cash + charged * recovery * owed
        npv += np.where(live, value * discount, 0.0)
        total_co += np.where(live, charged, 0.0)
        co12 += np.where(live & (due <= 12), charged, 0.0)
        co24 += np.where(live & (due <= 24), charged, 0.0)
        for m in range(3):
            collections[:, m] += np.where(live & (due == m + 1), cash, 0.0)
        pi = np.where(live[:, None], new, pi)
    # Arrears still open after the last installment are never collected: charged off.
    leftover = pi[:, 1:].sum(axis=1)
    end_month = batch.due_month.max(axis=1) + 6
    left_owed = (pi[:, 1:] * (k[None, 1:] * unit[:, None])).sum(axis=1)
    npv += left_owed * recovery * disc_rate ** (-end_month.astype(np.float64))
    total_co += leftover
    co12 += np.where(end_month <= 12, leftover, 0.0)
    co24 += np.where(end_month <= 24, leftover, 0.0)
    return Outcomes(
        charge_off_12=co12,
        charge_off_24=co24,
        charge_off=total_co,
        expected_npv=npv,
        collections=collections,
    )
