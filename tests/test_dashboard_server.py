"""``prodromal dashboard`` without a browser: the run-folder source, the JSON API, the token gate, the CLI refusal."""

from __future__ import annotations

import csv
import http.client
import json
import re
import urllib.parse
from pathlib import Path

import pytest
from typer.testing import CliRunner

from streams.dashboard import AccessError, DashboardServer, DataError, RunSource, is_loopback
from streams.dashboard.server import WEB_DIR

TOKEN = "correct-horse-battery-staple"


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from streams.dashboard.demo import demo_run

    return demo_run(tmp_path_factory.mktemp("dash_demo"), participants=5, days=45, seed=11)


def _get(srv: DashboardServer, path: str, headers: dict | None = None):
    host, port = srv.httpd.server_address[:2]
    c = http.client.HTTPConnection(host, port, timeout=10)
    c.request("GET", path, headers=headers or {})
    r = c.getresponse()
    body = r.read()
    c.close()
    return r.status, dict(r.getheaders()), body


@pytest.fixture
def server(run):
    srv = DashboardServer(RunSource(run), "127.0.0.1", 0).start()
    yield srv
    srv.stop()


def test_run_source_matches_the_run_files(run):
    src = RunSource(run)
    c = src.cohort()
    with open(run / "scores.csv", newline="") as fh:
        scores = list(csv.DictReader(fh))
    with open(run / "alerts.csv", newline="") as fh:
        alerts = list(csv.DictReader(fh))
    assert [p["id"] for p in c["participants"]] == sorted({r["participant_id"] for r in scores})
    assert len(c["alerts"]) == len(alerts) > 0
    for p in c["participants"]:
        mine = [r for r in scores if r["participant_id"] == p["id"]]
        assert p["state"] == int(mine[-1]["level"]) and p["days"] == len(mine)
        assert p["alert_days"] == sum(int(r["level"]) > 0 for r in mine)
        assert len(p["recent_levels"]) == len(p["recent_capture"]) == c["recent_days"]
        assert 0 <= p["capture_7d"] <= 1
    pid = alerts[0]["participant_id"]
    d = src.participant(pid)
    assert len(d["days"]) == len(d["series"]["rhr_ns_bpm"]) == len(d["series"]["score"])
    assert d["days"] == sorted(d["days"]) and all(isinstance(x, int) for x in d["days"])
    assert sum(v is not None for v in d["series"]["hrv_rmssd_ms"]) > 20
    assert {a["day"] for a in d["alerts"]} == {lv_day for lv_day, lv in zip(d["days"], d["series"]["level"], strict=True) if lv}
    assert src.participant("nobody") is None


def test_not_a_run_folder(tmp_path):
    with pytest.raises(DataError, match="not a replay run folder"):
        RunSource(tmp_path)


def test_api_and_static_files(server):
    st, h, body = _get(server, "/")
    assert st == 200 and h["Content-Type"].startswith("text/html") and b'id="participant-list"' in body
    assert "default-src 'self'" in h["Content-Security-Policy"]
    for ref in re.findall(rb'(?:src|href)="([^"#]+)"', body):
        assert _get(server, "/" + ref.decode())[0] == 200, ref
    st, _, body = _get(server, "/api/cohort")
    c = json.loads(body)
    assert st == 200 and c["participants"] and c["model"] == "nightsignal"
    pid = c["participants"][0]["id"]
    st, _, body = _get(server, f"/api/participant?id={urllib.parse.quote(pid)}")
    assert st == 200 and json.loads(body)["id"] == pid
    assert _get(server, "/api/participant?id=nobody")[0] == 404
    assert _get(server, "/../pyproject.toml")[0] == 404
    assert _get(server, "/etc/passwd")[0] == 404


def test_page_needs_nothing_from_the_network():
    for f in WEB_DIR.iterdir():
        text = f.read_text(encoding="utf-8")
        urls = re.findall(r"https?://[^\s\"')]+", text)
        assert set(urls) <= {"http://www.w3.org/2000/svg"}, (f.name, urls)


def test_non_loopback_bind_needs_a_token(run):
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost") and not is_loopback("0.0.0.0")
    with pytest.raises(AccessError, match="not a loopback address and no access token"):
        DashboardServer(RunSource(run), "0.0.0.0", 0)
    with pytest.raises(AccessError, match="at least 16"):
        DashboardServer(RunSource(run), "127.0.0.1", 0, token="short")


def test_token_checked_on_every_request(run):
    srv = DashboardServer(RunSource(run), "127.0.0.1", 0, token=TOKEN).start()
    try:
        for path in ("/", "/app.js", "/api/cohort", "/api/participant?id=S00000"):
            assert _get(srv, path)[0] == 401, path
        assert _get(srv, "/api/cohort", {"Authorization": "Bearer wrong-token-wrong-token"})[0] == 401
        assert _get(srv, "/?token=wrong-token-wrong-token")[0] == 401
        assert _get(srv, "/api/cohort", {"Authorization": f"Bearer {TOKEN}"})[0] == 200
        st, h, _ = _get(srv, f"/?token={TOKEN}&x=1")
        assert st == 303 and h["Location"] == "/?x=1"  # the token leaves the address bar
        cookie = h["Set-Cookie"].split(";")[0]
        assert "HttpOnly" in h["Set-Cookie"] and "SameSite=Strict" in h["Set-Cookie"]
        assert _get(srv, "/api/cohort", {"Cookie": cookie})[0] == 200
        assert _get(srv, "/api/cohort", {"Cookie": "prodromal_token=nope"})[0] == 401
    finally:
        srv.stop()


def test_cli_refuses_public_bind_without_token(run, monkeypatch):
    from streams.cli import app

    for k in ("PRODROMAL_DASHBOARD__TOKEN", "PRODROMAL_DASHBOARD__TOKEN_FILE", "PRODROMAL_CONFIG"):
        monkeypatch.delenv(k, raising=False)
    res = CliRunner().invoke(app, ["dashboard", str(run), "--host", "0.0.0.0", "--port", "0"])
    assert res.exit_code == 2 and "token" in res.output and "loopback" in res.output
    res = CliRunner().invoke(app, ["dashboard", str(Path(run).parent / "missing")])
    assert res.exit_code == 2 and "not a replay run folder" in res.output
