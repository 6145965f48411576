"""The Faust app: ``prodromal worker``. Thin agents over the operators the in-process replay uses.

Agents (one consumer group; run N workers for N-way parallelism, N <= partitions):

``process``  consumes every input topic (``wearable.*``, ``ehr.context``), all keyed by participant
             and co-partitioned. Per message: decode (strictly; bad input goes to
             ``prodromal.deadletter`` with a reason and the stream goes on), feed the participant's
             :class:`~streams.feed.ParticipantFeed` (-> :class:`~detectors.monitor.ParticipantMonitor`),
             store the feed in the ``participants`` table (a changelog topic: a killed worker's
             state moves to the survivor), and send each closed day to ``detector.scores``,
             ``detector.daily``, ``detector.alerts`` and its InfluxDB lines to ``prodromal.points``.
``sink``     consumes ``prodromal.points`` and writes through :class:`~streams.influx.InfluxSink`
             (spooling while InfluxDB is away); a message is acknowledged only once its lines are
             in InfluxDB or in the on-disk spool.
``idle``     a timer: a participant whose data stopped arriving (``worker.idle_close_s``, wall
             clock) gets an idle tick through ``wearable.hr``, so the close happens inside the
             stream, on the partition's owner, recorded in the changelog.

Delivery is at-least-once: a redelivered chunk is dropped by the epoch operator (duplicate
event times) and every InfluxDB point is idempotent (measurement, tags, day timestamp), so no
alert is lost or duplicated in InfluxDB; consumers of ``detector.alerts`` dedupe on
(participant, date, model).
"""

from __future__ import annotations

import asyncio
import base64
import logging
import math
import os
import pickle
import time as _time
import zlib
from typing import Any

from streams.codec import CodecError, Decoder, decode_record, encode_record
from streams.settings import Settings
from streams.topics import (
    ALERTS,
    DAILY,
    DEADLETTER,
    EHR_CONTEXT,
    INPUT_TOPICS,
    POINTS,
    SAMPLE_TOPICS,
    SCORES,
)

#: Idle ticks travel on a wearable topic (same key, same partition), not on ehr.context: that topic
#: is compacted and must hold only complete context snapshots.
TICK_TOPIC = SAMPLE_TOPICS["hr"]

__all__ = ["Engine", "create_app", "run_worker", "WorkerError"]

log = logging.getLogger("prodromal.worker")
MAX_DEADLETTER_PAYLOAD = 4096


class WorkerError(RuntimeError):
    """The worker cannot start (bad model artifact, unsupported detector, bad settings)."""


