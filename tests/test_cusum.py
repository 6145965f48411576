"""Mishra online CuSum: statistic known answer, stationary behaviour, warning -> alarm on a sustained rise."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.cusum import CuSum, cusum_path
from detectors.pipeline import DayRow

CIRCADIAN = 60.0 + 5.0 * np.sin(np.arange(24) / 24 * 2 * np.pi)


def _hourly(rng, shift: float = 0.0, n: int = 30, sd: float = 2.0, missing_hours=()) -> np.ndarray:
    """(24, 3) resting stats: sum, sum of squares, count of ``n`` resting minutes per hour."""
    x = rng.normal((CIRCADIAN + shift)[:, None], sd, (24, n))
    h = np.stack([x.sum(1), (x * x).sum(1), np.full(24, float(n))], axis=1)
    for k in missing_hours:
        h[k] = 0.0
    return h


def _row(day: int, hourly: np.ndarray) -> DayRow:
    return DayRow("x", day, 0.0, {}, *([np.zeros(0)] * 4), hourly, np.zeros(0))


def test_cusum_path_known_answer():
    z = np.array([1.0, 1.0, -3.0, 2.0, np.nan, 0.5, 0.0])
    assert cusum_path(z, r=0.5).tolist() == [0.5, 1.0, 0.0, 1.5, 1.5, 1.5, 1.0]
    assert cusum_path(np.array([0.2, 0.2]), r=0.5, w0=2.0).tolist() == pytest.approx([1.7, 1.4])
    assert cusum_path(np.array([-4.0, -4.0]), r=0.1).tolist() == [0.0, 0.0]


def test_warm_up_days_score_nan_and_build_the_baseline():
    det = CuSum(min_baseline_days=21)
    st = det.new_state("x")
    rng = np.random.default_rng(0)
    out = [det.score_one(st, _row(d, _hourly(rng))) for d in range(21)]
    assert all(np.isnan(s.score) and s.level == 0 for s in out)
    assert len(st.base) == 21
    s = det.score_one(st, _row(21, _hourly(rng)))
    assert np.isfinite(s.score) and s.level in (0, 1)


def test_empty_days_do_not_enter_the_warm_up_baseline():
    det = CuSum()
    st = det.new_state("x")
    empty = np.zeros((24, 3))
    for d in range(5):
        det.score_one(st, _row(d, empty))
    assert len(st.base) == 0


@pytest.mark.parametrize("seed", range(4))
def test_stationary_data_gives_no_alarm(seed):
    det = CuSum()
    st = det.new_state("x")
    rng = np.random.default_rng(seed)
    levels = [det.score_one(st, _row(d, _hourly(rng))).level for d in range(90)]
    assert 2 not in levels


def test_stationary_data_gives_few_warning_days():
    det = CuSum()
    rates = []
    for seed in range(4):
        st = det.new_state("x")
        rng = np.random.default_rng(seed)
        levels = [det.score_one(st, _row(d, _hourly(rng))).level for d in range(90)]
        rates.append(np.mean(np.array(levels[21:]) > 0))
    assert max(rates) <= 0.10


def test_sustained_rise_gives_warning_then_alarm_and_keeps_warning_days_out_of_the_baseline():
    det = CuSum()
    st = det.new_state("x")
    rng = np.random.default_rng(0)
    out = []
    for d in range(34):
        out.append(det.score_one(st, _row(d, _hourly(rng, 6.0 if d >= 30 else 0.0))))
        if d == 29:
            base_before = len(st.base)
            w_before = st.w
    levels = [s.level for s in out]
    assert levels[21:30] == [0] * 9  # this seed's baseline days are quiet
    # yellow the day the warning run reaches 24 h, red the day the alarm condition (run > 48 h,
    # peak > 24 h after its start) is first met; an alert is raised once per warning run
    assert levels[30:] == [1, 0, 2, 0]
    assert out[31].score >= -np.log10(det.alpha)  # the warning goes on (score), without a new alert
    assert out[30].score >= -np.log10(det.alpha) and out[30].reasons
    assert len(st.base) == base_before == 28  # warning days never slid in
    assert st.w > w_before + 4 * 24 * 2.0


def test_every_day_of_the_run_alerts_when_asked():
    det = CuSum(alert_once=False)
    st = det.new_state("x")
    rng = np.random.default_rng(0)
    levels = [det.score_one(st, _row(d, _hourly(rng, 6.0 if d >= 30 else 0.0))).level for d in range(34)]
    assert levels[30:] == [1, 1, 2, 2]


def test_alarm_needs_the_peak_more_than_24_hours_after_the_start():
    """One elevated day, then normal days: the run's maximum is at the end of the first
    day (< 24 h after the start), so however long the warning lasts there is no alarm."""
    det = CuSum()
    st = det.new_state("x")
    rng = np.random.default_rng(1)
    for d in range(30):
        det.score_one(st, _row(d, _hourly(rng)))
    levels = [det.score_one(st, _row(30, _hourly(rng, 6.0))).level]
    levels += [det.score_one(st, _row(31 + k, _hourly(rng))).level for k in range(3)]
    assert levels[0] == 1  # a 24-hour warning run on the elevated day
    assert 2 not in levels
    assert st.warn_start is None or st.warn_max_at - st.warn_start <= 24


def test_missing_hours_hold_the_statistic():
    det = CuSum()
    st = det.new_state("x")
    rng = np.random.default_rng(2)
    for d in range(30):
        det.score_one(st, _row(d, _hourly(rng)))
    w0 = st.w
    s = det.score_one(st, _row(30, np.zeros((24, 3))))  # a day without any resting minute
    assert st.w == w0 and s.level == 0 and s.score == pytest.approx(0.0)
    # too few resting minutes in an hour (< 10) count as missing as well
    few = _hourly(rng, 20.0, n=5)
    s = det.score_one(st, _row(31, few))
    assert st.w == w0 and s.level == 0


def test_state_is_per_participant():
    det = CuSum()
    a, b = det.new_state("a"), det.new_state("b")
    rng = np.random.default_rng(3)
    for d in range(30):
        det.score_one(a, _row(d, _hourly(rng)))
    assert len(b.base) == 0 and b.w == 0.0
