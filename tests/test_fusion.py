"""EHR fusion detectors: temporal alignment, missing modalities, calibration, artifacts, end to end."""

from __future__ import annotations

import datetime as dt
import json

import numpy as np
import pytest

from detectors.ehr import Fact, date_to_time
from detectors.fusion import (
    EARLY_EHR_FEATURES,
    EARLY_FEATURES,
    LATE_TERMS,
    EarlyFusion,
    LateFusion,
    ehr_matrix,
    fit_late,
    late_design,
)
from detectors.pipeline import BASE_FEATURES, MODEL_FEATURES, DayRow
from streams.artifacts import ArtifactError
from streams.fusion_artifacts import load_fusion_artifact, save_fusion_artifact

DAY0 = (dt.date(2024, 3, 1) - dt.date(1970, 1, 1)).days


def row(pid: str, day: int, z: float = 0.0, wearable: bool = True, offset_s: int = 0) -> DayRow:
    nb = len(BASE_FEATURES)
    zz = np.full(nb, z if wearable else np.nan)
    x = np.full(len(MODEL_FEATURES), z if wearable else np.nan)
    return DayRow(pid, day, day * 86400.0 - offset_s, {"hr_capture": 1.0 if wearable else 0.0}, np.zeros(nb),
                  np.ones(nb), zz, zz, np.zeros(24), x)


FACTS = [
    Fact("A", date_to_time("1940-01-01"), "birth_date", "1940-01-01"),
    Fact("A", date_to_time("1940-01-01"), "sex", "M"),
    Fact("A", date_to_time("2024-03-05"), "diabetes", 1.0),
]


class LinearBooster:
    """A stand-in for a LightGBM Booster: sigmoid of a fixed linear score (deterministic, fast)."""

    def __init__(self, w: np.ndarray):
        self.w = w

    def predict(self, X, num_threads=1):
        return 1 / (1 + np.exp(-(np.nan_to_num(X) @ self.w - 2.0)))


def test_ehr_matrix_never_uses_facts_after_the_day():
    rows = [row("A", DAY0 + i) for i in range(8)]
    E = ehr_matrix(FACTS, rows)
    col = EARLY_EHR_FEATURES.index("ehr_diabetes")
    assert E[:, col].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]  # diabetes recorded 2024-03-05 = DAY0 + 4
    # appending later facts leaves earlier days unchanged (causality)
    later = FACTS + [Fact("A", date_to_time("2024-03-07"), "chronic_heart", 1.0)]
    E2 = ehr_matrix(later, rows)
    np.testing.assert_array_equal(E2[:6], E[:6])
    assert E2[6, EARLY_EHR_FEATURES.index("ehr_chronic_heart")] == 1.0


def test_ehr_day_follows_the_participant_local_day():
    # A fact at 2024-03-05 03:00 UTC is still local 2024-03-04 at UTC-5.
    f = [Fact("A", date_to_time("2024-03-05") + 3 * 3600, "diabetes", 1.0)]
    col = EARLY_EHR_FEATURES.index("ehr_diabetes")
    assert ehr_matrix(f, [row("A", DAY0 + 3, offset_s=-5 * 3600)])[0, col] == 1.0
    assert ehr_matrix(f, [row("A", DAY0 + 3, offset_s=0)])[0, EARLY_EHR_FEATURES.index("ehr_has_ehr")] == 0.0


def test_missing_ehr_is_nan_with_indicator():
    E = ehr_matrix([], [row("B", DAY0)])
    assert E[0, EARLY_EHR_FEATURES.index("ehr_has_ehr")] == 0.0
    assert np.isnan(E[0, EARLY_EHR_FEATURES.index("ehr_age_years")])


def late_detector(coef=(1.0, 0.0, 0.8, 0.0), intercept=0.0) -> LateFusion:
    return LateFusion(LinearBooster(np.full(len(MODEL_FEATURES), 0.05)), intercept, np.array(coef), (0.5, 0.8))


