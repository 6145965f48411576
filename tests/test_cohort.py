"""Cohort format: round trip, validation errors naming file/line/participant/field, CSV streams."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
import pytest

from streams.cohort import Cohort, CohortError, CohortWriter, Participant


def _manifest(path: Path, **kw) -> None:
    path.mkdir(parents=True, exist_ok=True)
    (path / "cohort.json").write_text(json.dumps({"format": "prodromal-cohort", "version": 1, "name": "c", **kw}))


def _cohort(path: Path, participants_csv: str) -> Path:
    _manifest(path)
    (path / "participants.csv").write_text(participants_csv)
    return path


def test_round_trip_irregular_and_regular_streams(tmp_path):
    w = CohortWriter(tmp_path / "c", name="c", source="test", notes={"unlabelled_healthy": True})
    t = np.array([30.0, 0.0, 60.0, 60.0, 90.0])  # unsorted, one repeated time
    hr = np.array([61.0, 60.0, 62.0, 62.0, 300.0])  # 300 bpm out of range
    steps = np.array([0.0, np.nan, 12.0, 5.0])  # regular, one missing minute
    w.add_participant(
        Participant("P1", 3600, dt.date(2024, 1, 5), None, {"age": 40, "sex": "F"}),
        streams={"hr": (t, hr)}, regular={"steps": (1000.0, 60.0, steps)},
    )
    w.add_participant(Participant("P2"), streams={"hr": (np.array([0.0]), np.array([70.0]))})
    w.close()
    c = Cohort(tmp_path / "c")
    assert c.name == "c" and c.manifest["unlabelled_healthy"] is True and c.manifest["participants"] == 2
    p1 = c["P1"]
    assert p1.utc_offset_s == 3600 and p1.symptom_onset_date == dt.date(2024, 1, 5) and p1.labelled
    assert p1.reference_date == dt.date(2024, 1, 5) and p1.ehr == {"age": 40.0, "sex": "F"}
    assert not c["P2"].labelled and c["P2"].reference_date is None
    sd = c.read_stream("P1", "hr")
    assert sd.time.tolist() == [0.0, 30.0, 60.0] and sd.values.tolist() == [60.0, 61.0, 62.0]
    assert sd.dropped == 1 and sd.duplicates == 1
    st = c.read_stream("P1", "steps")
    assert st.time.tolist() == [1000.0, 1120.0, 1180.0] and st.values.tolist() == [0.0, 12.0, 5.0]
    assert c.read_stream("P1", "temp") is None
    assert c.stream_kinds("P1") == ["hr", "steps"]


def test_diagnosis_date_is_the_reference_when_onset_is_unknown(tmp_path):
    c = Cohort(_cohort(tmp_path / "c", "participant_id,utc_offset_s,symptom_onset_date,diagnosis_date\nP1,0,,2024-02-01\n"))
    assert c["P1"].reference_date == dt.date(2024, 2, 1) and c["P1"].labelled


@pytest.mark.parametrize(
    "text, match",
    [
        ("pid,utc_offset_s\nP1,0\n", r"participants\.csv: line 1: header must contain 'participant_id'"),
        ("participant_id,utc_offset_s\nP1,abc\n", r"line 2: participant P1: field 'utc_offset_s': not a number"),
        ("participant_id,utc_offset_s\nP1,90000\n", r"line 2: participant P1: field 'utc_offset_s': 90000 outside"),
        ("participant_id,symptom_onset_date\nP1,2024-01-01\nP2,01/02/2024\n",
         r"line 3: participant P2: field 'symptom_onset_date': not an ISO date"),
        ("participant_id,diagnosis_date\nP1,2024-13-01\n", r"line 2: participant P1: field 'diagnosis_date'"),
        ("participant_id\nP1\nP1\n", r"line 3: participant P1: duplicate participant_id"),
        ("participant_id\nP 1\n", r"line 2: participant_id must be"),
        ("participant_id\n\"\"\n", r"line 2: empty participant_id"),
        ("participant_id,utc_offset_s,age\nP1,0,35,7\n", r"line 2: participant P1: expected 3 fields, got 4"),
        ("participant_id,utc_offset_s,age\nP1,0,35\nP2,0\n", r"line 3: participant P2: expected 3 fields, got 2 \(field 'age' missing\)"),
    ],
)
def test_participants_csv_errors_name_file_line_participant_field(tmp_path, text, match):
    with pytest.raises(CohortError, match=match):
        Cohort(_cohort(tmp_path / "c", text))


def test_manifest_errors(tmp_path):
    (tmp_path / "a").mkdir()
    with pytest.raises(CohortError, match=r"cohort\.json: missing"):
        Cohort(tmp_path / "a")
    (tmp_path / "a" / "cohort.json").write_text("{not json")
    with pytest.raises(CohortError, match="not valid JSON"):
        Cohort(tmp_path / "a")
    _manifest(tmp_path / "b", format="other")
    with pytest.raises(CohortError, match="field 'format'"):
        Cohort(tmp_path / "b")
    _manifest(tmp_path / "v", version=99)
    with pytest.raises(CohortError, match="field 'version': 99 is newer"):
        Cohort(tmp_path / "v")


def _csv_stream(tmp_path, kind: str, text: str, offset: int = 0) -> Cohort:
    c = _cohort(tmp_path / "c", f"participant_id,utc_offset_s\nP1,{offset}\n")
    d = c / "data" / "P1"
    d.mkdir(parents=True)
    (d / f"{kind}.csv").write_text(text)
    return Cohort(c)


def test_csv_stream_with_iso_times_and_utc_offsets(tmp_path):
    text = (
        "time,hr_bpm\n"
        "1704067200,60\n"  # UTC seconds: 2024-01-01 00:00 UTC
        "2024-01-01T03:00:00+02:00,61\n"  # aware: 01:00 UTC
        "2024-01-01T02:00:00Z,62\n"  # aware UTC
        "2024-01-01T04:00:00,63\n"  # naive: device-local, offset +3600 -> 03:00 UTC
        "2024-01-01T05:00:00,\n"  # empty value: dropped, counted
        "2024-01-01T06:00:00,20\n"  # out of range: dropped, counted
    )
    sd = _csv_stream(tmp_path, "hr", text, offset=3600).read_stream("P1", "hr")
    base = 1704067200.0
    assert sd.time.tolist() == [base, base + 3600, base + 7200, base + 10800]
    assert sd.values.tolist() == [60.0, 61.0, 62.0, 63.0]
    assert sd.dropped == 2


@pytest.mark.parametrize(
    "text, match",
    [
        ("t,hr_bpm\n0,60\n", r"hr\.csv: participant P1: line 1: field 'time' missing from header"),
        ("time,heart\n0,60\n", r"line 1: field 'hr_bpm' missing"),
        ("time,hr_bpm\n0,60\n60,sixty\n", r"hr\.csv: participant P1: line 3: field 'hr_bpm': not a number: 'sixty'"),
        ("time,hr_bpm\n0,60\nyesterday,61\n", r"hr\.csv: participant P1: (row|line) 3: field 'time': not UTC seconds or ISO-8601"),
        ("time,hr_bpm\n0,60\n60\n", r"line 3: expected 2 fields, got 1"),
        ("", r"empty file"),
    ],
)
def test_csv_stream_errors(tmp_path, text, match):
    c = _csv_stream(tmp_path, "hr", text)
    with pytest.raises(CohortError, match=match):
        c.read_stream("P1", "hr")


def test_npz_stream_errors(tmp_path):
    c = _cohort(tmp_path / "c", "participant_id\nP1\n")
    d = c / "data" / "P1"
    d.mkdir(parents=True)
    np.savez(d / "hr.npz", time=np.zeros(2), bpm=np.zeros(2))
    with pytest.raises(CohortError, match=r"hr\.npz: participant P1: field 'hr_bpm' missing"):
        Cohort(c).read_stream("P1", "hr")
    np.savez(d / "hr.npz", hr_bpm=np.full(2, 60.0))
    with pytest.raises(CohortError, match=r"field 'time' \(or 't0' and 'period_s'\) missing"):
        Cohort(c).read_stream("P1", "hr")
    np.savez(d / "hr.npz", time=np.zeros(3), hr_bpm=np.full(2, 60.0))
    with pytest.raises(CohortError, match=r"participant P1: field 'time' and 'hr_bpm' differ in length"):
        Cohort(c).read_stream("P1", "hr")
    (d / "hr.npz").write_bytes(b"garbage")
    with pytest.raises(CohortError, match=r"hr\.npz: participant P1: unreadable npz"):
        Cohort(c).read_stream("P1", "hr")
    with pytest.raises(CohortError, match="unknown stream kind 'spo2'"):
        Cohort(c).read_stream("P1", "spo2")