class Engine:
    """Everything the agents do, without Faust: decode, feed, format outputs (unit-testable)."""

    def __init__(self, settings: Settings):
        from detectors.policy import AlertPolicy
        from streams.registry import make_detector
        from streams.replay import raw_operator_factory

        w = settings.worker
        try:
            self.detector = make_detector(w.detector, w.model)
        except Exception as e:  # ArtifactError, ValueError, OSError: refuse to start, say why
            raise WorkerError(f"cannot load detector {w.detector!r}"
                              f"{f' from {w.model}' if w.model else ''}: {e}") from None  # fmt: skip
        if getattr(self.detector, "needs_date_order", False):
            raise WorkerError(f"detector {w.detector!r} learns across participants in date order; "
                              "the streaming worker scores each participant on its own: use it in `prodromal replay`")  # fmt: skip
        if hasattr(self.detector, "set_ehr"):
            self.detector.set_ehr([])  # EHR facts arrive in ehr.context snapshots
        self.policy = AlertPolicy(thresholds=self.detector.thresholds, consecutive=w.consecutive, budget_per_30d=w.budget_per_30d)
        th = self.policy.thresholds[0]
        self.threshold = float(th) if math.isfinite(th) else None
        self.cohort = w.cohort
        self.raw_factory = raw_operator_factory()
        self.decoder = Decoder(max_bytes=w.max_message_bytes, max_skew_s=w.max_clock_skew_s)
        self.settings = settings
        from streams.privacy import load_pseudonymizer

        self.pseudonym = load_pseudonymizer(settings=settings)

    # -- state ----------------------------------------------------------------------------------
    def new_monitor(self, pid: str):
        from detectors.monitor import ParticipantMonitor

        return lambda offset: ParticipantMonitor(pid, self.detector, self.policy, utc_offset_s=offset)

    # Table values: 8 random bytes naming this version of the state, then zlib(pickle(feed)).
    # A worker keeps the feeds it wrote in memory and reuses one while the table still holds that
    # version; after a rebalance or recovery the version differs and the state is unpickled.
    _cache: dict[str, tuple[bytes, Any]]

    def dumps(self, feed) -> bytes:
        tag = os.urandom(8)
        self._cache_put(feed.participant_id, tag, feed)
        return tag + zlib.compress(pickle.dumps(feed, protocol=pickle.HIGHEST_PROTOCOL), 1)

    def _cache_put(self, pid: str, tag: bytes, feed) -> None:
        if not hasattr(self, "_cache"):
            self._cache = {}
        if len(self._cache) > 100_000:
            self._cache.clear()
        self._cache[pid] = (tag, feed)

    def loads(self, data: bytes | None, pid: str):
        from streams.feed import ParticipantFeed

        if data is None:
            return ParticipantFeed(pid, stale_after_s=self.settings.worker.idle_close_s)
        hit = getattr(self, "_cache", {}).get(pid)
        if hit is not None and hit[0] == data[:8]:
            return hit[1]
        feed = pickle.loads(zlib.decompress(data[8:]))
        if feed.monitor is not None:
            feed.monitor.bind(self.detector, self.policy)
        if getattr(feed, "ehr_facts", None) and hasattr(self.detector, "add_ehr_facts"):
            self.detector.add_ehr_facts(feed.ehr_facts)  # state recovered on this worker
        return feed

    # -- one input message ----------------------------------------------------------------------
    def handle(self, topic: str, key: bytes | None, value: bytes, feed_of, now: float | None = None):
        """Process one message. ``feed_of(pid)`` returns the participant's feed (created if new).

        Returns ``(pid, feed, results)``; raises CodecError (-> dead letter) for bad input.
        """
        if key is None:
            raise CodecError("message has no key (must be the participant id)")
        try:
            pid = key.decode("ascii")
        except UnicodeDecodeError:
            raise CodecError("message key is not an ASCII participant id") from None
        if value[:1] == b"{" and b'"schema":"prodromal.' in value[:40] and b'"schema":"prodromal.sam' not in value[:40] \
                and b'"schema":"prodromal.wav' not in value[:40]:  # fmt: skip
            rec = decode_record(value)
            return self._control(topic, pid, rec, feed_of)
        if topic == EHR_CONTEXT:
            rec = decode_record(value)
            return self._control(topic, pid, rec, feed_of)
        chunk = self.decoder.decode(value, now)
        if chunk.participant_id != pid:
            raise CodecError(f"message key {pid[:64]!r} differs from field 'participant' {chunk.participant_id!r}")
        if topic.startswith("wearable.") and topic != f"wearable.{chunk.kind}":
            raise CodecError(f"kind {chunk.kind!r} on topic {topic!r}")
        feed = feed_of(pid)
        return pid, feed, feed.on_chunk(chunk, self.new_monitor(pid), self.raw_factory)

    def _control(self, topic: str, pid: str, rec: dict, feed_of):
        schema = rec.get("schema")
        if rec.get("participant") not in (None, pid):
            raise CodecError(f"record participant differs from the message key {pid[:64]!r}")
        feed = feed_of(pid)
        if schema == "prodromal.context":
            off = rec.get("utc_offset_s", 0)
            if type(off) is not int or abs(off) > 14 * 3600:
                raise CodecError("context record: field 'utc_offset_s' must be an integer within +-14 h")
            kinds = rec.get("kinds")
            if kinds is not None and (not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds)):
                raise CodecError("context record: field 'kinds' must be a list of strings")
            facts = rec.get("ehr_facts")
            if facts is not None:
                if not isinstance(facts, list) or not all(isinstance(f, dict) for f in facts):
                    raise CodecError("context record: field 'ehr_facts' must be a list of objects")
                self._add_facts(pid, feed, facts)
            return pid, feed, feed.on_context(off, self.new_monitor(pid), kinds)
        if schema == "prodromal.ehr_fact":  # a single fact (not compaction-safe; producers send snapshots)
            self._add_facts(pid, feed, [rec])
            return pid, feed, []
        if schema == "prodromal.eos":
            kind, kinds = rec.get("kind"), rec.get("kinds")
            if not isinstance(kind, str) or not isinstance(kinds, list) or not all(isinstance(k, str) for k in kinds):
                raise CodecError("end marker: fields 'kind' (string) and 'kinds' (list of strings) required")
            results = feed.on_end(kind, kinds, self.new_monitor(pid))
            if feed.closed:  # counts only: no health values in logs
                ep = getattr(feed.monitor.features.epochs, "stats", None)
                log.info("participant %s recording ended: %s; epochs %s", pid, feed.stats, ep)
            return pid, feed, results
        if schema == "prodromal.idle":
            if feed.closed or feed.idle_mark == feed.last_wall:
                return pid, feed, []
            feed.idle_mark = feed.last_wall
            lateness = feed.monitor.features.params.lateness_s if feed.monitor else 900.0
            return pid, feed, feed.on_idle(self.new_monitor(pid), lateness)
        raise CodecError(f"record schema {str(schema)[:40]!r} not accepted on {topic}")

    def _add_facts(self, pid: str, feed, recs: list[dict]) -> None:
        """Validate dated EHR facts, keep them in the participant's state, give them to the detector."""
        from detectors.ehr import EhrError, Fact

        new = []
        for r in recs:
            t, name, value = r.get("time_known"), r.get("fact"), r.get("value")
            if type(t) not in (int, float) or not math.isfinite(t) or not isinstance(name, str) \
                    or not isinstance(value, (int, float, str)) or isinstance(value, bool):  # fmt: skip
                raise CodecError("EHR fact: fields 'time_known' (UTC seconds), 'fact' (string) and 'value' required")
            try:
                new.append(Fact(pid, float(t), name, value).check())
            except EhrError as e:
                raise CodecError(f"EHR fact: {e}") from None
        have = {(f.time_known, f.fact, str(f.value)) for f in feed.ehr_facts}
        added = []
        for f in new:  # only once every fact of the record is valid; snapshots repeat known facts
            if (f.time_known, f.fact, str(f.value)) not in have:
                added.append(f)
                have.add((f.time_known, f.fact, str(f.value)))
        feed.ehr_facts.extend(added)
        if added and hasattr(self.detector, "add_ehr_facts"):
            self.detector.add_ehr_facts(added)

    # -- outputs --------------------------------------------------------------------------------
    def outputs(self, results) -> tuple[list[str], list[tuple[str, bytes]]]:
        """InfluxDB lines and (topic, value) JSON records for closed days."""
        from detectors.base import LEVEL_NAMES
        from detectors.pipeline import FEATURE_COLUMNS
        from streams.spool import day_lines, output_values

        lines: list[str] = []
        records: list[tuple[str, bytes]] = []
        now = _time.time()
        for r in results:
            vals = output_values(r.row)
            lines += [x for x in day_lines(self.cohort, self.detector.name, r, threshold=self.threshold,
                                           pseudonym=self.pseudonym, values=vals) if x]  # fmt: skip
            pid = self.pseudonym(r.row.participant_id) if self.pseudonym else r.row.participant_id
            base = {"cohort": self.cohort, "participant": pid, "model": self.detector.name,
                    "date": r.row.date.isoformat(), "time": float(r.row.day_start), "time_received": now}  # fmt: skip
            records.append((SCORES, encode_record("prodromal.score", {
                **base, "score": r.score.score, "threshold": self.threshold,
                "level": int(r.decision.level), "raw_level": int(r.decision.raw_level)})))  # fmt: skip
            records.append((DAILY, encode_record("prodromal.daily", {
                **base, "features": {k: (None if v != v else v) for k, v in zip(FEATURE_COLUMNS, vals, strict=True)}})))  # fmt: skip
            if r.decision.level > 0:
                records.append((ALERTS, encode_record("prodromal.alert", {
                    **base, "level": LEVEL_NAMES[r.decision.level], "level_code": int(r.decision.level),
                    "score": r.score.score, "reasons": "; ".join(r.score.reasons)})))  # fmt: skip
        return lines, records

    @staticmethod
    def dead_letter(topic: str, partition: int | None, offset: int | None, key: bytes | None, value: bytes, reason: str) -> bytes:
        return encode_record("prodromal.deadletter", {
            "topic": topic, "partition": partition, "offset": offset,
            "key": key.decode("ascii", "replace")[:64] if key else None,
            "reason": reason[:500], "time_received": _time.time(), "bytes": len(value),
            "payload_b64": base64.b64encode(value[:MAX_DEADLETTER_PAYLOAD]).decode(),
        })  # fmt: skip