def test_late_fusion_modalities_and_graceful_degradation():
    det = late_detector()
    det.set_ehr(FACTS)
    rows = [row("A", DAY0 + 10, z=2.0), row("B", DAY0 + 10, z=2.0), row("A", DAY0 + 10, wearable=False)]
    s = det.score_many([det.new_state(r.participant_id) for r in rows], rows)
    assert s[0].modalities == ("wearable", "ehr")
    assert s[1].modalities == ("wearable",)
    assert s[2].modalities == ("ehr",)
    # same wearable data: the participant with a high-risk EHR scores higher than the one without
    assert s[0].score > s[1].score
    # no EHR: exactly the recalibrated wearable score (EHR terms vanish)
    w = LinearBooster(np.full(len(MODEL_FEATURES), 0.05)).predict(rows[1].x[None, :])[0]
    assert s[1].score == pytest.approx(1 / (1 + np.exp(-np.log(w / (1 - w)))))
    # no wearable data: the EHR prior alone, independent of the (NaN) wearable features
    e_only = det.score_ehr_only(FACTS, dt.date(2024, 3, 11))
    assert e_only.score == pytest.approx(s[2].score) and e_only.modalities == ("ehr",)
    nobody = det.score_ehr_only([], dt.date(2024, 3, 11))
    assert nobody.modalities == ("none",) and nobody.score == pytest.approx(0.5)


def test_scoring_without_ehr_facts_set_fails_clearly():
    det = late_detector()
    with pytest.raises(ValueError, match=r"no EHR facts: call set_ehr"):
        det.score_many([None], [row("A", DAY0)])
    det.set_ehr([])  # an empty list is a valid "nobody has EHR"
    assert det.score_many([None], [row("A", DAY0)])[0].modalities == ("wearable",)


def test_late_model_calibration_on_known_logistic_truth():
    rng = np.random.default_rng(0)
    n = 20000
    s = rng.uniform(0.01, 0.99, n)
    w = (rng.random(n) < 0.9).astype(float)
    E = np.full((n, len(EARLY_EHR_FEATURES)), np.nan)
    has = (rng.random(n) < 0.6).astype(float)
    E[:, EARLY_EHR_FEATURES.index("ehr_has_ehr")] = has
    E[:, EARLY_EHR_FEATURES.index("ehr_prior_logodds")] = np.where(has > 0, rng.normal(0, 1, n), np.nan)
    D = late_design(s, w, E)
    true = np.array([0.8, -0.5, 0.7, 0.2])
    p = 1 / (1 + np.exp(-(-2.0 + D @ true)))
    y = (rng.random(n) < p).astype(int)
    b0, b = fit_late(D, y, C=100.0)
    np.testing.assert_allclose(b, true, atol=0.15)
    assert b0 == pytest.approx(-2.0, abs=0.15)
    # reliability: predicted vs observed rates per decile agree (calibration)
    det = LateFusion(None, b0, b, (0.5, 0.8))
    q = det.combine(s, w, E)
    bins = np.quantile(q, np.linspace(0, 1, 11))
    idx = np.clip(np.searchsorted(bins, q, side="right") - 1, 0, 9)
    for k in range(10):
        m = idx == k
        assert abs(q[m].mean() - y[m].mean()) < 0.04
    assert np.mean((q - y) ** 2) <= np.mean((s - y) ** 2)  # Brier better than the raw wearable score


def test_early_fusion_checks_features_and_uses_ehr():
    with pytest.raises(ValueError, match="EARLY_FEATURES"):
        EarlyFusion(LinearBooster(np.zeros(3)), ["a"], (0.5, 0.8))
    w = np.zeros(len(EARLY_FEATURES))
    w[EARLY_FEATURES.index("ehr_prior_logodds")] = 1.0
    det = EarlyFusion(LinearBooster(w), list(EARLY_FEATURES), (0.5, 0.8))
    det.set_ehr(FACTS)
    a, b = det.score_many([None, None], [row("A", DAY0 + 10), row("B", DAY0 + 10)])
    assert a.score > b.score and a.modalities == ("wearable", "ehr") and b.modalities == ("wearable",)


