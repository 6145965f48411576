"""Beats, inter-beat intervals and HRV from PPG at rest.

Beat detection is for still periods (heart rate under motion comes from the
spectral tracker in :mod:`detectors.ppg.hr`): band-pass 0.5-4 Hz, fuse
channels (z-scored mean; the wrist LEDs see the same pulse), find systolic
peaks with a refractory distance and a prominence relative to the segment's
robust pulse amplitude, and refine each peak time to sub-sample precision
(parabola through the three samples around the maximum).

Intervals are then screened for ectopic beats and artefacts: an interval is
kept only if it lies within 20 % of the median of its neighbours (a local
median of 11 intervals; the classic 20 % rule of Malik et al. 1989 against a
robust reference instead of the previous beat), both of its beats have a
template correlation >= ``min_sqi`` (:mod:`detectors.ppg.sqi`) and it is
plausible (300-2000 ms). RMSSD uses successive differences of kept intervals
that are adjacent in time only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy import ndimage, signal

from detectors.ppg.sqi import beat_sqi

__all__ = ["Beats", "detect_beats", "clean_ibi", "hrv_epochs", "HRVEpochs"]

MIN_IBI_MS = 300.0
MAX_IBI_MS = 2000.0
#: Pass band (Hz) of the detection signal.
BAND_HZ = (0.5, 4.0)


@dataclass
class Beats:
    """Detected beats of one contiguous PPG segment.

    Attributes
    ----------
    time_s : ndarray
        Systolic peak times (s from the first sample), sub-sample.
    index : ndarray of int
        Sample index of each peak.
    intensity : ndarray
        Low-passed PPG at the peak (baseline included): respiratory-induced intensity variation.
    amplitude : ndarray
        Peak minus the preceding foot: respiratory-induced amplitude variation.
    sqi : ndarray
        Template correlation of each beat (-1..1).
    timing_sd_ms : ndarray
        Estimated standard deviation of each beat's time from noise
        (Cramer-Rao bound of delay estimation: residual noise over the template's
        slope energy); NaN where unknown.
    """

    time_s: np.ndarray
    index: np.ndarray
    intensity: np.ndarray
    amplitude: np.ndarray
    sqi: np.ndarray
    timing_sd_ms: np.ndarray

    def __len__(self) -> int:
        return int(self.time_s.size)


@lru_cache(maxsize=64)
def _butter(order: int, cut: float | tuple[float, float], btype: str, fs: float) -> np.ndarray:
    """Cached Butterworth design (designing costs more than filtering a minute of PPG); do not modify."""
    sos = signal.butter(order, cut, btype=btype, fs=fs, output="sos")
    return sos


def _empty() -> Beats:
    z = np.zeros(0)
    return Beats(z, np.zeros(0, dtype=np.int64), z.copy(), z.copy(), z.copy(), z.copy())


def _fuse(ppg: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Band-passed (detection) and low-passed (features) fused signal; NaN-safe."""
    x = np.asarray(ppg, dtype=np.float64)
    if x.ndim == 1:
        x = x[None, :]
    bad = ~np.isfinite(x)
    if bad.any():
        x = np.where(bad, 0.0, x)
    hi = min(BAND_HZ[1], 0.45 * fs)
    bp = _butter(2, (BAND_HZ[0], hi), "bandpass", fs)
    lp = _butter(2, hi, "lowpass", fs)
    pad = min(x.shape[-1] - 1, int(3 * fs))
    xb = signal.sosfiltfilt(bp, x, axis=-1, padlen=pad)
    xl = signal.sosfiltfilt(lp, x - np.median(x, axis=-1, keepdims=True), axis=-1, padlen=pad)
    sd = xb.std(axis=-1, keepdims=True)
    # a flat channel filters to rounding noise: judge flatness on the raw samples
    flat = np.ptp(x, axis=-1) <= 1e-9 * (1.0 + np.abs(np.median(x, axis=-1)))
    use = (sd[:, 0] > 0) & ~bad.any(axis=-1) & ~flat
    if not use.any():
        return np.zeros(x.shape[-1]), np.zeros(x.shape[-1])
    zb = (xb[use] / sd[use]).mean(axis=0)
    zl = (xl[use] / sd[use]).mean(axis=0)
    return zb, zl


