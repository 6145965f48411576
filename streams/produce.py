"""Replay a recorded cohort into Kafka: event-time order, chunked, keyed by participant.

``prodromal produce COHORT --broker URL --speed X`` publishes every participant's streams as it
would arrive from devices: derived-sample chunks of ``chunk_s`` seconds (aligned to a fixed grid)
on ``wearable.<kind>``, raw waveforms in ``wave_chunk_s`` chunks on ``wearable.ppg/acc``, all keyed
by participant id and merged across participants in event-time order. ``speed`` is the event-time
speed-up (3600 = one recorded hour per second; 0 = as fast as the broker takes it).

Before its data, each participant's context (``utc_offset_s``, labels, EHR columns) goes to
``ehr.context``; after its data, an end-of-recording marker (``prodromal.eos``, listing the
participant's kinds) goes to every topic it used, so a worker can close the last partial day
exactly as the in-process replay does (``flush``) instead of waiting for the idle timer.

Messages are produced with aiokafka (the client Faust itself uses: one dependency less than
confluent-kafka, fast enough once samples travel in chunks: the broker, not the client, limits).
"""

from __future__ import annotations

import asyncio
import heapq
import math
import time as _time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from detectors.records import STREAMS, WAVEFORMS, SampleChunk
from streams.codec import encode_chunk, encode_record
from streams.cohort import Cohort
from streams.settings import KafkaSettings
from streams.topics import EHR_CONTEXT, INPUT_TOPICS, topic_for

__all__ = ["produce", "cohort_messages", "ensure_topics", "ProduceStats", "Message"]


@dataclass(order=True)
class Message:
    time: float  # event time the message is due (chunk start)
    seq: int  # tie-breaker: keeps each participant's order stable
    topic: str = field(compare=False)
    key: bytes = field(compare=False)
    value: bytes = field(compare=False)
    samples: int = field(compare=False, default=0)


@dataclass
class ProduceStats:
    messages: int = 0
    samples: int = 0
    bytes: int = 0
    participants: int = 0
    seconds: float = 0.0
    by_topic: dict[str, int] = field(default_factory=dict)

    @property
    def samples_per_s(self) -> float:
        return self.samples / self.seconds if self.seconds else math.inf


def context_record(p, kinds: list[str] | None = None, facts: list | None = None) -> bytes:
    """A participant's complete context: the last one per key is all a compacted topic keeps."""
    return encode_record("prodromal.context", {
        "participant": p.participant_id, "utc_offset_s": int(p.utc_offset_s), "kinds": kinds or [],
        "symptom_onset_date": p.symptom_onset_date.isoformat() if p.symptom_onset_date else None,
        "diagnosis_date": p.diagnosis_date.isoformat() if p.diagnosis_date else None,
        "ehr": p.ehr, "time": None,
        "ehr_facts": [{"time_known": float(f.time_known), "fact": f.fact, "value": f.value} for f in facts or []],
    })  # fmt: skip


