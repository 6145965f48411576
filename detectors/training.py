"""Day labels, participant-grouped cross-validation and threshold choice for supervised detectors.

Day labels follow the evaluation's definitions (:mod:`detectors.evaluation`):
positive = a day in the illness window ``[R-7, R+14]``; negative = a day outside
``[R-21, R+28]`` or any day of a healthy participant; days in between are
ambiguous and left out of training. Cross-validation holds whole participants
out (``GroupKFold``), so no participant is in both training and test folds.
Alert thresholds are the out-of-fold scores of negative days at fixed
specificities (yellow 97 %, red 99.5 % by default).
"""

from __future__ import annotations

import numpy as np

from detectors.evaluation import EXCLUDE, ILLNESS, auroc, sensitivity_at_specificity
from detectors.models import fit_model, predict_proba_many

__all__ = ["day_labels", "grouped_cv", "choose_thresholds", "participant_folds"]


def day_labels(days: np.ndarray, reference_day: int | None, healthy: bool = True) -> np.ndarray:
    """1 = illness window, 0 = clearly outside, -1 = ambiguous / unknown.

    Examples
    --------
    >>> day_labels(np.array([0, 10, 20, 40, 100]), 20).tolist()
    [-1, -1, 1, -1, 0]
    """
    if reference_day is None:
        return np.zeros(days.size, dtype=np.int8) if healthy else np.full(days.size, -1, dtype=np.int8)
    rel = days - reference_day
    y = np.full(days.size, -1, dtype=np.int8)
    y[(rel >= ILLNESS[0]) & (rel <= ILLNESS[1])] = 1
    y[(rel < EXCLUDE[0]) | (rel > EXCLUDE[1])] = 0
    return y


def participant_folds(groups: np.ndarray, folds: int, seed: int):
    """(train, test) index pairs that hold whole participants out, shuffled deterministically by ``seed``."""
    from sklearn.model_selection import GroupKFold

    uniq = np.unique(groups)
    k = min(folds, uniq.size)
    if k < 2:
        raise ValueError(f"cross-validation needs at least 2 participants, got {uniq.size}")
    rng = np.random.default_rng(seed)
    perm = {g: i for i, g in enumerate(rng.permutation(uniq))}
    gid = np.array([perm[g] for g in groups])
    return k, list(GroupKFold(n_splits=k).split(np.zeros(groups.size), None, gid))


def grouped_cv(kind: str, X: np.ndarray, y: np.ndarray, groups: np.ndarray, folds: int = 5, seed: int = 0,
               threads: int = 1) -> tuple[np.ndarray, dict]:
    """Out-of-fold probabilities with participants held out, and day-level CV metrics."""
    k, splits = participant_folds(groups, folds, seed)
    oof = np.full(y.size, np.nan)
    per_fold = []
    for tr, te in splits:
        if len(np.unique(y[tr])) < 2:
            continue
        m = fit_model(kind, X[tr], y[tr], seed=seed, threads=threads)
        oof[te] = predict_proba_many(kind, m, X[te], threads=threads)
        per_fold.append(auroc(oof[te][y[te] == 1], oof[te][y[te] == 0]))
    ok = np.isfinite(oof)
    pos, neg = oof[ok & (y == 1)], oof[ok & (y == 0)]
    metrics = {
        "folds": k,
        "auroc": auroc(pos, neg),
        "auroc_per_fold": [float(a) for a in per_fold],
        "sens_at_90_spec": sensitivity_at_specificity(pos, neg, 0.90),
        "sens_at_95_spec": sensitivity_at_specificity(pos, neg, 0.95),
        "positive_days": int(pos.size),
        "negative_days": int(neg.size),
        "brier": float(np.mean((oof[ok] - y[ok]) ** 2)) if ok.any() else None,
    }
    return oof, metrics


def choose_thresholds(oof: np.ndarray, y: np.ndarray, spec_yellow: float = 0.97, spec_red: float = 0.995) -> tuple[float, float]:
    """Thresholds at fixed day-level specificities on out-of-fold negative days."""
    neg = oof[(y == 0) & np.isfinite(oof)]
    if neg.size == 0:
        raise ValueError("no negative days to choose thresholds from")
    return float(np.quantile(neg, spec_yellow)), float(np.quantile(neg, spec_red))
