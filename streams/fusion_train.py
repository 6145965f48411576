"""`prodromal train --model early|late`: EHR fusion training with participant-grouped CV.

Every run also cross-validates the wearable-only LightGBM on the same days and
folds, so the printed metrics compare wearable-only with the fusion strategy
(``cv["wearable_only"]``), overall and split by whether the participant has EHR
(``cv["by_ehr"]``). The late model's logistic combination is fitted on the
wearable model's out-of-fold scores and cross-validated itself on the same folds.
"""

from __future__ import annotations

import time as _time
from pathlib import Path

import numpy as np

from detectors.evaluation import auroc, sensitivity_at_specificity
from detectors.fusion import (
    EARLY_EHR_FEATURES,
    ehr_matrix,
    fit_late,
    late_design,
    wearable_available,
)
from detectors.models import fit_model
from detectors.pipeline import PipelineParams
from detectors.training import choose_thresholds, day_labels, grouped_cv, participant_folds
from streams.cohort import Cohort
from streams.fusion_artifacts import save_fusion_artifact
from streams.importers.ehr_facts import read_facts
from streams.replay import local_day
from streams.train import TrainResult, cohort_rows, training_summary

__all__ = ["train_fusion", "fusion_dataset"]


def fusion_dataset(cohort: Cohort, params: PipelineParams, progress=None):
    """Wearable features, EHR block, wearable availability, labels and groups of all labelled days."""
    healthy = bool(cohort.manifest.get("unlabelled_healthy", False))
    facts = read_facts(cohort.path)
    by_pid: dict[str, list] = {}
    for f in facts:
        by_pid.setdefault(f.participant_id, []).append(f)
    Xs, Es, Ws, ys, gs = [], [], [], [], []
    for p, rows in cohort_rows(cohort, params, progress):
        if not rows:
            continue
        ref = p.reference_date
        y = day_labels(np.array([r.day for r in rows]), local_day(ref) if ref else None, healthy=healthy)
        keep = np.flatnonzero(y >= 0)
        if keep.size == 0:
            continue
        kept = [rows[i] for i in keep]
        Xs.append(np.vstack([r.x for r in kept]))
        Es.append(ehr_matrix(by_pid.get(p.participant_id, []), kept))
        Ws.append(wearable_available(kept))
        ys.append(y[keep])
        gs.append(np.full(keep.size, p.participant_id, dtype=object))
    if not Xs:
        raise ValueError(f"{cohort.path}: no labelled days to train on (labels, or unlabelled_healthy in cohort.json, needed)")
    return (np.vstack(Xs), np.vstack(Es), np.concatenate(Ws), np.concatenate(ys).astype(int), np.concatenate(gs),
            len(by_pid))


def _metrics(oof: np.ndarray, y: np.ndarray) -> dict:
    ok = np.isfinite(oof)
    pos, neg = oof[ok & (y == 1)], oof[ok & (y == 0)]
    return {
        "auroc": auroc(pos, neg),
        "sens_at_90_spec": sensitivity_at_specificity(pos, neg, 0.90),
        "sens_at_95_spec": sensitivity_at_specificity(pos, neg, 0.95),
        "brier": float(np.mean((oof[ok] - y[ok]) ** 2)) if ok.any() else None,
        "days": int(ok.sum()),
    }


def _late_oof(D: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int, seed: int) -> np.ndarray:
    oof = np.full(y.size, np.nan)
    for tr, te in participant_folds(groups, folds, seed + 1)[1]:
        if len(np.unique(y[tr])) < 2:
            continue
        b0, b = fit_late(D[tr], y[tr])
        oof[te] = 0.5 * (1.0 + np.tanh(0.5 * (b0 + D[te] @ b)))
    return oof


def train_fusion(cohort_path: str | Path, kind: str, out: str | Path, folds: int = 5, seed: int = 0, threads: int = 1,
                 params: PipelineParams | None = None, progress=None) -> TrainResult:
    """Train an ``early`` or ``late`` fusion detector; write its artifact; return CV metrics."""
    if kind not in ("early", "late"):
        raise ValueError(f"unknown fusion model {kind!r}; valid: early, late")
    t0 = _time.perf_counter()
    cohort = Cohort(cohort_path)
    params = params or PipelineParams()
    Xw, E, W, y, g, n_ehr_part = fusion_dataset(cohort, params, progress)
    if y.min() == y.max():
        raise ValueError(f"{cohort_path}: training days are all {'positive' if y[0] else 'negative'}: need both")
    oof_w, cv_w = grouped_cv("lightgbm", Xw, y, g, folds=folds, seed=seed, threads=threads)
    late = None
    if kind == "early":
        X = np.hstack([Xw, E])
        oof, cv = grouped_cv("lightgbm", X, y, g, folds=folds, seed=seed, threads=threads)
        model = fit_model("lightgbm", X, y, seed=seed, threads=threads)
    else:
        D = late_design(oof_w, W, E)
        oof = _late_oof(D, y, g, folds, seed)
        b0, b = fit_late(D[np.isfinite(oof_w)], y[np.isfinite(oof_w)])
        late = {"intercept": b0, "coef": b.tolist()}
        model = fit_model("lightgbm", Xw, y, seed=seed, threads=threads)
        cv = {"folds": cv_w["folds"], "auroc_per_fold": cv_w["auroc_per_fold"], **_metrics(oof, y),
              "positive_days": int(y.sum()), "negative_days": int((y == 0).sum())}
    has = E[:, EARLY_EHR_FEATURES.index("ehr_has_ehr")] > 0
    cv["wearable_only"] = _metrics(oof_w, y)
    cv["by_ehr"] = {
        "with_ehr": {"fused": _metrics(oof[has], y[has]), "wearable_only": _metrics(oof_w[has], y[has])},
        "without_ehr": {"fused": _metrics(oof[~has], y[~has]), "wearable_only": _metrics(oof_w[~has], y[~has])},
    }
    thresholds = choose_thresholds(oof, y)
    parts = np.unique(g)
    with_ehr_parts = np.unique(g[has])
    training = {
        **training_summary(cohort, parts.size, y, seed),
        "participants_with_ehr": int(with_ehr_parts.size),
        "ehr_share": float(with_ehr_parts.size / parts.size),
        "ehr_facts_participants": n_ehr_part,
    }
    save_fusion_artifact(out, kind, model, thresholds, training, cv, params, late=late)
    return TrainResult(Path(out), cv, thresholds, training, _time.perf_counter() - t0)