def create_app(settings: Settings):
    """Build the Faust app (imports faust; refuses a bad model before connecting)."""
    import faust

    from streams.influx import InfluxSink

    engine = Engine(settings)
    app = faust.App(settings.faust.app_id, **settings.faust.app_kwargs(settings.kafka),
                    key_serializer="raw", value_serializer="raw")  # fmt: skip
    raw = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    inputs = app.topic(*INPUT_TOPICS, **raw)
    topics = {name: app.topic(name, **raw) for name in (SCORES, DAILY, ALERTS, POINTS, DEADLETTER, TICK_TOPIC)}
    # Key and value serializers are the app's ("raw"): values are our own compressed pickles.
    table = app.Table("participants", default=None, key_type=bytes, value_type=bytes,
                      partitions=settings.faust.topic_partitions)  # fmt: skip
    sink = InfluxSink(settings.influx, settings.spool)
    app.prodromal_engine = engine
    app.prodromal_sink = sink

    def _table_feed(pid: str):
        return engine.loads(table.get(pid.encode()), pid)

    last_offset: dict[tuple[str, int], int] = {}

    @app.agent(inputs)
    async def process(stream):
        async for event in stream.events():
            msg = event.message
            tp = (msg.topic, msg.partition)
            prev = last_offset.get(tp)
            if prev is not None and msg.offset != prev + 1:
                log.info("%s[%s]: offset %s after %s (%s)", msg.topic, msg.partition, msg.offset, prev,
                         "redelivery" if msg.offset <= prev else "gap")  # fmt: skip
            last_offset[tp] = msg.offset
            value = event.value if isinstance(event.value, bytes) else bytes(event.value or b"")
            try:
                pid, feed, results = engine.handle(msg.topic, event.key, value, _table_feed)
            except (CodecError, ValueError) as e:
                log.warning("dead letter from %s[%s]@%s: %s", msg.topic, msg.partition, msg.offset, e)
                await topics[DEADLETTER].send(key=event.key, value=engine.dead_letter(msg.topic, msg.partition, msg.offset, event.key, value, str(e)))
                continue
            except Exception as e:  # an operator bug must not stop the stream: dead-letter it, say where
                log.exception("processing failed for a message from %s[%s]@%s", msg.topic, msg.partition, msg.offset)
                await topics[DEADLETTER].send(key=event.key, value=engine.dead_letter(msg.topic, msg.partition, msg.offset, event.key, value, f"processing error: {type(e).__name__}"))
                continue
            table[pid.encode()] = engine.dumps(feed)
            if results:
                lines, records = engine.outputs(results)
                for name, rec in records:
                    await topics[name].send(key=event.key, value=rec)
                if lines:
                    await topics[POINTS].send(key=event.key, value=encode_record("prodromal.points", {"lines": lines}))

    @app.agent(topics[POINTS])
    async def influx_sink(stream):
        loop = asyncio.get_running_loop()
        async for value in stream:
            try:
                rec = decode_record(value, schema="prodromal.points")
                lines = [x for x in rec.get("lines", []) if isinstance(x, str)]
            except CodecError as e:
                log.warning("points message not decodable: %s", e)
                continue
            sink.write(lines)
            # Acknowledge only once the lines are in InfluxDB or fsync'ed in the spool.
            await loop.run_in_executor(None, sink.flush)

    @app.timer(interval=settings.worker.idle_check_interval_s)
    async def idle_ticks():
        now = _time.time()
        for key, data in list(table.items()):
            try:
                feed = engine.loads(data, key.decode())
            except Exception:
                continue
            if not feed.closed and feed.hw and feed.idle_mark != feed.last_wall and now - feed.last_wall > settings.worker.idle_close_s:
                await topics[TICK_TOPIC].send(key=key, value=encode_record("prodromal.idle", {"participant": key.decode(), "time": None, "wall": now}))

    @app.task
    async def _start_sink():
        sink.start()  # background flush and drain of the spool

    @app.on_before_shutdown.connect
    def _stop_sink(app_, **kw):
        sink.close()

    return app


def run_worker(settings: Settings, loglevel: str = "info") -> None:  # pragma: no cover - used by the CLI
    """Start a worker in the foreground (blocks until SIGTERM/SIGINT)."""
    import faust

    app = create_app(settings)
    worker = faust.Worker(app, loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()
