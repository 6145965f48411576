"""Nightly/daily features from closed minute epochs, per participant, in event time.

A *day* is a local calendar day (the participant's ``utc_offset_s`` applied). The
features of day ``d`` describe the night that ends on the morning of ``d`` and
the waking hours of ``d``; they are computed once every minute of ``d`` is closed,
so they use nothing recorded after day ``d``.

Features (units in the names):

====================  =========================================================
``rhr_ns_bpm``        NightSignal resting HR: sample-weighted mean HR over
                      00:00-06:59 minutes with zero steps (Alavi 2022)
``rhr_rest_bpm``      Mishra resting HR: mean minute HR over minutes with no
                      steps in that minute and the 10 before (Mishra 2020)
``rhr_sleep_bpm``     mean minute HR over the main sleep window
``hr_mean_bpm``       mean HR over the day
``hrv_rmssd_ms``      RMSSD of successive beat intervals in the sleep window
``hrv_sdnn_ms``       SD of beat intervals in the sleep window
``resp_rpm``          mean respiratory rate in the sleep window
``temp_c``            mean skin temperature in the sleep window
``steps``             steps over the day
``active_min``        minutes with steps > 0
``sleep_min``         length of the main sleep window (minutes)
``enmo_mg``           mean accelerometer activity over the day
``hr_capture``        share of the day's minutes with HR (0-1)
``night_capture``     share of 00:00-06:59 minutes with HR (0-1)
====================  =========================================================

The main sleep window is the longest run of quiet, worn minutes between 18:00
the evening before and 12:00, after closing interruptions of up to 15 minutes;
it must last at least 3 hours. Without any activity stream (no steps, no
ENMO) it falls back to 00:00-06:59 and ``sleep_min`` is missing. Night-time
HRV, respiration and temperature fall back to 00:00-06:59 too.

Per-hour resting-HR statistics (sum, sum of squares, count of resting minute
means for each local hour) are kept for the CuSum detector.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from detectors.epochs import _COL, Epochs

__all__ = ["DAILY_FEATURES", "DayFeatures", "DailyFeatureBuilder", "DAY"]

DAY = 86400
MIN_PER_DAY = 1440
NIGHT_END_MIN = 7 * 60  # NightSignal night: 00:00-06:59
SLEEP_FROM_MIN = 18 * 60  # evening before
SLEEP_TO_MIN = 12 * 60
SLEEP_MIN_LEN = 180
SLEEP_MAX_GAP = 15
MISHRA_BLANK_MIN = 10
ENMO_QUIET_MG = 20.0
MIN_IBI_DIFFS = 30
MIN_HR_MINUTES_NIGHT = 30

DAILY_FEATURES = (
    "rhr_ns_bpm", "rhr_rest_bpm", "rhr_sleep_bpm", "hr_mean_bpm",
    "hrv_rmssd_ms", "hrv_sdnn_ms", "resp_rpm", "temp_c",
    "steps", "active_min", "sleep_min", "enmo_mg",
    "hr_capture", "night_capture",
)  # fmt: skip


@dataclass
class DayFeatures:
    """Raw features of one local day. ``day`` = days since 1970-01-01 (local)."""

    day: int
    day_start: float  # UTC seconds of local midnight starting the day
    values: dict[str, float]
    rest_hourly: np.ndarray  # (24, 3): sum, sum of squares, count of resting minute HR
    rest_minutes: int = 0


def _ratio(num: float, den: float) -> float:
    return float(num / den) if den > 0 else float("nan")


def _runs(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Start and end (exclusive) of True runs."""
    m = np.concatenate(([False], mask, [False])).astype(np.int8)
    d = np.diff(m)
    return np.flatnonzero(d == 1), np.flatnonzero(d == -1)


