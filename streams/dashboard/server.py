"""The project's own web dashboard: a small local HTTP server for the cohort and participant views.

Serves the static page in ``streams/web/`` (HTML, CSS and our own SVG chart code; nothing is
fetched from the network at view time) and two JSON endpoints:

- ``GET /api/cohort`` -- participants with current state, data capture and the alert list;
- ``GET /api/participant?id=P`` -- one participant's nightly series, alerts and labels.

Access: the server binds 127.0.0.1 by default. Binding any other address needs an access token
(refused otherwise). When a token is set it is checked on every request, static files included:
``Authorization: Bearer <token>``, or the ``prodromal_token`` cookie that a first visit with
``?token=<token>`` sets (the browser is then redirected to the same URL without the token, so it
does not stay in the address bar or history).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import mimetypes
import threading
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from streams.dashboard.data import DataError

__all__ = ["DashboardServer", "is_loopback", "WEB_DIR", "AccessError"]

WEB_DIR = Path(__file__).resolve().parents[1] / "web"
COOKIE = "prodromal_token"
_STATIC = {"/": "index.html", "/index.html": "index.html", "/app.js": "app.js", "/charts.js": "charts.js",
           "/style.css": "style.css", "/favicon.svg": "favicon.svg"}


class AccessError(ValueError):
    """Refused configuration (e.g. a non-loopback bind without a token)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class _Handler(BaseHTTPRequestHandler):
    server: _Server
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *args):  # no request logs: URLs carry participant ids
        pass

    def _send(self, status: int, body: bytes, ctype: str, extra: dict | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("Referrer-Policy", "no-referrer")
        # The page needs nothing from elsewhere; say so, so a mistake cannot leak a request out.
        self.send_header("Content-Security-Policy",
                         "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'")
        for k, v in (extra or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, obj) -> None:
        self._send(status, json.dumps(obj, separators=(",", ":")).encode(), "application/json")

    def _authorised(self, query: dict) -> bool | str:
        token = self.server.token
        if token is None:
            return True
        given = None
        auth = self.headers.get("Authorization", "")
        if auth.startswith("Bearer "):
            given = auth[7:].strip()
        if given is None:
            for part in self.headers.get("Cookie", "").split(";"):
                k, _, v = part.strip().partition("=")
                if k == COOKIE:
                    given = urllib.parse.unquote(v)
        if given is not None and hmac.compare_digest(given.encode(), token.encode()):
            return True
        q = query.get("token", [None])[0]
        if q is not None and hmac.compare_digest(q.encode(), token.encode()):
            return "cookie"
        return False

    def do_GET(self):  # noqa: N802 - http.server API
        u = urllib.parse.urlsplit(self.path)
        query = urllib.parse.parse_qs(u.query)
        ok = self._authorised(query)
        if ok is False:
            self._send(401, b"401: an access token is required (open the URL with ?token=... once, or send "
                            b"'Authorization: Bearer ...').\n", "text/plain; charset=utf-8")
            return
        if ok == "cookie":
            rest = urllib.parse.urlencode([(k, v) for k, vs in query.items() if k != "token" for v in vs])
            cookie = f"{COOKIE}={urllib.parse.quote(self.server.token)}; HttpOnly; SameSite=Strict; Path=/"
            self._send(303, b"", "text/plain", {"Location": u.path + ("?" + rest if rest else ""), "Set-Cookie": cookie})
            return
        try:
            if u.path == "/api/cohort":
                self._json(200, self.server.source.cohort())
            elif u.path == "/api/participant":
                pid = query.get("id", [""])[0]
                data = self.server.source.participant(pid) if pid else None
                if data is None:
                    self._json(404, {"error": "unknown participant"})
                else:
                    self._json(200, data)
            elif u.path in _STATIC:
                f = WEB_DIR / _STATIC[u.path]
                ctype = mimetypes.guess_type(f.name)[0] or "application/octet-stream"
                if ctype.startswith("text/") or ctype.endswith("javascript"):
                    ctype += "; charset=utf-8"
                self._send(200, f.read_bytes(), ctype)
            else:
                self._send(404, b"not found\n", "text/plain; charset=utf-8")
        except DataError as e:
            self._json(503, {"error": str(e)})

    do_HEAD = do_GET


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    source = None
    token: str | None = None


class DashboardServer:
    """The dashboard HTTP server around a data source (:class:`~streams.dashboard.data.RunSource`
    or :class:`~streams.dashboard.data.InfluxSource`).

    Parameters
    ----------
    source
        Object with ``cohort()`` and ``participant(pid)``.
    host, port : str, int
        Bind address (127.0.0.1 by default; port 0 picks a free port).
    token : str, optional
        Access token; required when ``host`` is not a loopback address.

    Raises
    ------
    AccessError
        When binding beyond loopback without a token.
    """

    def __init__(self, source, host: str = "127.0.0.1", port: int = 8050, token: str | None = None):
        if not is_loopback(host) and not token:
            raise AccessError(f"refusing to serve on {host}: not a loopback address and no access token; set "
                              "PRODROMAL_DASHBOARD__TOKEN or pass --token-file, or bind 127.0.0.1")
        if token is not None and len(token) < 16:
            raise AccessError("the dashboard access token must be at least 16 characters")
        self.httpd = _Server((host, port), _Handler)
        self.httpd.source, self.httpd.token = source, token
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host if ':' not in host else '[' + host + ']'}:{port}/"

    def serve_forever(self) -> None:
        self.httpd.serve_forever()

    def start(self) -> DashboardServer:
        """Serve in a background thread (tests, notebooks)."""
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="dashboard", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
