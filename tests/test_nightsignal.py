"""NightSignal rules on hand-made nightly sequences with known answers (anchors.md, Alavi 2022)."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.nightsignal import NightSignal, nightsignal_levels
from detectors.pipeline import DayRow

NAN = float("nan")
BASE = [60] * 6


def _row(day: int, a: float) -> DayRow:
    return DayRow("x", day, 0.0, {"rhr_ns_bpm": float(a)}, *([np.zeros(0)] * 5), np.zeros(0))


@pytest.mark.parametrize(
    "nights, want_last",
    [
        (BASE + [63, 63], 1),  # two nights >= M+3: yellow
        (BASE + [64, 64], 2),  # two nights >= M+4: red
        (BASE + [64, 63], 1),  # red then yellow-elevated: yellow
        (BASE + [63, 64], 1),  # yellow-elevated then red-elevated: yellow, not red
        (BASE + [62, 64], 0),  # first night below +3: the run starts at the last night
        (BASE + [70], 0),  # the first night of a run is not alerted
        (BASE + [62.9, 62.9], 0),  # integer mean: 62.9 counts as 62 (< 63)
        (BASE + [63.0, 63.99], 1),  # 63.99 counts as 63: yellow, not red
    ],
)
def test_levels_known_answers(nights, want_last):
    lv = nightsignal_levels(nights)
    assert lv[:-1] == [0] * (len(nights) - 1)
    assert lv[-1] == want_last


def test_run_continues_and_ends():
    assert nightsignal_levels(BASE + [64, 65, 66, 60, 64]) == [0] * 6 + [0, 2, 2, 0, 0]


def test_baseline_median_includes_the_night_itself_and_alert_nights():
    # expanding median incl. alert nights: a long elevation raises M until alerts stop
    lv = nightsignal_levels([60] * 3 + [64] * 10)
    assert lv[4] == 2
    # after enough elevated nights the median is 64 and the nights are no longer elevated
    assert lv[-1] == 0
    first_quiet = lv.index(0, 4)
    # [60,60,60,64,64,64]: integer median 62 at index 5 -> 64 < 62 + 3: not elevated
    assert first_quiet == 5


def test_integer_median_truncates():
    # 61 x4, 62 x2 then 65, 65: second alert night has 8 values, median 61.5 -> int 61
    # -> 65 >= 61 + 4: red (a rounded median 62 would give yellow)
    assert nightsignal_levels([61, 61, 61, 61, 62, 62, 65, 65])[-1] == 2


def test_single_missing_night_is_filled_with_the_integer_mean_of_its_neighbours():
    # filled night = int((60 + 67) / 2) = 63 -> yellow-elevated; then 67 -> yellow
    lv = nightsignal_levels([60] * 7 + [NAN, 67])
    assert lv == [0] * 8 + [1]
    # int((60 + 68) / 2) = 64 -> red-elevated; then 68 -> red
    assert nightsignal_levels([60] * 7 + [NAN, 68])[-1] == 2
    # the filled night continues a run too: 64, (64), 64 -> red
    assert nightsignal_levels([60] * 6 + [64, NAN, 64])[-1] == 2


def test_two_missing_nights_break_the_run():
    assert nightsignal_levels([60] * 6 + [64, NAN, NAN, 64])[-1] == 0
    assert nightsignal_levels([60] * 7 + [NAN, NAN, 68])[-1] == 0
    # and the next night continues the new run normally
    assert nightsignal_levels([60] * 6 + [64, NAN, NAN, 64, 64])[-1] == 2


def test_days_never_seen_count_as_missing_nights():
    d = NightSignal()
    st = d.new_state("x")
    for i in range(6):
        d.score_one(st, _row(i, 60))
    assert d.score_one(st, _row(6, 64)).level == 0
    # one day skipped (no row at all): filled with the mean, run continues
    assert d.score_one(st, _row(8, 64)).level == 2
    # two days skipped: the run is broken
    st2 = d.new_state("y")
    for i in range(6):
        d.score_one(st2, _row(i, 60))
    d.score_one(st2, _row(6, 64))
    assert d.score_one(st2, _row(9, 64)).level == 0


def test_score_is_a_minus_m_and_missing_night_scores_nan():
    d = NightSignal()
    st = d.new_state("x")
    scores = [d.score_one(st, _row(i, a)) for i, a in enumerate([60, 62, 61, 70])]
    assert [s.score for s in scores] == [0.0, 1.0, 0.0, 9.0]  # medians 60, 61, 61, 61
    miss = d.score_one(st, _row(4, NAN))
    assert np.isnan(miss.score) and miss.level == 0


def test_reasons_only_on_alert_nights():
    d = NightSignal()
    st = d.new_state("x")
    out = [d.score_one(st, _row(i, a)) for i, a in enumerate(BASE + [64, 64])]
    assert all(not s.reasons for s in out[:-1])
    assert out[-1].reasons == ["night resting HR 64 bpm vs median 60 bpm (+4)"]


def test_custom_deltas():
    assert nightsignal_levels(BASE + [62, 62], yellow_bpm=2, red_bpm=5)[-1] == 1
    assert nightsignal_levels(BASE + [65, 65], yellow_bpm=2, red_bpm=5)[-1] == 2
