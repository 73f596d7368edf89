"""The probability-of-default model: fit, validate out of time, store, load and score.

``fit`` learns P(default within 12 months) from monthly snapshots of the portfolio's history
(:mod:`repayplan.risk.features`) with two scikit-learn estimators — a calibrated logistic
regression and a gradient-boosted tree model — and validates both out of time. With T the
portfolio's as_of, the estimators learn from the snapshots T−35 … T−24 months (whose outcome
windows all close by T−12) and are scored on the snapshot T−12 (outcomes up to T): no
training outcome overlaps the holdout's. The holdout is also scored with the demo generator's
true PD (:mod:`repayplan.risk.oracle`) when the database has it. The better estimator on
holdout AUC becomes the active model.

Each fit writes one ``risk_models`` row per estimator (``features``, ``metrics`` JSON with the
burden curve) and saves the estimator with joblib in ``<db stem>.models/<model_id>.joblib``.
``score`` turns the active model's 12-month PD of every open loan into the monthly base hazard
the optimiser multiplies by ``g(payment / income)``, and writes ``risk_scores`` in one insert.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import brier_score_loss, roc_auc_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import OneHotEncoder, OrdinalEncoder, StandardScaler

from repayplan.errors import InputError
from repayplan.finance import add_months
from repayplan.risk.burden import BurdenCurve
from repayplan.risk.burden_fit import fit_burden_curve
from repayplan.risk.features import (
    CATEGORICAL_FEATURES,
    FEATURES,
    HORIZON_MONTHS,
    NUMERIC_FEATURES,
    portfolio_as_of,
    scoring_frame,
    training_frame,
)
from repayplan.risk.miss_model import fit_miss_model
from repayplan.risk.oracle import oracle_pd
from repayplan.store.connection import DEFAULT_DB, connect

KINDS = ("logistic", "gradient_boosting")
#: Training snapshots: this many monthly observation dates ending 2 × horizon before as_of.
TRAIN_SNAPSHOTS = 12
_MIN_EVENTS = 20
_CALIBRATION_BINS = 10


@dataclass(frozen=True)
class FitReport:
    """What ``fit`` did. Metrics are on the out-of-time holdout: ``auc`` and ``oracle_auc``
    (ROC AUC), ``brier`` (mean squared error of the PD), ``calibration_error`` (expected
    calibration error over PD deciles: Σ share × |mean PD − default rate|), all fractions,
    for the active model; ``candidates`` holds them for every estimator."""

    model_id: str
    kind: str
    as_of: date
    fitted_at: datetime
    auc: float
    oracle_auc: float | None
    brier: float
    calibration_error: float
    burden_curve: BurdenCurve
    candidates: dict[str, dict[str, Any]]
    windows: dict[str, Any]
    artifact_path: str
    seconds: float
    burden: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``repayplan risk fit --json``)."""
        return {
            "model_id": self.model_id,
            "kind": self.kind,
            "as_of": self.as_of.isoformat(),
            "fitted_at": self.fitted_at.isoformat(timespec="seconds"),
            "auc": self.auc,
            "oracle_auc": self.oracle_auc,
            "auc_vs_oracle": (round(self.auc / self.oracle_auc, 4) if self.oracle_auc else None),
            "brier": self.brier,
            "calibration_error": self.calibration_error,
            "burden_curve": self.burden_curve.to_dict(),
            "burden_fit": self.burden,
            "candidates": self.candidates,
            "windows": self.windows,
            "artifact_path": self.artifact_path,
            "seconds": round(self.seconds, 3),
        }


