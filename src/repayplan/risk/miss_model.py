"""The lender's behaviour model: how likely an installment is missed, and how arrears evolve.

Fitted from the book's own payment record (what a servicing system knows), never from the
demo generator's truth. Every due date is one observation:

    P(miss) = logistic(a_segment + β_pti · PTI + c_k)

with ``PTI`` the installment per month ÷ the borrower's usual income in that calendar month
(seasonality included; during a reported hardship the plans scale income by the hardship
factor), and ``c_k`` the shift for ``k`` installments already unpaid going in (``c_0 = 0``;
1, 2, 3+ each their own: delinquency is persistent, so clearing arrears is what cuts
default). ``cure_probability`` is the observed share of payments by a delinquent borrower
after which nothing is past due. A loan is charged off once its unpaid installments cover
:data:`CHARGE_OFF_MONTHS` months (the usual 180-days-past-due rule).

:mod:`repayplan.risk.outcomes` propagates this model through a plan's schedule to value it
(expected charge-off, expected lender NPV with recoveries); :mod:`repayplan.simulate` uses it
as the "fitted" behaviour for a book without ground truth.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

import duckdb
import numpy as np
from sklearn.linear_model import LogisticRegression

from repayplan.errors import InputError
from repayplan.store.schema import SEGMENTS

#: Charge-off once the unpaid installments cover this many months (180 days past due).
CHARGE_OFF_MONTHS = 6
#: 90+ days past due: the default definition of the PD model and of the simulation's DPD.
SERIOUS_MONTHS = 3
#: At most this many due dates enter the regression (a seeded sample beyond it).
MAX_ROWS = 1_000_000

_MONTHS_SQL = """CASE l.frequency WHEN 'monthly' THEN 1 WHEN 'bimonthly' THEN 2
    WHEN 'quarterly' THEN 3 WHEN 'semiannual' THEN 6 ELSE 12 END"""

_PANEL = f"""
WITH marked AS (
    SELECT t.loan_id, t.due_date, t.missed, t.arrears_installments,
           lead(t.arrears_installments) OVER (PARTITION BY t.loan_id ORDER BY t.due_date)
               AS next_unpaid
    FROM loan_month_truth t)
SELECT m.missed::INT AS missed, least(m.arrears_installments, 3) AS k,
       (m.next_unpaid = 0)::INT AS cleared,
       c.payment / ({_MONTHS_SQL})
           / (b.monthly_income * coalesce(b.income_seasonality[month(m.due_date)], 1.0)) AS pti,
       list_position(?, b.segment::VARCHAR) - 1 AS segment_code,
       (l.last_restructure_date IS NOT NULL
        AND l.last_restructure_date > m.due_date - INTERVAL 45 DAY
        AND l.last_restructure_date <= m.due_date + INTERVAL 45 DAY)::INT AS near_restructure
