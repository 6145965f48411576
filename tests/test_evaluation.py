"""Evaluation definitions on hand-made participants with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.evaluation import ParticipantDays, auroc, evaluate, sensitivity_at_specificity


def _p(pid, days, alerts=(), ref=None, scores=None, unmonitored=(), subgroup=None):
    days = np.asarray(days, dtype=np.int64)
    level = np.isin(days, list(alerts)).astype(np.int64)
    score = np.zeros(days.size) if scores is None else np.asarray(scores, float)
    mon = ~np.isin(days, list(unmonitored))
    return ParticipantDays(pid, days, score, level, mon, ref, subgroup)


def _cohort():
    return [
        _p("P1", range(60, 161), alerts=(70, 95, 97, 140), ref=100),  # early (-5), 2 false alerts
        _p("P2", range(60, 161), alerts=(105,), ref=100),  # late (+5): lead -5, not early
        _p("P3", range(60, 161), ref=100),  # missed
        _p("H1", range(0, 70), alerts=(10, 11, 65), unmonitored=range(60, 70)),  # healthy, 2 counted
    ]


def test_detection_lead_and_false_alert_days_known_answers():
    res = evaluate(_cohort(), scoring=False, n_boot=0)
    assert res["participants"] == 4 and res["labelled"] == 3
    assert res["detected_early"] == 1
    assert res["early_detection_rate"] == pytest.approx(1 / 3)
    assert sorted(res["lead_days"]) == [-5, 5]
    assert res["median_lead_days"] == 0.0
    # outside [R-21, R+28]: days 60..78 (19) and 129..160 (32) per labelled participant, 60 for H1
    assert res["monitored_days_outside_illness"] == 3 * 51 + 60
    assert res["false_alert_days"] == 4
    assert res["false_alert_days_per_month"] == pytest.approx(30 * 4 / 213)
    assert res["auroc"] is None


def test_early_window_edges():
    # first alert at R-10 counts as early, at R-11 does not (but R-11 is no false alert either)
    assert evaluate([_p("A", range(0, 200), alerts=(90,), ref=100)], scoring=False, n_boot=0)["detected_early"] == 1
    r = evaluate([_p("A", range(0, 200), alerts=(89,), ref=100)], scoring=False, n_boot=0)
    assert r["detected_early"] == 0 and r["median_lead_days"] is None and r["false_alert_days"] == 0
    # onset day itself is early with lead 0; R+7 gives lead -7; R+8 no lead
    assert evaluate([_p("A", range(0, 200), alerts=(100,), ref=100)], scoring=False, n_boot=0)["median_lead_days"] == 0.0
    assert evaluate([_p("A", range(0, 200), alerts=(107,), ref=100)], scoring=False, n_boot=0)["median_lead_days"] == -7.0
    assert evaluate([_p("A", range(0, 200), alerts=(108,), ref=100)], scoring=False, n_boot=0)["median_lead_days"] is None
    # false-alert exclusion edges: R-21 and R+28 excluded, R-22 and R+29 counted
    r = evaluate([_p("A", range(0, 200), alerts=(79, 78, 128, 129), ref=100)], scoring=False, n_boot=0)
    assert r["false_alert_days"] == 2


def test_lead_uses_first_alert_in_the_lead_window():
    r = evaluate([_p("A", range(0, 200), alerts=(93, 96, 104), ref=100)], scoring=False, n_boot=0)
    assert r["lead_days"] == [7] and r["detected_early"] == 1


def _brute_auroc(pos, neg):
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.integers(0, 6), min_size=1, max_size=25), st.lists(st.integers(0, 6), min_size=1, max_size=25))
def test_auroc_equals_brute_force_pairwise_count(pos, neg):
    a = auroc(np.array(pos, float), np.array(neg, float))
    assert a == pytest.approx(_brute_auroc(pos, neg), abs=1e-12)


def test_auroc_edge_cases():
    assert auroc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    assert auroc(np.array([0.0]), np.array([1.0])) == 0.0
    assert np.isnan(auroc(np.array([]), np.array([1.0])))


def test_sensitivity_at_specificity_keeps_specificity():
    rng = np.random.default_rng(0)
    neg = rng.normal(0, 1, 500)
    pos = rng.normal(1.5, 1, 200)
    for spec in (0.9, 0.95):
        s = sensitivity_at_specificity(pos, neg, spec)
        # some threshold among the negatives with specificity >= spec gives exactly this sensitivity
        cands = [t for t in np.sort(neg) if np.mean(neg <= t) >= spec]
        assert any(s == np.mean(pos > t) for t in cands[:2])
        assert 0 < s < 1
    assert sensitivity_at_specificity(np.array([9.5, 10.0]), np.arange(10.0), 0.9) == 1.0
    assert sensitivity_at_specificity(np.array([5.0, 6.0]), np.arange(10.0), 0.9) == 0.0


def test_day_level_auroc_uses_illness_window_positives_and_outside_negatives():
    days = np.arange(0, 200)
    rel = days - 100
    score = np.where((rel >= -7) & (rel <= 14), 2.0, 0.0)
    score[(rel > -21) & (rel < -7)] = 5.0  # ambiguous days: ignored
    score[150] = np.nan  # not scored: ignored
    a = ParticipantDays("A", days, score, np.zeros(200, np.int64), np.ones(200, bool), 100)
    h = ParticipantDays("H", days, np.full(200, 1.0), np.zeros(200, np.int64), np.ones(200, bool), None)
    res = evaluate([a, h], scoring=True, n_boot=0)
    assert res["positive_days"] == 22
    assert res["negative_days"] == (79 + 71 - 1) + 200
    assert res["auroc"] == 1.0
    assert res["sens_at_90_spec"] == 1.0


def _random_cohort(n=30, seed=0):
    rng = np.random.default_rng(seed)
    parts = []
    for i in range(n):
        days = np.arange(0, 150)
        ref = int(rng.integers(40, 110)) if i % 3 else None
        score = rng.normal(0, 1, days.size)
        if ref is not None:
            score[(days >= ref - 5) & (days <= ref + 5)] += rng.uniform(0.5, 2.5)
        level = (score > 1.8).astype(np.int64)
        sub = {"sex": "F" if i % 2 else "M", "age_band": "<30" if i < 10 else "30-44"}
        parts.append(ParticipantDays(f"P{i}", days, score, level, rng.random(days.size) > 0.05, ref, sub))
    return parts


def test_bootstrap_ci_contains_the_point_estimate_and_is_deterministic():
    parts = _random_cohort()
    res = evaluate(parts, scoring=True, n_boot=100, seed=3)
    checked = 0
    for k in ("early_detection_rate", "false_alert_days_per_month", "auroc", "sens_at_90_spec"):
        lo, hi = res["ci95"][k]
        assert lo <= res[k] <= hi, k
        assert lo < hi
        checked += 1
    assert checked == 4
    assert evaluate(parts, scoring=True, n_boot=100, seed=3)["ci95"] == res["ci95"]
    assert res["bootstrap"] == {"resamples": 100, "unit": "participant", "seed": 3}


def test_subgroups_equal_an_evaluation_of_the_subset():
    parts = _random_cohort()
    res = evaluate(parts, scoring=True, n_boot=0)
    assert set(res["subgroups"]) == {"sex=F", "sex=M", "age_band=<30", "age_band=30-44"}
    for key, val in (("sex", "F"), ("age_band", "<30")):
        sub = [p for p in parts if p.subgroup[key] == val]
        want = evaluate(sub, scoring=True, n_boot=0, subgroup_keys=())
        got = res["subgroups"][f"{key}={val}"]
        for k in ("participants", "labelled", "detected_early", "false_alert_days_per_month", "auroc"):
            assert got[k] == want[k], k
    assert res["subgroups"]["sex=F"]["participants"] + res["subgroups"]["sex=M"]["participants"] == 30


def test_unlabelled_participant_counts_as_healthy_only():
    h = _p("H", range(0, 100), alerts=(5,), scores=np.linspace(0, 1, 100))
    res = evaluate([h], scoring=True, n_boot=0)
    assert res["labelled"] == 0 and res["early_detection_rate"] is None and res["median_lead_days"] is None
    assert res["false_alert_days"] == 1 and res["monitored_days_outside_illness"] == 100
    assert res["auroc"] is None  # no positive days


def test_empty_evaluation_is_all_none():
    res = evaluate([], scoring=True, n_boot=10)
    assert res["participants"] == 0 and res["early_detection_rate"] is None
    assert res["false_alert_days_per_month"] is None and res["auroc"] is None
