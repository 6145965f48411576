"""`prodromal train`: features of a cohort -> participant-grouped CV -> final model artifact."""

from __future__ import annotations

import datetime as dt
import time as _time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from detectors.models import fit_model
from detectors.pipeline import DayRow, FeaturePipeline, PipelineParams
from detectors.training import choose_thresholds, day_labels, grouped_cv
from streams.artifacts import save_artifact
from streams.cohort import Cohort
from streams.replay import local_day, participant_blocks

__all__ = ["cohort_rows", "train", "TrainResult", "training_summary"]


def cohort_rows(cohort: Cohort, params: PipelineParams, progress: Callable[[str], None] | None = None):
    """Yield (participant, rows) for every participant, through the shared feature pipeline."""
    for p in cohort.participants:
        fp = FeaturePipeline(p.participant_id, p.utc_offset_s, params)
        rows: list[DayRow] = []
        for block in participant_blocks(cohort, p):
            rows += fp.update_many(block)
        rows += fp.flush()
        if progress:
            progress(p.participant_id)
        yield p, rows


def training_summary(cohort: Cohort, participants: int, y: np.ndarray, seed: int) -> dict:
    """What an artifact records about its training data and rules."""
    return {
        "cohort": cohort.name,
        "cohort_source": cohort.manifest.get("source"),
        "participants": int(participants),
        "days": int(y.size),
        "positive_days": int(y.sum()),
        "negative_days": int((y == 0).sum()),
        "label_definition": "positive [R-7, R+14]; negative outside [R-21, R+28] or healthy participant",
        "seed": seed,
        "created": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "threshold_rule": "out-of-fold negative-day quantiles: yellow 0.97, red 0.995",
    }


@dataclass
class TrainResult:
    out: Path
    cv: dict
    thresholds: tuple[float, float]
    training: dict
    seconds: float


def train(cohort_path: str | Path, kind: str, out: str | Path, folds: int = 5, seed: int = 0, threads: int = 1,
          params: PipelineParams | None = None, progress=None) -> TrainResult:
    t0 = _time.perf_counter()
    cohort = Cohort(cohort_path)
    params = params or PipelineParams()
    healthy = bool(cohort.manifest.get("unlabelled_healthy", False))
    Xs, ys, gs = [], [], []
    n_part = 0
    for p, rows in cohort_rows(cohort, params, progress):
        if not rows:
            continue
        ref = p.reference_date
        y = day_labels(np.array([r.day for r in rows]), local_day(ref) if ref else None, healthy=healthy)
        keep = y >= 0
        if not keep.any():
            continue
        n_part += 1
        Xs.append(np.vstack([r.x for r in rows])[keep])
        ys.append(y[keep])
        gs.append(np.full(int(keep.sum()), p.participant_id, dtype=object))
    if not Xs:
        raise ValueError(f"{cohort_path}: no labelled days to train on (labels, or unlabelled_healthy in cohort.json, needed)")
    X, y, g = np.vstack(Xs), np.concatenate(ys).astype(int), np.concatenate(gs)
    if y.min() == y.max():
        raise ValueError(f"{cohort_path}: training days are all {'positive' if y[0] else 'negative'}: need both")
    oof, cv = grouped_cv(kind, X, y, g, folds=folds, seed=seed, threads=threads)
    thresholds = choose_thresholds(oof, y)
    model = fit_model(kind, X, y, seed=seed, threads=threads)
    training = training_summary(cohort, n_part, y, seed)
    save_artifact(out, kind, model, thresholds, training, cv, params)
    return TrainResult(Path(out), cv, thresholds, training, _time.perf_counter() - t0)
