"""Online CuSum on hourly resting heart rate (Mishra et al. 2020, Nat Biomed Eng 4:1208).

Following the published R code (mwgrassgreen/WearableDetection):

- resting minutes: no steps in the minute or the 10 before (pipeline's hourly stats);
- baseline: the last ``baseline_days`` (28) accepted days; for each hour of
  day ``h`` the mean ``c_h`` and SD ``s_h`` of the baseline's resting minutes;
- hourly residual ``z = (hour mean - c_h) / s_h`` clipped to [-4, 4];
- ``W_t = max(0, W_{t-1} + z_t - r)`` with ``r = quantile(baseline z, 0.9) / 2``;
- the p-value of ``W`` after ``k`` hours of a run (``W > 0`` since hour
  ``k = 0``) is the share of the baseline's own runs whose maximum over their
  first ``k + 1`` hours reaches ``W``; a run longer than every baseline run has
  p = 0 (the empirical null of the published code, run length by run length);
  a *warning* hour has p < ``alpha`` (0.01);
- days with no warning slide into the baseline; days with a warning do not;
- *alarm*: a warning run lasting more than 48 h whose maximum comes more than
  24 h after its start.

Levels: yellow on the day a warning run first reaches ``yellow_run_h`` (24 h),
red on the day the alarm condition is first met; an alert is raised once per
warning run (``alert_once``), the following days of the run carry the score
but no new alert: a CuSum alarm is an event, and counting every day of a
weeks-long run as an alert day gave 10.7 false alert days per month on a
simulated cohort (2.4 with events). Score = the day's largest
``-log10 p``. Two choices of ours for a monitor that runs for months: a
warning run lasting ``reset_after_days`` (14) days resets ``W`` to 0 and lets
days into the baseline again (otherwise ``W`` drains by only ``r`` per hour
after an illness and the participant stays red for weeks), and one warning hour
alone does not colour a day (24 hourly tests a day at p < 0.01 would flag about
one healthy day in five).
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
    null: np.ndarray | None = None  # (baseline runs, run length): running max of W
    run_len: int = 0  # hours since the current run (W > 0) began
    warn_run_h: int = 0
    run_alerted: int = 0  # highest level already raised for the current warning run
    r: float = 0.0
    c: np.ndarray | None = None
    s: np.ndarray | None = None
    dirty: bool = True


class CuSum(Detector):
    """Mishra online CuSum detector."""

    name = "cusum"

    def __init__(self, baseline_days: int = 28, min_baseline_days: int = 21, alpha: float = 0.01,
                 alarm_run_h: int = 48, alarm_peak_after_h: int = 24, min_minutes_per_hour: int = 10,
                 yellow_run_h: int = 24, reset_after_days: int = 14, alert_once: bool = True):
        self.alert_once = alert_once
        self.yellow_run_h = yellow_run_h
        self.reset_after_days = reset_after_days
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
        st.null = self._run_null(cusum_path(zb, st.r), np.isfinite(zb))
        st.dirty = False

    def _run_null(self, w: np.ndarray, valid: np.ndarray) -> np.ndarray:
        """Null of the running maximum of W, run length by run length (published code).

        Row j, column k: max of W over the first k+1 hours of baseline run j (NaN
        where the baseline ends first). Columns span the longest baseline run; a
        current run longer than that has p = 0.
        """
        w = w[valid]
        pos = w > 0
        starts = np.flatnonzero(pos & np.concatenate(([True], ~pos[:-1])))
        if starts.size == 0:
            return np.zeros((0, 0))
        ends = np.flatnonzero(pos & np.concatenate((~pos[1:], [True]))) + 1
        longest = int((ends - starts).max())
        idx = starts[:, None] + np.arange(longest)[None, :]
        vals = np.where(idx < w.size, w[np.minimum(idx, w.size - 1)], np.nan)
        return np.fmax.accumulate(vals, axis=1)

    def _z(self, days: np.ndarray, c: np.ndarray, s: np.ndarray) -> np.ndarray:
        n = days[..., 2]
        with np.errstate(all="ignore"):
            m = days[..., 0] / n
        z = np.clip((m - c) / s, -4.0, 4.0)
        return np.where(n >= self.min_minutes, z, np.nan)

    def _p1(self, st: CuSumState, w: float, k: int) -> float:
        null = st.null
        if null.shape[1] == 0 or k >= null.shape[1]:
            return 0.0  # longer than any run of the baseline
        col = null[:, k]
        col = col[np.isfinite(col)]
        return float(np.mean(col >= w)) if col.size else 0.0

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
        p = np.ones(24)
        level = 0
        for h in range(24):
            gh = st.hour_index + h
            if w[h] > 0:
                p[h] = self._p1(st, float(w[h]), st.run_len)
                st.run_len += 1
            else:
                st.run_len = 0
            if p[h] < self.alpha:
                if st.warn_start is None:
                    st.warn_start, st.warn_max, st.warn_max_at = gh, -np.inf, gh
                if w[h] > st.warn_max:
                    st.warn_max, st.warn_max_at = float(w[h]), gh
                st.warn_run_h = gh - st.warn_start + 1
                hit = 0
                if st.warn_run_h >= self.yellow_run_h:
                    hit = 1
                if st.warn_run_h > self.alarm_run_h and st.warn_max_at - st.warn_start > self.alarm_peak_after_h:
                    hit = 2
                if hit > (st.run_alerted if self.alert_once else 0):
                    level = max(level, hit)
                    st.run_alerted = max(st.run_alerted, hit)
            else:
                st.warn_start, st.warn_run_h, st.run_alerted = None, 0, 0
        st.hour_index += 24
        warned = bool((p < self.alpha).any())
        reset = st.warn_run_h >= 24 * self.reset_after_days
        if reset:  # a lasting change becomes the new normal
            st.w, st.run_len, st.warn_start, st.warn_run_h, st.run_alerted = 0.0, 0, None, 0, 0
        if (not warned or reset) and np.nansum(hourly[:, 2]) > 0:
            st.base.append(hourly)  # warning-free days slide into the baseline
            st.dirty = True
        score = float(np.max(-np.log10(np.maximum(p, 1e-4))))  # p = 0 (longer than any baseline run) scores 4
        reasons = [f"CuSum W {float(w.max()):.1f}, p {10 ** -score:.3g}, warning for {st.warn_run_h} h"] if level else []
        return Score(score, level, reasons)

    def describe(self) -> dict:
        return {"detector": self.name, "baseline_days": self.baseline_days, "alpha": self.alpha,
                "yellow": f"warning run >= {self.yellow_run_h} h",
                "alarm": f"warning run > {self.alarm_run_h} h with peak > {self.alarm_peak_after_h} h after start",
                "reset_after_days": self.reset_after_days, "null": "per run length, baseline runs"}
