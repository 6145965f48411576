"""The sink's spool.when_full = "wait" policy (backpressure) without real services.

A fake v2 endpoint answers 503 while "down"; the spool is tiny. With "wait" the writer blocks
instead of dropping, and every point arrives once the endpoint is back; closing the sink ends the
wait (the caller's message would be redelivered). With "drop" (default) the same run loses points.
"""

from __future__ import annotations

import logging
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from streams.influx import InfluxSink
from streams.settings import InfluxSettings, SpoolSettings


class Endpoint:
    def __init__(self):
        self.up = False
        self.lines: set[str] = set()
        ep = self

        class H(BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"])).decode()
                if not ep.up:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                ep.lines.update(x for x in body.splitlines() if x)
                self.send_response(204)
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def ep():
    e = Endpoint()
    yield e
    e.stop()


def _sink(ep, tmp_path, when_full):
    cfg = InfluxSettings(url=ep.url, bucket="db/rp", token="t" * 20, batch_size=20, max_retries=0,
                         retry_interval_ms=5, max_retry_delay_ms=50, timeout_ms=500)
    return InfluxSink(cfg, SpoolSettings(dir=tmp_path / "spool", max_bytes=2048, segment_bytes=512, when_full=when_full),
                      sleep=lambda s: None)


LINES = [f"alert,cohort=c,participant=P{i % 5},level=yellow score={i}i {1_600_000_000 + 86400 * i}" for i in range(300)]


def test_wait_blocks_then_delivers_everything(ep, tmp_path, caplog):
    caplog.set_level(logging.WARNING, logger="prodromal.influx")
    sink = _sink(ep, tmp_path, "wait")
    w = threading.Thread(target=lambda: (sink.write(LINES), sink.flush()), daemon=True)
    w.start()
    deadline = time.monotonic() + 20
    while not sink.stats.spool_full and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sink.stats.spool_full, "the tiny spool filled"
    time.sleep(0.3)
    assert w.is_alive(), "the writer waits instead of dropping"
    assert sink.stats.dropped == 0
    ep.up = True
    w.join(30)
    assert not w.is_alive()
    sink.close()
    assert ep.lines == set(LINES), f"{len(set(LINES) - ep.lines)} points lost"
    assert sink.stats.dropped == 0 and not sink.stats.spool_full
    alarms = [r.getMessage() for r in caplog.records if "ALARM" in r.getMessage()]
    assert len(alarms) == 1 and "holding new points" in alarms[0]


def test_close_ends_the_wait(ep, tmp_path):
    sink = _sink(ep, tmp_path, "wait")
    sink.start()  # the background thread owns the flushing, as in the worker
    sink.write(LINES)
    deadline = time.monotonic() + 20
    while not sink.stats.spool_full and time.monotonic() < deadline:
        time.sleep(0.05)
    assert sink.stats.spool_full
    t = threading.Thread(target=lambda: sink.close(drain=False), daemon=True)
    t.start()
    t.join(20)
    assert not t.is_alive(), "close() ends the wait"


def test_drop_loses_and_counts(ep, tmp_path):
    sink = _sink(ep, tmp_path, "drop")
    sink.write(LINES)
    sink.flush()
    assert sink.stats.dropped > 0
    ep.up = True
    sink.close()
    assert len(ep.lines) == len(LINES) - sink.stats.dropped
