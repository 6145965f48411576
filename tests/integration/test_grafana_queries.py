"""Every query in the provisioned Grafana dashboards runs against real InfluxDB (influxd 1.6.7 in CI)
loaded with a small simulated replay's ``points.lp``, with Grafana's variables substituted, and returns
the series the panel needs."""

from __future__ import annotations

import csv
import json
import re
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
DB = "prodromal"


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from streams.dashboard.demo import demo_run

    return demo_run(tmp_path_factory.mktemp("grafana_demo"), participants=6, days=60, seed=11)


@pytest.fixture
def loaded(influx, demo):
    """influxd with the replay's points written through the v1 ``/write`` endpoint."""
    d, _ = influx
    body = (demo / "points.lp").read_bytes()
    req = urllib.request.Request(f"{d.url}/write?db={DB}&precision=s", data=body, method="POST")
    with urllib.request.urlopen(req, timeout=30) as r:
        assert r.status == 204
    return d, demo


def _regex_escape(v: str) -> str:
    # what Grafana does to a variable value used inside /^...$/ in InfluxQL
    return re.sub(r"([\\/^$.|?*+()\[\]{}])", r"\\\1", v)


def substitute(query: str, variables: dict[str, str], t0: int, t1: int, interval: str = "1d") -> str:
    q = query.replace("$timeFilter", f"time >= {t0}s and time <= {t1}s")
    q = q.replace("$__interval", interval).replace("${__interval}", interval)
    for name, value in variables.items():
        q = q.replace("${" + name + "}", _regex_escape(value)).replace("$" + name, _regex_escape(value))
    assert "$" not in q.replace("/^", "").replace("$/", ""), f"unsubstituted variable in {q!r}"
    return q


def queries(dash: dict) -> list[tuple[str, str, str]]:
    """(where, query, resultFormat) of every panel target, annotation and variable."""
    out = []
    for p in dash["panels"]:
        for t in p["targets"]:
            out.append((f"panel {p['title']!r} target {t['refId']}", t["query"], t.get("resultFormat", "time_series")))
    for a in dash["annotations"]["list"]:
        if a.get("builtIn"):
            continue
        out.append((f"annotation {a['name']!r}", a["query"], "table"))
        assert a["target"]["query"] == a["query"]
    for v in dash["templating"]["list"]:
        out.append((f"variable ${v['name']}", v["query"], "table"))
    return out


def _series(d, q: str) -> list[dict]:
    data = urllib.parse.urlencode({"q": q, "db": DB, "epoch": "s"}).encode()
    with urllib.request.urlopen(urllib.request.Request(d.url + "/query", data=data), timeout=30) as r:
        res = json.loads(r.read())["results"][0]
    assert "error" not in res, f"InfluxQL error {res.get('error')!r} for {q!r}"
    return res.get("series") or []


def _aliases(q: str) -> list[str]:
    return re.findall(r'AS "([^"]+)"', q)


def _pick(demo: Path) -> tuple[str, str, int, int]:
    """The cohort, a participant with alerts and a symptom onset, and the replay's time range."""
    run = json.loads((demo / "run.json").read_text())
    with open(demo / "alerts.csv", newline="") as fh:
        alerted = {r["participant_id"] for r in csv.DictReader(fh)}
    with open(demo / "participants.csv", newline="") as fh:
        labelled = [r["participant_id"] for r in csv.DictReader(fh) if r["symptom_onset_date"]]
    pid = sorted(set(labelled) & alerted)[0]
    with open(demo / "scores.csv", newline="") as fh:
        t = [int(r["day_start"]) for r in csv.DictReader(fh)]
    return run["cohort"], pid, min(t) - 86400, max(t) + 86400


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_every_query_returns_its_series(loaded, path):
    d, demo = loaded
    cohort, pid, t0, t1 = _pick(demo)
    dash = json.loads(path.read_text())
    # variables resolve from the data, as Grafana resolves them
    variables = {}
    for v in dash["templating"]["list"]:
        q = substitute(v["query"], variables, t0, t1)
        values = [row[1] for s in _series(d, q) for row in s["values"]]
        assert values, f"variable ${v['name']} has no values: {q}"
        want = cohort if v["name"] == "cohort" else pid
        assert want in values, f"variable ${v['name']}: {want!r} not in {values}"
        variables[v["name"]] = want
    checked = 0
    for where, query, _fmt in queries(dash):
        q = substitute(query, variables, t0, t1)
        series = _series(d, q)
        assert series, f"{where}: no series for {q}"
        cols = series[0]["columns"]
        want_first = ["key", "value"] if where.startswith("variable") else ["time"]
        assert cols[: len(want_first)] == want_first, f"{where}: columns {cols}"
        for a in _aliases(q):
            assert a in cols, f"{where}: column {a!r} missing from {cols}"
        values = [v for s in series for row in s["values"] for v in row[1:]]
        assert any(v is not None for v in values), f"{where}: only nulls"
        checked += 1
    assert checked >= 6


