"""NightSignal (Alavi et al. 2022, Nat Med 28:175), faithful to the published rules.

1. Resting HR samples: minutes with zero steps between 00:00 and 06:59 local
   (the pipeline's ``rhr_ns_bpm``).
2. Nightly average ``A_i`` = integer mean of those samples.
3. A single missing night between two present nights is filled with the
   integer mean of its neighbours (done causally: when night ``i+1`` arrives).
4. Baseline ``M_i`` = integer median of all nightly averages up to and
   including night ``i`` (expanding; alert nights are not removed).
5. A night is *yellow-elevated* when ``A >= M + 3`` and *red-elevated* when
   ``A >= M + 4``. Red alert when this night and the previous one are both
   red-elevated; yellow when both are at least yellow-elevated (and not red).
   The first night of a run is not itself alerted.

Score = ``A_i - M_i`` (bpm). Levels come from the rules, not from thresholds.

Checked against the published ``nightsignal.py`` (StanfordBioinformatics/
wearable-infection, Fitbit branch): integer nightly mean, ``int(median)`` of all
nights so far including filled ones, potential red/yellow nights and the
consecutive-pair rule are the same. Two differences follow from running in real
time: a filled night never gets an alert of its own (it is already in the past
when the next night reveals it; the offline script can alert it retroactively),
and a single missing night is filled whenever both neighbours are present (the
script also asks for a third consecutive night beside one of them).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from detectors.base import Detector, Score
from detectors.pipeline import DayRow

__all__ = ["NightSignal", "NightSignalState", "nightsignal_levels"]


@dataclass
class NightSignalState:
    nights: list[int] = field(default_factory=list)  # nightly averages incl. filled nights
    last_day: int | None = None
    last_avg: int | None = None  # A of the last present night
    missing_run: int = 0  # consecutive missing nights since last present night
    prev_elev: int = 0  # elevation class of the previous night: 0, 1 (>= +3), 2 (>= +4)


class NightSignal(Detector):
    """NightSignal rule detector.

    Examples
    --------
    >>> nightsignal_levels([60, 60, 60, 60, 60, 64, 65, 60])
    [0, 0, 0, 0, 0, 0, 2, 0]
    """

    name = "nightsignal"

    def __init__(self, yellow_bpm: int = 3, red_bpm: int = 4):
        self.yellow_bpm = yellow_bpm
        self.red_bpm = red_bpm
        self.thresholds = (float(yellow_bpm), float(red_bpm))

    def new_state(self, participant_id: str) -> NightSignalState:
        return NightSignalState()

    def _elev(self, a: int, m: int) -> int:
        if a >= m + self.red_bpm:
            return 2
        if a >= m + self.yellow_bpm:
            return 1
        return 0

    def score_one(self, st: NightSignalState, row: DayRow) -> Score:
        a_raw = row.values.get("rhr_ns_bpm", np.nan)
        if st.last_day is not None and row.day > st.last_day + 1:
            st.missing_run += row.day - st.last_day - 1  # days never seen are missing nights
        st.last_day = row.day
        if not np.isfinite(a_raw):
            st.missing_run += 1
            if st.missing_run > 1:
                st.prev_elev = 0  # a run is broken by a gap that will not be filled
            return Score(float("nan"), 0, ["no resting-HR night"])
        a = int(a_raw)  # integer mean, as the published code
        if st.missing_run == 1 and st.last_avg is not None:
            filled = int((st.last_avg + a) / 2)
            st.nights.append(filled)
            m_f = int(np.median(st.nights))
            st.prev_elev = self._elev(filled, m_f)
        elif st.missing_run > 1:
            st.prev_elev = 0
        st.missing_run = 0
        st.nights.append(a)
        m = int(np.median(st.nights))
        e = self._elev(a, m)
        level = 0
        if e == 2 and st.prev_elev == 2:
            level = 2
        elif e >= 1 and st.prev_elev >= 1:
            level = 1
        st.prev_elev = e
        st.last_avg = a
        reasons = [f"night resting HR {a} bpm vs median {m} bpm ({a - m:+d})"] if level else []
        return Score(float(a - m), level, reasons)

    def describe(self) -> dict:
        return {"detector": self.name, "yellow_bpm": self.yellow_bpm, "red_bpm": self.red_bpm,
                "rule": "two consecutive nights at or above median + delta"}


def nightsignal_levels(nightly: list[float], yellow_bpm: int = 3, red_bpm: int = 4) -> list[int]:
    """Levels for a plain sequence of nightly averages (NaN = missing night)."""
    from detectors.pipeline import DayRow

    d = NightSignal(yellow_bpm, red_bpm)
    st = d.new_state("x")
    out = []
    for i, a in enumerate(nightly):
        row = DayRow("x", i, 0.0, {"rhr_ns_bpm": float(a)}, *([np.zeros(0)] * 5), np.zeros(0))
        out.append(d.score_one(st, row).level)
    return out
