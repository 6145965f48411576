"""InfluxDB points for alerts, scores and daily features, and the line-protocol spool file.

Points are serialised exactly as ``influxdb_client``'s :class:`Point` does
(:func:`line_protocol` uses Point's own escape tables and number rules, and a
test checks byte equality against ``Point.to_line_protocol`` on random
points), without building a Point object per day: that object costs more than
the whole feature computation of the day. A run folder's ``points.lp`` can be
loaded into any InfluxDB (``influx write``, or ``/write`` on 1.x), and the
InfluxDB sink sends the same lines. Tags are
few and bounded (cohort, participant, model, level); everything per day is a
field; the timestamp is the start of the scored local day (second precision),
so re-sending a point overwrites it instead of duplicating it.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

from influxdb_client import Point, WritePrecision
from influxdb_client.client.write.point import _ESCAPE_KEY, _ESCAPE_MEASUREMENT, _ESCAPE_STRING

from detectors.base import LEVEL_NAMES

__all__ = ["day_lines", "label_points", "line_protocol", "output_values", "SpoolWriter"]


_ESC_CACHE: dict[str, str] = {}


def _esc(k) -> str:
    r = _ESC_CACHE.get(k)
    if r is None:
        r = str(k).translate(_ESCAPE_KEY)
        if len(_ESC_CACHE) < 4096:  # keys are a small fixed vocabulary; values are not cached
            _ESC_CACHE[k] = r
    return r


def _tagval(v) -> str:
    r = str(v).translate(_ESCAPE_KEY)
    return r + " " if r.endswith("\\") else r


def line_protocol(measurement: str, tags: dict, fields: dict, ts: int) -> str:
    """One point as line protocol, byte-identical to ``Point(...).to_line_protocol()``.

    Floats print with ``str`` minus a trailing ``.0``; non-finite floats and None
    are left out; ints get the ``i`` suffix; bools lower-case; strings quoted.
    Returns "" when no field remains (as Point does).
    """
    parts = []
    for k, v in sorted(fields.items()):
        if v is None:
            continue
        if isinstance(v, float):
            if not math.isfinite(v):
                continue
            sv = str(v)
            if sv.endswith(".0"):
                sv = sv[:-2]
            parts.append(f"{_esc(k)}={sv}")
        elif isinstance(v, bool):
            parts.append(f"{_esc(k)}={str(v).lower()}")
        elif isinstance(v, int):
            parts.append(f"{_esc(k)}={v}i")
        elif isinstance(v, str):
            parts.append(f'{_esc(k)}="{v.translate(_ESCAPE_STRING)}"')
        else:
            raise ValueError(f'Type: "{type(v)}" of field: "{k}" is not supported.')
    if not parts:
        return ""
    tg = [f"{_esc(k)}={_tagval(v)}" for k, v in sorted(tags.items()) if v is not None and _esc(k) != "" and _tagval(v) != ""]
    head = measurement.translate(_ESCAPE_MEASUREMENT)
    return f"{head}{',' if tg else ''}{','.join(tg)} {','.join(parts)} {int(ts)}"


class FieldFormatter:
    """Fast line-protocol field set for a fixed list of float fields (same bytes as :func:`line_protocol`).

    Field order and escaping are computed once; per point only the finite
    values are formatted (``repr`` minus a trailing ``.0``, as Point does).
    """

    def __init__(self, names):
        self.names = list(names)
        self._order = sorted(range(len(self.names)), key=lambda i: self.names[i])
        self._prefix = [_esc(self.names[i]) + "=" for i in self._order]

    def fields(self, values: list[float]) -> str:
        parts = []
        for pre, i in zip(self._prefix, self._order, strict=True):
            v = values[i]
            if v == v and v != math.inf and v != -math.inf:
                s = repr(float(v))
                parts.append(pre + (s[:-2] if s.endswith(".0") else s))
        return ",".join(parts)

    def line(self, measurement: str, tags: dict, values: list[float], ts: int) -> str:
        f = self.fields(values)
        if not f:
            return ""
        tg = [f"{_esc(k)}={_tagval(v)}" for k, v in sorted(tags.items()) if v is not None and _tagval(v) != ""]
        return f"{measurement.translate(_ESCAPE_MEASUREMENT)}{',' if tg else ''}{','.join(tg)} {f} {int(ts)}"


_DAILY = None


def day_lines(cohort: str, model: str, result, threshold: float | None = None, pseudonym=None,
              values: list[float] | None = None) -> list[str]:
    """Line protocol of the ``daily``, ``score`` and (when alerting) ``alert`` points of a DayResult.

    ``values`` are the day's outputs in ``FEATURE_COLUMNS`` order (default: the row's, rounded
    to 4 decimals, the resolution every output uses).
    """
    global _DAILY
    from detectors.pipeline import FEATURE_COLUMNS

    if _DAILY is None:
        _DAILY = FieldFormatter(FEATURE_COLUMNS)
    row, s, dec = result.row, result.score, result.decision
    pid = pseudonym(row.participant_id) if pseudonym else row.participant_id
    ts = int(row.day_start)
    tags = {"cohort": cohort, "participant": pid}
    if values is None:
        values = output_values(row)
    out = [
        _DAILY.line("daily", tags, values, ts),
        line_protocol("score", {**tags, "model": model},
                      {"score": float(s.score), "level": int(dec.level), "threshold": threshold,
                       "modalities": "+".join(s.modalities)}, ts),
    ]
    if dec.level > 0:
        out.append(line_protocol(
            "alert", {**tags, "model": model, "level": LEVEL_NAMES[dec.level]},
            {"score": float(s.score), "level_code": int(dec.level), "night": row.date.isoformat(),
             "reasons": "; ".join(s.reasons)[:1000]}, ts))
    return [ln for ln in out if ln]


def output_values(row) -> list[float]:
    """A day's output values (FEATURE_COLUMNS order) rounded to 4 decimals."""
    import numpy as np

    return np.round(row.feature_vector(), 4).tolist()


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

    def write(self, points: list) -> None:
        """Append Points or ready line-protocol strings."""
        lines = [p if isinstance(p, str) else p.to_line_protocol() for p in points]
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
