"""InfluxSink against a fake v2 write endpoint: batching, retries, spool, ordered drain, bounds."""

from __future__ import annotations

import errno
import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

import pytest

from streams.influx import InfluxSink, to_lines
from streams.settings import InfluxSettings, SpoolSettings


class FakeInflux:
    """A v2 write endpoint that stores points by identity (measurement+tags+time), like InfluxDB."""

    def __init__(self):
        self.points: dict[tuple, str] = {}
        self.order: list[str] = []
        self.requests = 0
        self.status = 204
        fake = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                fake.requests += 1
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                q = parse_qs(urlparse(self.path).query)
                if fake.status != 204:
                    self.send_response(fake.status)
                    self.end_headers()
                    self.wfile.write(b'{"code":"unavailable","message":"nope"}')
                    return
                assert urlparse(self.path).path == "/api/v2/write" and q["bucket"] == ["db/rp"] and q["precision"] == ["s"]
                for line in body.splitlines():
                    head, _fields, ts = line.rsplit(" ", 2)
                    fake.points[(head, ts)] = line
                    fake.order.append(line)
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def fake():
    f = FakeInflux()
    yield f
    f.stop()


def _sink(url, tmp_path, **kw):
    spool_kw = {k: kw.pop(k) for k in ("max_bytes", "segment_bytes") if k in kw}
    cfg = InfluxSettings(url=url, bucket="db/rp", token="tok", batch_size=kw.pop("batch_size", 10), max_retries=2,
                         retry_interval_ms=1, timeout_ms=500, **kw)  # fmt: skip
    return InfluxSink(cfg, SpoolSettings(dir=tmp_path / "spool", **spool_kw), sleep=lambda s: None)


def _lines(n, start=0, m="alert"):
    return [f"{m},cohort=c,participant=P{i % 3} score={i}i {1_600_000_000 + 86400 * i}" for i in range(start, start + n)]


def test_batches_reach_influx(fake, tmp_path):
    s = _sink(fake.url, tmp_path)
    s.write(_lines(25))
    assert fake.requests == 2  # two full batches sent as they filled
    s.close()
    assert len(fake.points) == 25 and fake.order == _lines(25)
    assert s.stats.written == 25 and s.stats.spooled == 0 and s.pending() == 0


def test_outage_spools_then_drains_in_order(fake, tmp_path):
    s = _sink(fake.url, tmp_path)
    s.write(_lines(10))
    fake.status = 503
    s.write(_lines(30, start=10))
    s.flush()
    assert s.stats.spooled == 30 and s.stats.retries >= 2 and s.pending() > 0
    assert len(fake.points) == 10
    fake.status = 204
    s._degraded_until = 0  # do not wait for the backoff in a test
    s.write(_lines(5, start=40))
    s.flush()  # drains the spool first, then the new batch
    assert s.pending() == 0
    assert fake.order == _lines(45)  # order kept across the outage
    assert len(fake.points) == 45 and s.stats.drained == 30
    assert not list((tmp_path / "spool").glob("spool-*.lp"))


def test_unreachable_spool_survives_restart(tmp_path):
    s = _sink("http://127.0.0.1:9", tmp_path)  # nothing listens on the discard port
    s.write(_lines(12))
    s.close()
    assert s.stats.spooled == 12 and s.stats.dropped == 0
    f = FakeInflux()
    try:
        s2 = _sink(f.url, tmp_path)
        assert s2.pending() > 0
        assert s2.drain()
        assert f.order == _lines(12)
    finally:
        f.stop()


def test_redelivery_is_idempotent(fake, tmp_path):
    s = _sink(fake.url, tmp_path)
    s.write(_lines(8))
    s.write(_lines(8))  # at-least-once redelivery upstream
    s.close()
    assert len(fake.order) == 16 and len(fake.points) == 8


def test_bounded_spool_alarms_once(tmp_path, caplog):
    s = _sink(None, tmp_path, max_bytes=1024, segment_bytes=256)
    with caplog.at_level(logging.ERROR, logger="prodromal.influx"):
        for i in range(40):
            s.write(_lines(1, start=i))
            s.flush()
    assert s.stats.spool_full and s.stats.dropped > 0
    assert s.stats.spooled + s.stats.dropped == 40
    assert s.pending() <= 1024
    alarms = [r for r in caplog.records if "ALARM" in r.getMessage()]
    assert len(alarms) == 1 and "spool" in alarms[0].getMessage()
    assert "score=" not in caplog.text  # no values in logs


def test_disk_full_is_handled(tmp_path, monkeypatch, caplog):
    s = _sink(None, tmp_path)
    s.write(_lines(3))
    s.flush()
    before = s.pending()

    def full(fd):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr("streams.influx.os.fsync", full)
    with caplog.at_level(logging.ERROR, logger="prodromal.influx"):
        s.write(_lines(3, start=3))
        s.flush()
    assert s.stats.dropped == 3 and s.stats.spool_full
    assert s.pending() == before  # the partial write was truncated away
    assert "disk full" in caplog.text


def test_malformed_batch_is_rejected_not_retried_forever(fake, tmp_path):
    s = _sink(fake.url, tmp_path)
    fake.status = 400
    s.write(_lines(3))
    s.flush()
    assert s.stats.rejected == 3 and s.stats.spooled == 0 and s.stats.retries == 0
    assert list((tmp_path / "spool").glob("rejected-*.lp"))


def test_background_thread_flushes(fake, tmp_path):
    s = _sink(fake.url, tmp_path, flush_interval_ms=20).start()
    s.write(_lines(3))
    deadline = time.monotonic() + 10
    while len(fake.points) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    s.close()
    assert len(fake.points) == 3


def test_token_not_logged(tmp_path, caplog):
    s = _sink("http://127.0.0.1:9", tmp_path)
    with caplog.at_level(logging.DEBUG):
        s.write(_lines(1))
        s.close()
    assert "tok" not in caplog.text.replace("token", "")


def test_points_to_lines():
    from influxdb_client import Point

    p = Point("score").tag("participant", "P1").field("score", 0.5).time(1_600_000_000, "s")
    assert to_lines([p, "a b=1 2\nc d=1 3", ""]) == ["score,participant=P1 score=0.5 1600000000", "a b=1 2", "c d=1 3"]
