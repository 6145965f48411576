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

The main sleep window is the longest run of quiet, worn, low-heart-rate minutes
(zero steps, HR at or below the 40th percentile of the 18:00-12:00 frame plus
3 bpm) between 18:00 the evening before and 12:00, after closing interruptions
of up to 15 minutes; it must last at least 3 hours. Without any activity stream (no steps, no
ENMO) it falls back to 00:00-06:59 and ``sleep_min`` is missing. Night-time
HRV, respiration and temperature fall back to 00:00-06:59 too.

Per-hour resting-HR statistics (sum, sum of squares, count of resting minute
means for each local hour) are kept for the CuSum detector.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from detectors.epochs import _COL, QUANTUM, Epochs

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
SLEEP_HR_PCT = 40.0  # sleep minutes have HR at or below this percentile of the frame (+ margin)
SLEEP_HR_MARGIN_BPM = 3.0
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


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / np.where(den > 0, den, 1.0), np.nan)


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
    keep = np.concatenate(([True], (s[1:] - e[:-1]) > max_gap))
    gs = s[keep]
    ge = np.concatenate((e[np.flatnonzero(keep[1:])], [e[-1]]))
    lens = ge - gs
    k = int(np.argmax(lens))
    if lens[k] < min_len:
        return None
    return int(gs[k]), int(ge[k])


EVE = MIN_PER_DAY - SLEEP_FROM_MIN  # minutes of the evening before kept with each day (18:00-24:00)
FRAME = EVE + MIN_PER_DAY  # a day's frame: 18:00 the evening before to 24:00
_WIN_COLS = ["ibi_nd", "ibi_ssd", "ibi_n", "ibi_sum", "ibi_sq", "resp_sum", "resp_n", "temp_sum", "temp_n"]
_WIN_IDX = [_COL[c] for c in _WIN_COLS]
_DAY_COLS = ["hr_sum", "hr_n", "enmo_sum", "enmo_n"]
_DAY_IDX = [_COL[c] for c in _DAY_COLS]


def _empty_day(ncol: int) -> np.ndarray:
    a = np.zeros((ncol, MIN_PER_DAY))
    a[_COL["steps"]] = np.nan
    return a


def _nan_pct_rows(x: np.ndarray, pct: float) -> np.ndarray:
    """Per-row percentile ignoring NaN (linear interpolation, as np.nanpercentile); NaN for empty rows."""
    srt = np.sort(x, axis=1)  # NaN last
    n = np.isfinite(x).sum(axis=1)
    pos = (np.maximum(n, 1) - 1) * (pct / 100.0)
    lo = np.floor(pos).astype(np.int64)
    hi = np.minimum(lo + 1, np.maximum(n - 1, 0))
    rows = np.arange(x.shape[0])
    frac = pos - lo
    v = srt[rows, lo] * (1 - frac) + srt[rows, hi] * frac
    return np.where(n > 0, v, np.nan)


