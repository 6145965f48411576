"""Accelerometry: activity (ENMO), non-wear, rest windows and steps.

* **ENMO** (Euclidean norm minus one, van Hees et al. 2013): ``max(|a| - 1 g, 0)``
  in milli-g, averaged per epoch. Assumes a calibrated ACC in g.
* **Non-wear** (van Hees et al. 2011/2013): a worn device shakes a little; a
  device on a table does not. A minute is non-wear when, over the
  ``window_min`` minutes centred on it, the standard deviation of at least two
  axes is below 13 mg, or their range is below 50 mg.
* **Rest**: minutes with low activity (ENMO below ``enmo_mg``) whose arm angle
  (z-angle, van Hees et al. 2015) changes by less than ``angle_deg`` within
  5-s means - the building block of HDCZA sleep detection.
* **Moving seconds**: seconds whose acceleration magnitude varies by more than
  ``sd_g`` (20 mg) - arm movement that corrupts beat timing; beat intervals and
  respiration are not taken from them.
* **Steps**: peaks of the band-passed (0.8-3.5 Hz) acceleration magnitude above
  ``min_g`` at least 0.25 s apart, counted only inside bouts of at least four
  regular steps (intervals within 30 % of their median), which rejects isolated
  arm movements.
"""

from __future__ import annotations

import numpy as np
from scipy import signal

from detectors.ppg.beats import _butter

__all__ = ["moving_seconds", "enmo", "enmo_epochs", "detect_nonwear", "rest_windows", "step_times", "count_steps"]


def _check_acc(acc: np.ndarray, fs: float) -> np.ndarray:
    a = np.asarray(acc, dtype=np.float64)
    if a.ndim != 2 or a.shape[0] != 3:
        raise ValueError(f"acc: expected (3, n), got shape {np.shape(acc)}")
    if not np.isfinite(fs) or fs <= 0:
        raise ValueError(f"fs: {fs} Hz must be positive")
    return a