def detect_beats(ppg: np.ndarray, fs: float, max_hr_bpm: float = 180.0) -> Beats:
    """Detect systolic peaks in a contiguous PPG segment (channels, n) or (n,).

    Segments shorter than 4 s, flat, or with missing samples (NaN in every
    channel) give no beats rather than an error.

    Examples
    --------
    >>> fs = 100.0; t = np.arange(int(30 * fs)) / fs
    >>> b = detect_beats(np.sin(2 * np.pi * 1.0 * t) ** 3, fs)
    >>> 28 <= len(b) <= 31
    True
    """
    if not np.isfinite(fs) or fs < 10:
        raise ValueError(f"fs: {fs} Hz is too low for beat detection (>= 10 Hz)")
    x = np.asarray(ppg, dtype=np.float64)
    n = x.shape[-1]
    if n < 4 * fs:
        return _empty()
    zb, zl = _fuse(x, fs)
    # rising repeated values (clipping) and flat stretches carry no beats
    amp = np.percentile(zb, 97) - np.percentile(zb, 3)
    if not np.isfinite(amp) or amp <= 0:
        return _empty()
    # refractory distance: 60 % of the dominant pulse period (spectral peak),
    # never shorter than the maximum heart rate allows
    spec = np.abs(np.fft.rfft(zb - zb.mean(), n=max(n, int(fs * 60))))
    f = np.fft.rfftfreq(max(n, int(fs * 60)), 1.0 / fs)
    band = (f >= 0.6) & (f <= max_hr_bpm / 60.0)
    f0 = f[band][np.argmax(spec[band])] if band.any() else max_hr_bpm / 60.0
    dist = max(1, int(fs * 60.0 / max_hr_bpm), int(0.6 * fs / f0))
    pk, _ = signal.find_peaks(zb, distance=dist, prominence=0.3 * amp)
    if pk.size < 2:
        return _empty()
    pk = pk[(pk > 0) & (pk < n - 1)]
    y0, y1, y2 = zb[pk - 1], zb[pk], zb[pk + 1]
    den = y0 - 2 * y1 + y2
    with np.errstate(invalid="ignore", divide="ignore"):
        off = np.where(den < 0, 0.5 * (y0 - y2) / den, 0.0)
    off = np.clip(off, -0.5, 0.5)
    # foot: minimum of the low-passed signal between the previous peak and this one
    prev = np.concatenate(([max(0, pk[0] - dist)], pk[:-1]))
    foot = np.array([a + int(np.argmin(zl[a : b + 1])) for a, b in zip(prev.tolist(), pk.tolist(), strict=True)])
    inten = zl[pk]
    ampl = zl[pk] - zl[foot]
    sq = beat_sqi(zb, pk, fs)
    off, tsd = _align(zb, pk, off, fs)
    return Beats((pk + off) / fs, pk.astype(np.int64), inten, ampl, sq, tsd)


