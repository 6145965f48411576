"""EHR fusion detectors: ``early`` (joint LightGBM) and ``late`` (calibrated logistic combination).

Both read a participant's EHR through :func:`detectors.ehr.context_as_of` for the
scored day, so a fact known after the day never enters its score, and both say in
every :class:`~detectors.base.Score` which modalities contributed
(``("wearable", "ehr")``, ``("wearable",)`` or ``("ehr",)``).

``early``
    The wearable model features (:data:`detectors.pipeline.MODEL_FEATURES`) joined
    with the EHR feature vector (:data:`EARLY_EHR_FEATURES`: ``ehr_`` + each of
    :data:`detectors.ehr.EHR_FEATURES`, plus ``ehr_prior_logodds``, the OpenSAFELY
    log odds ratio sum of :func:`detectors.ehr.risk_factors`) in one LightGBM model.
    Missing EHR is NaN with ``ehr_has_ehr`` = 0, which LightGBM routes natively.
``late``
    A wearable-only model's probability ``s`` and the EHR prior combined by a logistic
    model fitted on *out-of-fold* wearable scores (so it is calibrated, not fitted on
    the wearable model's own training predictions)::

        logit p = b0 + b1 * w * logit(s) + b2 * w + b3 * e * lor + b4 * e

    with ``w`` = 1 when the day has wearable data, ``e`` = ``has_ehr`` and ``lor`` the
    prior's log odds ratio. Without EHR the EHR terms vanish: the output is the
    recalibrated wearable score. Without wearable data it is the EHR prior alone.

A fusion detector needs the cohort's dated facts before scoring
(:meth:`FusionDetector.set_ehr`, possibly with an empty list); scoring without them
raises, rather than silently scoring everyone as "no EHR".
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any

import numpy as np

from detectors.base import Detector, Score, reasons_from_row
from detectors.ehr import EHR_FEATURES, EhrTimeline, Fact, context_as_of, risk_factors
from detectors.pipeline import MODEL_FEATURES, DayRow

__all__ = [
    "EARLY_EHR_FEATURES",
    "EARLY_FEATURES",
    "LATE_TERMS",
    "FUSION_KINDS",
    "FusionDetector",
    "EarlyFusion",
    "LateFusion",
    "ehr_matrix",
    "late_design",
    "fit_late",
    "wearable_available",
]

FUSION_KINDS = ("early", "late")
EARLY_EHR_FEATURES = tuple(f"ehr_{f}" for f in EHR_FEATURES) + ("ehr_prior_logodds",)
EARLY_FEATURES = tuple(MODEL_FEATURES) + EARLY_EHR_FEATURES
LATE_TERMS = ("w_logit_score", "w_available", "ehr_prior_logodds", "ehr_available")
_EPS = 1e-4


def _ehr_vector(facts: Iterable[Fact], row: DayRow, prior_gap_days: float = 30.0) -> np.ndarray:
    # The row's local day and its UTC start give the participant's offset for that day.
    offset = float(row.day) * 86400.0 - float(row.day_start)
    c = context_as_of(facts, row.date, utc_offset_s=offset, prior_gap_days=prior_gap_days)
    lor = sum(risk_factors(c).values()) if c["has_ehr"] else float("nan")
    return np.array([c[k] for k in EHR_FEATURES] + [lor], dtype=np.float64)


def ehr_matrix(facts: Iterable[Fact], rows: list[DayRow]) -> np.ndarray:
    """(len(rows), len(EARLY_EHR_FEATURES)) EHR block for one participant's rows."""
    facts = list(facts)
    if not rows:
        return np.zeros((0, len(EARLY_EHR_FEATURES)))
    return np.vstack([_ehr_vector(facts, r) for r in rows])


def wearable_available(rows: list[DayRow]) -> np.ndarray:
    """1.0 where a day has any wearable feature (a finite z-score or capture > 0)."""
    out = np.zeros(len(rows))
    for i, r in enumerate(rows):
        cap = r.values.get("hr_capture", 0.0)
        out[i] = float(bool(np.isfinite(r.z).any() or (cap is not None and np.isfinite(cap) and cap > 0)))
    return out


