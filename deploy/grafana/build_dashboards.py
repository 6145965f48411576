"""Write the provisioned Grafana dashboards (``dashboards/*.json``) from one readable description.

The JSON files are committed (Grafana reads them directly); this script is how they are made, so a
change to a panel is a change here followed by ``python deploy/grafana/build_dashboards.py``.
``tests/test_grafana_json.py`` checks that the committed files equal this script's output.

Every query is InfluxQL (runs on InfluxDB 1.x, 2.x with a DBRP mapping, and 3.x) against the
schema of ``streams/spool.py``: measurements ``daily``, ``score``, ``alert``, ``label``; tags
``cohort``, ``participant``, ``model``, ``level``.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DS = {"type": "influxdb", "uid": "prodromal-influx"}
COHORT = '"cohort" =~ /^$cohort$/'
PART = '"participant" =~ /^$participant$/'
LEVEL_MAP = [{"type": "value", "options": {
    "0": {"text": "no alert", "color": "green", "index": 0},
    "1": {"text": "yellow", "color": "yellow", "index": 1},
    "2": {"text": "red", "color": "red", "index": 2}}},
    {"type": "special", "options": {"match": "null", "result": {"text": "no data", "color": "#8e8e8e", "index": 3}}}]


def target(query: str, ref: str = "A", fmt: str = "time_series", alias: str | None = None) -> dict:
    t = {"refId": ref, "datasource": DS, "query": query, "rawQuery": True, "resultFormat": fmt}
    if alias:
        t["alias"] = alias
    return t


def panel(pid: int, title: str, kind: str, grid: tuple[int, int, int, int], targets: list[dict], *,
          description: str = "", defaults: dict | None = None, overrides: list | None = None,
          options: dict | None = None, interval: str | None = None, transformations: list | None = None) -> dict:
    x, y, w, h = grid
    p = {"id": pid, "type": kind, "title": title, "description": description, "datasource": DS,
         "gridPos": {"x": x, "y": y, "w": w, "h": h}, "targets": targets,
         "fieldConfig": {"defaults": defaults or {}, "overrides": overrides or []}, "options": options or {}}
    if interval:
        p["interval"] = interval
    if transformations:
        p["transformations"] = transformations
    return p


def by_name(name: str, props: dict) -> dict:
    return {"matcher": {"id": "byName", "options": name}, "properties": [{"id": k, "value": v} for k, v in props.items()]}


def variables(with_participant: bool) -> dict:
    out = [{
        "name": "cohort", "label": "Cohort", "type": "query", "datasource": DS,
        "query": 'SHOW TAG VALUES FROM "score" WITH KEY = "cohort"',
        "definition": 'SHOW TAG VALUES FROM "score" WITH KEY = "cohort"',
        "refresh": 1, "sort": 1, "multi": False, "includeAll": False, "current": {}, "options": [], "hide": 0,
    }]  # fmt: skip
    if with_participant:
        q = f'SHOW TAG VALUES FROM "score" WITH KEY = "participant" WHERE {COHORT}'
        out.append({"name": "participant", "label": "Participant", "type": "query", "datasource": DS, "query": q,
                    "definition": q, "refresh": 1, "sort": 1, "multi": False, "includeAll": False, "current": {},
                    "options": [], "hide": 0})
    return {"list": out}


def annotation(name: str, query: str, color: str, text_col: str, tags_col: str) -> dict:
    return {"name": name, "datasource": DS, "enable": True, "iconColor": color, "hide": False,
            "query": query, "textColumn": text_col, "tagsColumn": tags_col,
            "target": {"refId": "Anno", "query": query, "rawQuery": True, "resultFormat": "table"}}


def dashboard(uid: str, title: str, panels: list, templating: dict, annotations: list, time_from: str) -> dict:
    return {
        "uid": uid, "title": title, "tags": ["prodromal"], "timezone": "utc", "editable": True,
        "schemaVersion": 39, "version": 1, "refresh": "5m", "graphTooltip": 1,
        "time": {"from": time_from, "to": "now"}, "templating": templating,
        "annotations": {"list": [{"builtIn": 1, "datasource": {"type": "grafana", "uid": "-- Grafana --"}, "enable": True,
                                  "hide": True, "iconColor": "rgba(0, 211, 255, 1)", "name": "Annotations & Alerts",
                                  "type": "dashboard"}, *annotations]},
        "links": [{"title": "prodromal", "type": "dashboards", "tags": ["prodromal"], "asDropdown": False}],
        "panels": panels,
    }  # fmt: skip


def cohort_overview() -> dict:
    w = f"{COHORT} AND $timeFilter"
    panels = [
        panel(1, "Alert state now (last scored night)", "stat", (0, 0, 24, 5),
              [target(f'SELECT last("level") FROM "score" WHERE {w} GROUP BY "participant"', alias="$tag_participant")],
              description="Each participant's level on the last scored night in the time range. 'no data' = nothing scored "
                          "in the range (not the same as no alert).",
              defaults={"mappings": LEVEL_MAP, "color": {"mode": "thresholds"}, "noValue": "no data",
                        "thresholds": {"mode": "absolute", "steps": [{"color": "green", "value": None},
                                                                     {"color": "yellow", "value": 1}, {"color": "red", "value": 2}]}},
              options={"reduceOptions": {"calcs": ["lastNotNull"], "fields": "", "values": False}, "colorMode": "background",
                       "graphMode": "none", "textMode": "value_and_name", "justifyMode": "center", "orientation": "auto"}),
        panel(2, "Data capture per participant and night (% of minutes with heart rate)", "status-history", (0, 5, 24, 9),
              [target(f'SELECT mean("hr_capture") * 100 FROM "daily" WHERE {w} GROUP BY time(1d), "participant" fill(null)',
                      alias="$tag_participant")],
              description="Empty cells: no data that night (device not worn / not synced), which is different from a night "
                          "without an alert. Red/orange: little data, scores less reliable.",
              defaults={"unit": "percent", "min": 0, "max": 100, "decimals": 0, "color": {"mode": "thresholds"},
                        "thresholds": {"mode": "absolute", "steps": [{"color": "red", "value": None},
                                                                     {"color": "orange", "value": 30}, {"color": "green", "value": 60}]}},
              options={"showValue": "never", "rowHeight": 0.9, "colWidth": 0.95, "legend": {"showLegend": False}}),
        panel(3, "Participants alerting per night", "timeseries", (0, 14, 24, 7),
              [target(f'SELECT count("level_code") FROM "alert" WHERE {w} GROUP BY time($__interval), "level" fill(0)',
                      alias="$tag_level")],
              interval="1d",
              defaults={"custom": {"drawStyle": "bars", "fillOpacity": 80, "stacking": {"mode": "normal", "group": "A"},
                                   "lineWidth": 1}, "decimals": 0, "min": 0},
              overrides=[by_name("yellow", {"color": {"mode": "fixed", "fixedColor": "yellow"}}),
                         by_name("red", {"color": {"mode": "fixed", "fixedColor": "red"}})]),
        panel(4, "Alerts", "table", (0, 21, 16, 10),
              [target(f'SELECT "night", "participant", "level", "score", "reasons" FROM "alert" WHERE {w} ORDER BY time DESC LIMIT 500',
                      fmt="table")],
              description="Every alert night in the range, newest first; 'reasons' says which signals moved.",
              overrides=[by_name("level", {"custom.cellOptions": {"type": "color-background"},
                                           "mappings": [{"type": "value", "options": {"yellow": {"color": "yellow"}, "red": {"color": "red"}}}]}),
                         by_name("Time", {"custom.hidden": True})],
              options={"showHeader": True, "sortBy": [{"displayName": "night", "desc": True}]}),
        panel(5, "Last night with data", "table", (16, 21, 8, 10),
              [target(f'SELECT last("hr_capture") * 100 AS "capture %" FROM "daily" WHERE {w} GROUP BY "participant"',
                      fmt="table")],
              description="When each participant last sent data (Time) and that night's capture; an old date means the "
                          "participant is not being monitored right now.",
              defaults={"decimals": 0},
              options={"showHeader": True, "sortBy": [{"displayName": "Time", "desc": False}]}),
    ]  # fmt: skip
    annos = [annotation("Alerts", f'SELECT "reasons", "participant", "level" FROM "alert" WHERE {w}', "red", "reasons",
                        "participant,level"),
             annotation("Symptom onset", f'SELECT "event", "participant" FROM "label" WHERE {w}', "purple", "event",
                        "participant")]
    return dashboard("prodromal-cohort", "prodromal: cohort overview", panels, variables(False), annos, "now-90d")


def _signal(pid: int, y: int, title: str, field: str, unit: str, color: str, h: int = 7) -> dict:
    w = f"{COHORT} AND {PART} AND $timeFilter"
    q = (f'SELECT "{field}" AS "value", "{field}_base" AS "baseline", "{field}_base" - 2 * "{field}_spread" AS "band low", '
         f'"{field}_base" + 2 * "{field}_spread" AS "band high" FROM "daily" WHERE {w}')
    return panel(pid, title, "timeseries", (0, y, 24, h), [target(q, alias="$col")],
                 description=f"Nightly value against the participant's own baseline (median) and band (median +- 2 robust SD) of {field}.",
                 defaults={"unit": unit, "custom": {"lineWidth": 2, "showPoints": "always", "pointSize": 4, "spanNulls": False}},
                 overrides=[by_name("value", {"color": {"mode": "fixed", "fixedColor": color}, "displayName": title.split(" (")[0]}),
                            by_name("baseline", {"color": {"mode": "fixed", "fixedColor": "#7f8c8d"},
                                                 "custom.lineStyle": {"fill": "dash", "dash": [6, 4]}, "custom.showPoints": "never",
                                                 "custom.lineWidth": 1}),
                            by_name("band low", {"color": {"mode": "fixed", "fixedColor": "#b8c2cc"}, "custom.lineWidth": 0,
                                                 "custom.showPoints": "never", "custom.hideFrom": {"legend": True, "tooltip": False, "viz": False}}),
                            by_name("band high", {"color": {"mode": "fixed", "fixedColor": "#b8c2cc"}, "custom.lineWidth": 0,
                                                  "custom.showPoints": "never", "custom.fillBelowTo": "band low",
                                                  "custom.fillOpacity": 40, "displayName": "baseline +- 2 SD"})])  # fmt: skip


def participant_view() -> dict:
    w = f"{COHORT} AND {PART} AND $timeFilter"
    panels = [
        _signal(1, 0, "Resting heart rate at night (bpm)", "rhr_ns_bpm", "bpm", "red", h=9),
        _signal(2, 9, "Heart rate variability, RMSSD (ms)", "hrv_rmssd_ms", "ms", "blue"),
        _signal(3, 16, "Respiratory rate at night (breaths/min)", "resp_rpm", "none", "green"),
        _signal(4, 23, "Skin temperature at night (C)", "temp_c", "celsius", "orange"),
        panel(5, "Steps per day", "timeseries", (0, 30, 24, 6),
              [target(f'SELECT "steps", "steps_base" AS "usual" FROM "daily" WHERE {w}', alias="$col")],
              defaults={"custom": {"drawStyle": "bars", "fillOpacity": 70, "lineWidth": 1}, "min": 0, "decimals": 0},
              overrides=[by_name("usual", {"custom.drawStyle": "line", "custom.lineStyle": {"fill": "dash", "dash": [6, 4]},
                                           "color": {"mode": "fixed", "fixedColor": "#7f8c8d"}})]),
        panel(6, "Detector score against threshold", "timeseries", (0, 36, 24, 7),
              [target(f'SELECT "score", "threshold" FROM "score" WHERE {w}', alias="$col"),
               target(f'SELECT "score" AS "alert" FROM "alert" WHERE {w}', ref="B", alias="$col")],
              description="The detector's nightly score and its yellow threshold; dots mark alert nights.",
              defaults={"custom": {"lineWidth": 2, "showPoints": "auto"}},
              overrides=[by_name("threshold", {"color": {"mode": "fixed", "fixedColor": "yellow"},
                                               "custom.lineStyle": {"fill": "dash", "dash": [8, 4]}, "custom.showPoints": "never"}),
                         by_name("score", {"color": {"mode": "fixed", "fixedColor": "purple"}}),
                         by_name("alert", {"color": {"mode": "fixed", "fixedColor": "red"}, "custom.drawStyle": "points",
                                           "custom.pointSize": 10})]),
        panel(7, "Data capture (% of minutes with heart rate; night)", "timeseries", (0, 43, 24, 5),
              [target(f'SELECT "hr_capture" * 100 AS "day", "night_capture" * 100 AS "night" FROM "daily" WHERE {w}', alias="$col")],
              description="Gaps mean no data that night (not worn or not synced), which is different from no alert.",
              defaults={"unit": "percent", "min": 0, "max": 100, "custom": {"drawStyle": "bars", "fillOpacity": 60}}),
        panel(8, "Alerts", "table", (0, 48, 16, 8),
              [target(f'SELECT "night", "level", "score", "reasons" FROM "alert" WHERE {w} ORDER BY time DESC', fmt="table")],
              overrides=[by_name("Time", {"custom.hidden": True}),
                         by_name("level", {"custom.cellOptions": {"type": "color-background"},
                                           "mappings": [{"type": "value", "options": {"yellow": {"color": "yellow"}, "red": {"color": "red"}}}]})]),
        panel(9, "Symptom onset and diagnosis", "table", (16, 48, 8, 8),
              [target(f'SELECT "event" FROM "label" WHERE {COHORT} AND {PART}', fmt="table")],
              description="Known dates (all time, not only the selected range)."),
    ]  # fmt: skip
    annos = [annotation("Alerts", f'SELECT "reasons", "level" FROM "alert" WHERE {w}', "red", "reasons", "level"),
             annotation("Symptom onset", f'SELECT "event" FROM "label" WHERE {w}', "purple", "event", "")]
    return dashboard("prodromal-participant", "prodromal: participant", panels, variables(True), annos, "now-90d")


DASHBOARDS = {"cohort-overview.json": cohort_overview, "participant.json": participant_view}


def render() -> dict[str, str]:
    return {name: json.dumps(fn(), indent=2, sort_keys=False) + "\n" for name, fn in DASHBOARDS.items()}


def main() -> int:
    out = HERE / "dashboards"
    out.mkdir(exist_ok=True)
    for name, text in render().items():
        (out / name).write_text(text, encoding="utf-8")
        print(f"wrote {out / name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
