"""Welltory COVID-19 open data (daily wearable aggregates, HRV spot checks) -> a prodromal cohort.

Source layout (Welltory/hrv-covid19 ``data/``): ``participants.csv``, ``wearables.csv``,
``hrv_measurements.csv`` and, optionally, ``sleep.csv``. What is written per user
(participant id = ``user_code``):

``data/<id>/daily.npz`` (proposed stream kind for day-level sources)
    ``day`` (int64, days since 1970-01-01 of the *local* date) and float32 fields,
    NaN where missing: ``rhr_bpm`` (resting_pulse), ``hr_mean_bpm`` (pulse_average),
    ``hr_min_bpm``, ``hr_max_bpm``, ``steps`` (steps_count), ``spo2_pct``,
    ``temp_c`` (body_temperature_avg), ``sleep_min`` (sleep.csv ``sleep_duration``,
    which is in seconds despite the upstream datatypes.md; longest sleep of the day).
    Read it with :func:`read_daily`.
``data/<id>/hr.npz`` and ``steps.npz`` (minute emulation, ``minute_emulation=True``)
    So that minute-epoch feature code (NightSignal's resting HR: minutes with zero
    steps between 00:00 and 06:59) sees each day's *resting HR* as that night's HR:
    ``hr`` = resting_pulse on every minute 00:00-06:59 of the day, with ``steps`` = 0 on
    those minutes; the day's steps_count is spread evenly over 12:00-19:59 (at most
    400 steps/min, the stream's plausibility limit). Only resting HR and daily steps
    survive this emulation; sleep, activity minutes and capture computed from it are
    artefacts of the emulation, not measurements.
``data/<id>/ibi.npz``
    HRV spot checks: the raw RR intervals of ``hrv_measurements.rr_data`` (ms) as beat
    intervals, each beat stamped at the measurement start + cumulative RR.

Clock: Welltory stores device-local times (``measurement_datetime`` peaks at
08:00-09:00 for "morning" readings of users in Russia) and local dates. The cohort
keeps local time on the UTC axis: ``utc_offset_s`` = 0 for every participant, so a
"day" is the participant's local day.

Labels: ``participants.symptoms_onset`` (M/D/YYYY) as ``symptom_onset_date`` when it
falls in the data period 2020-01-01..2020-06-30 (eleven upstream values are birth-
date-like years, e.g. 1967, and are dropped). Surveys are not turned into labels:
their first date is when a user started the questionnaire, not onset.

EHR-like columns: ``sex`` (gender m/f), ``age`` (midpoint of ``age_range``), ``bmi``
(weight / height^2 when both are plausible); also as dated facts in
``ehr_facts.csv`` known from 2020-01-01. No comorbidity columns: Welltory is not an EHR.
"""

from __future__ import annotations

import csv
import datetime as dt
import math
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from detectors.ehr import Fact, date_to_time
from streams.cohort import CohortError, CohortWriter, Participant

__all__ = ["DAILY_FIELDS", "import_welltory", "read_daily", "parse_rr", "WelltoryReport"]

DAY_S = 86400
PERIOD = (dt.date(2020, 1, 1), dt.date(2020, 6, 30))
FACTS_KNOWN_FROM = dt.date(2020, 1, 1)

#: daily.npz fields: name -> wearables.csv column (sleep_min comes from sleep.csv).
DAILY_FIELDS = {
    "rhr_bpm": "resting_pulse",
    "hr_mean_bpm": "pulse_average",
    "hr_min_bpm": "pulse_min",
    "hr_max_bpm": "pulse_max",
    "steps": "steps_count",
    "spo2_pct": "average_spo2_value",
    "temp_c": "body_temperature_avg",
    "sleep_min": None,
}
_RANGES = {
    "rhr_bpm": (25, 250),
    "hr_mean_bpm": (25, 250),
    "hr_min_bpm": (20, 250),
    "hr_max_bpm": (25, 250),
    "steps": (0, 200_000),
    "spo2_pct": (50, 100),
    "temp_c": (25, 45),
    "sleep_min": (0, 24 * 60),
}
MAX_RR = 100_000  # beats per spot check


@dataclass
class WelltoryReport:
    participants: int = 0
    labelled: int = 0
    with_daily: int = 0
    with_ibi: int = 0
    counts: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def problem(self, msg: str) -> None:
        self.counts["skipped"] += 1
        if len(self.problems) < 50:
            self.problems.append(msg)


def _read(path: Path, need: tuple[str, ...]) -> list[tuple[int, dict[str, str]]]:
    with open(path, newline="", encoding="utf-8-sig") as fh:
        rd = csv.DictReader(fh)
        if not rd.fieldnames:
            raise CohortError(f"{path}: empty file")
        missing = [n for n in need if n not in rd.fieldnames]
        if missing:
            raise CohortError(f"{path}: line 1: column(s) {', '.join(missing)} missing from header")
        return list(enumerate(rd, start=2))


