"""Welltory importer: daily stream, minute emulation, HRV spot checks as ibi, labels, errors."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from detectors.ehr import date_to_time
from streams.cli import app
from streams.cohort import Cohort, CohortError
from streams.importers.ehr_facts import read_facts
from streams.importers.welltory import import_welltory, parse_rr, read_daily

DATA = Path(os.environ.get("PRODROMAL_DATA", Path(__file__).parents[1] / ".." / "shared" / "data"))
WELLTORY = DATA / "welltory_hrv_covid19"
runner = CliRunner()

PARTICIPANTS = '''"user_code","gender","age_range","city","country","height","weight","symptoms_onset"
"aaa","m","25-34","X","Y","180.000","100.000","4/5/2020"
"bbb","f","45-54","X","Y","","60.000","1/30/1967"
"ccc","f","35-44","X","Y","165","60",""
'''
WEARABLES = '''"user_code","day","resting_pulse","pulse_average","pulse_min","pulse_max","average_spo2_value","body_temperature_avg","steps_count"
"aaa","2020-04-01",58,70,50,120,"","",9600
"aaa","2020-04-02",61,"","","","97","36.6",""
"aaa","2020-04-03","","","","","","",1000000
"bbb","not-a-day",60,"","","","","",100
'''
HRV = '''"user_code","rr_code","measurement_datetime","time_of_day","bpm","meanrr","sdnn","rmssd","rr_data"
"aaa","r1","2020-04-01 08:00:00","morning",60,"1000","10","10","1000,1010,990,1000"
"ccc","r2","2020-04-02 09:30:00","morning",75,"800","10","10","800,810,oops"
'''
SLEEP = '''"user_code","day","sleep_begin","sleep_end","sleep_duration"
"aaa","2020-04-01","2020-04-01 00:30:00","2020-04-01 07:30:00","25200.000"
'''


def write_src(d: Path) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "participants.csv").write_text(PARTICIPANTS)
    (d / "wearables.csv").write_text(WEARABLES)
    (d / "hrv_measurements.csv").write_text(HRV)
    (d / "sleep.csv").write_text(SLEEP)
    return d


def test_daily_stream_labels_and_ehr_columns(tmp_path):
    rep = import_welltory(write_src(tmp_path / "s"), tmp_path / "c")
    c = Cohort(tmp_path / "c")
    assert [p.participant_id for p in c.participants] == ["aaa", "bbb", "ccc"]
    a, b = c["aaa"], c["bbb"]
    assert a.symptom_onset_date == dt.date(2020, 4, 5)
    assert b.symptom_onset_date is None and rep.counts["onset_outside_period"] == 1  # 1967 looks like a birth date
    assert a.ehr["sex"] == "M" and a.ehr["age"] == 29.5 and a.ehr["bmi"] == pytest.approx(30.9) and a.ehr["obesity"] == 1
    assert "bmi" not in b.ehr  # height missing
    d = read_daily(tmp_path / "c", "aaa")
    assert d["day"].tolist() == [18353, 18354, 18355]
    assert d["time"][0] == date_to_time("2020-04-01")
    assert d["rhr_bpm"][:2].tolist() == [58.0, 61.0] and np.isnan(d["rhr_bpm"][2])
    assert d["spo2_pct"][1] == 97.0 and d["temp_c"][1] == pytest.approx(36.6)
    assert np.isnan(d["steps"][2])  # 1,000,000 steps a day is out of range: dropped, counted
    assert rep.counts["daily_out_of_range"] == 1
    assert d["sleep_min"][0] == 420.0  # sleep_duration is seconds
    assert read_daily(tmp_path / "c", "ccc") is None
    assert any("wearables.csv: line 5: field 'day'" in p for p in rep.problems)
    facts = read_facts(tmp_path / "c")
    assert {(f.participant_id, f.fact) for f in facts} >= {("aaa", "bmi"), ("aaa", "sex"), ("aaa", "age_years")}


def test_minute_emulation_puts_resting_hr_in_the_night_with_zero_steps(tmp_path):
    import_welltory(write_src(tmp_path / "s"), tmp_path / "c")
    c = Cohort(tmp_path / "c")
    hr, steps = c.read_stream("aaa", "hr"), c.read_stream("aaa", "steps")
    day0 = date_to_time("2020-04-01")
    night = (hr.time >= day0) & (hr.time < day0 + 7 * 3600)
    assert night.sum() == 420 and np.all(hr.values[night] == 58.0)
    assert hr.time.size == 840  # two nights with a resting HR
    night_steps = steps.values[(steps.time >= day0) & (steps.time < day0 + 7 * 3600)]
    assert night_steps.size == 420 and np.all(night_steps == 0)
    day_steps = steps.values[(steps.time >= day0 + 12 * 3600) & (steps.time < day0 + 20 * 3600)]
    assert day_steps.sum() == pytest.approx(9600.0)
    import_welltory(tmp_path / "s", tmp_path / "c2", minute_emulation=False)
    assert Cohort(tmp_path / "c2").stream_kinds("aaa") == ["ibi"]


def test_hrv_spot_checks_become_ibi_and_bad_rr_row_is_skipped(tmp_path):
    rep = import_welltory(write_src(tmp_path / "s"), tmp_path / "c")
    c = Cohort(tmp_path / "c")
    ibi = c.read_stream("aaa", "ibi")
    t0 = date_to_time("2020-04-01") + 8 * 3600
    assert ibi.values.tolist() == [1000.0, 1010.0, 990.0, 1000.0]
    assert ibi.time.tolist() == [t0 + 1.0, t0 + 2.01, t0 + 3.0, t0 + 4.0]
    assert c.read_stream("ccc", "ibi") is None
    assert any("hrv_measurements.csv: line 3: participant ccc: field" in p for p in rep.problems)


def test_parse_rr_and_errors(tmp_path):
    assert parse_rr("").size == 0
    with pytest.raises(ValueError):
        parse_rr("1,2,x")
    with pytest.raises(CohortError, match="participants.csv: missing"):
        import_welltory(tmp_path / "nowhere", tmp_path / "c")
    d = write_src(tmp_path / "s")
    (d / "wearables.csv").write_text('"user_code","day"\n"a","2020-01-01"\n')
    with pytest.raises(CohortError, match=r"wearables.csv: line 1: column\(s\) resting_pulse"):
        import_welltory(d, tmp_path / "c")


def test_cli(tmp_path):
    r = runner.invoke(app, ["import", "welltory", str(write_src(tmp_path / "s")), "--out", str(tmp_path / "c")])
    assert r.exit_code == 0, r.output
    assert "3 participants, 1 labelled, 1 with daily data" in r.output


@pytest.mark.data
def test_real_welltory(tmp_path):
    if not (WELLTORY / "participants.csv").is_file():
        pytest.skip(f"Welltory data not found at {WELLTORY} (set PRODROMAL_DATA)")
    rep = import_welltory(WELLTORY, tmp_path / "w", minute_emulation=False)
    assert rep.participants == 185
    assert rep.with_daily == 79  # PROVENANCE.md: wearables.csv covers 79 users
    assert 120 <= rep.labelled <= 140
    assert rep.counts["hrv_spot_checks"] == 3245
    c = Cohort(tmp_path / "w")
    with_rhr = [p for p in c.participants if (d := read_daily(tmp_path / "w", p.participant_id)) is not None
                and np.isfinite(d["rhr_bpm"]).any()]
    assert len(with_rhr) >= 40


@pytest.mark.data
def test_real_welltory_rmssd_matches_the_app():
    """Known answer: RMSSD from the raw RR intervals equals the app's own value."""
    import csv

    f = WELLTORY / "hrv_measurements.csv"
    if not f.is_file():
        pytest.skip(f"Welltory data not found at {WELLTORY} (set PRODROMAL_DATA)")
    diffs = []
    with open(f, newline="", encoding="utf-8") as fh:
        for i, row in enumerate(csv.DictReader(fh)):
            if i >= 500:
                break
            rr = parse_rr(row["rr_data"])
            rmssd = float(np.sqrt(np.mean(np.diff(rr) ** 2)))
            diffs.append(abs(rmssd - float(row["rmssd"])))
    assert np.median(diffs) < 0.01 and np.percentile(diffs, 99) < 0.5
