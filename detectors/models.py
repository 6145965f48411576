"""Supervised detectors on daily features: random forest (TemPredict-style) and LightGBM.

Both score the model feature vector of :mod:`detectors.pipeline` (each base
feature's z-score for the day and the two before, their mean, and the day's
deviation, plus data capture): only days up to the scored day enter. The score
is the model's probability that the day lies in an illness window; the alert
policy turns it into levels with thresholds chosen on out-of-fold training
predictions (fixed specificities), never per participant.

Training (:func:`fit_model`) and cross-validation live in :mod:`detectors.training`;
saving and loading artifacts (files) live in :mod:`streams.artifacts`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from detectors.base import Detector, Score, reasons_from_row
from detectors.pipeline import MODEL_FEATURES, DayRow

__all__ = ["ModelDetector", "fit_model", "predict_proba_many", "MODEL_KINDS"]

MODEL_KINDS = ("forest", "lightgbm")

LGBM_PARAMS = {
    "objective": "binary",
    "learning_rate": 0.05,
    "num_leaves": 15,
    "min_data_in_leaf": 40,
    "feature_fraction": 0.8,
    "bagging_fraction": 0.8,
    "bagging_freq": 1,
    "lambda_l2": 1.0,
    "verbose": -1,
    "deterministic": True,
    "force_row_wise": True,
}
LGBM_ROUNDS = 250
FOREST_PARAMS = {"n_estimators": 200, "min_samples_leaf": 20, "max_features": "sqrt", "max_samples": 0.5, "class_weight": None}


def fit_model(kind: str, X: np.ndarray, y: np.ndarray, seed: int = 0, threads: int = 1) -> Any:
    """Fit a model of ``kind`` on feature matrix ``X`` (NaN = missing) and 0/1 labels ``y``."""
    if kind == "lightgbm":
        import lightgbm as lgb

        params = dict(LGBM_PARAMS, seed=seed, num_threads=threads)
        ds = lgb.Dataset(X, label=y, feature_name=list(MODEL_FEATURES) if X.shape[1] == len(MODEL_FEATURES) else "auto", free_raw_data=True)
        return lgb.train(params, ds, num_boost_round=LGBM_ROUNDS)
    if kind == "forest":
        from sklearn.ensemble import RandomForestClassifier

        m = RandomForestClassifier(random_state=seed, n_jobs=threads, **FOREST_PARAMS)
        m.fit(X, y)
        return m
    raise ValueError(f"unknown model kind {kind!r}; valid: {', '.join(MODEL_KINDS)}")


def predict_proba_many(kind: str, model: Any, X: np.ndarray, threads: int = 1) -> np.ndarray:
    if X.shape[0] == 0:
        return np.zeros(0)
    if kind == "lightgbm":
        return np.asarray(model.predict(X, num_threads=threads), dtype=float)
    if kind == "forest":
        return np.asarray(model.predict_proba(X)[:, 1], dtype=float)
    raise ValueError(f"unknown model kind {kind!r}; valid: {', '.join(MODEL_KINDS)}")


class ModelDetector(Detector):
    """A fitted random forest or LightGBM model as a detector (stateless, batch scoring).

    Parameters
    ----------
    kind : "forest" or "lightgbm"
    model : the fitted model
    feature_names : names of the columns the model was trained on (must equal MODEL_FEATURES)
    thresholds : (yellow, red) probability thresholds from training
    """

    def __init__(self, kind: str, model: Any, feature_names: list[str], thresholds: tuple[float, float],
                 meta: dict | None = None):
        if kind not in MODEL_KINDS:
            raise ValueError(f"unknown model kind {kind!r}; valid: {', '.join(MODEL_KINDS)}")
        if list(feature_names) != list(MODEL_FEATURES):
            missing = sorted(set(MODEL_FEATURES) - set(feature_names))
            extra = sorted(set(feature_names) - set(MODEL_FEATURES))
            raise ValueError(f"model features do not match this feature pipeline: missing {missing[:5]}, unexpected {extra[:5]}")
        self.name = kind
        self.kind = kind
        self.model = model
        self.thresholds = (float(thresholds[0]), float(thresholds[1]))
        self.meta = meta or {}

    def score_many(self, states, rows: list[DayRow]) -> list[Score]:
        if not rows:
            return []
        X = np.vstack([r.x for r in rows])
        p = predict_proba_many(self.kind, self.model, X)
        return [Score(float(pi), None, reasons_from_row(r) if pi >= self.thresholds[0] else []) for pi, r in zip(p, rows, strict=True)]

    def score_one(self, state, row: DayRow) -> Score:
        return self.score_many([state], [row])[0]

    def describe(self) -> dict:
        return {"detector": self.name, "thresholds": list(self.thresholds),
                "trained_on": self.meta.get("training", {}), "cv": self.meta.get("cv_metrics", {})}