def _participant_messages(cohort: Cohort, p, chunk_s: float, wave_chunk_s: float, codec: str, seq0: int,
                          facts: list | None = None) -> list[Message]:
    pid = p.participant_id
    key = pid.encode()
    out: list[Message] = []
    kinds: list[str] = []
    last = -math.inf
    first = math.inf
    for kind in cohort.stream_kinds(pid):
        if kind in STREAMS:
            sd = cohort.read_stream(pid, kind)
            if sd is None or not len(sd):
                continue
            kinds.append(kind)
            t, v = sd.time, sd.values
            slot = np.floor(t / chunk_s).astype(np.int64)
            cuts = np.flatnonzero(np.diff(slot)) + 1
            for a, b in zip(np.r_[0, cuts], np.r_[cuts, t.size], strict=True):
                c = SampleChunk(pid, kind, t[a:b], v[a:b])
                out.append(Message(float(slot[a] * chunk_s), 0, topic_for(kind), key, _encode(c, codec), int(b - a)))
            first, last = min(first, float(t[0])), max(last, float(t[-1]))
        elif kind in WAVEFORMS:
            w = cohort.read_waveform(pid, kind)
            if w is None:
                continue
            kinds.append(kind)
            step = max(1, int(round(wave_chunk_s * w.fs)))
            for t0, seg in w.segments():
                for i in range(0, seg.shape[1], step):
                    part = seg[:, i : i + step]
                    tt = t0 + i / w.fs
                    c = SampleChunk(pid, kind, np.array([tt]), part, fs=w.fs)
                    # Sort by slot like the derived streams so kinds of one hour travel together.
                    due = math.floor(tt / chunk_s) * chunk_s
                    out.append(Message(due, 0, topic_for(kind), key, _encode(c, codec, compress=True), int(part.size)))
                first, last = min(first, t0), max(last, t0 + seg.shape[1] / w.fs)
    if not kinds:
        return []
    # Stable order inside the participant: by slot, then kind order as read (all kinds of a slot together).
    out.sort(key=lambda m: m.time)
    # The context goes first with the EHR facts known by then; each later fact sends the context
    # again with every fact known so far (ehr.context is compacted: the last record must be complete).
    t0 = first if math.isfinite(first) else 0.0
    facts = sorted(facts or [], key=lambda f: f.time_known)
    ctx = Message(t0, 0, EHR_CONTEXT, key, context_record(p, kinds, [f for f in facts if f.time_known <= t0]))
    snaps = [Message(float(f.time_known), 0, EHR_CONTEXT, key, context_record(p, kinds, facts[: i + 1]))
             for i, f in enumerate(facts)
             if f.time_known > t0 and (i + 1 == len(facts) or facts[i + 1].time_known > f.time_known)]
    out = sorted(snaps + out, key=lambda m: m.time)  # stable: on a tie the facts go before the data
    eos = [
        Message(last, 0, topic_for(k), key,
                encode_record("prodromal.eos", {"participant": pid, "kind": k, "kinds": kinds, "time": last}))
        for k in kinds
    ]  # fmt: skip
    msgs = [ctx, *out, *eos]
    for i, m in enumerate(msgs):
        m.seq = seq0 + i
    return msgs


def _encode(c: SampleChunk, codec: str, compress: bool = False) -> bytes:
    # time_received is stamped at send time (see _stamp); encode a placeholder here.
    c.time_received = None
    return encode_chunk(c, codec=codec, compress=compress and codec == "binary")


def cohort_messages(
    cohort: Cohort | str | Path,
    chunk_s: float = 3600.0,
    wave_chunk_s: float = 60.0,
    codec: str = "binary",
    limit: int | None = None,
) -> Iterator[Message]:
    """All messages of a cohort, merged across participants in event-time order.

    Each participant's messages keep their own order (context first, end markers last); across
    participants the merge is by due time. Memory: one participant's encoded messages at a time
    per participant (encoded chunks, compact), read one participant after another.
    """
    if codec not in ("binary", "json"):
        raise ValueError(f"unknown codec {codec!r}; valid: binary, json")
    if not chunk_s > 0 or not wave_chunk_s > 0:
        raise ValueError("chunk_s and wave_chunk_s must be > 0")
    c = cohort if isinstance(cohort, Cohort) else Cohort(cohort)
    parts = c.participants if limit is None else c.participants[:limit]
    from streams.importers.ehr_facts import read_facts

    facts_by_pid: dict[str, list] = {}
    for f in read_facts(c.path):
        facts_by_pid.setdefault(f.participant_id, []).append(f)
    per: list[list[Message]] = []
    seq = 0
    for p in parts:
        msgs = _participant_messages(c, p, chunk_s, wave_chunk_s, codec, seq, facts_by_pid.get(p.participant_id))
        seq += len(msgs)
        if msgs:
            per.append(msgs)
    # Keep each participant's order even when its end markers' due time precedes a later slot.
    for msgs in per:
        t = -math.inf
        for m in msgs:
            t = max(t, m.time)
            m.time = t
    yield from heapq.merge(*per)


