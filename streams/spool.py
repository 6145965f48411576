"""InfluxDB points for alerts, scores and daily features, and the line-protocol spool file.

Points are built with ``influxdb_client``'s :class:`Point`, the same
serialization the InfluxDB sink sends, so a run folder's ``points.lp`` can be
loaded into any InfluxDB (``influx write``, or ``/write`` on 1.x). Tags are
few and bounded (cohort, participant, model, level); everything per day is a
field; the timestamp is the start of the scored local day (second precision),
so re-sending a point overwrites it instead of duplicating it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from influxdb_client import Point, WritePrecision

from detectors.base import LEVEL_NAMES

__all__ = ["day_points", "label_points", "SpoolWriter"]


def _fields(p: Point, d: dict) -> Point:
    for k, v in d.items():
        if v is None:
            continue
        if isinstance(v, float) and not math.isfinite(v):
            continue
        p = p.field(k, v)
    return p


def day_points(cohort: str, model: str, result, threshold: float | None = None, pseudonym=None) -> list[Point]:
    """The ``daily``, ``score`` and (when alerting) ``alert`` points of one DayResult."""
    row, s, dec = result.row, result.score, result.decision
    pid = pseudonym(row.participant_id) if pseudonym else row.participant_id
    ts = int(row.day_start)
    pts = [
        _fields(Point("daily").tag("cohort", cohort).tag("participant", pid), row.feature_dict()).time(ts, WritePrecision.S),
        _fields(
            Point("score").tag("cohort", cohort).tag("participant", pid).tag("model", model),
            {"score": float(s.score), "level": int(dec.level),
             "threshold": threshold},
        ).time(ts, WritePrecision.S),
    ]
    if dec.level > 0:
        pts.append(
            _fields(
                Point("alert").tag("cohort", cohort).tag("participant", pid).tag("model", model).tag("level", LEVEL_NAMES[dec.level]),
                {"score": float(s.score), "level_code": int(dec.level), "night": row.date.isoformat(),
                 "reasons": "; ".join(s.reasons)[:1000]},
            ).time(ts, WritePrecision.S)
        )
    return pts


def label_points(cohort: str, participant, day_start_fn, pseudonym=None) -> list[Point]:
    pid = pseudonym(participant.participant_id) if pseudonym else participant.participant_id
    out = []
    for event, d in (("symptom_onset", participant.symptom_onset_date), ("diagnosis", participant.diagnosis_date)):
        if d is not None:
            out.append(Point("label").tag("cohort", cohort).tag("participant", pid).field("event", event)
                       .time(int(day_start_fn(d)), WritePrecision.S))
    return out


class SpoolWriter:
    """Append points as line protocol to a file, flushed per batch."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._fh = open(self.path, "w", encoding="utf-8")
        self.points = 0

    def write(self, points: list[Point]) -> None:
        lines = [p.to_line_protocol() for p in points]
        lines = [ln for ln in lines if ln]
        if lines:
            self._fh.write("\n".join(lines) + "\n")
            self.points += len(lines)

    def close(self) -> None:
        self._fh.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
