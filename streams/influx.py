"""InfluxDB sink: batched v2 writes with retries, and a local spool so nothing is lost.

:class:`InfluxSink` writes line protocol through ``influxdb_client``'s WriteApi (the v2 write API
of InfluxDB 1.8+, 2.x and 3.x). Its API is synchronous and deterministic (``write``, ``flush``,
``drain``, ``close``); ``start()`` adds a background thread that flushes and drains on a timer, so
an asyncio worker only ever calls the cheap ``write``.

Delivery: a batch is retried with exponential backoff (``max_retries``); if InfluxDB still fails
(unreachable, timeout, 5xx, 401/403/404 from a misconfiguration), the batch is appended to the
spool, a directory of line-protocol segment files. While anything is spooled, new batches go to
the spool too, so points reach InfluxDB in the order they were written; ``drain`` sends the
segments oldest first and deletes each once accepted. A batch InfluxDB refuses as malformed
(400, 422) would be refused forever: it is moved to ``rejected-*.lp`` with an error log, never
retried in a loop.

The spool is bounded (``spool.max_bytes``): when full, or when the disk is full, an ERROR alarm is
logged once per episode naming the spool directory and ``stats.spool_full`` says so for a health
check; with ``spool.when_full = "wait"`` (default) the batch is held and the caller blocks,
retrying the drain, until the spool has room (or the sink closes): the worker's sink agent then
does not acknowledge the points message, so Kafka keeps the points and nothing is lost; with
``"drop"`` new points are dropped and counted (``stats.dropped``). A sink without an InfluxDB URL
(spool only) always drops when full.

Idempotency: a point is identified by measurement, tag set and timestamp; writing it again
overwrites its fields. Re-sending a segment after a partial failure, or at-least-once redelivery
upstream, therefore never duplicates an alert.
"""

from __future__ import annotations

import errno
import logging
import os
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from streams.settings import InfluxSettings, SpoolSettings

__all__ = ["InfluxSink", "SinkStats", "to_lines"]

log = logging.getLogger("prodromal.influx")

_PERMANENT = {400, 422}  # malformed line protocol: retrying cannot help


@dataclass
class SinkStats:
    """Counters for health checks and metrics (points, not batches)."""

    written: int = 0  # accepted by InfluxDB directly
    spooled: int = 0  # appended to the spool
    drained: int = 0  # sent from the spool and accepted
    dropped: int = 0  # lost because the spool was full or the disk full (alarmed)
    rejected: int = 0  # refused by InfluxDB as malformed (kept in rejected-*.lp)
    retries: int = 0
    errors: int = 0
    spool_bytes: int = 0
    spool_full: bool = False

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def to_lines(points: Iterable[Any], precision: str = "s") -> list[str]:
    """Line-protocol strings of ``influxdb_client.Point`` objects or strings (passed through)."""
    out = []
    for p in points:
        if isinstance(p, str):
            line = p.strip()
        elif isinstance(p, bytes):
            line = p.decode("utf-8").strip()
        else:
            line = p.to_line_protocol(precision=precision)
        if line:
            if "\n" in line:
                out.extend(x for x in line.splitlines() if x.strip())
            else:
                out.append(line)
    return out


class _Spool:
    """Ordered segment files ``spool-<seq>.lp`` in one directory, bounded in total size."""

    def __init__(self, cfg: SpoolSettings):
        self.dir = Path(cfg.dir)
        self.max_bytes = cfg.max_bytes
        self.segment_bytes = cfg.segment_bytes
        self.dir.mkdir(parents=True, exist_ok=True)
        self._seq = max((self._seq_of(p) for p in self.segments()), default=0)
        self._cur: Path | None = None

    @staticmethod
    def _seq_of(p: Path) -> int:
        return int(p.stem.split("-", 1)[1])

    def segments(self) -> list[Path]:
        return sorted(self.dir.glob("spool-*.lp"), key=self._seq_of)

    def size(self) -> int:
        total = 0
        for p in self.segments():
            try:
                total += p.stat().st_size
            except FileNotFoundError:
                pass
        return total

    def __bool__(self) -> bool:
        return bool(self.segments())

    def append(self, lines: list[str]) -> None:
        """Append lines; raises OSError(ENOSPC) when the bound would be passed or the disk is full."""
        data = ("\n".join(lines) + "\n").encode("utf-8")
        if self.size() + len(data) > self.max_bytes:
            raise OSError(errno.ENOSPC, f"spool bound of {self.max_bytes} bytes reached")
        if self._cur is None or not self._cur.exists() or self._cur.stat().st_size >= self.segment_bytes:
            self._seq += 1
            self._cur = self.dir / f"spool-{self._seq:012d}.lp"
        # Write the whole batch or nothing: a short write (disk full) is truncated away.
        with open(self._cur, "ab") as fh:
            start = fh.tell()
            try:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            except OSError:
                fh.truncate(start)
                raise

    def seal(self) -> None:
        """Stop appending to the current segment (it may be drained and deleted)."""
        self._cur = None


