"""An HTTP proxy in front of InfluxDB that injects faults: down, slow, or answering errors.

Used by tests/integration/test_faults.py and bench/soak.py. Loopback only. The mode can be switched
at any time from the test (``proxy.mode = "error"``); requests are counted per mode.

Modes
-----
``ok``     relay to the upstream (the v2 adapter in front of influxd)
``error``  answer 503 Service Unavailable (InfluxDB overloaded / restarting)
``e500``   answer 500 Internal Server Error
``slow``   wait ``delay_s`` (longer than the client's timeout), then relay
``down``   close the connection without an answer (process gone, connection reset)
"""

from __future__ import annotations

import threading
import time
import urllib.error
import urllib.request
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from services import free_port

MODES = ("ok", "error", "e500", "slow", "down")


class FaultProxy:
    def __init__(self, upstream: str, port: int | None = None, delay_s: float = 5.0):
        self.upstream = upstream.rstrip("/")
        self.port = port or free_port()
        self.delay_s = delay_s
        self.mode = "ok"
        self.counts: Counter = Counter()
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _handle(self, method: str) -> None:
                n = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(n) if n else None
                mode = proxy.mode
                proxy.counts[mode] += 1
                if mode == "down":
                    self.close_connection = True
                    try:
                        self.connection.shutdown(2)
                    except OSError:
                        pass
                    return
                if mode in ("error", "e500"):
                    code = 503 if mode == "error" else 500
                    msg = b'{"code":"unavailable","message":"injected fault"}'
                    self.send_response(code)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(msg)))
                    self.end_headers()
                    self.wfile.write(msg)
                    return
                if mode == "slow":
                    time.sleep(proxy.delay_s)
                headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
                req = urllib.request.Request(proxy.upstream + self.path, data=body, headers=headers, method=method)
                try:
                    with urllib.request.urlopen(req, timeout=30) as r:
                        status, data, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
                except urllib.error.HTTPError as e:
                    status, data, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
                except OSError:
                    status, data, ctype = 502, b"upstream unreachable", "text/plain"
                try:
                    self.send_response(status)
                    if ctype:
                        self.send_header("Content-Type", ctype)
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:  # the client gave up (timeout) while we were slow
                    pass

            def do_POST(self):
                self._handle("POST")

            def do_GET(self):
                self._handle("GET")

        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> FaultProxy:
        self._thread = threading.Thread(target=self._server.serve_forever, name="fault-proxy", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
