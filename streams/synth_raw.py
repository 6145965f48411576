"""Synthetic raw wrist PPG and accelerometry with known ground truth.

:func:`simulate_raw` draws a beat sequence from a heart-rate profile with
beat-to-beat variability of a chosen RMSSD and respiratory sinus arrhythmia,
renders a two-peak pulse per beat on each PPG channel, modulates it by
respiration (baseline: RIIV, amplitude: RIAV, beat intervals: RIFV), and adds
arm motion: a periodic accelerometer signal (cadence and harmonics, slowly
drifting) whose filtered copy, with a channel-specific mix of the axes, is the
PPG motion artefact. Truth comes back with the waveforms.

The minute-level cohort simulator calls this for the participants that should
carry raw waveforms::

    sim = simulate_raw(seed=7, duration_s=600, fs=64.0, hr_bpm=62, rmssd_ms=45)
    sim.ppg.shape, sim.acc.shape      # (2, 38400), (3, 38400)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import signal

__all__ = ["RawSim", "simulate_raw"]


@dataclass
class RawSim:
    """Waveforms and ground truth from :func:`simulate_raw`.

    Attributes
    ----------
    fs : float
        Sampling rate (Hz) of ``ppg`` and ``acc``.
    ppg : ndarray (channels, n)
        PPG, arbitrary units (pulse amplitude about 1).
    acc : ndarray (3, n)
        Accelerometer (g), gravity on the z axis.
    beat_times_s : ndarray
        Time of each beat (s from the first sample; pulse foot).
    ibi_ms : ndarray
        Interval before each beat after the first (ms); ``len(beat_times_s) - 1``.
    hr_window_bpm : ndarray
        Reference heart rate per window (``window_s``/``step_s``): 60000 / mean
        interval of the beats inside the window, like ECG-derived references.
    rmssd_ms : float
        RMSSD of ``ibi_ms`` over the whole recording.
    resp_rpm : float
        Mean respiratory rate (breaths/min).
    resp_rpm_per_s : ndarray
        Instantaneous respiratory rate per second (breaths/min); constant unless
        ``resp_variability`` > 0.
    motion_level, noise_level : float
        The settings used.
    window_s, step_s : float
        Windowing of ``hr_window_bpm``.
    """

    fs: float
    ppg: np.ndarray
    acc: np.ndarray
    beat_times_s: np.ndarray
    ibi_ms: np.ndarray
    hr_window_bpm: np.ndarray
    rmssd_ms: float
    resp_rpm: float
    motion_level: float
    noise_level: float
    window_s: float = 8.0
    step_s: float = 2.0
    resp_rpm_per_s: np.ndarray | None = None


def _pulse(tau: np.ndarray, period: np.ndarray) -> np.ndarray:
    """Pulse shape at ``tau`` seconds after a beat's onset: systolic peak plus a diastolic wave.

    The shape scales with the slowly varying mean period, not with each beat's
    own interval, so peak-to-peak intervals equal the beat intervals (as pulse
    arrival follows the R wave by a nearly constant transit time).
    """
    u = tau / period
    return np.exp(-0.5 * ((u - 0.22) / 0.08) ** 2) + 0.45 * np.exp(-0.5 * ((u - 0.5) / 0.11) ** 2)


def simulate_raw(
    seed: int = 0,
    duration_s: float = 300.0,
    fs: float = 125.0,
    hr_bpm: float | Callable[[np.ndarray], np.ndarray] = 70.0,
    rmssd_ms: float = 40.0,
    resp_rpm: float = 15.0,
    motion_level: float = 0.0,
    noise_level: float = 0.05,
    channels: int = 2,
    cadence_hz: float = 1.6,
    window_s: float = 8.0,
    step_s: float = 2.0,
    resp_variability: float = 0.0,
) -> RawSim:
    """Simulate wrist PPG (channels, n) and ACC (3, n) with known HR, IBIs, RMSSD and respiration.

    Parameters
    ----------
    seed : int
        Random seed; same seed, same output.
    duration_s : float
        Length (s).
    fs : float
        Sampling rate (Hz).
    hr_bpm : float or callable
        Mean heart rate, or a function of time (s, array) returning bpm (a profile,
        e.g. rest then exercise).
    rmssd_ms : float
        Target short-term variability: beat-to-beat jitter is drawn so that the
        RMSSD of the intervals is close to this (the realised value is returned).
    resp_rpm : float
        Breathing rate; modulates baseline, amplitude and beat intervals.
    motion_level : float
        0 = still. 1 = running-like arm swing (about 1 g peak) producing a PPG
        artefact about twice the pulse amplitude.
    noise_level : float
        White noise SD relative to pulse amplitude.
    channels : int
        Number of PPG channels (different artefact mixes and noise).
    cadence_hz : float
        Arm-swing frequency when moving (drifts by +-10 % over the recording).
    resp_variability : float
        Relative amplitude of a slow wander of the breathing rate (period about
        90 s) and of breath-to-breath depth; 0 gives a constant-rate sinusoid.

    Returns
    -------
    RawSim
    """
    if duration_s <= 0 or fs <= 0:
        raise ValueError(f"duration_s ({duration_s}) and fs ({fs}) must be positive")
    rng = np.random.default_rng(seed)
    n = int(round(duration_s * fs))
    t = np.arange(n) / fs
    f_resp = resp_rpm / 60.0
    resp_phase0 = rng.uniform(0, 2 * np.pi)
    # breathing phase: constant rate, or one that wanders slowly around the mean
    wander = rng.uniform(0, 2 * np.pi)

    def resp_rate_hz(tt):
        return f_resp * (1.0 + resp_variability * np.sin(2 * np.pi * np.asarray(tt) / 90.0 + wander))

    tg = np.arange(int(np.ceil((duration_s + 3.0) * 10)) + 1) / 10.0  # 10 Hz phase grid
    phase_g = resp_phase0 + 2 * np.pi * np.concatenate(([0.0], np.cumsum(resp_rate_hz(tg[:-1])) / 10.0))

    def resp_wave(tt):
        ph = np.interp(tt, tg, phase_g)
        depth = 1.0 + resp_variability * np.sin(0.37 * ph + wander)
        return depth * np.sin(ph)
    hr_fn = hr_bpm if callable(hr_bpm) else (lambda tt, v=float(hr_bpm): np.full(np.shape(tt), v))

    # beats: intervals from the HR profile, RSA (in phase with breathing) and white
    # jitter; RSA carries about a third of the successive-difference variance
    rsa_amp = 0.6 * rmssd_ms
    jitter_sd = 0.8 * rmssd_ms / np.sqrt(2.0)
    beats = [float(rng.uniform(0, 0.5))]
    ibis: list[float] = []
    while beats[-1] < duration_s + 2.0:
        tb = beats[-1]
        base = 60000.0 / float(np.atleast_1d(hr_fn(np.array([tb])))[0])
        rsa = rsa_amp * float(resp_wave(tb))
        ibi = max(250.0, base + rsa + rng.normal(0, jitter_sd))
        ibis.append(ibi)
        beats.append(tb + ibi / 1000.0)
    bt = np.asarray(beats)
    ibi_all = np.diff(bt) * 1000.0
    # each sample sees the pulse of its beat and the tail of the previous one
    k = np.clip(np.searchsorted(bt, t, side="right") - 1, 0, bt.size - 1)
    period = 60.0 / np.broadcast_to(np.asarray(hr_fn(t), dtype=np.float64), t.shape)
    shape = _pulse(t - bt[k], period) + np.where(k > 0, _pulse(t - bt[np.maximum(k - 1, 0)], period), 0.0)
    resp = resp_wave(t)
    pulse = shape * (1.0 + 0.15 * resp) + 0.25 * resp  # RIAV and RIIV

    # accelerometer: gravity + periodic arm swing (fundamental and harmonic), drifting cadence
    cad = cadence_hz * (1.0 + 0.1 * np.sin(2 * np.pi * t / max(duration_s, 60.0) + rng.uniform(0, 6.28)))
    ph = 2 * np.pi * np.cumsum(cad) / fs
    acc = np.zeros((3, n))
    acc[2] = 1.0
    mix = rng.uniform(0.4, 1.0, size=3)
    for ax in range(3):
        p0 = rng.uniform(0, 2 * np.pi)
        acc[ax] += motion_level * mix[ax] * (np.sin(ph + p0) + 0.5 * np.sin(2 * ph + 1.3 * p0))
    acc += rng.normal(0, 0.005, size=acc.shape)

    # PPG: pulse + motion artefact (band-limited mix of ACC axes) + noise
    sos = signal.butter(2, [0.3, 6.0], btype="bandpass", fs=fs, output="sos")
    acc_f = signal.sosfilt(sos, acc - acc.mean(axis=1, keepdims=True), axis=1)
    ppg = np.empty((channels, n))
    for c in range(channels):
        w = rng.normal(0, 1, size=3)
        w /= np.linalg.norm(w)
        art = w @ acc_f
        ppg[c] = pulse * rng.uniform(0.8, 1.2) + 2.0 * art + rng.normal(0, noise_level, size=n)

    keep = (bt[1:] <= duration_s)
    beat_times = bt[bt <= duration_s]
    ibi_ms = ibi_all[keep][: max(beat_times.size - 1, 0)]
    # reference HR per window, from the beats inside it
    nw = max(0, int((duration_s - window_s) // step_s) + 1)
    a = np.arange(nw) * step_s
    lo = np.searchsorted(bt, a, side="left")  # first beat at or after the window start
    hi = np.searchsorted(bt, a + window_s, side="right") - 1  # last beat before the end
    cs = np.concatenate(([0.0], np.cumsum(ibi_all)))
    cnt = hi - lo  # intervals with both beats inside
    with np.errstate(invalid="ignore", divide="ignore"):
        ref = np.where(cnt > 0, 60000.0 * cnt / (cs[np.maximum(hi, lo)] - cs[lo]), np.nan)
    d = np.diff(ibi_ms)
    rmssd = float(np.sqrt(np.mean(d * d))) if d.size else float("nan")
    per_s = 60.0 * resp_rate_hz(np.arange(int(duration_s)) + 0.5)
    return RawSim(float(fs), ppg, acc, beat_times, ibi_ms, ref, rmssd, float(resp_rpm), float(motion_level), float(noise_level),
                  float(window_s), float(step_s), per_s)