def late_design(wearable_score: np.ndarray, w_avail: np.ndarray, ehr: np.ndarray) -> np.ndarray:
    """Design matrix of the late-fusion logistic model (columns :data:`LATE_TERMS`)."""
    s = np.clip(np.nan_to_num(np.asarray(wearable_score, dtype=float), nan=0.5), _EPS, 1 - _EPS)
    w = np.asarray(w_avail, dtype=float)
    has = np.nan_to_num(ehr[:, EARLY_EHR_FEATURES.index("ehr_has_ehr")], nan=0.0)
    lor = np.nan_to_num(ehr[:, EARLY_EHR_FEATURES.index("ehr_prior_logodds")], nan=0.0)
    return np.column_stack([w * np.log(s / (1 - s)), w, has * lor, has])


def fit_late(D: np.ndarray, y: np.ndarray, C: float = 1.0) -> tuple[float, np.ndarray]:
    """Fit the late-fusion logistic model; return (intercept, coefficients)."""
    from sklearn.linear_model import LogisticRegression

    m = LogisticRegression(C=C, max_iter=1000)
    m.fit(D, y)
    return float(m.intercept_[0]), np.asarray(m.coef_[0], dtype=float)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))  # overflow-free


def _modalities(w: float, has_ehr: float) -> tuple[str, ...]:
    mods = tuple(m for m, on in (("wearable", w > 0), ("ehr", has_ehr > 0)) if on)
    return mods or ("none",)


def _ehr_reasons(ehr_row: np.ndarray, top: int = 2) -> list[str]:
    if not ehr_row[EARLY_EHR_FEATURES.index("ehr_has_ehr")]:
        return []
    ctx = {k: float(v) for k, v in zip(EHR_FEATURES, ehr_row[: len(EHR_FEATURES)], strict=True)}
    rf = sorted(risk_factors(ctx).items(), key=lambda kv: -abs(kv[1]))[:top]
    return [f"ehr {k} x{math.exp(v):.2f}" for k, v in rf]


class FusionDetector(Detector):
    """Common part: EHR facts per participant, feature checks, describe()."""

    kind = "fusion"

    def __init__(self, thresholds: tuple[float, float], meta: dict | None = None):
        self.name = self.kind
        self.thresholds = (float(thresholds[0]), float(thresholds[1]))
        self.meta = meta or {}
        self._ehr: EhrTimeline | None = None

    def set_ehr(self, facts: Iterable[Fact]) -> None:
        """Give the detector the cohort's dated EHR facts (an empty list means: nobody has EHR)."""
        tl = EhrTimeline()
        tl.update_many(facts)
        self._ehr = tl

    def add_ehr_facts(self, facts: Iterable[Fact]) -> int:
        """Add facts as they arrive (a worker reading ``ehr.context``); repeated facts are ignored.

        Returns how many were new. Facts are still used only from their ``time_known`` on.
        """
        if self._ehr is None:
            self._ehr = EhrTimeline()
        new = 0
        for f in facts:
            known = {(g.time_known, g.fact, str(g.value)) for g in self._ehr.facts(f.participant_id)}
            if (f.time_known, f.fact, str(f.value)) not in known:
                self._ehr.update(f)
                new += 1
        return new

    def new_state(self, participant_id: str) -> Any:
        return participant_id

    def _facts(self, participant_id: str) -> list[Fact]:
        if self._ehr is None:
            raise ValueError(
                f"detector {self.name!r} has no EHR facts: call set_ehr(read_facts(cohort)) before scoring "
                "(an empty list if the cohort has none)"
            )
        return self._ehr.facts(participant_id)

    def _ehr_block(self, rows: list[DayRow]) -> np.ndarray:
        out = np.zeros((len(rows), len(EARLY_EHR_FEATURES)))
        by_pid: dict[str, list[int]] = {}
        for i, r in enumerate(rows):
            by_pid.setdefault(r.participant_id, []).append(i)
        for pid, idx in by_pid.items():
            out[idx] = ehr_matrix(self._facts(pid), [rows[i] for i in idx])
        return out

    def score_one(self, state: Any, row: DayRow) -> Score:
        return self.score_many([state], [row])[0]

    def describe(self) -> dict:
        return {"detector": self.name, "thresholds": list(self.thresholds),
                "ehr_participants": len(self._ehr.participants()) if self._ehr else 0,
                "trained_on": self.meta.get("training", {}), "cv": self.meta.get("cv_metrics", {})}


