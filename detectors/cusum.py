"""Online CuSum on hourly resting heart rate (Mishra et al. 2020, Nat Biomed Eng 4:1208).

Following the published R code (mwgrassgreen/WearableDetection):

- resting minutes: no steps in the minute or the 10 before (pipeline's hourly stats);
- baseline: the last ``baseline_days`` (28) accepted days; for each hour of
  day ``h`` the mean ``c_h`` and SD ``s_h`` of the baseline's resting minutes;
- hourly residual ``z = (hour mean - c_h) / s_h`` clipped to [-4, 4];
- ``W_t = max(0, W_{t-1} + z_t - r)`` with ``r = quantile(baseline z, 0.9) / 2``;
- the p-value of ``W`` is its upper tail in the empirical null of ``W`` run
  over the baseline's own residuals; a *warning* hour has p < ``alpha`` (0.01);
- days with no warning slide into the baseline; days with a warning do not;
- *alarm*: a warning run lasting more than 48 h whose maximum comes more than
  24 h after its start.

Levels: a day with a warning hour is yellow; a day on which an alarm holds is
red. Score = the day's largest ``-log10 p``.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from detectors.base import Detector, Score
from detectors.pipeline import DayRow

__all__ = ["CuSum", "CuSumState", "cusum_path"]


def cusum_path(z: np.ndarray, r: float, w0: float = 0.0) -> np.ndarray:
    """One-sided CuSum statistic over a residual sequence (NaN residuals hold W).

    Examples
    --------
    >>> cusum_path(np.array([1.0, 1.0, -3.0, 2.0]), r=0.5).tolist()
    [0.5, 1.0, 0.0, 1.5]
    """
    out = np.empty(z.size)
    w = w0
    for i, x in enumerate(z.tolist()):
        if x == x:  # not NaN
            w = max(0.0, w + x - r)
        out[i] = w
    return out


@dataclass
class CuSumState:
    base: deque = field(default_factory=deque)  # per-day (24, 3) hourly resting stats
    w: float = 0.0
    warn_start: float | None = None  # hour index (global) of the current warning run start
    warn_max_at: float | None = None
    warn_max: float = -np.inf
    hour_index: int = 0
    null: np.ndarray | None = None
    r: float = 0.0
    c: np.ndarray | None = None
    s: np.ndarray | None = None
    dirty: bool = True


class CuSum(Detector):
    """Mishra online CuSum detector."""

    name = "cusum"

    def __init__(self, baseline_days: int = 28, min_baseline_days: int = 21, alpha: float = 0.01,
                 alarm_run_h: int = 48, alarm_peak_after_h: int = 24, min_minutes_per_hour: int = 10):
        self.baseline_days = baseline_days
        self.min_baseline_days = min_baseline_days
        self.alpha = alpha
        self.alarm_run_h = alarm_run_h
        self.alarm_peak_after_h = alarm_peak_after_h
        self.min_minutes = min_minutes_per_hour
        self.thresholds = (-np.log10(alpha), -np.log10(alpha))

    def new_state(self, participant_id: str) -> CuSumState:
        return CuSumState(base=deque(maxlen=self.baseline_days))

    def _refresh(self, st: CuSumState) -> None:
        b = np.stack(list(st.base))  # (days, 24, 3)
        tot = b.sum(axis=0)
        n = tot[:, 2]
        with np.errstate(all="ignore"):
            c = tot[:, 0] / n
            s = np.sqrt(np.maximum(tot[:, 1] / n - c * c, 0.0))
        s = np.where(s > 0.5, s, 0.5)
        st.c, st.s = c, s
        zb = self._z(b, c, s).ravel()
        zb_f = zb[np.isfinite(zb)]
        st.r = float(np.quantile(zb_f, 0.9) / 2) if zb_f.size else 0.5
        null = cusum_path(zb, st.r)
        st.null = np.sort(null[np.isfinite(zb)])
        st.dirty = False

    def _z(self, days: np.ndarray, c: np.ndarray, s: np.ndarray) -> np.ndarray:
        n = days[..., 2]
        with np.errstate(all="ignore"):
            m = days[..., 0] / n
        z = np.clip((m - c) / s, -4.0, 4.0)
        return np.where(n >= self.min_minutes, z, np.nan)

    def _p(self, st: CuSumState, w: np.ndarray) -> np.ndarray:
        null = st.null
        k = np.searchsorted(null, w, side="left")
        return (null.size - k + 1) / (null.size + 1)

    def score_one(self, st: CuSumState, row: DayRow) -> Score:
        hourly = row.rest_hourly
        if len(st.base) < self.min_baseline_days:
            if np.nansum(hourly[:, 2]) > 0:
                st.base.append(hourly)
                st.dirty = True
            st.hour_index += 24
            return Score(float("nan"), 0, ["CuSum baseline warm-up"])
        if st.dirty:
            self._refresh(st)
        z = self._z(hourly[None], st.c, st.s)[0]
        w = cusum_path(z, st.r, st.w)
        st.w = float(w[-1])
        p = self._p(st, w)
        p = np.where(np.isfinite(z) | (w > 0), p, 1.0)
        warn = p < self.alpha
        level = 0
        for h in range(24):
            gh = st.hour_index + h
            if warn[h]:
                if st.warn_start is None:
                    st.warn_start, st.warn_max, st.warn_max_at = gh, -np.inf, gh
                if w[h] > st.warn_max:
                    st.warn_max, st.warn_max_at = float(w[h]), gh
                run = gh - st.warn_start + 1
                if run > self.alarm_run_h and st.warn_max_at - st.warn_start > self.alarm_peak_after_h:
                    level = 2
            else:
                st.warn_start = None
        st.hour_index += 24
        if warn.any():
            level = max(level, 1)
        elif np.nansum(hourly[:, 2]) > 0:
            st.base.append(hourly)  # only warning-free days slide into the baseline
            st.dirty = True
        score = float(np.max(-np.log10(p)))
        reasons = [f"CuSum W {st.w:.1f}, p {10 ** -score:.3g}"] if level else []
        return Score(score, level, reasons)

    def describe(self) -> dict:
        return {"detector": self.name, "baseline_days": self.baseline_days, "alpha": self.alpha,
                "alarm": f"warning run > {self.alarm_run_h} h with peak > {self.alarm_peak_after_h} h after start"}