def _num(text: str | None) -> float:
    text = (text or "").strip()
    if not text:
        return math.nan
    try:
        return float(text)
    except ValueError:
        return math.nan


def parse_rr(text: str) -> np.ndarray:
    """RR intervals (ms) from Welltory's comma-separated ``rr_data``; raises ValueError if unreadable.

    >>> parse_rr("819,1008, 831").tolist()
    [819.0, 1008.0, 831.0]
    """
    parts = [p for p in (text or "").replace(";", ",").split(",") if p.strip()]
    if len(parts) > MAX_RR:
        raise ValueError(f"more than {MAX_RR} RR intervals")
    return np.array([float(p) for p in parts], dtype=np.float64)


def _age_mid(band: str) -> float:
    band = (band or "").strip()
    try:
        if band.endswith("+"):
            return float(band[:-1]) + 5.0
        lo, hi = band.split("-")
        return (float(lo) + float(hi)) / 2.0
    except ValueError:
        return math.nan


def import_welltory(
    src: str | os.PathLike,
    out: str | os.PathLike,
    *,
    minute_emulation: bool = True,
    name: str | None = None,
) -> WelltoryReport:
    """Convert the Welltory open data folder into a cohort at ``out``. Returns counts."""
    from streams.importers.ehr_facts import FACTS_FILE, write_facts

    src, out = Path(src), Path(out)
    pf = src / "participants.csv"
    if not pf.is_file():
        raise CohortError(f"{pf}: missing (not the Welltory hrv-covid19 data folder?)")
    rep = WelltoryReport()
    users: dict[str, dict[str, str]] = {}
    for line, row in _read(pf, ("user_code", "gender", "age_range", "height", "weight", "symptoms_onset")):
        uid = (row["user_code"] or "").strip()
        if not uid:
            rep.problem(f"{pf}: line {line}: field 'user_code': empty")
            continue
        users[uid] = row
    # daily aggregates
    daily: dict[str, dict[int, dict[str, float]]] = {}
    wf = src / "wearables.csv"
    if wf.is_file():
        for line, row in _read(wf, ("user_code", "day", *[c for c in DAILY_FIELDS.values() if c])):
            uid = (row["user_code"] or "").strip()
            try:
                d = dt.date.fromisoformat((row["day"] or "").strip())
            except ValueError:
                rep.problem(f"{wf}: line {line}: field 'day': not an ISO date")
                continue
            vals = {k: _num(row[c]) for k, c in DAILY_FIELDS.items() if c}
            daily.setdefault(uid, {}).setdefault((d - dt.date(1970, 1, 1)).days, {}).update(vals)
    sf = src / "sleep.csv"
    if sf.is_file():
        for line, row in _read(sf, ("user_code", "day", "sleep_duration")):
            uid = (row["user_code"] or "").strip()
            try:
                d = dt.date.fromisoformat((row["day"] or "").strip())
            except ValueError:
                rep.problem(f"{sf}: line {line}: field 'day': not an ISO date")
                continue
            minutes = _num(row["sleep_duration"]) / 60.0
            rec = daily.setdefault(uid, {}).setdefault((d - dt.date(1970, 1, 1)).days, {})
            if math.isfinite(minutes) and not minutes <= rec.get("sleep_min", -1.0):
                rec["sleep_min"] = minutes
    # HRV spot checks
    ibi: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {}
    hf = src / "hrv_measurements.csv"
    if hf.is_file():
        for line, row in _read(hf, ("user_code", "measurement_datetime", "rr_data")):
            uid = (row["user_code"] or "").strip()
            try:
                t0 = dt.datetime.fromisoformat((row["measurement_datetime"] or "").strip())
                rr = parse_rr(row["rr_data"])
            except ValueError:
                rep.problem(f"{hf}: line {line}: participant {uid}: field 'measurement_datetime'/'rr_data': unreadable")
                continue
            if rr.size == 0:
                continue
            start = (t0.replace(tzinfo=dt.UTC)).timestamp()
            ibi.setdefault(uid, []).append((start + np.cumsum(rr) / 1000.0, rr))
            rep.counts["hrv_spot_checks"] += 1
    w = CohortWriter(
        out,
        name=name or out.name,
        source=f"welltory:{src.name}",
        notes={"clock": "device-local time on the UTC axis (utc_offset_s 0)", "daily_stream": "daily.npz",
               "minute_emulation": bool(minute_emulation)},
    )
    facts: list[Fact] = []
    for uid in sorted(set(users) | set(daily) | set(ibi)):
        row = users.get(uid, {})
        onset = None
        text = (row.get("symptoms_onset") or "").strip()
        if text:
            try:
                onset = dt.datetime.strptime(text, "%m/%d/%Y").date()
            except ValueError:
                rep.problem(f"{pf}: participant {uid}: field 'symptoms_onset': not M/D/YYYY")
            if onset is not None and not PERIOD[0] <= onset <= PERIOD[1]:
                rep.counts["onset_outside_period"] += 1
                onset = None
        p = Participant(uid, 0, onset, None)
        rep.labelled += onset is not None
        t_known = date_to_time(FACTS_KNOWN_FROM)
        sex = {"m": "M", "f": "F"}.get((row.get("gender") or "").strip().lower())
        if sex:
            p.ehr["sex"] = sex
            facts.append(Fact(uid, t_known, "sex", sex))
        age = _age_mid(row.get("age_range", ""))
        if math.isfinite(age):
            p.ehr["age"] = age
            facts.append(Fact(uid, t_known, "age_years", age))
        h, wt = _num(row.get("height")), _num(row.get("weight"))
        if 120 <= h <= 230 and 30 <= wt <= 300:
            bmi = round(wt / (h / 100.0) ** 2, 1)
            if 12 <= bmi <= 80:
                p.ehr["bmi"] = bmi
                p.ehr["obesity"] = int(bmi >= 30)
                facts.append(Fact(uid, t_known, "bmi", bmi))
        streams = {}
        extra: dict[str, np.ndarray] = {}
        if uid in daily:
            days = np.array(sorted(daily[uid]), dtype=np.int64)
            extra["day"] = days
            for k in DAILY_FIELDS:
                lo, hi = _RANGES[k]
                v = np.array([daily[uid][int(d)].get(k, math.nan) for d in days], dtype=np.float64)
                bad = np.isfinite(v) & ((v < lo) | (v > hi))
                rep.counts["daily_out_of_range"] += int(bad.sum())
                v[bad] = np.nan
                extra[k] = v.astype(np.float32)
            rep.with_daily += 1
            if minute_emulation:
                streams.update(_emulate_minutes(days, extra["rhr_bpm"], extra["steps"]))
        if uid in ibi:
            t = np.concatenate([a for a, _ in ibi[uid]])
            v = np.concatenate([b for _, b in ibi[uid]])
            streams["ibi"] = (t, v)
            rep.with_ibi += 1
        w.add_participant(p, streams or None)
        if extra:
            np.savez(out / "data" / uid / "daily.npz", **extra)
        rep.participants += 1
    w.close()
    write_facts(out / FACTS_FILE, facts)
    return rep