class EarlyFusion(FusionDetector):
    """Joint LightGBM on wearable model features + EHR features (:data:`EARLY_FEATURES`)."""

    kind = "early"

    def __init__(self, model: Any, feature_names: list[str], thresholds: tuple[float, float], meta: dict | None = None):
        if list(feature_names) != list(EARLY_FEATURES):
            raise ValueError("early-fusion model features do not match this pipeline's EARLY_FEATURES: retrain")
        super().__init__(thresholds, meta)
        self.model = model

    def score_many(self, states: list[Any], rows: list[DayRow]) -> list[Score]:
        if not rows:
            return []
        E = self._ehr_block(rows)
        X = np.hstack([np.vstack([r.x for r in rows]), E])
        p = np.asarray(self.model.predict(X, num_threads=1), dtype=float)
        w = wearable_available(rows)
        has = E[:, EARLY_EHR_FEATURES.index("ehr_has_ehr")]
        out = []
        for i, r in enumerate(rows):
            reasons = (reasons_from_row(r) + _ehr_reasons(E[i])) if p[i] >= self.thresholds[0] else []
            out.append(Score(float(p[i]), None, reasons, _modalities(w[i], has[i])))
        return out


class LateFusion(FusionDetector):
    """Wearable model probability + EHR prior through a calibrated logistic model."""

    kind = "late"

    def __init__(self, wearable_model: Any, intercept: float, coef: np.ndarray, thresholds: tuple[float, float],
                 meta: dict | None = None):
        coef = np.asarray(coef, dtype=float)
        if coef.shape != (len(LATE_TERMS),) or not np.all(np.isfinite(coef)) or not math.isfinite(intercept):
            raise ValueError(f"late-fusion coefficients must be {len(LATE_TERMS)} finite numbers ({', '.join(LATE_TERMS)})")
        super().__init__(thresholds, meta)
        self.wearable_model = wearable_model
        self.intercept = float(intercept)
        self.coef = coef

    def combine(self, wearable_score: np.ndarray, w_avail: np.ndarray, ehr: np.ndarray) -> np.ndarray:
        """Fused probability from wearable scores and EHR blocks (pure, vectorised)."""
        return _sigmoid(self.intercept + late_design(wearable_score, w_avail, ehr) @ self.coef)

    def score_many(self, states: list[Any], rows: list[DayRow]) -> list[Score]:
        if not rows:
            return []
        E = self._ehr_block(rows)
        X = np.vstack([r.x for r in rows])
        s = np.asarray(self.wearable_model.predict(X, num_threads=1), dtype=float)
        w = wearable_available(rows)
        p = self.combine(s, w, E)
        has = E[:, EARLY_EHR_FEATURES.index("ehr_has_ehr")]
        out = []
        for i, r in enumerate(rows):
            reasons = []
            if p[i] >= self.thresholds[0]:
                reasons = (reasons_from_row(r) if w[i] else []) + _ehr_reasons(E[i])
            out.append(Score(float(p[i]), None, reasons, _modalities(w[i], has[i])))
        return out

    def score_ehr_only(self, facts: Iterable[Fact], day, utc_offset_s: float = 0.0) -> Score:
        """Score a day with EHR but no wearable row (EHR without wearables): the prior alone."""
        c = context_as_of(facts, day, utc_offset_s=utc_offset_s)
        lor = sum(risk_factors(c).values()) if c["has_ehr"] else 0.0
        e = np.array([[c[k] for k in EHR_FEATURES] + [lor]])
        p = float(self.combine(np.array([0.5]), np.array([0.0]), e)[0])
        return Score(p, None, _ehr_reasons(e[0]), _modalities(0.0, c["has_ehr"]))
