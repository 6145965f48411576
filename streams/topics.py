"""Kafka topics of a prodromal deployment.

Every topic is keyed by participant id (UTF-8 bytes), so all streams of one participant land in
the same partition number of every topic: with the same partition count on each input topic, one
worker sees all of a participant's data and holds its state. Values carry a schema version,
``time`` (event time, UTC seconds) and ``time_received`` (see :mod:`streams.codec`).

==========================  ===========  ======================================================
topic                       value        content
==========================  ===========  ======================================================
``wearable.hr``             samples      heart rate chunks, ``hr_bpm``
``wearable.steps``          samples      step counts per 60 s, ``steps``
``wearable.ibi``            samples      beat-to-beat intervals, ``ibi_ms``
``wearable.temp``           samples      skin temperature, ``temp_c``
``wearable.resp``           samples      respiratory rate, ``resp_rpm``
``wearable.enmo``           samples      accelerometer activity per epoch, ``enmo_mg``
``wearable.ppg``            waveform     raw PPG, (channels, n) at ``fs`` Hz (binary codec)
``wearable.acc``            waveform     raw 3-axis accelerometer in g (binary codec)
``ehr.context``             json         compacted: complete participant context snapshots (utc offset, kinds, labels, every dated EHR fact known so far)
``detector.scores``         json         one per scored day: score, threshold, level, model
``detector.alerts``         json         one per alert: level, score, night, reasons
``detector.daily``          json         daily features with baseline and deviation
``prodromal.points``        json         line protocol for InfluxDB (internal: the sink agent's input)
``prodromal.deadletter``    json         undecodable or invalid input with a reason
==========================  ===========  ======================================================

Input topics accept the JSON codec or the binary codec (the first byte tells them apart);
output topics are JSON for interoperability.
"""

from __future__ import annotations

from dataclasses import dataclass

from detectors.records import STREAMS, WAVEFORMS

__all__ = [
    "Topic",
    "TOPICS",
    "SAMPLE_TOPICS",
    "WAVEFORM_TOPICS",
    "INPUT_TOPICS",
    "EHR_CONTEXT",
    "SCORES",
    "ALERTS",
    "DAILY",
    "DEADLETTER",
    "POINTS",
    "topic_for",
    "kind_of",
]


@dataclass(frozen=True)
class Topic:
    name: str
    value: str  # "samples" | "waveform" | "json"
    doc: str


SAMPLE_TOPICS: dict[str, str] = {kind: f"wearable.{kind}" for kind in STREAMS}
WAVEFORM_TOPICS: dict[str, str] = {kind: f"wearable.{kind}" for kind in WAVEFORMS}
EHR_CONTEXT = "ehr.context"
SCORES = "detector.scores"
ALERTS = "detector.alerts"
DAILY = "detector.daily"
DEADLETTER = "prodromal.deadletter"
POINTS = "prodromal.points"

TOPICS: dict[str, Topic] = {
    **{t: Topic(t, "samples", f"{k} sample chunks ({STREAMS[k].field})") for k, t in SAMPLE_TOPICS.items()},
    **{t: Topic(t, "waveform", f"raw {k} waveform chunks") for k, t in WAVEFORM_TOPICS.items()},
    EHR_CONTEXT: Topic(EHR_CONTEXT, "json", "participant context"),
    SCORES: Topic(SCORES, "json", "daily scores"),
    ALERTS: Topic(ALERTS, "json", "alerts"),
    DAILY: Topic(DAILY, "json", "daily features"),
    POINTS: Topic(POINTS, "json", "line protocol batches for the InfluxDB sink"),
    DEADLETTER: Topic(DEADLETTER, "json", "rejected input with a reason"),
}

#: Topics a worker consumes (all co-partitioned by participant id).
INPUT_TOPICS: tuple[str, ...] = (*SAMPLE_TOPICS.values(), *WAVEFORM_TOPICS.values(), EHR_CONTEXT)

_KIND_OF = {t: k for k, t in {**SAMPLE_TOPICS, **WAVEFORM_TOPICS}.items()}


def topic_for(kind: str) -> str:
    """Topic name of a sample or waveform kind.

    Examples
    --------
    >>> topic_for("hr")
    'wearable.hr'
    """
    try:
        return SAMPLE_TOPICS.get(kind) or WAVEFORM_TOPICS[kind]
    except KeyError:
        valid = ", ".join([*SAMPLE_TOPICS, *WAVEFORM_TOPICS])
        raise ValueError(f"unknown stream kind {kind!r}; valid: {valid}") from None


def kind_of(topic: str) -> str:
    """Stream kind carried by a wearable topic (``'wearable.hr'`` -> ``'hr'``)."""
    try:
        return _KIND_OF[topic]
    except KeyError:
        raise ValueError(f"{topic!r} is not a wearable sample topic; valid: {', '.join(_KIND_OF)}") from None
