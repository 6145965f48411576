"""Model artifacts on disk: a folder with ``artifact.json`` and the model file.

``artifact.json`` carries the format and version, the model kind, the feature
names, the feature pipeline's version and parameters, the alert thresholds,
a summary of the training data, the cross-validation metrics, and the SHA-256
of the model file. Loading checks every one of them and refuses a mismatched
or corrupt artifact with a message saying what differs; a detector never
scores with a model it cannot vouch for. Random-forest models are pickled:
load artifacts only from sources you trust.
"""

from __future__ import annotations

import hashlib
import json
import pickle
from pathlib import Path
from typing import Any

from detectors import FEATURE_PIPELINE_VERSION
from detectors.models import MODEL_KINDS, ModelDetector
from detectors.pipeline import MODEL_FEATURES, PipelineParams

__all__ = ["save_artifact", "load_artifact", "ArtifactError", "ARTIFACT_FORMAT"]

ARTIFACT_FORMAT = "prodromal-model"
ARTIFACT_VERSION = 1
_FILES = {"lightgbm": "model.txt", "forest": "model.pkl"}


class ArtifactError(ValueError):
    """A model artifact is missing, corrupt or does not match this pipeline."""


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save_artifact(out: str | Path, kind: str, model: Any, thresholds, training: dict, cv_metrics: dict,
                  params: PipelineParams, extra: dict | None = None) -> Path:
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    f = out / _FILES[kind]
    if kind == "lightgbm":
        model.save_model(str(f))
    else:
        with open(f, "wb") as fh:
            pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
    meta = {
        "format": ARTIFACT_FORMAT,
        "version": ARTIFACT_VERSION,
        "kind": kind,
        "model_file": f.name,
        "model_sha256": _sha(f),
        "feature_names": list(MODEL_FEATURES),
        "pipeline": params.as_dict(),
        "thresholds": [float(thresholds[0]), float(thresholds[1])],
        "training": training,
        "cv_metrics": cv_metrics,
        **(extra or {}),
    }
    (out / "artifact.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    return out


def read_checked_meta(path: str | Path, kinds: tuple[str, ...], expect_kind: str | None,
                      params: PipelineParams | None, feature_names, train_hint: str) -> tuple[dict, Path]:
    """Read ``artifact.json`` and check everything but the model's own content.

    Checks format, kind (one of ``kinds``, and ``expect_kind`` when given), the feature pipeline's
    version and parameters, the feature names (``feature_names(kind)``) and the model file's
    SHA-256. Returns (meta, model file path); raises :class:`ArtifactError` naming what differs.
    """
    path = Path(path)
    mf = path / "artifact.json"
    if not mf.is_file():
        raise ArtifactError(f"{mf}: missing: not a prodromal model artifact (train one with `{train_hint}`)")
    try:
        meta = json.loads(mf.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{mf}: corrupt JSON: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != ARTIFACT_FORMAT:
        got = meta.get("format") if isinstance(meta, dict) else type(meta).__name__
        raise ArtifactError(f"{mf}: field 'format' is {got!r}, expected {ARTIFACT_FORMAT!r}")
    kind = meta.get("kind")
    if kind not in kinds:
        raise ArtifactError(f"{mf}: field 'kind' is {kind!r}; valid: {', '.join(kinds)}")
    if expect_kind and kind != expect_kind:
        raise ArtifactError(f"{mf}: artifact holds a {kind!r} model but detector {expect_kind!r} was asked for")
    pipe = meta.get("pipeline", {})
    if str(pipe.get("version")) != FEATURE_PIPELINE_VERSION:
        raise ArtifactError(f"{mf}: trained with feature pipeline version {pipe.get('version')!r}, this is {FEATURE_PIPELINE_VERSION!r}: retrain")
    if params is not None:
        diff = {k: (pipe.get(k), v) for k, v in params.as_dict().items() if pipe.get(k) != v}
        if diff:
            raise ArtifactError(f"{mf}: feature pipeline parameters differ from this run (artifact, run): {diff}")
    want = list(feature_names(kind))
    if meta.get("feature_names") != want:
        raise ArtifactError(f"{mf}: field 'feature_names' does not match this pipeline's {len(want)} features: retrain ({kind})")
    f = path / str(meta.get("model_file", ""))
    if not f.is_file():
        raise ArtifactError(f"{f}: model file missing")
    if _sha(f) != meta.get("model_sha256"):
        raise ArtifactError(f"{f}: SHA-256 differs from artifact.json: the model file is corrupt or was replaced")
    th = meta.get("thresholds")
    if not (isinstance(th, list) and len(th) == 2):
        raise ArtifactError(f"{mf}: field 'thresholds' must be [yellow, red]")
    return meta, f


def load_artifact(path: str | Path, expect_kind: str | None = None, params: PipelineParams | None = None) -> ModelDetector:
    """Load and check an artifact; raise :class:`ArtifactError` saying exactly what is wrong."""
    meta, f = read_checked_meta(path, MODEL_KINDS, expect_kind, params, lambda k: MODEL_FEATURES, "prodromal train")
    kind = meta["kind"]
    try:
        if kind == "lightgbm":
            import lightgbm as lgb

            model = lgb.Booster(model_file=str(f))
            if model.num_feature() != len(MODEL_FEATURES):
                raise ArtifactError(f"{f}: model has {model.num_feature()} features, expected {len(MODEL_FEATURES)}")
        else:
            with open(f, "rb") as fh:
                model = pickle.load(fh)  # noqa: S301 - integrity checked by SHA-256 above
    except ArtifactError:
        raise
    except Exception as e:  # a library's parse error, whatever its type
        raise ArtifactError(f"{f}: cannot load the {kind} model: {type(e).__name__}: {e}") from None
    th = meta["thresholds"]
    return ModelDetector(kind, model, meta["feature_names"], (th[0], th[1]), meta)
