"""Estimating the burden response curve g from the portfolio's own payment history.

Every due date of a loan that was current going in is one observation: was the installment
missed, and how heavy was it — the contract installment per month ÷ the borrower's usual
income in that calendar month (seasonality included; the realised income is not observed).
A logistic regression of the miss on that payment-to-income ratio, with one intercept per
segment, gives the slope β (per unit of ratio). For the small monthly hazards of a performing
book the logistic odds ratio is the hazard ratio, so ``g(x) = exp(β·(x − 0.30))`` — convex,
increasing, 1 at the reference ratio 0.30 — sampled at the breakpoints of
:data:`~repayplan.risk.burden.DEFAULT_BURDEN_CURVE`, which makes it an LP-ready
piecewise-linear curve (linear interpolation of a convex function stays convex).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import date

import duckdb
import numpy as np
from sklearn.linear_model import LogisticRegression

from repayplan.errors import InputError
from repayplan.risk.burden import DEFAULT_BURDEN_CURVE, BurdenCurve
from repayplan.store.schema import SEGMENTS

#: The payment-to-income ratio at which g = 1.
REFERENCE_RATIO = 0.30
#: At most this many due dates enter the regression (a seeded sample beyond it): the slope's
#: standard error is already far below its distance from zero at this size.
MAX_ROWS = 1_000_000

_PANEL = f"""
SELECT t.missed::INT AS missed,
       c.payment / (CASE l.frequency WHEN 'monthly' THEN 1 WHEN 'bimonthly' THEN 2
                    WHEN 'quarterly' THEN 3 WHEN 'semiannual' THEN 6 ELSE 12 END)
           / (b.monthly_income * coalesce(b.income_seasonality[month(t.due_date)], 1.0))
           AS pti,
       list_position(?, b.segment::VARCHAR) - 1 AS segment_code
FROM loan_month_truth t
JOIN contract_installments c ON c.loan_id = t.loan_id AND c.due_date = t.due_date
JOIN loans l ON l.loan_id = t.loan_id
JOIN borrowers b USING (borrower_id)
WHERE t.arrears_installments = 0 AND b.monthly_income > 0 AND t.due_date <= ?
USING SAMPLE reservoir({MAX_ROWS} ROWS) REPEATABLE (7)"""


@dataclass(frozen=True)
class BurdenFit:
    """The fitted curve and the evidence behind it.

    ``beta``: logit slope per unit of payment-to-income (fraction), with its standard error;
    ``ratio_per_10pts``: hazard factor for +0.10 of payment-to-income, ``exp(0.1·β)``;
    ``bins``: observed miss rate per payment-to-income decile (``pti`` = decile mean,
    ``miss_rate`` a fraction, ``rows``); ``rows``: due dates used.
    """

    curve: BurdenCurve
    beta: float
    beta_se: float
    ratio_per_10pts: float
    rows: int
    bins: list[dict[str, float]]

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return {
            "curve": self.curve.to_dict(),
            "beta": round(self.beta, 4),
            "beta_se": round(self.beta_se, 4),
            "ratio_per_10pts": round(self.ratio_per_10pts, 4),
            "rows": self.rows,
            "bins": self.bins,
        }


def fit_burden_curve(con: duckdb.DuckDBPyConnection, until: date) -> BurdenFit:
    """Estimate g from the due dates up to ``until`` of loans current going in."""
    frame = con.execute(_PANEL, [list(SEGMENTS), until]).df()
    if len(frame) < 1000 or frame["missed"].nunique() < 2:
        raise InputError(
            f"only {len(frame)} due dates of current loans (with and without misses) up to "
            f"{until}; need at least 1000 to estimate the burden curve",
            field="loan_month_truth",
            record="database",
        )
    x = frame["pti"].to_numpy(dtype=float)
    y = frame["missed"].to_numpy(dtype=float)
    seg = np.eye(len(SEGMENTS))[frame["segment_code"].to_numpy(dtype=np.int64)]
    design = np.column_stack([x, seg])
    model = LogisticRegression(C=np.inf, fit_intercept=False, max_iter=1000)
    model.fit(design, y)
    beta = float(model.coef_[0, 0])
    p = model.predict_proba(design)[:, 1]
    # Standard error from the observed Fisher information (X'WX)⁻¹ of the logit fit.
    info = design.T @ (design * (p * (1 - p))[:, None])
    beta_se = float(math.sqrt(np.linalg.pinv(info)[0, 0]))
    return BurdenFit(
        curve=curve_from_slope(beta, rows=len(frame)),
        beta=beta,
        beta_se=beta_se,
        ratio_per_10pts=math.exp(0.1 * max(beta, 0.0)),
        rows=len(frame),
        bins=_decile_bins(x, y),
    )


def curve_from_slope(beta: float, rows: int = 0) -> BurdenCurve:
    """``exp(β·(x − 0.30))`` at the default breakpoints (unrounded: rounding a nearly flat
    curve could break its convexity); a negative β (no burden effect in the
    data) is clamped to 0, a flat curve, because g must not decrease."""
    slope = max(beta, 0.0)
    ratios = DEFAULT_BURDEN_CURVE.ratios
    factors = tuple(math.exp(slope * (r - REFERENCE_RATIO)) for r in ratios)
    return BurdenCurve(
        ratios,
        factors,
        source=f"fitted: exp({slope:.4f}·(ratio − {REFERENCE_RATIO})) from {rows} due dates",
    )


def active_burden_curve(con: duckdb.DuckDBPyConnection) -> BurdenCurve:
    """The curve stored with the active risk model, or :data:`DEFAULT_BURDEN_CURVE` when no
    model has been fitted."""
    row = con.execute(
        "SELECT metrics->'burden_curve' FROM risk_models WHERE active "
        "ORDER BY fitted_at DESC LIMIT 1"
    ).fetchone()
    if row is None or row[0] is None:
        return DEFAULT_BURDEN_CURVE
    return BurdenCurve.from_dict(json.loads(row[0]))


def _decile_bins(x: np.ndarray, y: np.ndarray) -> list[dict[str, float]]:
    order = np.argsort(x, kind="stable")
    return [
        {"pti": round(float(x[i].mean()), 4), "miss_rate": round(float(y[i].mean()), 5),
         "rows": int(i.size)}
        for i in np.array_split(order, 10)
    ]  # fmt: skip