async def ensure_topics(kafka: KafkaSettings, partitions: int, topics: tuple[str, ...] = INPUT_TOPICS) -> list[str]:
    """Create missing topics with ``partitions`` partitions (same count: co-partitioning)."""
    from aiokafka.admin import AIOKafkaAdminClient, NewTopic
    from aiokafka.errors import TopicAlreadyExistsError

    kw = {k: v for k, v in kafka.aiokafka_kwargs().items() if k != "client_id"}
    admin = AIOKafkaAdminClient(**kw)
    await admin.start()
    created = []
    try:
        existing = set(await admin.list_topics())
        new = [NewTopic(t, partitions, 1) for t in topics if t not in existing]
        if new:
            try:
                await admin.create_topics(new)
            except TopicAlreadyExistsError:
                pass
            created = [t.name for t in new]
    finally:
        await admin.close()
    return created


async def produce_async(
    messages: Iterator[Message],
    kafka: KafkaSettings,
    speed: float = 0.0,
    progress: Callable[[int, int], None] | None = None,
    max_in_flight: int = 2000,
) -> ProduceStats:
    """Send messages (already in event-time order), paced at ``speed`` x event time (0 = no pacing)."""
    from aiokafka import AIOKafkaProducer

    if speed < 0 or not math.isfinite(speed):
        raise ValueError(f"speed must be >= 0 (0 = as fast as possible), got {speed}")
    producer = AIOKafkaProducer(**kafka.aiokafka_kwargs(), linger_ms=5, max_batch_size=512 * 1024,
                                max_request_size=16 * 1024 * 1024, acks="all")  # fmt: skip
    await producer.start()
    stats = ProduceStats()
    t_wall0 = _time.perf_counter()
    t_event0: float | None = None
    pending: list[asyncio.Future] = []
    try:
        for m in messages:
            if speed > 0:
                if t_event0 is None:
                    t_event0 = m.time
                wait = (m.time - t_event0) / speed - (_time.perf_counter() - t_wall0)
                if wait > 0:
                    await asyncio.sleep(wait)
            fut = await producer.send(m.topic, _stamp(m.value), key=m.key)
            pending.append(fut)
            stats.messages += 1
            stats.samples += m.samples
            stats.bytes += len(m.value)
            stats.by_topic[m.topic] = stats.by_topic.get(m.topic, 0) + 1
            if len(pending) >= max_in_flight:
                await asyncio.gather(*pending)
                pending.clear()
            if progress:
                progress(1, m.samples)
        await asyncio.gather(*pending)
        await producer.flush()
    finally:
        await producer.stop()
    stats.seconds = _time.perf_counter() - t_wall0
    return stats


def _stamp(value: bytes) -> bytes:
    """Set ``time_received`` (wall clock) in an encoded chunk just before sending."""
    now = _time.time()
    if value[:4] == b"PRDM":
        import struct

        return value[:12] + struct.pack("<d", now) + value[20:]
    if value.endswith(b',"time_received":null}'):
        return value[: -len("null}")] + repr(now).encode() + b"}"
    return value


def produce(
    cohort: str | Path,
    kafka: KafkaSettings,
    speed: float = 0.0,
    chunk_s: float = 3600.0,
    wave_chunk_s: float = 60.0,
    codec: str = "binary",
    partitions: int | None = None,
    limit: int | None = None,
    progress_factory: Callable[[int], Callable[[int, int], None]] | None = None,
) -> ProduceStats:
    """Publish a cohort folder into Kafka (blocking). See the module docstring.

    ``progress_factory(total_messages)`` returns a callback ``(messages, samples)`` for a progress bar.
    """
    c = Cohort(cohort)
    parts = c.participants if limit is None else c.participants[:limit]
    msgs = list(cohort_messages(c, chunk_s, wave_chunk_s, codec, limit))
    progress = progress_factory(len(msgs)) if progress_factory else None

    async def run() -> ProduceStats:
        if partitions:
            await ensure_topics(kafka, partitions)
        st = await produce_async(iter(msgs), kafka, speed, progress)
        st.participants = len(parts)
        return st

    return asyncio.run(run())