def _tiny_lgbm(nfeat: int):
    lgb = pytest.importorskip("lightgbm")
    rng = np.random.default_rng(1)
    X = rng.normal(size=(300, nfeat))
    y = (X[:, 0] > 0).astype(int)
    return lgb.train({"objective": "binary", "verbose": -1, "num_threads": 1, "min_data_in_leaf": 5},
                     lgb.Dataset(X, label=y), num_boost_round=5)


def test_artifact_roundtrip_and_refusals(tmp_path):
    from detectors.pipeline import PipelineParams

    m = _tiny_lgbm(len(MODEL_FEATURES))
    save_fusion_artifact(tmp_path / "late", "late", m, (0.3, 0.6), {"participants": 3}, {"auroc": 0.7}, PipelineParams(),
                         late={"intercept": -1.0, "coef": [1.0, 0.0, 0.5, 0.1]})
    det = load_fusion_artifact(tmp_path / "late", expect_kind="late", params=PipelineParams())
    assert isinstance(det, LateFusion) and det.thresholds == (0.3, 0.6) and det.coef.tolist() == [1.0, 0.0, 0.5, 0.1]
    with pytest.raises(ArtifactError, match="holds a 'late' model but detector 'early'"):
        load_fusion_artifact(tmp_path / "late", expect_kind="early")
    meta = json.loads((tmp_path / "late" / "artifact.json").read_text())
    meta["late"]["terms"] = list(reversed(LATE_TERMS))
    (tmp_path / "late" / "artifact.json").write_text(json.dumps(meta))
    with pytest.raises(ArtifactError, match="late.terms"):
        load_fusion_artifact(tmp_path / "late")
    with open(tmp_path / "late" / "model.txt", "a") as fh:
        fh.write("\n")
    with pytest.raises(ArtifactError, match="SHA-256 differs"):
        load_fusion_artifact(tmp_path / "late")
    with pytest.raises(ArtifactError, match="missing: not a prodromal model artifact"):
        load_fusion_artifact(tmp_path / "nothing")
    save_fusion_artifact(tmp_path / "early", "early", _tiny_lgbm(len(EARLY_FEATURES)), (0.3, 0.6), {}, {}, PipelineParams())
    assert isinstance(load_fusion_artifact(tmp_path / "early"), EarlyFusion)
    save_fusion_artifact(tmp_path / "bad", "early", _tiny_lgbm(len(MODEL_FEATURES)), (0.3, 0.6), {}, {}, PipelineParams())
    with pytest.raises(ArtifactError, match="model has 52 features"):
        load_fusion_artifact(tmp_path / "bad")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["early", "late"])
def test_train_and_replay_end_to_end(tmp_path, kind):
    from streams.fusion_train import train_fusion
    from streams.importers.ehr_facts import read_facts
    from streams.replay import replay
    from streams.simulate import simulate_cohort

    coh = simulate_cohort(tmp_path / "sim", participants=24, days=60, seed=5)
    res = train_fusion(coh, kind, tmp_path / "m", folds=2, seed=0, threads=1)
    assert 0.0 <= res.cv["auroc"] <= 1.0 and "wearable_only" in res.cv and "by_ehr" in res.cv
    assert 0.0 < res.training["ehr_share"] < 1.0  # the simulator leaves some participants without EHR
    det = load_fusion_artifact(tmp_path / "m", expect_kind=kind)
    det.set_ehr(read_facts(coh))
    run = replay(coh, det, tmp_path / "run", n_boot=10)
    assert run.days > 0 and (tmp_path / "run" / "scores.csv").is_file()
