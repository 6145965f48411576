"""Model artifacts: a trained model loads; every mismatch or corruption is refused with a clear ArtifactError."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from detectors import FEATURE_PIPELINE_VERSION
from detectors.models import ModelDetector
from detectors.pipeline import MODEL_FEATURES, PipelineParams
from streams.artifacts import ArtifactError, load_artifact
from streams.registry import make_detector


@pytest.fixture
def art(lgbm_artifact, tmp_path) -> Path:
    """A private copy of the session's LightGBM artifact, safe to corrupt."""
    dst = tmp_path / "lgbm"
    shutil.copytree(lgbm_artifact, dst)
    return dst


def _meta(p: Path) -> dict:
    return json.loads((p / "artifact.json").read_text())


def _write_meta(p: Path, meta: dict) -> None:
    (p / "artifact.json").write_text(json.dumps(meta))


def test_trained_artifact_loads_and_carries_its_record(art):
    det = load_artifact(art, expect_kind="lightgbm", params=PipelineParams())
    assert isinstance(det, ModelDetector) and det.name == "lightgbm"
    meta = _meta(art)
    assert meta["format"] == "prodromal-model" and meta["kind"] == "lightgbm"
    assert meta["feature_names"] == list(MODEL_FEATURES)
    assert meta["pipeline"]["version"] == FEATURE_PIPELINE_VERSION
    assert meta["model_sha256"] == hashlib.sha256((art / meta["model_file"]).read_bytes()).hexdigest()
    assert det.thresholds == tuple(meta["thresholds"]) and 0 < det.thresholds[0] <= det.thresholds[1] < 1
    tr = meta["training"]
    assert tr["participants"] == 12 and tr["positive_days"] > 0 and tr["negative_days"] > 0
    cv = meta["cv_metrics"]
    assert cv["folds"] == 3 and 0.0 <= cv["auroc"] <= 1.0 and len(cv["auroc_per_fold"]) >= 2
    assert cv["auroc"] > 0.65  # 9 of the 22 positive days carry a +7 bpm rise: clearly above chance
    d = det.describe()
    assert d["detector"] == "lightgbm" and d["cv"]["folds"] == 3


def test_forest_artifact_loads(forest_artifact):
    det = make_detector("forest", forest_artifact)
    assert det.name == "forest" and det.kind == "forest"
    x = np.zeros((1, len(MODEL_FEATURES)))
    p = det.model.predict_proba(x)[0, 1]
    assert 0.0 <= p <= 1.0


def test_corrupt_model_file_is_refused(art):
    f = art / _meta(art)["model_file"]
    f.write_bytes(f.read_bytes() + b"\n# tampered\n")
    with pytest.raises(ArtifactError, match=r"model\.txt: SHA-256 differs from artifact\.json"):
        load_artifact(art)


def test_unparseable_model_with_matching_sha_is_refused(art):
    meta = _meta(art)
    f = art / meta["model_file"]
    f.write_text("not a lightgbm model")
    meta["model_sha256"] = hashlib.sha256(f.read_bytes()).hexdigest()
    _write_meta(art, meta)
    with pytest.raises(ArtifactError, match="cannot load the lightgbm model"):
        load_artifact(art)


def test_wrong_feature_names_are_refused(art):
    meta = _meta(art)
    meta["feature_names"] = meta["feature_names"][:-1] + ["spo2_z"]
    _write_meta(art, meta)
    with pytest.raises(ArtifactError, match=r"field 'feature_names' does not match this pipeline's \d+ features: retrain"):
        load_artifact(art)


def test_wrong_pipeline_version_is_refused(art):
    meta = _meta(art)
    meta["pipeline"]["version"] = "0"
    _write_meta(art, meta)
    with pytest.raises(ArtifactError, match=r"trained with feature pipeline version '0', this is '" + FEATURE_PIPELINE_VERSION):
        load_artifact(art)


def test_wrong_pipeline_params_are_refused(art):
    with pytest.raises(ArtifactError, match=r"parameters differ from this run \(artifact, run\): \{'baseline_window_days': \(28, 21\)\}"):
        load_artifact(art, params=PipelineParams(baseline_window_days=21))
    load_artifact(art)  # without params to compare, the artifact's own are trusted


def test_wrong_kind_is_refused(art):
    with pytest.raises(ArtifactError, match="holds a 'lightgbm' model but detector 'forest' was asked for"):
        load_artifact(art, expect_kind="forest")
    with pytest.raises(ArtifactError, match="holds a 'lightgbm' model"):
        make_detector("forest", art)
    meta = _meta(art)
    meta["kind"] = "xgboost"
    _write_meta(art, meta)
    with pytest.raises(ArtifactError, match="field 'kind' is 'xgboost'; valid: forest, lightgbm"):
        load_artifact(art)


def test_missing_files_are_refused(art, tmp_path):
    (art / _meta(art)["model_file"]).unlink()
    with pytest.raises(ArtifactError, match=r"model\.txt: model file missing"):
        load_artifact(art)
    with pytest.raises(ArtifactError, match=r"artifact\.json: missing: not a prodromal model artifact"):
        load_artifact(tmp_path / "nowhere")


def test_corrupt_or_foreign_json_is_refused(art):
    (art / "artifact.json").write_text("{broken")
    with pytest.raises(ArtifactError, match="corrupt JSON"):
        load_artifact(art)
    _write_meta(art, {"format": "something-else"})
    with pytest.raises(ArtifactError, match="field 'format' is 'something-else'"):
        load_artifact(art)


def test_malformed_thresholds_are_refused(art):
    meta = _meta(art)
    meta["thresholds"] = [0.5]
    _write_meta(art, meta)
    with pytest.raises(ArtifactError, match=r"field 'thresholds' must be \[yellow, red\]"):
        load_artifact(art)


def test_registry_errors():
    with pytest.raises(ValueError, match="needs --model"):
        make_detector("lightgbm")
    with pytest.raises(ValueError, match="unknown detector 'magic'; valid: nightsignal, cusum, forest, lightgbm, online"):
        make_detector("magic")
    assert make_detector("nightsignal").name == "nightsignal" and make_detector("cusum").name == "cusum"


def test_model_detector_refuses_mismatched_feature_names():
    with pytest.raises(ValueError, match="model features do not match this feature pipeline"):
        ModelDetector("lightgbm", object(), ["a", "b"], (0.5, 0.9))
    with pytest.raises(ValueError, match="unknown model kind 'svm'"):
        ModelDetector("svm", object(), list(MODEL_FEATURES), (0.5, 0.9))