FROM marked m
JOIN contract_installments c ON c.loan_id = m.loan_id AND c.due_date = m.due_date
JOIN loans l ON l.loan_id = m.loan_id
JOIN borrowers b USING (borrower_id)
WHERE b.monthly_income > 0 AND m.due_date <= ? AND b.segment IS NOT NULL
USING SAMPLE reservoir({MAX_ROWS} ROWS) REPEATABLE (11)"""


@dataclass(frozen=True)
class MissModel:
    """Per-due-date miss hazard (logit scale) and arrears dynamics; see the module docstring.

    ``intercepts``: one per segment in the order of ``SEGMENTS``; ``beta_pti``: per unit of
    payment-to-income (fraction); ``beta_arrears``: shifts for 1, 2 and 3+ unpaid
    installments; ``cure_probability``: chance a delinquent borrower who pays clears all
    arrears; ``rows``: due dates used (0 for the default assumptions); ``source``: where
    the numbers come from.
    """

    intercepts: tuple[float, ...]
    beta_pti: float
    beta_arrears: tuple[float, float, float]
    cure_probability: float
    rows: int = 0
    source: str = ""

    def logit(self, pti: np.ndarray, unpaid: np.ndarray, segment_code: np.ndarray) -> np.ndarray:
        """Log-odds of a miss for arrays that broadcast together (``unpaid`` installments)."""
        k = np.asarray(unpaid)
        shift = np.select(
            [k <= 0, k == 1, k == 2],
            [0.0, self.beta_arrears[0], self.beta_arrears[1]],
            self.beta_arrears[2],
        )
        return (
            np.asarray(self.intercepts)[np.asarray(segment_code)]
            + self.beta_pti * np.asarray(pti, dtype=np.float64)
            + shift
        )

    def hazard(self, pti: np.ndarray, unpaid: np.ndarray, segment_code: np.ndarray) -> np.ndarray:
        """Probability that an installment is missed (fraction), capped at 0.99."""
        return np.minimum(1.0 / (1.0 + np.exp(-self.logit(pti, unpaid, segment_code))), 0.99)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> MissModel:
        """Inverse of :meth:`to_dict`."""
        return cls(
            intercepts=tuple(float(v) for v in data["intercepts"]),
            beta_pti=float(data["beta_pti"]),
            beta_arrears=tuple(float(v) for v in data["beta_arrears"]),  # type: ignore[arg-type]
            cure_probability=float(data["cure_probability"]),
            rows=int(data.get("rows", 0)),
            source=str(data.get("source", "")),
        )


#: Used until a model is fitted from the book: a monthly miss rate of about 1 % for a
#: current borrower at 30 % of income, +10 points of burden ×1.4, and the strong persistence
#: of delinquency reported for consumer credit roll rates (one missed installment ≈ 25×
#: the odds of the next miss). An assumption, replaced by :func:`fit_miss_model`.
DEFAULT_MISS_MODEL = MissModel(
    intercepts=(-5.6, -5.2, -4.9, -5.2),
    beta_pti=3.5,
    beta_arrears=(3.2, 4.0, 4.8),
    cure_probability=0.4,
    source="default assumptions (no model fitted)",
)


def fit_miss_model(con: duckdb.DuckDBPyConnection, until: date) -> MissModel:
    """Fit the miss hazard and the cure probability from the due dates up to ``until``."""
    frame = con.execute(_PANEL, [list(SEGMENTS), until]).df()
    if len(frame) < 1000 or frame["missed"].nunique() < 2:
        raise InputError(
            f"only {len(frame)} due dates with and without misses up to {until}; need at "
            "least 1000 to fit the miss model",
            field="loan_month_truth",
            record="database",
        )
    k = frame["k"].to_numpy(dtype=np.int64)
    seg = np.eye(len(SEGMENTS))[frame["segment_code"].to_numpy(dtype=np.int64)]
    arrears = np.column_stack([k == 1, k == 2, k >= 3]).astype(float)
    design = np.column_stack([seg, frame["pti"].to_numpy(dtype=float), arrears])
    model = LogisticRegression(C=1e6, fit_intercept=False, max_iter=2000)
    model.fit(design, frame["missed"].to_numpy(dtype=float))
    coef = model.coef_[0]
    n_seg = len(SEGMENTS)
    # Cures: payments made while delinquent after which nothing is past due; a restructure
    # also clears arrears, so due dates near one are left out.
    paying = (k > 0) & (frame["missed"].to_numpy() == 0) & (frame["near_restructure"] == 0)
    cleared = frame["cleared"].to_numpy()[paying.to_numpy()]
    cleared = cleared[~np.isnan(cleared.astype(float))]
    cure = float(np.mean(cleared)) if cleared.size >= 30 else DEFAULT_MISS_MODEL.cure_probability
    return MissModel(
        intercepts=tuple(round(float(v), 6) for v in coef[:n_seg]),
        beta_pti=round(max(float(coef[n_seg]), 0.0), 6),
        beta_arrears=tuple(round(float(v), 6) for v in coef[n_seg + 1 :]),  # type: ignore[arg-type]
        cure_probability=round(min(max(cure, 0.0), 1.0), 6),
        rows=len(frame),
        source=f"fitted from {len(frame)} due dates up to {until}",
    )


def active_miss_model(con: duckdb.DuckDBPyConnection) -> MissModel:
    """The miss model stored with the active risk model, or :data:`DEFAULT_MISS_MODEL`."""
    row = con.execute(
        "SELECT metrics->'miss_model' FROM risk_models WHERE active ORDER BY fitted_at DESC LIMIT 1"
    ).fetchone()
    if row is None or row[0] is None:
        return DEFAULT_MISS_MODEL
    return MissModel.from_dict(json.loads(row[0]))


def months_per_period(frequency: str) -> int:
    """Months in one period of ``frequency`` (monthly 1 … yearly 12)."""
    return {"monthly": 1, "bimonthly": 2, "quarterly": 3, "semiannual": 6, "yearly": 12}.get(
        frequency, 1
    )


def charge_off_installments(months: int) -> int:
    """Unpaid installments of ``months`` months each that make a loan charged off."""
    return max(1, math.ceil(CHARGE_OFF_MONTHS / months))
