"""One participant's input as a Kafka worker sees it: several topics, no order across them.

Kafka keeps order within one topic-partition only: a participant's ``wearable.hr`` chunk for
10:00 may be consumed before its ``wearable.steps`` chunk for 09:00. The epoch operator closes a
minute once the participant's watermark (over all kinds) passed it, so feeding chunks in arrival
order would make the steps "late". :class:`ParticipantFeed` therefore holds chunks per kind and
releases, in one ``update_many`` call, every sample up to the *cutoff* = the lowest high-water
mark among the participant's active kinds. A kind is inactive once its end marker arrived or
when no chunk of it arrived for ``stale_after_s`` of wall-clock time while others did (a sensor
stopped): it then no longer holds the rest back. Event-time lag alone never makes a kind
inactive, because consumption skew across topics (one fetch of one topic can hold weeks of a
replayed recording) is indistinguishable from a stopped sensor in event time. Released slices are in event-time order across
kinds, and the operators are chunk-invariant, so the results equal the in-process replay's.

The context record (``utc_offset_s``) must arrive before any release (local days depend on it);
until then samples wait (bounded: after ``max_buffer_samples`` the offset defaults to 0, logged).
End-of-recording markers close the participant exactly like the replay's ``flush``; an idle tick
(no data for a while, wall clock) closes what is open with ``advance``.

The feed is a plain picklable object: the worker keeps it in a Faust table (changelog-backed).
"""

from __future__ import annotations

import logging
import math
import time as _time
from dataclasses import dataclass, field

import numpy as np

from detectors.monitor import DayResult, ParticipantMonitor
from detectors.records import STREAMS, WAVEFORMS, SampleChunk

__all__ = ["ParticipantFeed", "FeedStats"]

log = logging.getLogger("prodromal.feed")


@dataclass
class FeedStats:
    chunks: int = 0
    samples: int = 0
    waveform_samples: int = 0
    released: int = 0
    days: int = 0


