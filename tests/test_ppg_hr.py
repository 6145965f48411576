"""Heart rate under motion: known answers on simulated waveforms, methods, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.ppg import estimate_hr, estimate_hr_detailed
from detectors.ppg.spectra import make_grid
from detectors.ppg.tracker import HRTracker
from streams.synth_raw import simulate_raw


def _mae(est: np.ndarray, ref: np.ndarray) -> float:
    k = min(est.size, ref.size)
    return float(np.nanmean(np.abs(est[:k] - ref[:k])))


def _exercise(t):
    return 65.0 + 55.0 / (1.0 + np.exp(-(np.asarray(t) - 120.0) / 15.0))


@pytest.fixture(scope="module")
def rest():
    return simulate_raw(seed=11, duration_s=180, fs=125.0, hr_bpm=72.0, noise_level=0.1)


@pytest.fixture(scope="module")
def running():
    # arm swing at 1.6 Hz (96 /min, harmonic 192 /min), artefact ~2x the pulse
    return simulate_raw(seed=3, duration_s=300, fs=125.0, hr_bpm=_exercise, motion_level=1.0, noise_level=0.1)


def test_windows_follow_sp_cup_convention(rest):
    n = rest.ppg.shape[1]
    hr = estimate_hr(rest.ppg, rest.acc, rest.fs)
    assert hr.shape == ((n - 1000) // 250 + 1,)


def test_known_answer_at_rest(rest):
    r = estimate_hr_detailed(rest.ppg, rest.acc, rest.fs)
    assert _mae(r.hr_bpm, rest.hr_window_bpm) < 1.5
    assert np.median(r.confidence) > 0.8


def test_single_channel_1d_input(rest):
    hr = estimate_hr(rest.ppg[0], rest.acc, rest.fs)
    assert _mae(hr, rest.hr_window_bpm) < 2.0


@pytest.mark.parametrize("method", ["smooth", "online", "causal"])
def test_motion_artefact_is_removed_with_the_accelerometer(running, method):
    r = estimate_hr_detailed(running.ppg, running.acc, running.fs, method=method)
    assert _mae(r.hr_bpm, running.hr_window_bpm) < 3.0
    assert r.motion.mean() > 0.5


def test_without_accelerometer_motion_wins(running):
    """The same recording without ACC locks onto the arm swing: the ACC is what makes it work."""
    with_acc = _mae(estimate_hr(running.ppg, running.acc, running.fs), running.hr_window_bpm)
    no_acc = _mae(estimate_hr(running.ppg, None, running.fs), running.hr_window_bpm)
    assert no_acc > 3 * with_acc


def test_low_rates_and_sampling_rates():
    for fs, hr in ((25.0, 48.0), (32.0, 150.0), (64.0, 90.0), (128.0, 60.0)):
        s = simulate_raw(seed=5, duration_s=120, fs=fs, hr_bpm=hr, noise_level=0.1, channels=1)
        assert _mae(estimate_hr(s.ppg, s.acc, fs), s.hr_window_bpm) < 2.0, fs


def test_unknown_method_lists_valid_ones(rest):
    with pytest.raises(ValueError, match="smooth, online, causal"):
        estimate_hr_detailed(rest.ppg, rest.acc, rest.fs, method="viterbi")


def test_online_tracker_releases_same_windows_for_any_batching():
    g = make_grid(64.0)
    rng = np.random.default_rng(0)
    spec = rng.random((57, g.freq_bpm.size))
    a = HRTracker(g.freq_bpm, lag=5)
    ref = np.concatenate([a.update(a.evidence(spec)), a.flush()])
    b = HRTracker(g.freq_bpm, lag=5)
    parts, i = [], 0
    for n in (1, 7, 3, 20, 2, 24):
        parts.append(b.update(b.evidence(spec[i : i + n])))
        i += n
    parts.append(b.flush())
    np.testing.assert_array_equal(np.concatenate(parts), ref)
    s = HRTracker(g.freq_bpm).smooth(HRTracker(g.freq_bpm).evidence(spec))
    full = HRTracker(g.freq_bpm)
    f2 = np.concatenate([full.update(full.evidence(spec)), full.flush()])
    np.testing.assert_allclose(s, f2, rtol=1e-9, atol=1e-12)


# ---------------------------------------------------------------- bad input
def test_nan_run_gates_only_the_windows_it_touches(rest):
    p = rest.ppg.copy()
    fs = int(rest.fs)
    p[:, 60 * fs : 70 * fs] = np.nan
    r = estimate_hr_detailed(p, rest.acc, rest.fs)
    bad = ~r.ppg_ok
    start = np.arange(len(r)) * 2.0
    touched = (start < 70) & (start + 8 > 60)
    np.testing.assert_array_equal(bad, touched)
    assert np.isnan(r.hr_bpm[bad]).all() and (r.confidence[bad] == 0).all()
    assert _mae(r.hr_bpm[~bad], rest.hr_window_bpm[: len(r)][~bad]) < 2.0


def test_nan_on_one_channel_uses_the_other(rest):
    p = rest.ppg.copy()
    p[0, 1000:5000] = np.nan
    r = estimate_hr_detailed(p, rest.acc, rest.fs)
    assert r.ppg_ok.all()
    assert _mae(r.hr_bpm, rest.hr_window_bpm) < 2.0


def test_flat_line_is_gated_not_a_crash(rest):
    r = estimate_hr_detailed(np.full((2, 30 * 125), 512.0), rest.acc[:, : 30 * 125], 125.0)
    assert len(r) == 12 and not r.ppg_ok.any() and np.isnan(r.hr_bpm).all()


def test_clipped_signal_is_gated(rest):
    p = rest.ppg.copy()
    hi = np.percentile(p, 40)
    p = np.minimum(p, hi)  # 60 % of samples stuck at the rail
    r = estimate_hr_detailed(p, rest.acc, rest.fs)
    assert not r.ppg_ok.any()


def test_bad_rate_shape_and_length_raise_clear_errors(rest):
    with pytest.raises(ValueError, match="fs"):
        estimate_hr(rest.ppg, rest.acc, 5.0)
    with pytest.raises(ValueError, match="fs"):
        estimate_hr(rest.ppg, rest.acc, float("nan"))
    with pytest.raises(ValueError, match="ppg has .* acc has"):
        estimate_hr(rest.ppg, rest.acc[:, :-10], rest.fs)
    with pytest.raises(ValueError, match=r"acc: expected \(3, n\)"):
        estimate_hr(rest.ppg, rest.acc[:2], rest.fs)
    with pytest.raises(ValueError, match="ppg"):
        estimate_hr(np.zeros((2, 3, 4)), None, rest.fs)
    with pytest.raises(ValueError, match="whole"):
        estimate_hr(rest.ppg, rest.acc, rest.fs, window_s=7.0, step_s=2.0)


def test_shorter_than_a_window_gives_no_windows():
    r = estimate_hr_detailed(np.ones(500), np.zeros((3, 500)), 125.0)
    assert len(r) == 0


def test_many_equals_one_by_one(rest, running):
    from detectors.ppg import estimate_hr_many

    short = simulate_raw(seed=2, duration_s=60, fs=125.0, hr_bpm=100.0)
    recs = [(rest.ppg, rest.acc), (running.ppg, running.acc), (short.ppg[0], short.acc), (rest.ppg, None)]
    many = estimate_hr_many(recs, 125.0)
    for (p, a), r in zip(recs, many, strict=True):
        one = estimate_hr_detailed(p, a, 125.0)
        np.testing.assert_allclose(r.hr_bpm, one.hr_bpm, rtol=1e-6)
        np.testing.assert_allclose(r.confidence, one.confidence, rtol=1e-5, atol=1e-9)


def test_block_usability_equals_window_usability():
    from detectors.ppg.hr import _usable, usable_windows
    from detectors.ppg.spectra import frames

    g = make_grid(32.0)
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 2000))
    x[0, 300:340] = np.nan
    x[1, 800:1100] = np.minimum(x[1, 800:1100], 0.0)  # clipped run
    x[2, 1500:1700] = 4.0  # flat run
    x[2, 100:103] = x[2, 99]  # a few repeats
    np.testing.assert_array_equal(usable_windows(x, g), _usable(frames(x, g.win, g.step)))


def test_raw_adc_offset_and_baseline_wander_do_not_matter(running):
    """Raw devices: a huge DC level and wander 20x the pulse (40 s period) in the PPG."""
    t = np.arange(running.ppg.shape[1]) / running.fs
    p = running.ppg + 1e5 + 20.0 * np.sin(2 * np.pi * t / 40.0) + 1.0 * t
    assert _mae(estimate_hr(p, running.acc, running.fs), running.hr_window_bpm) < 3.0
