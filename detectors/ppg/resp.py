"""Respiratory rate from PPG beats: RIIV, RIAV and RIFV fused with a quality gate.

Breathing modulates the PPG three ways (Karlen et al. 2013, IEEE TBME 60(7)):
the baseline or intensity of each pulse (RIIV), its amplitude (RIAV) and the
beat intervals through respiratory sinus arrhythmia (RIFV). Each beat series is
resampled at 4 Hz over the window, detrended, tapered, and its spectral peak in
4-45 breaths/min taken. Karlen's *smart fusion*: the three rates are averaged
only if their standard deviation is below 4 breaths/min, otherwise the window
gives no estimate. Windows with too few good beats are gated out as well.
"""

from __future__ import annotations

import numpy as np

from detectors.ppg.beats import Beats, clean_ibi

__all__ = ["resp_rate", "estimate_resp", "RESP_BAND_RPM"]

RESP_BAND_RPM = (4.0, 45.0)
RESAMPLE_HZ = 4.0
MAX_SPREAD_RPM = 4.0


def _rate(t: np.ndarray, v: np.ndarray, start_s: float, window_s: float) -> float:
    """Spectral-peak rate (breaths/min) of an irregularly sampled series over a window."""
    if t.size < 4:
        return np.nan
    grid = start_s + np.arange(int(window_s * RESAMPLE_HZ)) / RESAMPLE_HZ
    y = np.interp(grid, t, v)
    y = y - np.polyval(np.polyfit(grid - grid.mean(), y, 1), grid - grid.mean())
    y *= np.hanning(y.size)
    nfft = max(1024, y.size)
    p = np.abs(np.fft.rfft(y, n=nfft)) ** 2
    f = np.fft.rfftfreq(nfft, 1.0 / RESAMPLE_HZ) * 60.0
    band = (f >= RESP_BAND_RPM[0]) & (f <= RESP_BAND_RPM[1])
    if not band.any() or p[band].max() <= 0:
        return np.nan
    k = np.flatnonzero(band)[np.argmax(p[band])]
    if 0 < k < p.size - 1:  # parabolic refinement of the peak
        y0, y1, y2 = np.log(p[k - 1 : k + 2] + 1e-300)
        den = y0 - 2 * y1 + y2
        d = 0.5 * (y0 - y2) / den if den < 0 else 0.0
        return float(f[k] + np.clip(d, -0.5, 0.5) * (f[1] - f[0]))
    return float(f[k])


def resp_rate(
    beats: Beats,
    start_s: float,
    window_s: float = 60.0,
    min_sqi: float = 0.86,
    min_beats_per_min: float = 30.0,
    min_good_fraction: float = 0.7,
    max_timing_sd_ms: float = 8.0,
    moving: np.ndarray | None = None,
) -> tuple[float, np.ndarray]:
    """Fused respiratory rate of one window ``[start_s, start_s + window_s)``.

    Gates: at least ``min_beats_per_min`` beats of template correlation
    >= ``min_sqi``, at least ``min_good_fraction`` of the window's intervals
    passing the ectopic/artefact screening with beat timing noise <=
    ``max_timing_sd_ms`` and, with ``moving`` (per second, see
    :func:`detectors.ppg.beats.clean_ibi`), not overlapping arm motion (motion
    and noise that spoil beat timing spoil RIIV/RIAV/RIFV too), and Karlen's
    agreement of the three rates.

    Returns
    -------
    resp_rpm : float
        Fused rate, NaN when the window is gated out.
    rates : ndarray (3,)
        The RIIV, RIAV, RIFV rates (NaN where not computable).
    """
    t = beats.time_s
    sel = (t >= start_s - 2.0) & (t < start_s + window_s + 2.0) & (np.nan_to_num(beats.sqi) >= min_sqi)
    inside = sel & (t >= start_s) & (t < start_s + window_s)
    if inside.sum() < min_beats_per_min * window_s / 60.0:
        return np.nan, np.full(3, np.nan)
    tb, _, valid = clean_ibi(beats, min_sqi=min_sqi, moving=moving)
    tsd = beats.timing_sd_ms
    good = valid & (tsd[1:] <= max_timing_sd_ms) & (tsd[:-1] <= max_timing_sd_ms)
    win = (tb >= start_s) & (tb < start_s + window_s)
    if not win.any() or good[win].mean() < min_good_fraction:
        return np.nan, np.full(3, np.nan)
    ts = t[sel]
    ibi = np.diff(ts)
    # intervals only between consecutive detected beats that are not too far apart
    okf = (ibi > 0.3) & (ibi < 2.0)
    rates = np.array([
        _rate(ts, beats.intensity[sel], start_s, window_s),
        _rate(ts, beats.amplitude[sel], start_s, window_s),
        _rate(ts[1:][okf], ibi[okf], start_s, window_s) if okf.sum() >= 4 else np.nan,
    ])
    r = rates[np.isfinite(rates)]
    if r.size < 3 or r.std() > MAX_SPREAD_RPM:
        return np.nan, rates
    return float(r.mean()), rates


def estimate_resp(beats: Beats, duration_s: float, window_s: float = 60.0, step_s: float = 60.0, moving: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Respiratory rate per window over a segment; returns (start_s, resp_rpm with NaN gaps)."""
    starts = np.arange(0.0, max(duration_s - window_s, 0.0) + 1e-9, step_s) if duration_s >= window_s else np.zeros(0)
    out = np.array([resp_rate(beats, s, window_s, moving=moving)[0] for s in starts])
    return starts, out
