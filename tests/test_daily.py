"""Daily features on hand-made minute data with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.daily import DAILY_FEATURES, sleep_window
from detectors.pipeline import FeaturePipeline

DAY = 86400
D0 = 19723 * DAY  # 2024-01-01 00:00 UTC


def _rows(streams: dict, offset: int = 0):
    fp = FeaturePipeline("P1", utc_offset_s=offset)
    rows = fp.update_many([(k, t, v) for k, (t, v) in streams.items()]) + fp.flush()
    return rows


def _minutes(days: int = 2, offset: int = 0):
    """Minute start times (UTC) and local minute-of-day for ``days`` local days."""
    m = np.arange(days * 1440)
    t = D0 + m * 60.0 - offset
    return t, m % 1440


def _bouts(mod: np.ndarray) -> np.ndarray:
    """Steps: 20-minute walking bouts (minutes 10-29) of every hour 07:00-22:59, 0 otherwise."""
    walk = (mod >= 7 * 60) & (mod < 23 * 60) & (mod % 60 >= 10) & (mod % 60 < 30)
    return np.where(walk, 80.0, 0.0)


def test_constant_hr_gives_that_value_for_every_heart_rate_feature():
    t, mod = _minutes(3)
    s = {"hr": (t + 5, np.full(t.size, 61.5)), "steps": (t, _bouts(mod))}
    rows = _rows(s)
    assert [r.day for r in rows] == [19723, 19724, 19725]
    for r in rows:
        for f in ("rhr_ns_bpm", "rhr_rest_bpm", "hr_mean_bpm"):
            assert r.values[f] == pytest.approx(61.5, abs=1e-9), f
    # the sleep window needs a whole evening: days 2 and 3
    for r in rows[1:]:
        assert r.values["rhr_sleep_bpm"] == pytest.approx(61.5, abs=1e-9)
    assert set(rows[0].values) == set(DAILY_FEATURES)


def test_step_minutes_are_excluded_from_the_nightsignal_mean():
    t, mod = _minutes(2)
    steps = _bouts(mod)
    night_walk = (mod < 7 * 60) & (mod % 97 == 0)  # a few steps in the night
    steps[night_walk] = 15.0
    hr = np.where(steps > 0, 100.0, 58.0)
    rows = _rows({"hr": (t + 5, hr), "steps": (t, steps)})
    for r in rows:
        assert r.values["rhr_ns_bpm"] == pytest.approx(58.0, abs=1e-9)
        assert r.values["hr_mean_bpm"] > 58.0  # the step minutes are in the day's mean
    # and the NightSignal night ends at 06:59: an elevated 07:00-07:09 does not enter
    hr2 = hr.copy()
    hr2[(mod >= 7 * 60) & (mod < 7 * 60 + 10)] = 120.0
    assert _rows({"hr": (t + 5, hr2), "steps": (t, steps)})[1].values["rhr_ns_bpm"] == pytest.approx(58.0)


def test_nightsignal_mean_is_sample_weighted():
    t, mod = _minutes(1)
    night = mod < 7 * 60
    # minute 0 has 4 samples at 70, every other night minute one sample at 60
    extra_t = D0 + np.array([15.0, 25.0, 35.0])
    ht = np.concatenate((t + 5, extra_t))
    hv = np.concatenate((np.where(night, 60.0, 60.0), np.full(3, 70.0)))
    hv[0] = 70.0
    o = np.argsort(ht)
    rows = _rows({"hr": (ht[o], hv[o]), "steps": (t, np.zeros(t.size))})
    n_night = int(night.sum())
    want = (60.0 * (n_night - 1) + 70.0 * 4) / (n_night + 3)
    assert rows[0].values["rhr_ns_bpm"] == pytest.approx(want, abs=1e-9)


def test_mishra_rest_blanks_the_step_minute_and_the_ten_after():
    t, mod = _minutes(2)
    steps = np.zeros(t.size)
    hr = np.full(t.size, 60.0)
    for start in (1440 + 300, 1440 + 900):  # day 2: steps at 05:00 and 15:00
        steps[start] = 50.0
        hr[start : start + 11] = 90.0  # elevated in the step minute and the 10 after
    hr[1440 + 900 + 11] = 75.0  # the 11th minute after is rest again
    rows = _rows({"hr": (t + 5, hr), "steps": (t, steps)})
    r = rows[1]
    n_rest = 1440 - 2 * 11
    assert r.values["rhr_rest_bpm"] == pytest.approx((60.0 * (n_rest - 1) + 75.0) / n_rest, abs=1e-9)
    hourly = r.rest_hourly
    assert hourly[:, 2].sum() == n_rest
    assert hourly[5, 2] == 60 - 11 and hourly[15, 2] == 60 - 11
    assert hourly[5, 0] / hourly[5, 2] == pytest.approx(60.0)


def test_sleep_window_detection():
    t, mod = _minutes(2)
    steps = _bouts(mod)
    rows = _rows({"hr": (t + 5, np.full(t.size, 60.0)), "steps": (t, steps)})
    # last bout ends 22:30, first bout starts 07:10: quiet 22:30-07:10
    assert rows[1].values["sleep_min"] == 8 * 60 + 40
    # day 1 has no evening before it: 00:00-07:10
    assert rows[0].values["sleep_min"] == 7 * 60 + 10


def test_sleep_window_function_merges_short_gaps_and_needs_three_hours():
    q = np.zeros(1080, bool)
    q[100:250] = True
    q[265:400] = True  # gap of 15 minutes: merged
    assert sleep_window(q) == (100, 400)
    q2 = np.zeros(1080, bool)
    q2[100:250] = True
    q2[266:400] = True  # gap of 16: not merged, longest is 150 min < 180
    assert sleep_window(q2) is None
    q3 = np.zeros(1080, bool)
    q3[10:100] = True
    q3[500:700] = True
    assert sleep_window(q3) == (500, 700)
    assert sleep_window(np.zeros(1080, bool)) is None


def test_no_sleep_window_without_activity_stream():
    t, _ = _minutes(2)
    rows = _rows({"hr": (t + 5, np.full(t.size, 60.0))})
    assert np.isnan(rows[1].values["sleep_min"]) and np.isnan(rows[1].values["rhr_sleep_bpm"])
    assert np.isnan(rows[1].values["steps"]) and np.isnan(rows[1].values["active_min"])
    assert rows[1].values["rhr_ns_bpm"] == pytest.approx(60.0)


def _beats(t0: float, t1: float, pattern=(800.0, 850.0)):
    ibi = np.resize(np.asarray(pattern), int((t1 - t0) / 0.8) + 2)
    bt = t0 + np.cumsum(ibi) / 1000.0
    keep = bt < t1
    return bt[keep], ibi[keep]


def test_hrv_rmssd_and_sdnn_from_a_known_ibi_sequence():
    t, mod = _minutes(2)
    bt, ibi = _beats(D0 + DAY, D0 + DAY + 7 * 3600)  # day 2, 00:00-07:00 (the fallback night)
    rows = _rows({"hr": (t + 5, np.full(t.size, 60.0)), "ibi": (bt, ibi)})
    r = rows[1]
    assert r.values["hrv_rmssd_ms"] == pytest.approx(50.0, abs=1e-6)
    assert r.values["hrv_sdnn_ms"] == pytest.approx(25.0, abs=1e-3)
    assert np.isnan(rows[0].values["hrv_rmssd_ms"])  # no beats on day 1


def test_hrv_needs_enough_successive_differences():
    t, _ = _minutes(2)
    bt, ibi = _beats(D0 + DAY + 3600, D0 + DAY + 3600 + 20)  # ~24 beats: < 30 differences
    rows = _rows({"hr": (t + 5, np.full(t.size, 60.0)), "ibi": (bt, ibi)})
    assert np.isnan(rows[1].values["hrv_rmssd_ms"])


def test_resp_and_temp_are_night_means():
    t, mod = _minutes(2)
    night = mod < 7 * 60
    rows = _rows({
        "hr": (t + 5, np.full(t.size, 60.0)),
        "resp": (t + 10, np.where(night, 14.0, 20.0)),
        "temp": (t + 20, np.where(night, 35.5, 33.0)),
    })
    assert rows[1].values["resp_rpm"] == pytest.approx(14.0)
    assert rows[1].values["temp_c"] == pytest.approx(35.5)


def test_steps_active_minutes_and_capture_fractions():
    t, mod = _minutes(2)
    steps = _bouts(mod)
    # not worn 03:30-07:00 (half the night) and 15:30-24:00: half of the day's minutes
    worn = ~((mod >= 15 * 60 + 30) & (mod < 24 * 60)) & ~((mod >= 3 * 60 + 30) & (mod < 7 * 60))
    rows = _rows({"hr": (t[worn] + 5, np.full(worn.sum(), 60.0)), "steps": (t, steps)})
    r = rows[1]
    assert r.values["steps"] == 16 * 20 * 80.0
    assert r.values["active_min"] == 16 * 20
    assert r.values["hr_capture"] == pytest.approx(0.5)
    assert r.values["night_capture"] == pytest.approx(0.5)


def test_day_without_any_data_between_days_is_emitted_empty():
    t, mod = _minutes(3)
    keep = (t < D0 + DAY) | (t >= D0 + 2 * DAY)
    rows = _rows({"hr": (t[keep] + 5, np.full(keep.sum(), 60.0)), "steps": (t[keep], np.zeros(keep.sum()))})
    assert [r.day for r in rows] == [19723, 19724, 19725]
    gap = rows[1].values
    assert gap["hr_capture"] == 0.0 and np.isnan(gap["rhr_ns_bpm"]) and np.isnan(gap["steps"])


@pytest.mark.parametrize("offset", [3600, -5 * 3600, 9 * 3600 + 1800])
def test_utc_offset_shifts_the_night_window(offset):
    t, mod = _minutes(2, offset=offset)  # local minutes: mod is local clock time
    hr = np.where(mod < 7 * 60, 55.0, 80.0)
    s = {"hr": (t + 5, hr), "steps": (t, np.zeros(t.size))}
    rows = _rows(s, offset=offset)
    assert [r.day for r in rows] == [19723, 19724]
    assert rows[0].day_start == D0 - offset
    assert rows[1].values["rhr_ns_bpm"] == pytest.approx(55.0)
    assert rows[1].values["night_capture"] == 1.0
    # read as UTC the same samples give a different night
    assert _rows(s, offset=0)[1].values["rhr_ns_bpm"] != pytest.approx(55.0)
