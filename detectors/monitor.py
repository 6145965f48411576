"""ParticipantMonitor: one participant's whole decision path, as one picklable object.

samples -> :class:`~detectors.pipeline.FeaturePipeline` -> detector -> :class:`~detectors.policy.AlertPolicy`.

The Kafka worker keeps one monitor per participant in a keyed table and calls
:meth:`ParticipantMonitor.update_many` per message; the in-process replay runs
the same three stages, scoring stateless models in batches, which gives the
same results because scoring is row-wise deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass

from detectors.base import Detector, Score
from detectors.pipeline import DayRow, FeaturePipeline, PipelineParams
from detectors.policy import AlertPolicy, Decision

__all__ = ["DayResult", "ParticipantMonitor", "decide_rows"]


@dataclass
class DayResult:
    row: DayRow
    score: Score
    decision: Decision

    @property
    def alert(self) -> bool:
        return self.decision.level > 0


def decide_rows(detector: Detector, det_state, policy: AlertPolicy, pol_state, rows: list[DayRow]) -> list[DayResult]:
    """Score and decide a participant's closed days, in day order."""
    if not rows:
        return []
    if hasattr(detector, "end_of_day"):  # online learners: labels revealed as days pass
        out = []
        for r in rows:
            s = detector.score_one(det_state, r)
            out.append(DayResult(r, s, policy.decide(pol_state, r.day, s)))
            detector.end_of_day(r.day)
        return out
    scores = detector.score_many([det_state] * len(rows), rows)
    return [DayResult(r, s, policy.decide(pol_state, r.day, s)) for r, s in zip(rows, scores, strict=True)]


class ParticipantMonitor:
    """Feature pipeline + detector state + policy state for one participant.

    Examples
    --------
    >>> import numpy as np
    >>> from detectors.nightsignal import NightSignal
    >>> m = ParticipantMonitor("P1", NightSignal(), AlertPolicy())
    >>> t = np.arange(0, 2 * 86400, 60.0)
    >>> [r.decision.level for r in m.update_many([("hr", t, np.full(t.size, 60.0))]) + m.flush()]
    [0, 0]
    """

    def __init__(self, participant_id: str, detector: Detector, policy: AlertPolicy,
                 utc_offset_s: int = 0, params: PipelineParams | None = None):
        self.participant_id = participant_id
        self.features = FeaturePipeline(participant_id, utc_offset_s, params or PipelineParams())
        self.det_state = detector.new_state(participant_id)
        self.pol_state = policy.new_state()
        self._detector = detector
        self._policy = policy

    def __getstate__(self):
        d = dict(self.__dict__)
        d.pop("_detector")  # models are loaded once per worker, not stored per participant
        d.pop("_policy")
        return d

    def bind(self, detector: Detector, policy: AlertPolicy) -> ParticipantMonitor:
        """Re-attach the worker's detector and policy after unpickling."""
        self._detector, self._policy = detector, policy
        return self

    def _decide(self, rows: list[DayRow]) -> list[DayResult]:
        return decide_rows(self._detector, self.det_state, self._policy, self.pol_state, rows)

    def update(self, kind: str, time, values) -> list[DayResult]:
        return self._decide(self.features.update(kind, time, values))

    def update_many(self, items) -> list[DayResult]:
        return self._decide(self.features.update_many(items))

    def advance(self, until: float) -> list[DayResult]:
        return self._decide(self.features.advance(until))

    def flush(self) -> list[DayResult]:
        return self._decide(self.features.flush())
