"""Signal quality of PPG: beat template correlation.

For a run of beats the template is the mean beat (aligned on the systolic
peak, one median interval long, starting 0.3 interval before the peak); a
beat's quality is its Pearson correlation with the template (Orphanidou et al.
2015, who accept windows whose mean correlation is >= 0.86). Motion-corrupted,
clipped or noisy beats correlate poorly. Note that a purely periodic artefact
(steady arm swing) can also correlate well: under motion the gate is the
heart-rate tracker's confidence, not this index.
"""

from __future__ import annotations

import numpy as np

__all__ = ["beat_sqi", "window_sqi", "SQI_THRESHOLD"]

#: Orphanidou et al. (2015) acceptance threshold for mean template correlation.
SQI_THRESHOLD = 0.86


def beat_sqi(x: np.ndarray, peaks: np.ndarray, fs: float) -> np.ndarray:
    """Correlation of each beat with the mean beat of the segment (-1..1; NaN if no full window)."""
    x = np.asarray(x, dtype=np.float64)
    pk = np.asarray(peaks, dtype=np.int64)
    out = np.full(pk.size, np.nan)
    if pk.size < 3:
        return out
    L = int(np.median(np.diff(pk)))
    if L < 4:
        return out
    start = pk - int(0.3 * L)
    full = (start >= 0) & (start + L <= x.size)
    if full.sum() < 3:
        return out
    idx = start[full, None] + np.arange(L)[None, :]
    seg = x[idx]
    seg = seg - seg.mean(axis=1, keepdims=True)
    tpl = seg.mean(axis=0)
    tpl = tpl - tpl.mean()
    num = seg @ tpl
    den = np.sqrt((seg * seg).sum(axis=1) * (tpl @ tpl))
    with np.errstate(invalid="ignore", divide="ignore"):
        out[full] = np.where(den > 0, num / den, 0.0)
    return out


def window_sqi(beat_time_s: np.ndarray, sqi: np.ndarray, n_windows: int, window_s: float = 8.0, step_s: float = 2.0) -> np.ndarray:
    """Mean beat quality per window k covering ``[k*step, k*step + window)``; 0 where no beat."""
    t = np.asarray(beat_time_s, dtype=np.float64)
    q = np.nan_to_num(np.asarray(sqi, dtype=np.float64), nan=0.0)
    starts = np.arange(n_windows) * step_s
    lo = np.searchsorted(t, starts, side="left")
    hi = np.searchsorted(t, starts + window_s, side="left")
    cs = np.concatenate(([0.0], np.cumsum(q)))
    cnt = hi - lo
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(cnt > 0, (cs[hi] - cs[lo]) / np.maximum(cnt, 1), 0.0)