def features_many(frames: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray, np.ndarray]:
    """Features of D days at once.

    ``frames`` is (D, C, FRAME): for each day, the epoch columns of its minutes
    from 18:00 the evening before to midnight ending the day. Returns (feature
    arrays of shape (D,), rest_hourly (D, 24, 3), resting-minute counts (D,)).
    Every reduction runs along one day's minutes alone, so a day's features do
    not depend on which other days share the batch.
    """
    D = frames.shape[0]
    c = lambda name: frames[:, _COL[name], :]  # noqa: E731
    T = slice(EVE, FRAME)
    NS = slice(EVE, EVE + NIGHT_END_MIN)
    hr_sum, hr_n, enmo_n = c("hr_sum"), c("hr_n"), c("enmo_n")
    steps = c("steps")  # x SCALE, NaN = no sample
    has_steps = np.isfinite(steps[:, T]).any(axis=1)
    has_enmo = (enmo_n[:, T] > 0).any(axis=1)
    worn = hr_n > 0
    with np.errstate(invalid="ignore", divide="ignore"):
        hr_min = hr_sum / hr_n * QUANTUM
        if has_enmo.any():
            enmo_quiet = np.nan_to_num(c("enmo_sum") / enmo_n * QUANTUM, nan=np.inf) < ENMO_QUIET_MG
        else:
            enmo_quiet = np.zeros(steps.shape, dtype=bool)
    zero_step = np.where(has_steps[:, None], steps == 0, np.where(has_enmo[:, None], enmo_quiet, True))
    v: dict[str, np.ndarray] = {}
    sel = (zero_step[:, NS] & worn[:, NS]).astype(float)
    v["rhr_ns_bpm"] = _ratio((hr_sum[:, NS] * sel).sum(axis=1), (hr_n[:, NS] * sel).sum(axis=1)) * QUANTUM
    # Mishra: a minute rests when it and the 10 before have no steps (unknown counts as none)
    active = np.where(has_steps[:, None], steps > 0, ~zero_step)  # NaN > 0 is False
    cs = np.cumsum(active, axis=1, dtype=np.int32)
    k = MISHRA_BLANK_MIN + 1
    quiet11 = np.zeros_like(active)
    quiet11[:, k - 1 :] = (cs[:, k - 1 :] - np.concatenate((np.zeros((D, 1), np.int32), cs[:, : -k]), axis=1)) == 0
    rest_t = (quiet11 & zero_step & worn)[:, T]
    hm = np.where(rest_t, hr_min[:, T], 0.0)
    nrest = rest_t.sum(axis=1)
    v["rhr_rest_bpm"] = _ratio(hm.sum(axis=1), nrest)
    rest_hourly = np.stack([
        hm.reshape(D, 24, 60).sum(axis=2),
        (hm * hm).reshape(D, 24, 60).sum(axis=2),
        rest_t.reshape(D, 24, 60).sum(axis=2).astype(float),
    ], axis=2)
    day_tot = frames[:, _DAY_IDX, T].sum(axis=2)
    v["hr_mean_bpm"] = _ratio(day_tot[:, 0], day_tot[:, 1]) * QUANTUM
    # main sleep window, 18:00 before to 12:00 (run-length logic is per day)
    hi = EVE + SLEEP_TO_MIN
    wearing = worn | (enmo_n > 0) | (c("temp_n") > 0)
    # sleep is quiet *and* low heart rate: sedentary awake hours have zero steps too
    hr_cut = _nan_pct_rows(hr_min[:, :hi], SLEEP_HR_PCT) + SLEEP_HR_MARGIN_BPM
    low_hr = ~worn[:, :hi] | (hr_min[:, :hi] <= hr_cut[:, None])
    quiet = zero_step[:, :hi] & wearing[:, :hi] & low_hr
    win_mask = np.zeros((D, FRAME))
    sleep_min = np.full(D, np.nan)
    rhr_sleep = np.full(D, np.nan)
    for d in range(D):
        if has_steps[d] or has_enmo[d]:
            sw = sleep_window(quiet[d])
            if sw is not None:
                win_mask[d, sw[0] : sw[1]] = 1.0
                sleep_min[d] = float(sw[1] - sw[0])
                hs = hr_min[d, sw[0] : sw[1]]
                fin = np.isfinite(hs)
                if fin.sum() >= MIN_HR_MINUTES_NIGHT:
                    rhr_sleep[d] = float(hs[fin].sum() / fin.sum())
                continue
            sleep_min[d] = 0.0 if worn[d, :hi].sum() >= 360 else np.nan
        win_mask[d, NS] = 1.0  # fall back to the NightSignal night
    v["sleep_min"] = sleep_min
    v["rhr_sleep_bpm"] = rhr_sleep
    w = np.einsum("dm,dcm->dc", win_mask, frames[:, _WIN_IDX, :])  # window sums, one pass
    nd, n = w[:, 0], w[:, 2]
    with np.errstate(invalid="ignore"):
        v["hrv_rmssd_ms"] = np.where(nd >= MIN_IBI_DIFFS, np.sqrt(_ratio(w[:, 1], nd)) * QUANTUM, np.nan)
        m = _ratio(w[:, 3], n)
        v["hrv_sdnn_ms"] = np.where(n >= 2 * MIN_IBI_DIFFS, np.sqrt(np.maximum(_ratio(w[:, 4], n) - m * m, 0.0)) * QUANTUM, np.nan)
    v["resp_rpm"] = _ratio(w[:, 5], w[:, 6]) * QUANTUM
    v["temp_c"] = _ratio(w[:, 7], w[:, 8]) * QUANTUM
    st = steps[:, T]
    v["steps"] = np.where(has_steps, np.nansum(st, axis=1) * QUANTUM, np.nan)
    v["active_min"] = np.where(has_steps, (st > 0).sum(axis=1).astype(float), np.nan)
    v["enmo_mg"] = _ratio(day_tot[:, 2], day_tot[:, 3]) * QUANTUM
    v["hr_capture"] = worn[:, T].mean(axis=1)
    v["night_capture"] = worn[:, NS].mean(axis=1)
    return v, rest_hourly, nrest


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

    # A worker pickles this state after every message: keep only the epoch columns a participant
    # actually uses (an HR + steps device fills 3 of 14), so the state is a few times smaller.
    def __getstate__(self) -> dict:
        d = dict(self.__dict__)
        empty = _empty_day(len(_COL))
        d["_days"] = {
            k: {c: a[c].copy() for c in range(a.shape[0]) if not np.array_equal(a[c], empty[c], equal_nan=True)}
            for k, a in self._days.items()
        }
        return d

    def __setstate__(self, d: dict) -> None:
        days = {}
        for k, cols in d["_days"].items():
            a = _empty_day(len(_COL))
            for c, v in cols.items():
                a[c] = v
            days[k] = a
        d["_days"] = days
        self.__dict__.update(d)

    def update(self, epochs: Epochs) -> list[DayFeatures]:
        """Add closed minutes; return the days they complete (in order, gaps included)."""
        if len(epochs) == 0:
            return []
        local_min = ((epochs.minute + self.utc_offset_s) // 60).astype(np.int64)
        day = local_min // MIN_PER_DAY
        pos = local_min - day * MIN_PER_DAY
        data_t = epochs.data.T  # (columns, minutes)
        last_complete = None
        cuts = np.flatnonzero(np.diff(day)) + 1
        for a, b in zip(np.concatenate(([0], cuts)).tolist(), np.concatenate((cuts, [day.size])).tolist(), strict=True):
            d = int(day[a])
            if self._next_emit is not None and d < self._next_emit:
                continue  # already emitted (cannot happen with closed epochs)
            arr = self._days.get(d)
            if arr is None:
                arr = _empty_day(data_t.shape[0])
                self._days[d] = arr
                if self._first_day is None:
                    self._first_day = d
                    self._next_emit = d
            arr[:, pos[a] : pos[b - 1] + 1] = data_t[:, a:b]  # closed minutes are contiguous
            if pos[b - 1] == MIN_PER_DAY - 1:  # last minute of the day closed
                last_complete = d
        return self._emit_until(last_complete) if last_complete is not None else []

    def _emit_until(self, last: int) -> list[DayFeatures]:
        if self._next_emit is None or self._next_emit > last:
            return []
        days = list(range(self._next_emit, last + 1))
        ncol = len(_COL)
        frames = np.empty((len(days), ncol, FRAME))
        for i, d in enumerate(days):
            prev, cur = self._days.get(d - 1), self._days.get(d)
            frames[i, :, :EVE] = _empty_day(ncol)[:, SLEEP_FROM_MIN:] if prev is None else prev[:, SLEEP_FROM_MIN:]
            frames[i, :, EVE:] = _empty_day(ncol) if cur is None else cur
        v, rest_hourly, nrest = features_many(frames)
        out = []
        for i, d in enumerate(days):
            out.append(DayFeatures(
                day=d,
                day_start=float(d * DAY - self.utc_offset_s),
                values={k: float(a[i]) for k, a in v.items()},
                rest_hourly=rest_hourly[i],
                rest_minutes=int(nrest[i]),
            ))
        self._next_emit = last + 1
        for k in [k for k in self._days if k < last]:  # keep only the last day (for the evening)
            del self._days[k]
        return out

    def flush(self) -> list[DayFeatures]:
        """Emit the last, partial day (end of recording)."""
        if not self._days:
            return []
        return self._emit_until(max(self._days))