def sleep_window(quiet: np.ndarray, max_gap: int = SLEEP_MAX_GAP, min_len: int = SLEEP_MIN_LEN) -> tuple[int, int] | None:
    """Longest run of quiet minutes after closing gaps of up to ``max_gap``; None if < ``min_len``.

    Examples
    --------
    >>> q = np.zeros(600, bool); q[100:300] = True; q[305:400] = True
    >>> sleep_window(q)
    (100, 400)
    """
    s, e = _runs(quiet)
    if s.size == 0:
        return None
    # merge runs separated by short gaps
    keep = np.concatenate(([True], (s[1:] - e[:-1]) > max_gap))
    gs = s[keep]
    ge = np.concatenate((e[np.flatnonzero(keep[1:])], [e[-1]]))
    lens = ge - gs
    k = int(np.argmax(lens))
    if lens[k] < min_len:
        return None
    return int(gs[k]), int(ge[k])


@dataclass
class DailyFeatureBuilder:
    """Turn closed minute epochs into daily features.

    Parameters
    ----------
    utc_offset_s : int
        Participant's offset of local time from UTC (local = UTC + offset).
    """

    utc_offset_s: int = 0
    _days: dict[int, np.ndarray] = field(default_factory=dict)
    _first_day: int | None = None
    _next_emit: int | None = None

    def update(self, epochs: Epochs) -> list[DayFeatures]:
        """Add closed minutes; return the days they complete (in order, gaps included)."""
        if len(epochs) == 0:
            return []
        local_min = ((epochs.minute + self.utc_offset_s) // 60).astype(np.int64)
        day = local_min // MIN_PER_DAY
        pos = local_min - day * MIN_PER_DAY
        out: list[DayFeatures] = []
        for d in np.unique(day).tolist():
            sel = day == d
            if self._next_emit is not None and d < self._next_emit:
                continue  # already emitted (cannot happen with closed epochs)
            arr = self._days.get(d)
            if arr is None:
                arr = np.zeros((MIN_PER_DAY, epochs.data.shape[1]))
                arr[:, _COL["steps"]] = np.nan
                self._days[d] = arr
                if self._first_day is None:
                    self._first_day = d
                    self._next_emit = d
            arr[pos[sel]] = epochs.data[sel]
            if pos[sel][-1] == MIN_PER_DAY - 1:  # last minute of the day closed
                out.extend(self._emit_until(d))
        return out

    def _emit_until(self, last: int) -> list[DayFeatures]:
        out = []
        while self._next_emit is not None and self._next_emit <= last:
            d = self._next_emit
            out.append(self._features(d))
            self._next_emit = d + 1
        for k in [k for k in self._days if k < last]:  # keep only the last day (for the evening)
            del self._days[k]
        return out

    def flush(self) -> list[DayFeatures]:
        """Emit the last, partial day (end of recording)."""
        if not self._days:
            return []
        return self._emit_until(max(self._days))

    def _empty(self, ncol: int) -> np.ndarray:
        a = np.zeros((MIN_PER_DAY, ncol))
        a[:, _COL["steps"]] = np.nan
        return a

    def _features(self, d: int) -> DayFeatures:
        ncol = len(_COL)
        cur = self._days.get(d)
        cur = self._empty(ncol) if cur is None else cur
        prev = self._days.get(d - 1)
        prev = self._empty(ncol) if prev is None else prev
        both = np.concatenate((prev, cur))  # 2880 minutes: yesterday + today
        hr_sum, hr_n = both[:, _COL["hr_sum"]], both[:, _COL["hr_n"]]
        steps = both[:, _COL["steps"]]
        enmo_n = both[:, _COL["enmo_n"]]
        with np.errstate(invalid="ignore", divide="ignore"):
            hr_min = hr_sum / hr_n  # per-minute mean, NaN without samples
            enmo_min = both[:, _COL["enmo_sum"]] / enmo_n
        today = slice(MIN_PER_DAY, 2 * MIN_PER_DAY)
        has_steps = bool(np.isfinite(steps[today]).any())
        has_enmo = bool((enmo_n[today] > 0).any())
        if has_steps:
            zero_step = steps == 0
        elif has_enmo:
            zero_step = np.nan_to_num(enmo_min, nan=np.inf) < ENMO_QUIET_MG
        else:
            zero_step = np.ones(both.shape[0], dtype=bool)
        worn = hr_n > 0
        v: dict[str, float] = {}
        # NightSignal resting HR: raw samples, 00:00-06:59, zero-step minutes
        ns = slice(MIN_PER_DAY, MIN_PER_DAY + NIGHT_END_MIN)
        sel = zero_step[ns] & worn[ns]
        v["rhr_ns_bpm"] = _ratio(hr_sum[ns][sel].sum(), hr_n[ns][sel].sum())
        # Mishra resting: no steps in the minute and the previous 10 (unknown counts as none)
        st0 = np.nan_to_num(steps, nan=0.0) if has_steps else (~zero_step).astype(float)
        win = np.lib.stride_tricks.sliding_window_view(st0, MISHRA_BLANK_MIN + 1)
        quiet11 = np.zeros(both.shape[0], dtype=bool)
        quiet11[MISHRA_BLANK_MIN:] = win.max(axis=1) == 0
        rest = quiet11 & zero_step & worn
        rest_t = rest[today]
        hm = hr_min[today]
        v["rhr_rest_bpm"] = float(hm[rest_t].mean()) if rest_t.any() else float("nan")
        hours = np.arange(MIN_PER_DAY) // 60
        x = np.where(rest_t, hm, 0.0)
        rest_hourly = np.stack(
            [
                np.bincount(hours, weights=x, minlength=24),
                np.bincount(hours, weights=x * x, minlength=24),
                np.bincount(hours, weights=rest_t.astype(float), minlength=24),
            ],
            axis=1,
        )
        v["hr_mean_bpm"] = _ratio(hr_sum[today].sum(), hr_n[today].sum())
        # main sleep window, 18:00 yesterday to 12:00 today
        lo, hi = SLEEP_FROM_MIN, MIN_PER_DAY + SLEEP_TO_MIN
        win_sl: slice
        if has_steps or has_enmo:
            wearing = worn | (enmo_n > 0) | (both[:, _COL["temp_n"]] > 0)
            sw = sleep_window(zero_step[lo:hi] & wearing[lo:hi])
            if sw is not None:
                win_sl = slice(lo + sw[0], lo + sw[1])
                v["sleep_min"] = float(sw[1] - sw[0])
                hs = hr_min[win_sl]
                v["rhr_sleep_bpm"] = float(np.nanmean(hs)) if np.isfinite(hs).sum() >= MIN_HR_MINUTES_NIGHT else float("nan")
            else:
                win_sl = ns
                v["sleep_min"] = 0.0 if (worn[lo:hi].sum() >= 360) else float("nan")
                v["rhr_sleep_bpm"] = float("nan")
        else:
            win_sl = ns
            v["sleep_min"] = float("nan")
            v["rhr_sleep_bpm"] = float("nan")
        b = both[win_sl]
        nd = b[:, _COL["ibi_nd"]].sum()
        v["hrv_rmssd_ms"] = float(np.sqrt(b[:, _COL["ibi_ssd"]].sum() / nd)) if nd >= MIN_IBI_DIFFS else float("nan")
        n = b[:, _COL["ibi_n"]].sum()
        if n >= 2 * MIN_IBI_DIFFS:
            m = b[:, _COL["ibi_sum"]].sum() / n
            v["hrv_sdnn_ms"] = float(np.sqrt(max(b[:, _COL["ibi_sq"]].sum() / n - m * m, 0.0)))
        else:
            v["hrv_sdnn_ms"] = float("nan")
        v["resp_rpm"] = _ratio(b[:, _COL["resp_sum"]].sum(), b[:, _COL["resp_n"]].sum())
        v["temp_c"] = _ratio(b[:, _COL["temp_sum"]].sum(), b[:, _COL["temp_n"]].sum())
        st = steps[today]
        v["steps"] = float(np.nansum(st)) if has_steps else float("nan")
        v["active_min"] = float((st > 0).sum()) if has_steps else float("nan")
        v["enmo_mg"] = _ratio(both[today, _COL["enmo_sum"]].sum(), enmo_n[today].sum())
        v["hr_capture"] = float(worn[today].mean())
        v["night_capture"] = float(worn[ns].mean())
        return DayFeatures(
            day=d,
            day_start=float(d * DAY - self.utc_offset_s),
            values=v,
            rest_hourly=rest_hourly,
            rest_minutes=int(rest_t.sum()),
        )
