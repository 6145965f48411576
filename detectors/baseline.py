"""Robust personal baselines: rolling median and MAD of each participant's own days.

The baseline of day ``d`` is built from up to ``window_days`` earlier accepted
days (never day ``d`` itself, never later days). A feature's baseline exists
once it has ``min_days`` valid values (warm-up); before that deviations are
missing. Days that look like illness (any resting-HR deviation at or above
``guard_bpm``) are kept out of the baseline so that a multi-day infection does
not raise its own reference; after ``rebaseline_days`` consecutive guarded days
the baseline accepts them again (a lasting change, e.g. a new medication or
training block, becomes the new normal instead of a permanent alarm).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["RobustBaseline", "MIN_SPREAD", "GUARD_FEATURES"]

#: Floor of the robust SD per feature, so a very stable participant does not get huge z-scores.
MIN_SPREAD = {
    "rhr_ns_bpm": 1.0,
    "rhr_rest_bpm": 1.0,
    "rhr_sleep_bpm": 1.0,
    "hr_mean_bpm": 1.5,
    "hrv_rmssd_ms": 2.0,
    "hrv_sdnn_ms": 3.0,
    "resp_rpm": 0.25,
    "temp_c": 0.1,
    "steps": 500.0,
    "active_min": 15.0,
    "sleep_min": 20.0,
    "enmo_mg": 2.0,
}
GUARD_FEATURES = ("rhr_ns_bpm", "rhr_rest_bpm", "rhr_sleep_bpm")


def _nanmedian_cols(h: np.ndarray, valid: np.ndarray) -> np.ndarray:
    """Column medians ignoring NaN (NaN where a column is empty); fast for small windows."""
    srt = np.sort(h, axis=0)  # NaN sort last
    lo = np.maximum((valid - 1) // 2, 0)
    hi = np.maximum(valid // 2, 0)
    cols = np.arange(h.shape[1])
    med = (srt[np.minimum(lo, h.shape[0] - 1), cols] + srt[np.minimum(hi, h.shape[0] - 1), cols]) / 2.0
    return np.where(valid > 0, med, np.nan)


@dataclass
class RobustBaseline:
    """Rolling median / MAD baseline over a fixed feature list.

    Examples
    --------
    >>> b = RobustBaseline(("rhr_ns_bpm",), window_days=28, min_days=3)
    >>> for x in (60, 61, 59):
    ...     _ = b.learn_one({"rhr_ns_bpm": x})
    >>> med, sd = b.get()
    >>> float(med[0]), float(sd[0])
    (60.0, 1.4826)
    """

    features: tuple[str, ...]
    window_days: int = 28
    min_days: int = 7
    guard_bpm: float = 4.0
    rebaseline_days: int = 14
    _hist: np.ndarray = field(init=False)
    _n: int = 0
    _guarded_run: int = 0

    def __post_init__(self) -> None:
        self._hist = np.full((self.window_days, len(self.features)), np.nan)
        self._floor = np.array([MIN_SPREAD.get(f, 0.0) for f in self.features])
        self._guard_idx = [i for i, f in enumerate(self.features) if f in GUARD_FEATURES]

    def get(self) -> tuple[np.ndarray, np.ndarray]:
        """Baseline median and robust SD (1.4826 MAD, floored) per feature; NaN in warm-up."""
        h = self._hist
        valid = np.isfinite(h).sum(axis=0)
        med = _nanmedian_cols(h, valid)
        mad = _nanmedian_cols(np.abs(h - med), valid)
        sd = np.maximum(1.4826 * mad, self._floor)
        warm = valid < self.min_days
        med[warm] = np.nan
        sd[warm] = np.nan
        return med, sd

    def deviation(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        med, sd = self.get()
        dev = x - med
        return med, sd, dev, dev / sd

    def is_guarded(self, dev: np.ndarray) -> bool:
        g = dev[self._guard_idx] if self._guard_idx else np.zeros(0)
        return bool(np.any(np.nan_to_num(g, nan=-np.inf) >= self.guard_bpm))

    def learn_one(self, values: dict[str, float], guarded: bool = False) -> bool:
        """Add a day to the baseline unless guarded; return whether it was added."""
        if guarded:
            self._guarded_run += 1
            if self._guarded_run <= self.rebaseline_days:
                return False
        else:
            self._guarded_run = 0
        row = np.array([values.get(f, np.nan) for f in self.features], dtype=float)
        self._hist[self._n % self.window_days] = row
        self._n += 1
        return True
