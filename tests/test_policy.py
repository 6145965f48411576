"""AlertPolicy: thresholds, consecutive nights, gaps, alert budget."""

from __future__ import annotations

import numpy as np

from detectors.base import Score
from detectors.policy import AlertPolicy


def _run(policy: AlertPolicy, seq, days=None, levels=None):
    st = policy.new_state()
    days = list(range(len(seq))) if days is None else days
    levels = [None] * len(seq) if levels is None else levels
    return [policy.decide(st, d, Score(float(s), lv)) for d, s, lv in zip(days, seq, levels, strict=True)]


def test_thresholds_map_scores_to_levels():
    p = AlertPolicy(thresholds=(0.5, 0.8))
    out = _run(p, [0.1, 0.5, 0.79, 0.8, 0.95, np.nan])
    assert [d.level for d in out] == [0, 1, 1, 2, 2, 0]
    assert [d.raw_level for d in out] == [0, 1, 1, 2, 2, 0]
    assert out[3].level_name == "red" and out[1].level_name == "yellow" and out[0].level_name == "green"


def test_consecutive_nights_take_the_lowest_level_of_the_run():
    p = AlertPolicy(thresholds=(0.5, 0.8), consecutive=2)
    assert [d.level for d in _run(p, [0.9, 0.9, 0.9])] == [0, 2, 2]
    assert [d.level for d in _run(p, [0.6, 0.9, 0.9, 0.1])] == [0, 1, 2, 0]
    assert [d.level for d in _run(p, [0.9, 0.1, 0.9])] == [0, 0, 0]
    p3 = AlertPolicy(thresholds=(0.5, 0.8), consecutive=3)
    assert [d.level for d in _run(p3, [0.9, 0.6, 0.9, 0.9])] == [0, 0, 1, 1]


def test_a_gap_breaks_a_consecutive_run():
    p = AlertPolicy(thresholds=(0.5, 0.8), consecutive=2)
    assert [d.level for d in _run(p, [0.9, 0.9], days=[1, 3])] == [0, 0]
    assert [d.level for d in _run(p, [0.9, 0.9, 0.9], days=[1, 3, 4])] == [0, 0, 2]


def test_detector_levels_pass_through_without_thresholds_or_runs():
    p = AlertPolicy(consecutive=2)  # infinite thresholds: only detector levels count
    out = _run(p, [0.0, 9.0, 9.0], levels=[0, 2, 1])
    assert [d.level for d in out] == [0, 2, 1]


def test_budget_suppresses_yellow_but_not_red():
    p = AlertPolicy(thresholds=(0.5, 0.8), budget_per_30d=2)
    out = _run(p, [0.6, 0.6, 0.6, 0.6, 0.9, 0.6])
    assert [d.level for d in out] == [1, 1, 0, 0, 2, 0]
    assert [d.suppressed for d in out] == [False, False, True, True, False, True]
    assert out[-1].suppressed and out[-1].raw_level == 1


def test_budget_window_is_thirty_days():
    p = AlertPolicy(thresholds=(0.5, 0.8), budget_per_30d=1)
    st = p.new_state()
    lv = {}
    for d in range(0, 65):
        lv[d] = p.decide(st, d, Score(0.6)).level
    alert_days = [d for d, v in lv.items() if v]
    assert alert_days == [0, 30, 60]


def test_budget_counts_red_days():
    p = AlertPolicy(thresholds=(0.5, 0.8), budget_per_30d=1)
    out = _run(p, [0.9, 0.6, 0.9])
    assert [d.level for d in out] == [2, 0, 2]


def test_long_consecutive_rules_can_be_met():
    p = AlertPolicy(thresholds=(0.5, 0.8), consecutive=10)
    levels = [d.level for d in _run(p, [0.9] * 12)]
    assert levels == [0] * 9 + [2, 2, 2]
