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

from detectors import FEATURE_PIPELINE_VERSION
from detectors.fusion import EARLY_FEATURES, FUSION_KINDS, LATE_TERMS, EarlyFusion, LateFusion
from detectors.pipeline import MODEL_FEATURES, PipelineParams
from streams.artifacts import ARTIFACT_FORMAT, ArtifactError

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
    path = Path(path)
    mf = path / "artifact.json"
    if not mf.is_file():
        raise ArtifactError(f"{mf}: missing: not a prodromal model artifact (train one with `prodromal train --model early|late`)")
    try:
        meta = json.loads(mf.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{mf}: corrupt JSON: {e}") from None
    if meta.get("format") != ARTIFACT_FORMAT:
        raise ArtifactError(f"{mf}: field 'format' is {meta.get('format')!r}, expected {ARTIFACT_FORMAT!r}")
    kind = meta.get("kind")
    if kind not in FUSION_KINDS:
        raise ArtifactError(f"{mf}: field 'kind' is {kind!r}; a fusion detector needs one of {', '.join(FUSION_KINDS)}")
    if expect_kind and kind != expect_kind:
        raise ArtifactError(f"{mf}: artifact holds a {kind!r} model but detector {expect_kind!r} was asked for")
    pipe = meta.get("pipeline", {})
    if str(pipe.get("version")) != FEATURE_PIPELINE_VERSION:
        raise ArtifactError(f"{mf}: trained with feature pipeline version {pipe.get('version')!r}, this is {FEATURE_PIPELINE_VERSION!r}: retrain")
    if params is not None:
        diff = {k: (pipe.get(k), v) for k, v in params.as_dict().items() if pipe.get(k) != v}
        if diff:
            raise ArtifactError(f"{mf}: feature pipeline parameters differ from this run (artifact, run): {diff}")
    if meta.get("feature_names") != _features(kind):
        raise ArtifactError(f"{mf}: field 'feature_names' does not match this pipeline's {kind} features: retrain")
    f = path / str(meta.get("model_file", ""))
    if not f.is_file():
        raise ArtifactError(f"{f}: model file missing")
    if _sha(f) != meta.get("model_sha256"):
        raise ArtifactError(f"{f}: SHA-256 differs from artifact.json: the model file is corrupt or was replaced")
    try:
        import lightgbm as lgb

        model = lgb.Booster(model_file=str(f))
    except Exception as e:  # a library's parse error, whatever its type
        raise ArtifactError(f"{f}: cannot load the LightGBM model: {type(e).__name__}: {e}") from None
    if model.num_feature() != len(meta["feature_names"]):
        raise ArtifactError(f"{f}: model has {model.num_feature()} features, expected {len(meta['feature_names'])}")
    th = meta.get("thresholds")
    if not (isinstance(th, list) and len(th) == 2):
        raise ArtifactError(f"{mf}: field 'thresholds' must be [yellow, red]")
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
