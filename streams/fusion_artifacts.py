"""Fusion model artifacts (``early``, ``late``): save, and load with every check.

Same layout and checks as :mod:`streams.artifacts` (format, kind, feature names,
feature-pipeline version and parameters, model SHA-256), plus for ``late`` the
logistic combination (terms, intercept, coefficients) in ``artifact.json``. The
LightGBM model file is the joint model (early) or the wearable-only model (late).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from detectors.fusion import EARLY_FEATURES, FUSION_KINDS, LATE_TERMS, EarlyFusion, LateFusion
from detectors.pipeline import MODEL_FEATURES, PipelineParams
from streams.artifacts import ARTIFACT_FORMAT, ArtifactError, read_checked_meta

__all__ = ["save_fusion_artifact", "load_fusion_artifact"]

VERSION = 1
MODEL_FILE = "model.txt"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _features(kind: str) -> list[str]:
    return list(EARLY_FEATURES) if kind == "early" else list(MODEL_FEATURES)


def save_fusion_artifact(out: str | Path, kind: str, model: Any, thresholds, training: dict, cv_metrics: dict,
                         params: PipelineParams, late: dict | None = None) -> Path:
    if kind not in FUSION_KINDS:
        raise ValueError(f"unknown fusion kind {kind!r}; valid: {', '.join(FUSION_KINDS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    f = out / MODEL_FILE
    model.save_model(str(f))
    meta = {
        "format": ARTIFACT_FORMAT,
        "version": VERSION,
        "kind": kind,
        "model_file": f.name,
        "model_sha256": _sha(f),
        "feature_names": _features(kind),
        "pipeline": params.as_dict(),
        "thresholds": [float(thresholds[0]), float(thresholds[1])],
        "training": training,
        "cv_metrics": cv_metrics,
    }
    if kind == "late":
        if late is None:
            raise ValueError("a late-fusion artifact needs its logistic combination (intercept, coef)")
        meta["late"] = {"terms": list(LATE_TERMS), "intercept": float(late["intercept"]),
                        "coef": [float(c) for c in late["coef"]]}
    (out / "artifact.json").write_text(json.dumps(meta, indent=2, sort_keys=True, default=float) + "\n")
    return out


def load_fusion_artifact(path: str | Path, expect_kind: str | None = None,
                         params: PipelineParams | None = None) -> EarlyFusion | LateFusion:
    """Load and check a fusion artifact; raise :class:`ArtifactError` saying what is wrong.

    The returned detector still needs the cohort's facts: ``det.set_ehr(read_facts(cohort))``.
    """
    meta, f = read_checked_meta(path, FUSION_KINDS, expect_kind, params, _features,
                                "prodromal train --model early|late")
    kind = meta["kind"]
    mf = Path(path) / "artifact.json"
    try:
        import lightgbm as lgb

        model = lgb.Booster(model_file=str(f))
    except Exception as e:  # a library's parse error, whatever its type
        raise ArtifactError(f"{f}: cannot load the LightGBM model: {type(e).__name__}: {e}") from None
    if model.num_feature() != len(meta["feature_names"]):
        raise ArtifactError(f"{f}: model has {model.num_feature()} features, expected {len(meta['feature_names'])}")
    th = meta["thresholds"]
    try:
        if kind == "early":
            return EarlyFusion(model, meta["feature_names"], (th[0], th[1]), meta)
        late = meta.get("late") or {}
        if late.get("terms") != list(LATE_TERMS):
            raise ArtifactError(f"{mf}: field 'late.terms' must be {list(LATE_TERMS)}")
        return LateFusion(model, late.get("intercept", float("nan")), late.get("coef", []), (th[0], th[1]), meta)
    except (ValueError, TypeError) as e:
        if isinstance(e, ArtifactError):
            raise
        raise ArtifactError(f"{mf}: {e}") from None