@dataclass
class ParticipantFeed:
    participant_id: str
    stale_after_s: float = 3600.0
    max_buffer_samples: int = 2_000_000
    utc_offset_s: int | None = None
    monitor: ParticipantMonitor | None = None
    raw: object | None = None  # raw PPG/ACC operator state, when waveforms arrive
    buf: dict[str, list[tuple[np.ndarray, np.ndarray]]] = field(default_factory=dict)
    hw: dict[str, float] = field(default_factory=dict)
    kind_wall: dict[str, float] = field(default_factory=dict)  # wall clock of each kind's last chunk
    cutoff: float = -math.inf
    expected: set[str] | None = None
    kinds: set[str] = field(default_factory=set)  # announced in the context record
    ehr_facts: list = field(default_factory=list)  # dated EHR facts received on ehr.context (Fact)
    first_wall: float | None = None
    ended: set[str] = field(default_factory=set)
    closed: bool = False
    last_wall: float = 0.0
    idle_mark: float = -1.0  # last_wall at the last idle close (one close per silence)
    stats: FeedStats = field(default_factory=FeedStats)

    # -- inputs ---------------------------------------------------------------------------------
    def on_context(self, utc_offset_s: int, new_monitor, kinds: list[str] | None = None) -> list[DayResult]:
        """Participant context arrived; ``new_monitor(utc_offset_s)`` builds the monitor.

        ``kinds`` (optional) names the streams the participant sends: nothing is released until
        each has been seen (or stayed silent for ``stale_after_s``).
        """
        if kinds:
            self.kinds = {k for k in kinds if k in STREAMS or k in WAVEFORMS}
        if self.monitor is None:
            self.utc_offset_s = int(utc_offset_s)
            self.monitor = new_monitor(self.utc_offset_s)
        return self._release()

    def on_chunk(self, chunk: SampleChunk, new_monitor, raw_factory=None, now: float | None = None) -> list[DayResult]:
        """A decoded sample or waveform chunk of this participant."""
        self.last_wall = _time.time() if now is None else now
        if self.first_wall is None:
            self.first_wall = self.last_wall
        self.stats.chunks += 1
        if self.closed:
            # Data after the end marker: a new recording of the same participant starts fresh.
            self.closed, self.ended, self.expected = False, set(), None
        if chunk.kind in WAVEFORMS:
            self.stats.waveform_samples += int(chunk.values.size)
            if raw_factory is None:
                return []  # same as the in-process replay without a raw operator
            if self.raw is None:
                self.raw = raw_factory()
            items = self.raw.update(chunk.kind, float(chunk.time[0]), float(chunk.fs), chunk.values)
            for kind, t, v in items:
                self._hold(kind, np.asarray(t, np.float64), np.asarray(v, np.float64))
                self.kind_wall[kind] = self.last_wall
        else:
            self.kind_wall[chunk.kind] = self.last_wall
            self.stats.samples += len(chunk)
            self._hold(chunk.kind, np.asarray(chunk.time, np.float64), np.asarray(chunk.values, np.float64))
        if self._buffered() > self.max_buffer_samples:
            if self.monitor is None:
                log.warning("participant %s: no context record after %d samples: assuming utc_offset_s=0",
                            self.participant_id, self._buffered())
                self.on_context(0, new_monitor)
            else:  # bounded memory beats waiting for a kind that may never come
                log.warning("participant %s: %d samples held waiting for other kinds: releasing",
                            self.participant_id, self._buffered())
                return self._release(everything=True)
        return self._release()

    def on_end(self, kind: str, kinds: list[str], new_monitor) -> list[DayResult]:
        """End-of-recording marker for ``kind``; closes everything when all ``kinds`` ended."""
        self.ended.add(kind)
        self.expected = set(kinds)
        if not self.expected <= self.ended:
            return []
        if self.monitor is None:
            self.on_context(0, new_monitor)
        out = self._release(everything=True)
        if self.raw is not None and hasattr(self.raw, "flush"):
            for k, t, v in self.raw.flush():
                self._hold(k, np.asarray(t, np.float64), np.asarray(v, np.float64))
            out += self._release(everything=True)
        last = self.monitor.flush()
        self.closed = True
        self.stats.days += len(last)
        return out + last

    def on_idle(self, new_monitor, lateness_s: float) -> list[DayResult]:
        """No data for a while: release everything held and close what event time allows."""
        if self.closed or not self.hw:
            return []
        if self.monitor is None:
            self.on_context(0, new_monitor)
        out = self._release(everything=True)
        more = self.monitor.advance(max(self.hw.values()) + lateness_s)
        self.stats.days += len(more)
        return out + more

    # -- internals ------------------------------------------------------------------------------
    def _hold(self, kind: str, t: np.ndarray, v: np.ndarray) -> None:
        if kind not in STREAMS or t.size == 0:
            return
        self.buf.setdefault(kind, []).append((t, v))
        self.hw[kind] = max(self.hw.get(kind, -math.inf), float(t.max()))

    def _buffered(self) -> int:
        return sum(t.size for parts in self.buf.values() for t, _ in parts)

    def _release(self, everything: bool = False) -> list[DayResult]:
        if self.monitor is None or not self.buf:
            return []
        if everything:
            cut = math.inf
        else:
            now = self.last_wall
            derived = {k for k in self.kinds if k in STREAMS}
            if self.kinds & set(WAVEFORMS):  # derived kinds of a raw operator are not known ahead
                derived = set()
            waiting = derived - set(self.hw) - self.ended
            if waiting and now - (self.first_wall or now) <= self.stale_after_s:
                return []
            active = [h for k, h in self.hw.items()
                      if k not in self.ended and now - self.kind_wall.get(k, now) <= self.stale_after_s]
            if not active:
                return []
            cut = min(active)
            if cut <= self.cutoff:
                return []
        items = []
        for kind in list(self.buf):
            parts = self.buf[kind]
            t = np.concatenate([a for a, _ in parts])
            v = np.concatenate([b for _, b in parts])
            if t.size > 1 and np.any(np.diff(t) < 0):
                o = np.argsort(t, kind="stable")
                t, v = t[o], v[o]
            n = int(np.searchsorted(t, cut, side="right")) if math.isfinite(cut) else t.size
            if n:
                items.append((kind, t[:n], v[:n]))
            if n < t.size:
                self.buf[kind] = [(t[n:], v[n:])]
            else:
                del self.buf[kind]
        if math.isfinite(cut):
            self.cutoff = cut
        if not items:
            return []
        # Earliest-starting kind first: the epoch operator anchors its first minute on the first
        # samples it sees, so a kind starting earlier but added later would count as late.
        items.sort(key=lambda it: float(it[1][0]))
        self.stats.released += sum(t.size for _, t, _ in items)
        out = self.monitor.update_many(items)
        self.stats.days += len(out)
        return out
