"""The provisioned Grafana files are well-formed without any service: dashboard JSON structure,
datasource references, variables, and the provisioning YAML (fixed uid, token from the environment)."""

from __future__ import annotations

import importlib.util
import json
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
GRAFANA = ROOT / "deploy" / "grafana"
DASHBOARDS = sorted((GRAFANA / "dashboards").glob("*.json"))
UID = "prodromal-influx"
MEASUREMENTS = {"daily", "score", "alert", "label"}


def _load(p: Path) -> dict:
    return json.loads(p.read_text(encoding="utf-8"))


def test_both_dashboards_exist():
    assert {p.name for p in DASHBOARDS} == {"cohort-overview.json", "participant.json"}


def test_dashboard_uids_unique():
    uids = [_load(p)["uid"] for p in DASHBOARDS]
    assert len(set(uids)) == len(uids) and all(re.fullmatch(r"[a-z0-9-]{1,40}", u) for u in uids)


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_panels_well_formed(path):
    d = _load(path)
    assert d["title"] and d["schemaVersion"] >= 30
    ids = [p["id"] for p in d["panels"]]
    assert len(set(ids)) == len(ids), "panel ids must be unique"
    boxes = []
    for p in d["panels"]:
        where = f"{path.name} panel {p['id']} {p.get('title')!r}"
        assert p["datasource"] == {"type": "influxdb", "uid": UID}, where
        g = p["gridPos"]
        assert set(g) == {"x", "y", "w", "h"}, where
        assert 0 <= g["x"] and g["x"] + g["w"] <= 24 and g["w"] > 0 and g["h"] > 0, where
        boxes.append((g["x"], g["y"], g["x"] + g["w"], g["y"] + g["h"], where))
        assert p["targets"], f"{where}: no targets"
        refs = [t["refId"] for t in p["targets"]]
        assert len(set(refs)) == len(refs), where
        for t in p["targets"]:
            assert t["datasource"]["uid"] == UID, where
            q = t["query"]
            assert t["rawQuery"] is True and t["resultFormat"] in ("time_series", "table"), where
            assert re.match(r"^(SELECT|SHOW) ", q), f"{where}: not InfluxQL: {q}"
            assert "|>" not in q and "from(bucket" not in q, f"{where}: Flux is not allowed"
            assert set(re.findall(r'FROM "(\w+)"', q)) <= MEASUREMENTS, where
            assert "$cohort" in q, f"{where}: query not filtered by cohort"
            if path.name == "participant.json" and "label" not in q:
                assert "$participant" in q and "$timeFilter" in q, where
    for i, a in enumerate(boxes):  # panels must not overlap
        for b in boxes[i + 1:]:
            assert a[2] <= b[0] or b[2] <= a[0] or a[3] <= b[1] or b[3] <= a[1], f"overlap: {a[4]} / {b[4]}"


@pytest.mark.parametrize("path", DASHBOARDS, ids=[p.stem for p in DASHBOARDS])
def test_variables_and_annotations(path):
    d = _load(path)
    names = [v["name"] for v in d["templating"]["list"]]
    assert names == (["cohort", "participant"] if path.name == "participant.json" else ["cohort"])
    for v in d["templating"]["list"]:
        assert v["type"] == "query" and v["datasource"]["uid"] == UID
        assert v["query"].startswith('SHOW TAG VALUES FROM "score" WITH KEY = ')
    used = {m for p in d["panels"] for t in p["targets"] for m in re.findall(r"\$(\w+)", t["query"])}
    assert used - {"timeFilter", "__interval", "cohort", "participant"} == set()
    assert {u for u in used if not u.startswith("__") and u != "timeFilter"} <= set(names)
    annos = [a for a in d["annotations"]["list"] if not a.get("builtIn")]
    assert {a["name"] for a in annos} == {"Alerts", "Symptom onset"}
    for a in annos:
        assert a["datasource"]["uid"] == UID and a["query"] == a["target"]["query"] and a["textColumn"]


def test_cohort_overview_separates_no_data_from_no_alert():
    d = _load(GRAFANA / "dashboards" / "cohort-overview.json")
    kinds = {p["type"] for p in d["panels"]}
    assert {"stat", "status-history", "table", "timeseries"} <= kinds
    state = next(p for p in d["panels"] if p["type"] == "stat")
    texts = {o["result"]["text"] for m in state["fieldConfig"]["defaults"]["mappings"] if m["type"] == "special"
             for o in [m["options"]]}
    assert texts == {"no data"}
    capture = next(p for p in d["panels"] if p["type"] == "status-history")
    assert "hr_capture" in capture["targets"][0]["query"] and "fill(null)" in capture["targets"][0]["query"]


def test_participant_view_has_every_signal():
    d = _load(GRAFANA / "dashboards" / "participant.json")
    text = " ".join(t["query"] for p in d["panels"] for t in p["targets"])
    for f in ("rhr_ns_bpm", "rhr_ns_bpm_base", "rhr_ns_bpm_spread", "hrv_rmssd_ms", "resp_rpm", "temp_c", "steps",
              '"score"', '"threshold"', 'FROM "alert"', 'FROM "label"', "hr_capture"):
        assert f in text, f
    rhr = d["panels"][0]
    over = {o["matcher"]["options"]: {q["id"]: q["value"] for q in o["properties"]} for o in rhr["fieldConfig"]["overrides"]}
    assert over["band high"]["custom.fillBelowTo"] == "band low"


def test_committed_json_is_the_builder_output():
    spec = importlib.util.spec_from_file_location("build_dashboards", GRAFANA / "build_dashboards.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    for name, text in mod.render().items():
        assert (GRAFANA / "dashboards" / name).read_text(encoding="utf-8") == text, \
            f"{name} differs from build_dashboards.py: run python deploy/grafana/build_dashboards.py"


def test_provisioning_yaml():
    ds = (GRAFANA / "provisioning" / "datasources" / "prodromal.yaml").read_text()
    assert f"uid: {UID}" in ds and "type: influxdb" in ds and "version: InfluxQL" in ds
    assert "secureJsonData:" in ds and "$__env{PRODROMAL_INFLUX_TOKEN}" in ds
    assert "dbName: $__env{PRODROMAL_INFLUX_DB}" in ds
    # the token only ever appears as an environment reference
    assert all("$__env{" in line for line in ds.splitlines() if "Token" in line and not line.lstrip().startswith("#"))
    dp = (GRAFANA / "provisioning" / "dashboards" / "prodromal.yaml").read_text()
    assert "type: file" in dp and "path:" in dp and "apiVersion: 1" in dp
    try:
        import yaml
    except ImportError:
        return
    y = yaml.safe_load(ds)
    assert y["datasources"][0]["uid"] == UID
    assert yaml.safe_load(dp)["providers"][0]["type"] == "file"