@dataclass(frozen=True)
class ScoreSummary:
    """What ``score`` wrote: loans scored, their mean 12-month PD and mean monthly base hazard
    (fractions), how many are already in default (scored as restructured), and the speed."""

    model_id: str
    as_of: date
    scored_at: datetime
    loans: int
    in_default: int
    mean_pd_12m: float
    mean_monthly_hazard: float
    seconds: float

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (``repayplan risk score --json``)."""
        return {
            "model_id": self.model_id,
            "as_of": self.as_of.isoformat(),
            "scored_at": self.scored_at.isoformat(timespec="seconds"),
            "loans": self.loans,
            "in_default": self.in_default,
            "mean_pd_12m": round(self.mean_pd_12m, 6),
            "mean_monthly_hazard": round(self.mean_monthly_hazard, 6),
            "seconds": round(self.seconds, 3),
            "loans_per_second": round(self.loans / max(self.seconds, 1e-9)),
        }


def make_estimator(kind: str) -> Any:
    """An unfitted scikit-learn estimator of ``kind`` that takes the feature frame as is."""
    if kind == "logistic":
        columns = ColumnTransformer(
            [
                ("num", StandardScaler(), list(NUMERIC_FEATURES)),
                ("cat", OneHotEncoder(handle_unknown="ignore"), list(CATEGORICAL_FEATURES)),
            ]
        )
        pipeline = Pipeline([("columns", columns), ("model", LogisticRegression(max_iter=2000))])
        # Platt scaling on held-out folds: the PD must be a probability, not just a ranking.
        return CalibratedClassifierCV(pipeline, method="sigmoid", cv=3)
    if kind == "gradient_boosting":
        columns = ColumnTransformer(
            [
                (
                    "cat",
                    OrdinalEncoder(handle_unknown="use_encoded_value", unknown_value=-1),
                    list(CATEGORICAL_FEATURES),
                ),
                ("num", "passthrough", list(NUMERIC_FEATURES)),
            ]
        )
        # Small trees and large leaves: defaults are rare (≈ 7 %) and the book is small.
        model = HistGradientBoostingClassifier(
            categorical_features=list(range(len(CATEGORICAL_FEATURES))),
            max_depth=3,
            min_samples_leaf=100,
            l2_regularization=1.0,
            learning_rate=0.05,
            max_iter=300,
            early_stopping=True,
            random_state=0,
        )
        return Pipeline([("columns", columns), ("model", model)])
    raise InputError(f"unknown model kind {kind!r}; use one of {', '.join(KINDS)}", field="kind")


def calibration_error(y: np.ndarray, pd_: np.ndarray, bins: int = _CALIBRATION_BINS) -> float:
    """Expected calibration error over PD quantile bins (deciles by default): the
    row-weighted mean of |mean predicted PD − observed default rate| per bin (a fraction)."""
    order = np.argsort(pd_, kind="stable")
    n = len(order)
    return float(
        sum(
            len(i) / n * abs(float(pd_[i].mean()) - float(y[i].mean()))
            for i in np.array_split(order, bins)
            if len(i)
        )
    )


def holdout_metrics(y: np.ndarray, pd_: np.ndarray) -> dict[str, float]:
    """``auc``, ``brier``, ``calibration_error`` of PDs ``pd_`` against outcomes ``y``."""
    return {
        "auc": round(float(roc_auc_score(y, pd_)), 4),
        "brier": round(float(brier_score_loss(y, pd_)), 5),
        "calibration_error": round(calibration_error(np.asarray(y), np.asarray(pd_)), 5),
        "mean_pd": round(float(np.mean(pd_)), 5),
        "default_rate": round(float(np.mean(y)), 5),
    }


def fit(db: str | Path = DEFAULT_DB, as_of: date | None = None) -> FitReport:
    """Fit, validate out of time and store both estimators; the better one becomes active.

    ``as_of`` (default: the portfolio's as_of) is T in the windows above.
    """
    started = time.perf_counter()
    con = connect(db)
    try:
        current = portfolio_as_of(con)
        t = as_of or current
        if t > current:
            raise InputError(f"{t} is after the portfolio's as_of {current}", field="as_of")
        holdout_date = add_months(t, -HORIZON_MONTHS)
        train_dates = [add_months(t, -2 * HORIZON_MONTHS - k) for k in range(TRAIN_SNAPSHOTS)]
        train = training_frame(con, train_dates)
        holdout = training_frame(con, [holdout_date])
        for name, frame in (("training", train), ("holdout", holdout)):
            events = int(frame["default_12m"].sum()) if len(frame) else 0
            if events < _MIN_EVENTS or events == len(frame):
                raise InputError(
                    f"the {name} snapshots have {len(frame)} loans and {events} defaults; "
                    f"need at least {_MIN_EVENTS} of each (history before {holdout_date} "
                    "is too short)",
                    field="as_of",
                    record=str(db),
                )
        y_holdout = holdout["default_12m"].to_numpy()
        oracle = _oracle_auc(con, holdout, y_holdout)
        fitted: dict[str, Any] = {}
        candidates: dict[str, dict[str, Any]] = {}
        for kind in KINDS:
            tic = time.perf_counter()
            estimator = make_estimator(kind).fit(train[list(FEATURES)], train["default_12m"])
            pd_ = estimator.predict_proba(holdout[list(FEATURES)])[:, 1]
            metrics = holdout_metrics(y_holdout, pd_)
            metrics["oracle_auc"] = oracle
            metrics["fit_seconds"] = round(time.perf_counter() - tic, 3)
            fitted[kind], candidates[kind] = estimator, metrics
        best = max(KINDS, key=lambda k: (candidates[k]["auc"], -candidates[k]["brier"]))
        burden = fit_burden_curve(con, until=t)
        miss = fit_miss_model(con, until=t)
        fitted_at = datetime.now(UTC).replace(tzinfo=None)
        windows = {
            "train_obs_dates": [min(train_dates).isoformat(), max(train_dates).isoformat()],
            "holdout_obs_date": holdout_date.isoformat(),
            "outcome_months": HORIZON_MONTHS,
            "train_rows": len(train),
            "holdout_rows": len(holdout),
        }
        extra = {"miss_model": miss.to_dict()}
        ids = _store(con, db, fitted, candidates, best, burden.curve, windows, fitted_at, t, extra)
        chosen = candidates[best]
        return FitReport(
            model_id=ids[best][0],
            kind=best,
            as_of=t,
            fitted_at=fitted_at,
            auc=chosen["auc"],
            oracle_auc=oracle,
            brier=chosen["brier"],
            calibration_error=chosen["calibration_error"],
            burden_curve=burden.curve,
            candidates=candidates,
            windows=windows,
            artifact_path=ids[best][1],
            seconds=time.perf_counter() - started,
            burden=burden.to_dict(),
        )
    finally:
        con.close()


def load_active(con: Any) -> tuple[str, dict[str, Any]]:
    """``(model_id, artifact)`` of the active model; the artifact holds ``estimator``,
    ``features``, ``kind`` and ``burden_curve``."""
    row = con.execute(
        "SELECT model_id, artifact_path FROM risk_models WHERE active "
        "ORDER BY fitted_at DESC LIMIT 1"
    ).fetchone()
    if row is None:
        raise InputError(
            "no risk model fitted yet; run `repayplan risk fit` first", field="risk_models"
        )
    path = Path(row[1])
    if not path.exists():
        raise InputError(f"artifact {path} is missing", field="artifact_path", record=row[0])
    return row[0], joblib.load(path)


def score(db: str | Path = DEFAULT_DB, as_of: date | None = None) -> ScoreSummary:
    """Score every open loan with the active model and write ``risk_scores``.

    Per loan: ``pd_12m`` (fraction) and ``monthly_hazard`` — the base hazard at g = 1:
    ``(1 − (1 − pd_12m)^(1/12)) / g(current payment-to-income)``, so that
    ``monthly_hazard × g(pti)`` gives back the constant monthly hazard of the 12-month PD.
    Re-scoring with the same model replaces that model's earlier scores.
    """
    started = time.perf_counter()
    con = connect(db)
    try:
        model_id, artifact = load_active(con)
        frame = scoring_frame(con, as_of)
        when = as_of or portfolio_as_of(con)
        pd_12m, hazard = base_hazards(artifact, frame)
        scored_at = datetime.now(UTC).replace(tzinfo=None)
        out = pd.DataFrame(
            {
                "loan_id": frame["loan_id"].astype(str),
                "scored_at": scored_at,
                "model_id": model_id,
                "monthly_hazard": hazard,
                "pd_12m": pd_12m,
            }
        )
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute("DELETE FROM risk_scores WHERE model_id = ?", [model_id])
            con.register("score_frame", out)
            con.execute("INSERT INTO risk_scores SELECT * FROM score_frame")
            con.unregister("score_frame")
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
        return ScoreSummary(
            model_id=model_id,
            as_of=when,
            scored_at=scored_at,
            loans=len(out),
            in_default=int(frame["in_default"].sum()),
            mean_pd_12m=float(pd_12m.mean()) if len(out) else 0.0,
            mean_monthly_hazard=float(hazard.mean()) if len(out) else 0.0,
            seconds=time.perf_counter() - started,
        )
    finally:
        con.close()


def base_hazards(artifact: dict[str, Any], frame: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """``(pd_12m, monthly base hazard)`` of each ``frame`` row (fractions)."""
    if len(frame) == 0:
        return np.empty(0), np.empty(0)
    pd_12m = artifact["estimator"].predict_proba(frame[list(artifact["features"])])[:, 1]
    pd_12m = np.clip(pd_12m, 0.0, 1.0 - 1e-9)
    monthly = 1.0 - (1.0 - pd_12m) ** (1.0 / HORIZON_MONTHS)
    curve = BurdenCurve.from_dict(artifact["burden_curve"])
    return pd_12m, monthly / curve(frame["pti"].to_numpy(dtype=float))


def _oracle_auc(con: Any, holdout: pd.DataFrame, y: np.ndarray) -> float | None:
    """AUC of the generator's true PD on the holdout; None for a book without ground truth."""
    if con.execute("SELECT count(*) FROM behaviour_truth").fetchone()[0] == 0:
        return None
    return round(float(roc_auc_score(y, oracle_pd(con, holdout))), 4)


def _store(
    con: Any,
    db: str | Path,
    fitted: dict[str, Any],
    candidates: dict[str, dict[str, Any]],
    best: str,
    curve: BurdenCurve,
    windows: dict[str, Any],
    fitted_at: datetime,
    as_of: date,
    extra: dict[str, Any] | None = None,
) -> dict[str, tuple[str, str]]:
    """Save the artifacts beside the database and record the models (the best one active)."""
    folder = Path(str(db)).with_name(Path(str(db)).stem + ".models")
    folder.mkdir(parents=True, exist_ok=True)
    stamp = fitted_at.strftime("%Y%m%dT%H%M%S%f")
    ids: dict[str, tuple[str, str]] = {}
    for kind, estimator in fitted.items():
        model_id = f"pd-{kind}-{stamp}"
        path = (folder / f"{model_id}.joblib").resolve()
        joblib.dump(
            {
                "estimator": estimator,
                "features": list(FEATURES),
                "kind": kind,
                "burden_curve": curve.to_dict(),
                "as_of": as_of.isoformat(),
            },
            path,
        )
        ids[kind] = (model_id, str(path))
    con.execute("BEGIN TRANSACTION")
    try:
        con.execute("UPDATE risk_models SET active = false WHERE active")
        for kind, (model_id, path) in ids.items():
            metrics = {
                **candidates[kind],
                "burden_curve": curve.to_dict(),
                "windows": windows,
                **(extra or {}),
            }
            con.execute(
                "INSERT INTO risk_models VALUES (?, ?, ?, ?, ?, ?, ?)",
                [
                    model_id,
                    fitted_at,
                    kind,
                    json.dumps(list(FEATURES)),
                    json.dumps(metrics),
                    path,
                    kind == best,
                ],
            )
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return ids