def test_participant_panels_have_physiology_band_and_alerts(loaded):
    """The participant view's content, not just its shape: a baseline band below/above, HRV, resp,
    temperature and steps present, score with threshold, the alert nights and the onset label."""
    d, demo = loaded
    cohort, pid, t0, t1 = _pick(demo)
    dash = json.loads((ROOT / "deploy/grafana/dashboards/participant.json").read_text())
    variables = {"cohort": cohort, "participant": pid}
    by_title = {p["title"]: p for p in dash["panels"]}
    rhr = _series(d, substitute(by_title["Resting heart rate at night (bpm)"]["targets"][0]["query"], variables, t0, t1))[0]
    i_lo, i_hi, i_v = rhr["columns"].index("band low"), rhr["columns"].index("band high"), rhr["columns"].index("value")
    banded = [r for r in rhr["values"] if r[i_lo] is not None]
    assert len(banded) >= 20 and all(r[i_lo] < r[i_hi] for r in banded)
    assert all(30 < r[i_v] < 120 for r in rhr["values"] if r[i_v] is not None)
    for title in ("Heart rate variability, RMSSD (ms)", "Respiratory rate at night (breaths/min)",
                  "Skin temperature at night (C)", "Steps per day"):
        s = _series(d, substitute(by_title[title]["targets"][0]["query"], variables, t0, t1))
        assert sum(r[1] is not None for r in s[0]["values"]) >= 30, title
    score = by_title["Detector score against threshold"]
    s = _series(d, substitute(score["targets"][0]["query"], variables, t0, t1))[0]
    assert {r[s["columns"].index("threshold")] for r in s["values"]} == {3.0}
    alerts = _series(d, substitute(score["targets"][1]["query"], variables, t0, t1))[0]["values"]
    with open(demo / "alerts.csv", newline="") as fh:
        n_alerts = sum(r["participant_id"] == pid for r in csv.DictReader(fh))
    assert len(alerts) == n_alerts > 0
    onset = _series(d, substitute(by_title["Symptom onset and diagnosis"]["targets"][0]["query"], variables, t0, t1))[0]
    assert "symptom_onset" in [r[1] for r in onset["values"]]


def test_cohort_state_panel_has_one_value_per_participant(loaded):
    d, demo = loaded
    cohort, pid, t0, t1 = _pick(demo)
    dash = json.loads((ROOT / "deploy/grafana/dashboards/cohort-overview.json").read_text())
    state = next(p for p in dash["panels"] if p["title"].startswith("Alert state now"))
    series = _series(d, substitute(state["targets"][0]["query"], {"cohort": cohort}, t0, t1))
    with open(demo / "participants.csv", newline="") as fh:
        pids = {r["participant_id"] for r in csv.DictReader(fh)}
    assert {s["tags"]["participant"] for s in series} == pids
    assert all(s["values"][0][1] in (0, 1, 2) for s in series)
    # another cohort's data never leaks in
    assert _series(d, substitute(state["targets"][0]["query"], {"cohort": "no-such-cohort"}, t0, t1)) == []


def test_dashboard_reads_the_same_from_influxdb_as_from_the_run_folder(loaded):
    """``prodromal dashboard --influx-url`` shows what ``prodromal dashboard RUN_DIR`` shows."""
    from streams.dashboard import InfluxSource, RunSource

    d, demo = loaded
    cohort, pid, _, _ = _pick(demo)
    a, b = RunSource(demo), InfluxSource(d.url, DB)
    ca, cb = a.cohort(), b.cohort()
    assert cb["cohort"] == ca["cohort"] == cohort and cb["last_day"] == ca["last_day"]
    keys = ("id", "state", "last_day", "days", "alert_days", "last_alert_day", "recent_levels", "onset_day", "diagnosis_day")
    assert [{k: p[k] for k in keys} for p in cb["participants"]] == [{k: p[k] for k in keys} for p in ca["participants"]]
    norm = lambda al: sorted((x["id"], x["day"], x["level"], x["score"], x["reasons"]) for x in al)  # noqa: E731
    assert norm(cb["alerts"]) == norm(ca["alerts"])
    pa, pb = a.participant(pid), b.participant(pid)
    assert pb["days"] == pa["days"] and pb["labels"] == pa["labels"]
    for k in ("rhr_ns_bpm", "rhr_ns_bpm_base", "hrv_rmssd_ms", "steps", "score", "level"):
        va, vb = pa["series"][k], pb["series"][k]
        assert [x is None for x in va] == [x is None for x in vb], k
        assert all(abs(x - y) < 1e-3 * max(1, abs(x)) for x, y in zip(va, vb, strict=True) if x is not None), k
    assert b.participant("nope") is None and b.participant("x' OR 1=1") is None