def _align(x: np.ndarray, pk: np.ndarray, off: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray]:
    """Sub-sample beat times by matching each whole beat to the mean beat.

    The peak parabola uses three samples and is noisy; cross-correlating the
    full beat with the template uses every sample of the pulse, which makes the
    intervals (and RMSSD) far less sensitive to white noise.
    """
    tsd = np.full(pk.size, np.nan)
    if pk.size < 3:
        return off, tsd
    L = int(np.median(np.diff(pk)))
    K = max(2, int(round(0.04 * fs)))
    start = pk - int(0.3 * L)
    full = (start - K >= 0) & (start + L + K <= x.size)
    if full.sum() < 3:
        return off, tsd
    lags = np.arange(-K, K + 1)
    base = start[full, None] + np.arange(L)[None, :]
    tpl = x[base].mean(axis=0)
    tpl = tpl - tpl.mean()
    # correlation of template with the beat shifted by each lag: (beats, lags)
    seg = x[base[:, None, :] + lags[None, :, None]]
    cc = (seg - seg.mean(axis=2, keepdims=True)) @ tpl
    j = np.clip(cc.argmax(axis=1), 1, lags.size - 2)
    r = np.arange(j.size)
    y0, y1, y2 = cc[r, j - 1], cc[r, j], cc[r, j + 1]
    den = y0 - 2 * y1 + y2
    with np.errstate(invalid="ignore", divide="ignore"):
        d = np.where(den < 0, 0.5 * (y0 - y2) / den, 0.0)
    out = off.copy()
    out[full] = lags[j] + np.clip(d, -0.5, 0.5)
    # timing noise: residual after the best scaled template, over slope energy
    seg0 = x[base]
    seg0 = seg0 - seg0.mean(axis=1, keepdims=True)
    a = (seg0 @ tpl) / (tpl @ tpl)
    res = seg0 - a[:, None] * tpl[None, :]
    slope2 = (np.gradient(tpl) * fs) @ (np.gradient(tpl) * fs)
    # the residual is band-limited (the detection band, BAND_HZ), so only about
    # 2 * bandwidth / fs of its samples are independent
    dof = min(1.0, 2.0 * (min(BAND_HZ[1], 0.45 * fs) - BAND_HZ[0]) / fs)
    with np.errstate(invalid="ignore", divide="ignore"):
        tsd[full] = 1000.0 * np.sqrt((res * res).mean(axis=1) / (a * a * slope2 * dof))
    return out, tsd