def _emulate_minutes(days: np.ndarray, rhr: np.ndarray, steps: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    night = np.arange(0, 7 * 60, dtype=np.float64) * 60.0  # 00:00-06:59
    daytime = np.arange(12 * 60, 20 * 60, dtype=np.float64) * 60.0  # 12:00-19:59
    ht, hv, st, sv = [], [], [], []
    for d, r, s in zip(days.tolist(), rhr.tolist(), steps.tolist(), strict=True):
        base = float(d) * DAY_S
        if math.isfinite(r):
            ht.append(base + night)
            hv.append(np.full(night.size, r))
            st.append(base + night)
            sv.append(np.zeros(night.size))
        if math.isfinite(s):
            st.append(base + daytime)
            sv.append(np.full(daytime.size, min(s / daytime.size, 400.0)))
    out = {}
    if ht:
        out["hr"] = (np.concatenate(ht), np.concatenate(hv))
    if st:
        t, v = np.concatenate(st), np.concatenate(sv)
        order = np.argsort(t, kind="stable")
        out["steps"] = (t[order], v[order])
    return out


def read_daily(cohort_path: str | os.PathLike, participant_id: str) -> dict[str, np.ndarray] | None:
    """Read a participant's ``daily.npz`` (day-level source); None when absent.

    Returns ``day`` (int64 days since epoch, local date), ``time`` (UTC seconds of the
    local day start, float64) and the :data:`DAILY_FIELDS` present (float64, NaN gaps).
    """
    f = Path(cohort_path) / "data" / participant_id / "daily.npz"
    if not f.is_file():
        return None
    try:
        with np.load(f, allow_pickle=False) as z:
            if "day" not in z.files:
                raise CohortError(f"{f}: participant {participant_id}: field 'day' missing")
            day = np.asarray(z["day"], dtype=np.int64).ravel()
            out = {"day": day, "time": day.astype(np.float64) * DAY_S}
            for k in DAILY_FIELDS:
                if k in z.files:
                    v = np.asarray(z[k], dtype=np.float64).ravel()
                    if v.shape != day.shape:
                        raise CohortError(f"{f}: participant {participant_id}: field {k!r}: length differs from 'day'")
                    out[k] = v
    except (OSError, ValueError) as e:
        if isinstance(e, CohortError):
            raise
        raise CohortError(f"{f}: participant {participant_id}: unreadable npz: {e}") from None
    return out
