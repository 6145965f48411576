"""Where the dashboard's numbers come from: a replay's run folder, or InfluxDB over InfluxQL.

Both sources answer the same two questions with plain JSON-ready dicts, so the web page does not
know which one it is talking to:

- :meth:`cohort` -- every participant's current state, recent data capture and the alert list;
- :meth:`participant` -- one participant's nightly series, alerts and labels.

Days are integer *local day numbers* (days since 1970-01-01 of the participant's local calendar).
A run folder carries local dates; an InfluxDB point carries the UTC start of the local day, which
is within +-12 h of UTC midnight of the same date, so ``round(time / 86400)`` recovers the day.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import math
import os
import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

__all__ = ["RunSource", "InfluxSource", "DataError", "SERIES", "RECENT_DAYS"]

DAY = 86400
#: Days of state/capture history shown per participant on the cohort overview.
RECENT_DAYS = 28
#: Nightly series sent to the participant view (features.csv columns / ``daily`` fields).
SERIES = (
    "rhr_ns_bpm", "rhr_ns_bpm_base", "rhr_ns_bpm_spread",
    "hrv_rmssd_ms", "hrv_rmssd_ms_base", "hrv_rmssd_ms_spread",
    "resp_rpm", "resp_rpm_base", "resp_rpm_spread",
    "temp_c", "temp_c_base", "temp_c_spread",
    "steps", "steps_base", "hr_capture", "night_capture",
)  # fmt: skip


class DataError(RuntimeError):
    """The data source cannot answer (missing file, bad run folder, InfluxDB error)."""


def _day(date_text: str) -> int | None:
    if not date_text:
        return None
    return (dt.date.fromisoformat(date_text) - dt.date(1970, 1, 1)).days


def _num(text) -> float | None:
    if text is None or text == "":
        return None
    try:
        v = float(text)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) else None


def _cohort_summary(name: str, model: str, thresholds: list, per: dict[str, dict], alerts: list[dict], source: str) -> dict:
    """Assemble the overview from per-participant day maps ``{day: (level, capture)}``."""
    last = max((max(p["days"]) for p in per.values() if p["days"]), default=None)
    out = []
    for pid in sorted(per):
        p = per[pid]
        days = p["days"]
        recent_days = list(range(last - RECENT_DAYS + 1, last + 1)) if last is not None else []
        levels = [days[d][0] if d in days else None for d in recent_days]
        capture = [days[d][1] if d in days else None for d in recent_days]
        last_day = max(days) if days else None
        wk = [c or 0.0 for c in capture[-7:]]
        alert_days = sorted(d for d, (lv, _) in days.items() if lv and lv > 0)
        out.append({
            "id": pid,
            "state": days[last_day][0] if last_day is not None else None,
            "last_day": last_day,
            "days": len(days),
            "alert_days": len(alert_days),
            "last_alert_day": alert_days[-1] if alert_days else None,
            "capture_7d": round(sum(wk) / 7.0, 3) if recent_days else None,
            "recent_levels": levels,
            "recent_capture": capture,
            "onset_day": p.get("onset_day"),
            "diagnosis_day": p.get("diagnosis_day"),
        })  # fmt: skip
    alerts = sorted(alerts, key=lambda a: (-a["day"], a["id"]))
    return {"cohort": name, "model": model, "thresholds": thresholds, "source": source, "last_day": last,
            "recent_days": RECENT_DAYS, "participants": out, "alerts": alerts}


class RunSource:
    """Read a replay's run folder (``run.json``, ``scores.csv``, ``alerts.csv``, ``features.csv``,
    ``participants.csv``); files are re-read when they change, so a run being written shows up."""

    def __init__(self, run_dir: str | os.PathLike):
        self.path = Path(run_dir)
        for f in ("run.json", "scores.csv", "features.csv", "participants.csv"):
            if not (self.path / f).is_file():
                raise DataError(f"{self.path}: not a replay run folder ({f} missing; run `prodromal replay ... --out DIR`)")
        self._lock = threading.Lock()
        self._stamp: tuple | None = None

    def _load(self) -> None:
        stamp = tuple((self.path / f).stat().st_mtime_ns for f in ("run.json", "scores.csv", "features.csv", "alerts.csv")
                      if (self.path / f).exists())
        with self._lock:
            if stamp == self._stamp:
                return
            try:
                run = json.loads((self.path / "run.json").read_text(encoding="utf-8"))
            except (OSError, ValueError) as e:
                raise DataError(f"{self.path / 'run.json'}: {e}") from None
            self.run = run
            det = run.get("detector") or {}
            self.model = det.get("detector", "?") if isinstance(det, dict) else str(det)
            self.thresholds = [t for t in (run.get("policy") or {}).get("thresholds", []) if _num(t) is not None]
            self.labels: dict[str, dict] = {}
            with open(self.path / "participants.csv", newline="", encoding="utf-8") as fh:
                for row in csv.DictReader(fh):
                    self.labels[row["participant_id"]] = {"onset_day": _day(row.get("symptom_onset_date", "")),
                                                          "diagnosis_day": _day(row.get("diagnosis_date", ""))}
            self.scores: dict[str, list[tuple[int, float | None, int]]] = {}
            with open(self.path / "scores.csv", newline="", encoding="utf-8") as fh:
                for i, row in enumerate(csv.DictReader(fh), start=2):
                    try:
                        self.scores.setdefault(row["participant_id"], []).append(
                            (_day(row["date"]), _num(row["score"]), int(row["level"])))
                    except (KeyError, ValueError) as e:
                        raise DataError(f"{self.path / 'scores.csv'} line {i}: bad row ({e})") from None
            self.alerts = []
            if (self.path / "alerts.csv").exists():
                with open(self.path / "alerts.csv", newline="", encoding="utf-8") as fh:
                    for row in csv.DictReader(fh):
                        self.alerts.append({"id": row["participant_id"], "day": _day(row["date"]), "level": row["level"],
                                            "score": _num(row["score"]), "reasons": row.get("reasons", "")})
            self._index_features()
            self._stamp = stamp

    def _index_features(self) -> None:
        """Byte ranges of each participant's rows in features.csv (rows come grouped by participant),
        so a participant view reads only its own rows, however large the cohort."""
        self.feat_index: dict[str, list[tuple[int, int]]] = {}
        self.capture: dict[str, dict[int, float | None]] = {}
        with open(self.path / "features.csv", "rb") as fh:
            header = fh.readline().decode("utf-8").rstrip("\r\n").split(",")
            self.feat_cols = header
            ci = header.index("hr_capture") if "hr_capture" in header else None
            pos = fh.tell()
            for line in iter(fh.readline, b""):
                parts = line.decode("utf-8").rstrip("\r\n").split(",")
                pid = parts[0]
                rng = self.feat_index.setdefault(pid, [])
                if rng and rng[-1][1] == pos:
                    rng[-1] = (rng[-1][0], pos + len(line))
                else:
                    rng.append((pos, pos + len(line)))
                if ci is not None and len(parts) > ci:
                    self.capture.setdefault(pid, {})[_day(parts[1])] = _num(parts[ci])
                pos += len(line)

    def participant_ids(self) -> list[str]:
        self._load()
        return sorted(set(self.scores) | set(self.labels))

    def cohort(self) -> dict:
        self._load()
        per = {}
        for pid in self.participant_ids():
            cap = self.capture.get(pid, {})
            days = {d: (lv, cap.get(d)) for d, _, lv in self.scores.get(pid, [])}
            per[pid] = {"days": days, **self.labels.get(pid, {})}
        return _cohort_summary(self.run.get("cohort", self.path.name), self.model, self.thresholds, per, self.alerts,
                               f"run folder {self.path.name}")

    def participant(self, pid: str) -> dict | None:
        self._load()
        if pid not in self.scores and pid not in self.labels:
            return None
        rows: dict[int, dict] = {}
        want = [(i, c) for i, c in enumerate(self.feat_cols) if c in SERIES]
        with open(self.path / "features.csv", "rb") as fh:
            for a, b in self.feat_index.get(pid, []):
                fh.seek(a)
                for line in fh.read(b - a).decode("utf-8").splitlines():
                    parts = line.split(",")
                    rows[_day(parts[1])] = {c: _num(parts[i]) for i, c in want if i < len(parts)}
        for d, s, lv in self.scores.get(pid, []):
            rows.setdefault(d, {}).update(score=s, level=lv)
        days = sorted(rows)
        series = {c: [rows[d].get(c) for d in days] for c in (*SERIES, "score", "level")}
        lab = self.labels.get(pid, {})
        labels = [{"day": lab[k], "event": e} for k, e in (("onset_day", "symptom_onset"), ("diagnosis_day", "diagnosis"))
                  if lab.get(k) is not None]
        return {"id": pid, "cohort": self.run.get("cohort"), "model": self.model, "thresholds": self.thresholds,
                "days": days, "series": series, "alerts": [a for a in self.alerts if a["id"] == pid], "labels": labels}


def _ql_str(s: str) -> str:
    return "'" + s.replace("\\", "\\\\").replace("'", "\\'") + "'"


class InfluxSource:
    """Query InfluxDB 1.x / 2.x (v1 compatibility + DBRP) / 3.x with InfluxQL over HTTP ``/query``.

    Parameters
    ----------
    url : str
        Base URL, e.g. ``http://127.0.0.1:8086``.
    db : str
        Database (1.x) or the database mapped to a bucket (2.x DBRP, 3.x).
    token : str, optional
        Sent as ``Authorization: Token ...`` (2.x/3.x; 1.8+ with ``user:password``); never logged.
    cohort, model : str, optional
        Which cohort / detector to show; default: the first cohort found, any model.
    """

    def __init__(self, url: str, db: str, token: str | None = None, cohort: str | None = None,
                 model: str | None = None, rp: str | None = None, timeout_s: float = 15.0):
        self.url, self.db, self.rp = url.rstrip("/"), db, rp
        self._token, self.timeout_s, self.model = token, timeout_s, model
        self._cohort = cohort

    def _query(self, q: str) -> list[dict]:
        params = {"q": q, "db": self.db, "epoch": "s"}
        if self.rp:
            params["rp"] = self.rp
        req = urllib.request.Request(self.url + "/query", data=urllib.parse.urlencode(params).encode(), method="POST")
        if self._token:
            req.add_header("Authorization", f"Token {self._token}")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout_s) as r:
                out = json.loads(r.read())
        except urllib.error.HTTPError as e:
            raise DataError(f"InfluxDB {self.url}: HTTP {e.code} on /query") from None
        except (OSError, ValueError) as e:
            raise DataError(f"InfluxDB {self.url}: {type(e).__name__}: {e}") from None
        rows = []
        for res in out.get("results", []):
            if "error" in res:
                raise DataError(f"InfluxDB {self.url}: {res['error']}")
            for s in res.get("series", []) or []:
                tags = s.get("tags") or {}
                for vals in s.get("values", []):
                    row = dict(zip(s["columns"], vals, strict=False))
                    row.update(tags)
                    rows.append(row)
        return rows

    @property
    def cohort_name(self) -> str:
        if self._cohort is None:
            vals = sorted(r["value"] for r in self._query('SHOW TAG VALUES FROM "score" WITH KEY = "cohort"'))
            if not vals:
                raise DataError(f"InfluxDB {self.url} database {self.db!r}: no `score` points (nothing replayed or streamed yet)")
            self._cohort = vals[0]
        return self._cohort

    def _where(self, pid: str | None = None) -> str:
        w = f'"cohort" = {_ql_str(self.cohort_name)}'
        if pid is not None:
            w += f' AND "participant" = {_ql_str(pid)}'
        return w

    def _model_where(self) -> str:
        return f' AND "model" = {_ql_str(self.model)}' if self.model else ""

    @staticmethod
    def _day(t) -> int:
        return int(round(float(t) / DAY))

    def participant_ids(self) -> list[str]:
        rows = self._query(f'SHOW TAG VALUES FROM "score" WITH KEY = "participant" WHERE {self._where()}')
        return sorted(r["value"] for r in rows)

    def cohort(self) -> dict:
        w = self._where()
        last = self._query(f'SELECT last("level") FROM "score" WHERE {w}{self._model_where()}')
        if not last:
            raise DataError(f"InfluxDB: no scores for cohort {self.cohort_name!r}")
        t_last = int(last[0]["time"])
        since = f"time >= {t_last - (RECENT_DAYS + 1) * DAY}s"
        per: dict[str, dict] = {pid: {"days": {}} for pid in self.participant_ids()}
        for r in self._query(f'SELECT "level" FROM "score" WHERE {w}{self._model_where()} GROUP BY "participant"'):
            per.setdefault(r["participant"], {"days": {}})["days"][self._day(r["time"])] = (int(r["level"]), None)
        for r in self._query(f'SELECT "hr_capture" FROM "daily" WHERE {w} AND {since} GROUP BY "participant"'):
            days = per.setdefault(r["participant"], {"days": {}})["days"]
            d = self._day(r["time"])
            days[d] = (days.get(d, (None, None))[0], _num(r.get("hr_capture")))
        for r in self._query(f'SELECT "event" FROM "label" WHERE {w} GROUP BY "participant"'):
            key = "onset_day" if r["event"] == "symptom_onset" else "diagnosis_day"
            per.setdefault(r["participant"], {"days": {}})[key] = self._day(r["time"])
        alerts = [{"id": r["participant"], "day": self._day(r["time"]), "level": r.get("level"), "score": _num(r.get("score")),
                   "reasons": r.get("reasons") or ""}
                  for r in self._query(f'SELECT "score", "reasons" FROM "alert" WHERE {w}{self._model_where()} GROUP BY "participant", "level"')]
        model = self.model or ",".join(sorted({r["value"] for r in self._query(f'SHOW TAG VALUES FROM "score" WITH KEY = "model" WHERE {w}')}))
        thr = self._query(f'SELECT last("threshold") FROM "score" WHERE {w}{self._model_where()}')
        thresholds = [v for v in [_num(thr[0].get("last"))] if v is not None] if thr else []
        return _cohort_summary(self.cohort_name, model, thresholds, per, alerts, f"InfluxDB {self.db}")

    def participant(self, pid: str) -> dict | None:
        if not re.fullmatch(r"[\w.\-:@]{1,128}", pid) or pid not in self.participant_ids():
            return None
        w = self._where(pid)
        rows: dict[int, dict] = {}
        fields = ", ".join(f'"{c}"' for c in SERIES)
        for r in self._query(f'SELECT {fields} FROM "daily" WHERE {w}'):
            rows[self._day(r["time"])] = {c: _num(r.get(c)) for c in SERIES}
        thresholds: list[float] = []
        for r in self._query(f'SELECT "score", "level", "threshold" FROM "score" WHERE {w}{self._model_where()}'):
            rows.setdefault(self._day(r["time"]), {}).update(score=_num(r.get("score")), level=r.get("level"))
            if not thresholds and _num(r.get("threshold")) is not None:
                thresholds = [_num(r["threshold"])]
        alerts = [{"id": pid, "day": self._day(r["time"]), "level": r.get("level"), "score": _num(r.get("score")),
                   "reasons": r.get("reasons") or ""}
                  for r in self._query(f'SELECT "score", "reasons" FROM "alert" WHERE {w}{self._model_where()} GROUP BY "level"')]
        labels = [{"day": self._day(r["time"]), "event": r["event"]} for r in self._query(f'SELECT "event" FROM "label" WHERE {w}')]
        days = sorted(rows)
        series = {c: [rows[d].get(c) for d in days] for c in (*SERIES, "score", "level")}
        return {"id": pid, "cohort": self.cohort_name, "model": self.model, "thresholds": thresholds, "days": days,
                "series": series, "alerts": sorted(alerts, key=lambda a: a["day"]), "labels": labels}