def clean_ibi(
    beats: Beats,
    min_sqi: float = 0.86,
    tolerance: float = 0.2,
    moving: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Inter-beat intervals with ectopic and artefact rejection.

    ``moving`` (optional, per whole second from the same origin as the beat
    times, e.g. :func:`detectors.ppg.accel.moving_seconds`) rejects every
    interval that overlaps a moving second, give or take one second: arm motion
    shifts pulse timing even when the template still matches.

    Returns
    -------
    time_s : ndarray
        Time of the beat ending each interval.
    ibi_ms : ndarray
        Intervals (ms), ``len(beats) - 1``.
    valid : ndarray of bool
        Kept by the screening rules (see module doc).

    The timing noise of the beat ending each interval is ``beats.timing_sd_ms[1:]``.
    """
    if len(beats) < 2:
        z = np.zeros(0)
        return z, z.copy(), np.zeros(0, dtype=bool)
    t = beats.time_s
    ibi = np.diff(t) * 1000.0
    ref = ndimage.median_filter(ibi, size=11, mode="nearest") if ibi.size >= 3 else np.full_like(ibi, np.median(ibi))
    good_sqi = beats.sqi >= min_sqi
    valid = (
        (ibi >= MIN_IBI_MS)
        & (ibi <= MAX_IBI_MS)
        & (np.abs(ibi - ref) <= tolerance * ref)
        & good_sqi[1:]
        & good_sqi[:-1]
    )
    if moving is not None:
        mv = np.asarray(moving, dtype=bool)
        if mv.size == 0:
            valid[:] = False
        else:
            # any moving second in [previous beat - 1 s, beat + 1 s]; beyond the mask counts as moving
            cm = np.concatenate(([0], np.cumsum(mv)))
            lo = np.clip(np.floor(t[:-1] - 1.0).astype(np.int64), 0, mv.size)
            hi = np.floor(t[1:] + 1.0).astype(np.int64) + 1
            outside = hi > mv.size
            hi = np.clip(hi, 0, mv.size)
            valid &= ((cm[hi] - cm[lo]) == 0) & ~outside
    return t[1:], ibi, valid


@dataclass
class HRVEpochs:
    """HRV per epoch; NaN where the epoch's quality was inadequate.

    Attributes
    ----------
    start_s : ndarray
        Epoch start (s from the first sample).
    hr_bpm, rmssd_ms, sdnn_ms : ndarray
        Mean heart rate, RMSSD and SDNN from kept intervals.
    coverage : ndarray
        Fraction of the epoch covered by kept intervals.
    """

    start_s: np.ndarray
    hr_bpm: np.ndarray
    rmssd_ms: np.ndarray
    sdnn_ms: np.ndarray
    coverage: np.ndarray


def hrv_epochs(
    time_s: np.ndarray,
    ibi_ms: np.ndarray,
    valid: np.ndarray,
    epoch_s: float = 60.0,
    duration_s: float | None = None,
    min_coverage: float = 0.6,
    min_pairs: int = 20,
    timing_sd_ms: np.ndarray | None = None,
    max_noise_share: float = 0.4,
    max_timing_sd_ms: float = 10.0,
) -> HRVEpochs:
    """Mean HR, RMSSD and SDNN per epoch from screened intervals.

    An epoch is reported only when kept intervals cover at least
    ``min_coverage`` of it and give at least ``min_pairs`` successive
    differences (adjacent kept intervals only); otherwise NaN.

    With ``timing_sd_ms`` (per interval: the timing noise of the beat that
    ends it, :attr:`Beats.timing_sd_ms`), beat-timing noise is removed from
    RMSSD: a successive difference of intervals carries the timing errors of
    three beats, ``e[i+1] - 2 e[i] + e[i-1]``, i.e. variance ``6 sd^2`` for
    independent errors, which is subtracted from the mean squared difference.
    An epoch where that noise exceeds ``max_noise_share`` of the mean squared
    difference is gated out (NaN): its RMSSD would be mostly noise. Intervals
    whose beats have timing noise above ``max_timing_sd_ms`` are not used at all:
    at low signal-to-noise ratio delay estimates leave the Cramer-Rao regime
    (occasional large errors), so the correction would no longer hold.
    """
    t = np.asarray(time_s, dtype=np.float64)
    v = np.asarray(ibi_ms, dtype=np.float64)
    ok = np.asarray(valid, dtype=bool)
    if timing_sd_ms is not None:
        tsd = np.asarray(timing_sd_ms, dtype=np.float64)
        ok = ok & (tsd <= max_timing_sd_ms)
        ok[1:] &= tsd[:-1] <= max_timing_sd_ms  # the beat that starts the interval ends the previous one
    end = duration_s if duration_s is not None else (float(t[-1]) if t.size else 0.0)
    ne = max(0, int(np.ceil(end / epoch_s)))
    out = {k: np.full(ne, np.nan) for k in ("hr", "rmssd", "sdnn", "cov")}
    if ne == 0 or t.size == 0:
        z = np.zeros(ne)
        return HRVEpochs(np.arange(ne) * epoch_s, z + np.nan, z + np.nan, z + np.nan, z)
    e = np.floor(t / epoch_s).astype(np.int64)
    # successive difference i pairs interval i-1 and i, both kept, beats adjacent
    adj = ok[1:] & ok[:-1] & (np.abs(np.diff(t) - v[1:] / 1000.0) < 1e-6 + 0.5 * v[1:] / 1000.0)
    d2 = np.diff(v) ** 2
    for k in range(ne):
        sel = ok & (e == k)
        cov = v[sel].sum() / 1000.0 / epoch_s
        out["cov"][k] = cov
        pair = adj & (e[1:] == k)
        if cov < min_coverage or pair.sum() < min_pairs:
            continue
        msd = d2[pair].mean()
        if timing_sd_ms is not None:
            tv = np.nan_to_num(np.asarray(timing_sd_ms, dtype=np.float64), nan=np.inf) ** 2
            noise = 6.0 * float(np.mean(tv[1:][pair]))
            if not noise <= max_noise_share * msd:
                continue
            msd -= noise
        out["hr"][k] = 60000.0 / v[sel].mean()
        out["rmssd"][k] = np.sqrt(msd)
        out["sdnn"][k] = v[sel].std(ddof=1)
    return HRVEpochs(np.arange(ne) * epoch_s, out["hr"], out["rmssd"], out["sdnn"], out["cov"])