class InfluxSink:
    """Batched, retrying, spooling InfluxDB writer.

    Parameters
    ----------
    influx : InfluxSettings
        URL (None = spool only), org, bucket (``db/rp`` on InfluxDB 1.x), token, batching, retries.
    spool : SpoolSettings
        Spool directory and bounds.
    precision : {"s", "ms", "us", "ns"}
        Timestamp precision of the points (prodromal writes seconds).
    sleep : callable
        Used between retries (tests pass a no-op).

    Examples
    --------
    >>> sink = InfluxSink(InfluxSettings(url=None), SpoolSettings(dir=tmp))   # doctest: +SKIP
    >>> sink.write(["alert,participant=P1 score=0.9 1600000000"])           # doctest: +SKIP
    >>> sink.close()                                                        # doctest: +SKIP
    """

    def __init__(self, influx: InfluxSettings, spool: SpoolSettings, precision: str = "s", sleep=time.sleep):
        if precision not in ("s", "ms", "us", "ns"):
            raise ValueError(f"unknown precision {precision!r}; valid: s, ms, us, ns")
        self.cfg = influx
        self.precision = precision
        self.stats = SinkStats()
        self._sleep = sleep
        self._spool = _Spool(spool)
        self._wait_when_full = getattr(spool, "when_full", "drop") == "wait"
        self._buf: list[str] = []
        self._buf_lock = threading.Lock()  # held for microseconds: write() never waits on I/O
        self._io = threading.RLock()  # serialises flush/drain (network and spool I/O)
        self._client = None
        self._api = None
        self._degraded_until = 0.0  # while InfluxDB is failing: skip direct writes until then
        self._backoff = influx.retry_interval_ms / 1000
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._alarmed = False
        self.stats.spool_bytes = self._spool.size()
        if self.stats.spool_bytes:
            log.warning("spool %s holds %d bytes from an earlier run: draining when InfluxDB answers",
                        self._spool.dir, self.stats.spool_bytes)

    # -- public API -----------------------------------------------------------------------------
    def write(self, points: Iterable[Any]) -> None:
        """Buffer points (``Point`` or line-protocol strings); flush when a batch is full."""
        lines = to_lines(points, self.precision)
        with self._buf_lock:
            self._buf.extend(lines)
            full = len(self._buf) >= self.cfg.batch_size
        if full and self._thread is None:
            self.flush(full_batches_only=True)

    def flush(self, full_batches_only: bool = False) -> None:
        """Send everything buffered (or spool it). Returns once every point is in InfluxDB or the spool."""
        with self._io:
            while True:
                with self._buf_lock:
                    if not self._buf or (full_batches_only and len(self._buf) < self.cfg.batch_size):
                        return
                    batch, self._buf = self._buf[: self.cfg.batch_size], self._buf[self.cfg.batch_size :]
                self._deliver(batch)

    def drain(self) -> bool:
        """Send spooled segments, oldest first. True when the spool is empty afterwards."""
        with self._io:
            if self.cfg.url is None:
                return not self._spool
            self._spool.seal()
            for seg in self._spool.segments():
                lines = [x for x in seg.read_text(encoding="utf-8").splitlines() if x]
                for i in range(0, len(lines), self.cfg.batch_size):
                    batch = lines[i : i + self.cfg.batch_size]
                    status = self._send(batch, retries=0)
                    if status == "retry":
                        # Whole segment is re-sent next time: points are idempotent.
                        self._enter_degraded()
                        self.stats.spool_bytes = self._spool.size()
                        return False
                    if status == "rejected":
                        self._reject(batch)
                    else:
                        self.stats.drained += len(batch)
                seg.unlink()
            self.stats.spool_bytes = 0
            if self.stats.spool_full:
                log.warning("spool %s drained: accepting points again", self._spool.dir)
            self.stats.spool_full = False
            self._alarmed = False
            self._degraded_until = 0.0
            self._backoff = self.cfg.retry_interval_ms / 1000
            return True

    def pending(self) -> int:
        """Bytes waiting in the spool plus points in the buffer (0 = everything delivered)."""
        with self._buf_lock:
            n = len(self._buf)
        return n + self._spool.size()

    def start(self) -> InfluxSink:
        """Flush and drain from a background thread every ``flush_interval_ms``."""
        if self._thread is None:
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, name="influx-sink", daemon=True)
            self._thread.start()
        return self

    def close(self, drain: bool = True) -> None:
        """Stop the thread, flush the buffer, try a last drain; spooled points stay for next start."""
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            self._thread = None
        self.flush()
        if drain and self._spool:
            self.drain()
        if self._client is not None:
            self._client.close()
            self._client = None
            self._api = None

    def __enter__(self) -> InfluxSink:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # -- internals ------------------------------------------------------------------------------
    def _run(self) -> None:
        period = self.cfg.flush_interval_ms / 1000
        while not self._stop.wait(period):
            try:
                self.flush()
                if self._spool and time.monotonic() >= self._degraded_until:
                    self.drain()
            except Exception:  # the thread must survive anything; the error is counted and logged
                self.stats.errors += 1
                log.exception("influx sink background flush failed")

    def _api_client(self):
        if self._api is None:
            from influxdb_client import InfluxDBClient
            from influxdb_client.client.write_api import SYNCHRONOUS

            token = self.cfg.token.get_secret_value() if self.cfg.token else "none"
            self._client = InfluxDBClient(
                url=self.cfg.url, token=token, org=self.cfg.org, timeout=self.cfg.timeout_ms,
                verify_ssl=self.cfg.verify_ssl,
            )  # fmt: skip
            self._api = self._client.write_api(write_options=SYNCHRONOUS)
        return self._api

    def _deliver(self, batch: list[str]) -> None:
        degraded = self._spool or time.monotonic() < self._degraded_until
        if self.cfg.url is not None and self._spool and time.monotonic() >= self._degraded_until:
            degraded = not self.drain()  # keep order: the spool goes first
        if self.cfg.url is None or degraded:
            self._to_spool(batch)
            return
        status = self._send(batch, retries=self.cfg.max_retries)
        if status == "ok":
            self.stats.written += len(batch)
        elif status == "rejected":
            self._reject(batch)
        else:
            self._enter_degraded()
            self._to_spool(batch)

    def _send(self, batch: list[str], retries: int) -> str:
        """'ok', 'rejected' (malformed, permanent) or 'retry' (InfluxDB unavailable)."""
        from influxdb_client.rest import ApiException

        delay = self.cfg.retry_interval_ms / 1000
        for attempt in range(retries + 1):
            try:
                self._api_client().write(self.cfg.bucket, self.cfg.org, record=batch, write_precision=self.precision)
                return "ok"
            except ApiException as e:
                self.stats.errors += 1
                if e.status in _PERMANENT:
                    log.error("InfluxDB refused a batch of %d points as malformed (HTTP %s)", len(batch), e.status)
                    return "rejected"
                log.warning("InfluxDB write failed: HTTP %s %s", e.status, (e.reason or "")[:80])
            except Exception as e:  # connection refused, timeout, DNS: all mean "not now"
                self.stats.errors += 1
                log.warning("InfluxDB unreachable at %s: %s", self.cfg.url, type(e).__name__)
            if attempt < retries:
                self.stats.retries += 1
                self._sleep(delay)
                delay = min(delay * 2, self.cfg.max_retry_delay_ms / 1000)
        return "retry"

    def _enter_degraded(self) -> None:
        self._degraded_until = time.monotonic() + self._backoff
        self._backoff = min(self._backoff * 2, self.cfg.max_retry_delay_ms / 1000)

    def _to_spool(self, batch: list[str]) -> None:
        delay = self.cfg.retry_interval_ms / 1000
        while True:
            try:
                self._spool.append(batch)
                break
            except OSError as e:
                # "wait" needs somewhere to drain to, and gives up when the sink closes (the
                # caller's message is then not acknowledged and comes again)
                if not (self._wait_when_full and self.cfg.url is not None and not self._stop.is_set()):
                    self._drop(batch, e)
                    return
                self._alarm(e)
                if self._stop.wait(delay):
                    continue
                delay = min(delay * 2, self.cfg.max_retry_delay_ms / 1000)
                self._degraded_until = 0.0
                if self.drain():  # nothing spooled ahead of this batch (any more): try it directly
                    status = self._send(batch, retries=0)
                    if status == "ok":
                        self.stats.written += len(batch)
                        return
                    if status == "rejected":
                        self._reject(batch)
                        return
        self.stats.spooled += len(batch)
        self.stats.spool_bytes = self._spool.size()

    def _drop(self, batch: list[str], e: OSError) -> None:
        self.stats.dropped += len(batch)
        self._alarm(e)

    def _alarm(self, e: OSError) -> None:
        self.stats.spool_full = True
        if not self._alarmed:
            why = "disk full" if e.errno == errno.ENOSPC and "bound" not in str(e) else str(e.strerror or e)
            action = ("holding new points (writers wait, nothing is dropped)" if self._wait_when_full and self.cfg.url
                      else "dropping points; see stats.dropped")  # fmt: skip
            log.error(
                "ALARM: spool %s cannot take more points (%s): %s until InfluxDB is back and the "
                "spool drains", self._spool.dir, why, action,
            )  # fmt: skip
            self._alarmed = True

    def _reject(self, batch: list[str]) -> None:
        self.stats.rejected += len(batch)
        path = self._spool.dir / f"rejected-{int(time.time())}.lp"
        try:
            with open(path, "a", encoding="utf-8") as fh:
                fh.write("\n".join(batch) + "\n")
        except OSError:
            log.error("could not keep rejected points in %s", path)