def moving_seconds(acc: np.ndarray, fs: float, sd_g: float = 0.02) -> np.ndarray:
    """Per whole second from the first sample: True where the magnitude's SD exceeds ``sd_g`` (g).

    Seconds with no valid sample count as moving (unknown is not still).
    """
    a = _check_acc(acc, fs)
    ns = int(a.shape[1] // fs)
    if ns == 0:
        return np.zeros(0, dtype=bool)
    mag = np.sqrt((a * a).sum(axis=0))
    r0 = (np.arange(ns) * fs).astype(np.int64)
    r1 = (np.arange(1, ns + 1) * fs).astype(np.int64)
    mag = mag[: r1[-1]]
    ok = np.isfinite(mag)
    m0 = np.where(ok, mag, 0.0)
    n = np.add.reduceat(ok.astype(np.int64), r0)
    s1 = np.add.reduceat(m0, r0)
    mean = s1 / np.maximum(n, 1)
    dev = np.where(ok, mag - np.repeat(mean, r1 - r0), 0.0)
    var = np.add.reduceat(dev * dev, r0) / np.maximum(n, 1)
    return (n < 2) | (np.sqrt(var) > sd_g)


def enmo(acc: np.ndarray) -> np.ndarray:
    """ENMO per sample (milli-g); NaN where any axis is NaN."""
    a = np.asarray(acc, dtype=np.float64)
    return np.maximum(np.sqrt((a * a).sum(axis=0)) - 1.0, 0.0) * 1000.0


def _epoch_index(n: int, fs: float, epoch_s: float) -> tuple[np.ndarray, int]:
    idx = (np.arange(n) / fs // epoch_s).astype(np.int64)
    return idx, int(idx[-1]) + 1 if n else 0


def enmo_epochs(acc: np.ndarray, fs: float, epoch_s: float = 60.0) -> np.ndarray:
    """Mean ENMO (milli-g) per epoch of ``epoch_s`` from the first sample; NaN for an epoch without valid samples."""
    a = _check_acc(acc, fs)
    e = enmo(a)
    idx, ne = _epoch_index(e.size, fs, epoch_s)
    ok = np.isfinite(e)
    s = np.bincount(idx[ok], weights=e[ok], minlength=ne)
    c = np.bincount(idx[ok], minlength=ne)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(c > 0, s / np.maximum(c, 1), np.nan)


def _minute_stats(a: np.ndarray, fs: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per minute and axis: sum, sum of squares, min, max (NaN-free samples)."""
    idx, ne = _epoch_index(a.shape[1], fs, 60.0)
    ok = np.isfinite(a).all(axis=0)
    s = np.stack([np.bincount(idx[ok], weights=a[i, ok], minlength=ne) for i in range(3)])
    s2 = np.stack([np.bincount(idx[ok], weights=a[i, ok] ** 2, minlength=ne) for i in range(3)])
    lo = np.full((3, ne), np.inf)
    hi = np.full((3, ne), -np.inf)
    for i in range(3):
        np.minimum.at(lo[i], idx[ok], a[i, ok])
        np.maximum.at(hi[i], idx[ok], a[i, ok])
    c = np.bincount(idx[ok], minlength=ne)
    return s, s2, np.stack([lo, hi]), c


def detect_nonwear(acc: np.ndarray, fs: float, window_min: int = 60, sd_g: float = 0.013, range_g: float = 0.05) -> np.ndarray:
    """Non-wear flag per minute from the first sample (see module doc)."""
    a = _check_acc(acc, fs)
    s, s2, lohi, c = _minute_stats(a, fs)
    ne = c.size
    half = window_min // 2
    out = np.zeros(ne, dtype=bool)
    cs = np.concatenate([np.zeros((3, 1)), np.cumsum(s, axis=1)], axis=1)
    cs2 = np.concatenate([np.zeros((3, 1)), np.cumsum(s2, axis=1)], axis=1)
    cc = np.concatenate([[0], np.cumsum(c)])
    for m in range(ne):
        lo, hi = max(0, m - half), min(ne, m + half + 1)
        n = cc[hi] - cc[lo]
        if n < 2:
            out[m] = c[m] == 0
            continue
        mean = (cs[:, hi] - cs[:, lo]) / n
        var = np.maximum((cs2[:, hi] - cs2[:, lo]) / n - mean**2, 0.0)
        rng = lohi[1, :, lo:hi].max(axis=1) - lohi[0, :, lo:hi].min(axis=1)
        still = (np.sqrt(var) < sd_g) | (rng < range_g)
        out[m] = still.sum() >= 2
    return out


def rest_windows(acc: np.ndarray, fs: float, enmo_mg: float = 20.0, angle_deg: float = 5.0) -> np.ndarray:
    """Rest flag per minute from the first sample (see module doc)."""
    a = _check_acc(acc, fs)
    n5 = int(round(5 * fs))
    nb = a.shape[1] // n5
    if nb == 0:
        return np.zeros(0, dtype=bool)
    blk = a[:, : nb * n5].reshape(3, nb, n5).mean(axis=2)
    ang = np.degrees(np.arctan2(blk[2], np.sqrt(blk[0] ** 2 + blk[1] ** 2)))
    dang = np.abs(np.diff(ang, prepend=ang[0]))
    per_min = 12
    nm = int(np.ceil(nb / per_min))
    pad = np.full(nm * per_min, np.nan)
    pad[:nb] = dang
    max_change = np.nanmax(pad.reshape(nm, per_min), axis=1)
    e = enmo_epochs(a, fs, 60.0)[:nm]
    return (max_change < angle_deg) & (e < enmo_mg)


def step_times(acc: np.ndarray, fs: float, min_g: float = 0.1) -> np.ndarray:
    """Times (s from the first sample) of detected steps inside regular bouts."""
    a = _check_acc(acc, fs)
    if a.shape[1] < 2 * fs:
        return np.zeros(0)
    mag = np.sqrt((np.nan_to_num(a) ** 2).sum(axis=0))
    hi = min(3.5, 0.45 * fs)
    sos = _butter(2, (0.8, hi), "bandpass", fs)
    x = signal.sosfiltfilt(sos, mag)
    pk, _ = signal.find_peaks(x, height=min_g, distance=max(1, int(0.25 * fs)))
    if pk.size < 4:
        return np.zeros(0)
    t = pk / fs
    d = np.diff(t)
    # a step belongs to a bout when its interval and its neighbours' are regular
    med = np.median(d)
    reg = (np.abs(d - med) < 0.3 * med) & (d < 2.0)
    keep = np.zeros(t.size, dtype=bool)
    run = 0
    for i, r in enumerate(reg):
        run = run + 1 if r else 0
        if run >= 3:  # 3 regular intervals = 4 steps
            keep[i - run + 1 : i + 2] = True
    return t[keep]


def count_steps(acc: np.ndarray, fs: float, epoch_s: float = 60.0) -> np.ndarray:
    """Steps per epoch of ``epoch_s`` from the first sample."""
    a = _check_acc(acc, fs)
    ne = int(np.ceil(a.shape[1] / fs / epoch_s))
    t = step_times(a, fs)
    return np.bincount((t // epoch_s).astype(np.int64), minlength=ne)[:ne].astype(np.float64)
