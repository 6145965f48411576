"""RobustBaseline: rolling median/MAD against a brute-force reference, warm-up, floor, guard, rebaseline."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from detectors.baseline import MIN_SPREAD, RobustBaseline

FEATS = ("rhr_ns_bpm", "hrv_rmssd_ms", "steps")


def _ref(hist: list[list[float]], window: int, min_days: int):
    """Brute force: nanmedian and 1.4826 * MAD of the last ``window`` rows, floored, NaN in warm-up."""
    h = np.array(hist[-window:], dtype=float).reshape(-1, len(FEATS))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        med = np.nanmedian(h, axis=0) if h.size else np.full(len(FEATS), np.nan)
        mad = np.nanmedian(np.abs(h - med), axis=0) if h.size else np.full(len(FEATS), np.nan)
    sd = np.maximum(1.4826 * mad, [MIN_SPREAD[f] for f in FEATS])
    valid = np.isfinite(h).sum(axis=0) if h.size else np.zeros(len(FEATS))
    med = np.where(valid >= min_days, med, np.nan)
    sd = np.where(valid >= min_days, sd, np.nan)
    return med, sd


value = st.one_of(st.floats(min_value=30, max_value=120, allow_nan=False), st.just(float("nan")))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(value, value, value), min_size=0, max_size=45), st.integers(3, 12), st.integers(1, 6))
def test_median_and_mad_match_brute_force(days, window, min_days):
    b = RobustBaseline(FEATS, window_days=window, min_days=min_days)
    hist = []
    for row in days:
        b.learn_one(dict(zip(FEATS, row, strict=True)))
        hist.append(list(row))
        med, sd = b.get()
        rmed, rsd = _ref(hist, window, min_days)
        np.testing.assert_allclose(med, rmed, rtol=0, atol=1e-9, equal_nan=True)
        np.testing.assert_allclose(sd, rsd, rtol=0, atol=1e-9, equal_nan=True)


def test_warm_up_gives_nan_until_min_days_valid_values():
    b = RobustBaseline(FEATS, window_days=28, min_days=3)
    b.learn_one({"rhr_ns_bpm": 60.0})
    b.learn_one({"rhr_ns_bpm": np.nan})
    b.learn_one({"rhr_ns_bpm": 62.0})
    assert np.isnan(b.get()[0][0])  # 2 valid values
    b.learn_one({"rhr_ns_bpm": 61.0})
    med, sd = b.get()
    assert med[0] == 61.0 and sd[0] == pytest.approx(1.4826)
    assert np.isnan(med[1]) and np.isnan(med[2])  # never seen


def test_spread_floor_for_a_perfectly_stable_participant():
    b = RobustBaseline(FEATS, min_days=3)
    for _ in range(5):
        b.learn_one({"rhr_ns_bpm": 55.0, "hrv_rmssd_ms": 40.0, "steps": 8000.0})
    med, sd = b.get()
    assert med.tolist() == [55.0, 40.0, 8000.0]
    assert sd.tolist() == [MIN_SPREAD["rhr_ns_bpm"], MIN_SPREAD["hrv_rmssd_ms"], MIN_SPREAD["steps"]]
    _, _, dev, z = b.deviation(np.array([58.0, 30.0, 7000.0]))
    assert dev.tolist() == [3.0, -10.0, -1000.0] and z.tolist() == [3.0, -5.0, -2.0]


def test_window_forgets_old_days():
    b = RobustBaseline(FEATS, window_days=5, min_days=1)
    for x in (100, 100, 100, 100, 100, 50, 50, 50):
        b.learn_one({"rhr_ns_bpm": float(x)})
    assert b.get()[0][0] == 50.0  # only the last 5: 100, 100, 50, 50, 50


def test_guard_and_rebaseline_counting():
    b = RobustBaseline(("rhr_ns_bpm",), window_days=28, min_days=3, guard_bpm=4.0, rebaseline_days=3)
    for _ in range(5):
        assert b.learn_one({"rhr_ns_bpm": 60.0})
    assert b.is_guarded(np.array([4.0])) and not b.is_guarded(np.array([3.9])) and not b.is_guarded(np.array([np.nan]))
    assert [b.learn_one({"rhr_ns_bpm": 70.0}, guarded=True) for _ in range(5)] == [False, False, False, True, True]
    assert b.learn_one({"rhr_ns_bpm": 60.0}, guarded=False)
    assert not b.learn_one({"rhr_ns_bpm": 70.0}, guarded=True)  # the run restarts after a normal day


def test_guard_only_looks_at_resting_hr_features():
    b = RobustBaseline(("rhr_ns_bpm", "steps"), guard_bpm=4.0)
    assert not b.is_guarded(np.array([0.0, 5000.0]))
    assert b.is_guarded(np.array([4.5, 0.0]))
