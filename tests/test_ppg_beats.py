"""Beats, IBIs, HRV and respiration at rest: known answers, ectopics, gates, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.ppg.beats import Beats, clean_ibi, detect_beats, hrv_epochs
from detectors.ppg.resp import estimate_resp, resp_rate
from detectors.ppg.sqi import beat_sqi, window_sqi
from streams.synth_raw import simulate_raw


def _true_rmssd(sim, epoch_s=60.0):
    t = sim.beat_times_s[1:]
    out = []
    for k in range(int(sim.ppg.shape[1] / sim.fs // epoch_s)):
        sel = (t >= k * epoch_s) & (t < (k + 1) * epoch_s)
        d = np.diff(sim.ibi_ms[sel])
        out.append(np.sqrt(np.mean(d * d)))
    return np.array(out)


@pytest.mark.parametrize(("fs", "noise", "rmssd", "tol_ms"), [(125.0, 0.05, 25.0, 4.0), (64.0, 0.05, 50.0, 5.0), (125.0, 0.2, 40.0, 6.0)])
def test_rmssd_known_answer(fs, noise, rmssd, tol_ms):
    """Stated tolerance: RMSSD within 4-6 ms (median over 60 s epochs) at noise <= 0.2."""
    sim = simulate_raw(seed=21, duration_s=240, fs=fs, hr_bpm=64.0, rmssd_ms=rmssd, noise_level=noise)
    b = detect_beats(sim.ppg, fs)
    t, ibi, ok = clean_ibi(b)
    h = hrv_epochs(t, ibi, ok, duration_s=240, timing_sd_ms=b.timing_sd_ms[1:])
    truth = _true_rmssd(sim)
    good = np.isfinite(h.rmssd_ms)
    assert good.mean() >= 0.75
    assert np.median(np.abs(h.rmssd_ms[good] - truth[good])) < tol_ms
    assert np.nanmax(np.abs(h.hr_bpm - 64.0)) < 2.0
    assert np.all(h.sdnn_ms[good] > 0)


def test_beats_match_truth_one_to_one():
    sim = simulate_raw(seed=2, duration_s=120, fs=100.0, hr_bpm=75.0, noise_level=0.05)
    b = detect_beats(sim.ppg, sim.fs)
    assert abs(len(b) - sim.beat_times_s.size) <= 1
    assert np.nanmedian(b.sqi) > 0.95
    # peak follows the beat onset by a constant transit: intervals match the truth
    t, ibi, ok = clean_ibi(b)
    assert ok.mean() > 0.95
    assert abs(np.median(ibi) - np.median(sim.ibi_ms)) < 10.0


def test_ectopic_beat_is_rejected():
    sim = simulate_raw(seed=4, duration_s=90, fs=125.0, hr_bpm=60.0, rmssd_ms=20.0, noise_level=0.02)
    b = detect_beats(sim.ppg, sim.fs)
    # a premature beat: move one beat 40 % of an interval earlier (short then long interval)
    i = len(b) // 2
    tt = b.time_s.copy()
    tt[i] -= 0.4 * (tt[i] - tt[i - 1])
    e = Beats(tt, b.index, b.intensity, b.amplitude, b.sqi, b.timing_sd_ms)
    _, _, base = clean_ibi(b)
    t, ibi, ok = clean_ibi(e)
    assert base[i - 1] and base[i]
    assert not ok[i - 1] and not ok[i]
    np.testing.assert_array_equal(ok[: i - 2], base[: i - 2])
    np.testing.assert_array_equal(ok[i + 2 :], base[i + 2 :])


def test_noise_gates_hrv_out():
    sim = simulate_raw(seed=6, duration_s=180, fs=64.0, hr_bpm=70.0, rmssd_ms=20.0, noise_level=1.0)
    b = detect_beats(sim.ppg, sim.fs)
    t, ibi, ok = clean_ibi(b)
    h = hrv_epochs(t, ibi, ok, duration_s=180, timing_sd_ms=b.timing_sd_ms[1:] if len(b) else None)
    assert np.isnan(h.rmssd_ms).all()


def test_sqi_separates_clean_from_noise():
    fs = 100.0
    clean = simulate_raw(seed=1, duration_s=30, fs=fs, noise_level=0.02)
    b = detect_beats(clean.ppg, fs)
    assert np.nanmean(b.sqi) > 0.95
    rng = np.random.default_rng(0)
    x = rng.normal(size=3000)
    pk = np.arange(50, 2900, 80)
    assert np.nanmean(beat_sqi(x, pk, fs)) < 0.5
    w = window_sqi(b.time_s, b.sqi, n_windows=12)
    assert w.shape == (12,) and (w > 0.8).all() and w.mean() > 0.95


@pytest.mark.parametrize("rpm", [8.0, 12.0, 18.0])
def test_respiration_known_answer(rpm):
    """Stated tolerance: within 2 breaths/min where reported; most minutes reported at rest."""
    sim = simulate_raw(seed=int(rpm), duration_s=300, fs=64.0, hr_bpm=70.0, resp_rpm=rpm, noise_level=0.05)
    b = detect_beats(sim.ppg, sim.fs)
    st, r = estimate_resp(b, 300.0)
    ok = np.isfinite(r)
    assert ok.mean() >= 0.6
    assert np.all(np.abs(r[ok] - rpm) < 2.0)


def test_respiration_is_gated_under_motion():
    sim = simulate_raw(seed=9, duration_s=300, fs=64.0, hr_bpm=90.0, resp_rpm=15.0, motion_level=0.5, noise_level=0.05)
    b = detect_beats(sim.ppg, sim.fs)
    _, r = estimate_resp(b, 300.0)
    assert np.isfinite(r).mean() <= 0.2


def test_degenerate_inputs_give_no_beats_not_errors():
    fs = 64.0
    assert len(detect_beats(np.full((2, 640), 3.0), fs)) == 0  # flat
    assert len(detect_beats(np.full(640, np.nan), fs)) == 0  # missing
    assert len(detect_beats(np.ones(100), fs)) == 0  # shorter than 4 s
    empty = detect_beats(np.ones(100), fs)
    t, ibi, ok = clean_ibi(empty)
    assert t.size == 0
    h = hrv_epochs(t, ibi, ok, duration_s=120)
    assert h.rmssd_ms.shape == (2,) and np.isnan(h.rmssd_ms).all()
    assert np.isnan(resp_rate(empty, 0.0)[0])
    with pytest.raises(ValueError, match="fs"):
        detect_beats(np.zeros(1000), 5.0)


def test_accelerometer_motion_gates_intervals_and_respiration():
    from detectors.ppg.accel import moving_seconds

    sim = simulate_raw(seed=9, duration_s=180, fs=64.0, hr_bpm=70.0, resp_rpm=15.0, motion_level=0.3, noise_level=0.05)
    mv = moving_seconds(sim.acc, sim.fs)
    assert mv.all()
    b = detect_beats(sim.ppg, sim.fs)
    _, _, ok = clean_ibi(b, moving=mv)
    assert not ok.any()
    _, r = estimate_resp(b, 180.0, moving=mv)
    assert np.isnan(r).all()
    still = np.zeros_like(mv)
    _, _, ok2 = clean_ibi(b, moving=still)
    _, _, ok3 = clean_ibi(b)
    np.testing.assert_array_equal(ok2[:-3], ok3[:-3])  # still seconds change nothing (but the end)
