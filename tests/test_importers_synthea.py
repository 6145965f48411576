"""Synthea CSV importer, ehr_facts.csv, attaching EHR to a cohort and EHR-only cohorts."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from detectors.ehr import context_as_of, date_to_time
from streams.cli import app
from streams.cohort import Cohort, CohortError, CohortWriter, Participant
from streams.importers.ehr_facts import assign_participants, read_facts, read_mapping, write_facts
from streams.importers.synthea import read_synthea

DATA = Path(os.environ.get("PRODROMAL_DATA", Path(__file__).parents[1] / ".." / "shared" / "data"))
SYNTHEA = DATA / "synthea_covid_uk_543"
runner = CliRunner()

PATIENTS = """Id,BIRTHDATE,DEATHDATE,GENDER,FIRST
pat-a,1950-05-01,,M,Ann
pat-b,1990-01-15,,F,Bob
pat-c,1980-02-02,,F,Cid
"""
CONDITIONS = """START,STOP,PATIENT,ENCOUNTER,CODE,DESCRIPTION
2010-01-01,,pat-a,e1,59621000,Hypertension
2015-03-01,,pat-a,e2,15777000,Prediabetes
2018-03-01,,pat-a,e3,44054006,Diabetes
2019-01-01,2019-06-01,pat-b,e4,254837009,Malignant neoplasm of breast (disorder)
2020-03-05,2020-03-20,pat-b,e5,386661006,Fever (finding)
2020-03-05,2020-03-20,pat-b,e5,840539006,COVID-19
2020-03-05,2020-03-05,pat-b,e5,840544004,Suspected COVID-19
2012-01-01,,pat-c,e6,999999999,Chronic obstructive lung thing (disorder)
"""
IMMUNIZATIONS = """DATE,PATIENT,ENCOUNTER,CODE,DESCRIPTION,BASE_COST
2021-01-10T10:00:00Z,pat-a,e7,208,SARS-COV-2 (COVID-19) vaccine mRNA,0
2021-02-01T10:00:00Z,pat-a,e8,208,SARS-COV-2 (COVID-19) vaccine mRNA,0
2020-10-01T10:00:00Z,pat-a,e9,140,Influenza seasonal injectable preservative free,0
"""
OBSERVATIONS = """DATE,PATIENT,ENCOUNTER,CODE,DESCRIPTION,VALUE,UNITS,TYPE
2019-05-01,pat-a,e10,39156-5,Body Mass Index,31.2,kg/m2,numeric
2020-03-06,pat-b,e5,94531-1,SARS-CoV-2 RNA Pnl Resp NAA+probe,Detected (qualifier value),,text
2020-03-06,pat-b,e5,8867-4,Heart rate,80,/min,numeric
"""


def write_export(d: Path, with_optional: bool = True) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "patients.csv").write_text(PATIENTS)
    (d / "conditions.csv").write_text(CONDITIONS)
    if with_optional:
        (d / "immunizations.csv").write_text(IMMUNIZATIONS)
        (d / "observations.csv").write_text(OBSERVATIONS)
    return d


def make_cohort(d: Path, ids=("P1", "P2", "P3", "P4")) -> Path:
    w = CohortWriter(d, name="c", source="test")
    t = date_to_time("2020-02-01") + np.arange(0, 3600, 60.0)
    for pid in ids:
        w.add_participant(Participant(pid, 0, dt.date(2020, 3, 1) if pid == "P1" else None), {"hr": (t, np.full(t.size, 60.0))})
    w.close()
    return d


def facts_of(rec, pat):
    return sorted((f.fact, f.value, dt.datetime.fromtimestamp(f.time_known, dt.UTC).date().isoformat()) for f in rec.facts[pat])


def test_reads_patients_conditions_immunizations_observations(tmp_path):
    rec = read_synthea(write_export(tmp_path / "s"))
    assert rec.patient_ids == ["pat-a", "pat-b", "pat-c"]
    a = facts_of(rec, "pat-a")
    assert ("hypertension", 1.0, "2010-01-01") in a
    assert ("diabetes", 1.0, "2018-03-01") in a
    assert not any(x[0] == "diabetes" and x[2] == "2015-03-01" for x in a)  # prediabetes is not diabetes
    assert [x for x in a if x[0] == "vaccine_dose"] == [("vaccine_dose", 1.0, "2021-01-10"), ("vaccine_dose", 2.0, "2021-02-01")]
    assert ("bmi", 31.2, "2019-05-01") in a
    b = facts_of(rec, "pat-b")
    assert ("immunosuppressed", 1.0, "2019-01-01") in b and ("immunosuppressed", 0.0, "2019-06-01") in b
    assert ("covid19", 1.0, "2020-03-05") in b and ("test_sars_cov_2", 1.0, "2020-03-06") in b
    assert ("chronic_lung", 1.0, "2012-01-01") in facts_of(rec, "pat-c")  # by description
    assert rec.covid_diagnosis == {"pat-b": dt.date(2020, 3, 5)}
    assert rec.covid_onset == {"pat-b": dt.date(2020, 3, 5)}
    assert rec.problems == []


def test_optional_files_absent_is_fine(tmp_path):
    rec = read_synthea(write_export(tmp_path / "s", with_optional=False))
    assert not any(f.fact in ("vaccine_dose", "bmi") for fs in rec.facts.values() for f in fs)


def test_missing_file_and_column_are_clear_errors(tmp_path):
    d = write_export(tmp_path / "s")
    (d / "conditions.csv").unlink()
    with pytest.raises(CohortError, match=r"conditions.csv: missing"):
        read_synthea(d)
    (d / "conditions.csv").write_text("START,PATIENT,CODE,DESCRIPTION\n")
    with pytest.raises(CohortError, match=r"conditions.csv: line 1: column\(s\) STOP missing"):
        read_synthea(d)


def test_bad_rows_are_reported_with_file_line_field_and_skipped(tmp_path):
    d = write_export(tmp_path / "s")
    (d / "conditions.csv").write_text(
        CONDITIONS + "not-a-date,,pat-a,e1,59621000,Hypertension\n2020-01-01,,ghost,e1,59621000,Hypertension\n"
    )
    (d / "observations.csv").write_text(OBSERVATIONS + "2020-01-01,pat-a,e,39156-5,Body Mass Index,huge,kg/m2,numeric\n")
    rec = read_synthea(d)
    assert rec.counts["bad_rows"] == 3
    assert any("conditions.csv: line 10: field 'START'" in p for p in rec.problems)
    assert any("conditions.csv: line 11: field 'PATIENT'" in p for p in rec.problems)
    assert any("observations.csv: line 5: field 'VALUE'" in p for p in rec.problems)
    assert not any("huge" in p for p in rec.problems)  # health values never in messages
    assert ("hypertension", 1.0, "2010-01-01") in facts_of(rec, "pat-a")


def test_facts_csv_roundtrip_and_errors(tmp_path):
    rec = read_synthea(write_export(tmp_path / "s"))
    facts = [f for fs in rec.facts.values() for f in fs]
    n = write_facts(tmp_path / "ehr_facts.csv", facts)
    back = read_facts(tmp_path / "ehr_facts.csv")
    assert n == len(back) == len(facts)
    key = lambda f: (f.participant_id, f.time_known, f.fact, str(f.value))  # noqa: E731
    assert sorted(map(key, back)) == sorted(map(key, facts))
    (tmp_path / "bad.csv").write_text("participant_id,time_known,fact,value\nP1,2020-13-01,bmi,20\n")
    with pytest.raises(CohortError, match=r"bad.csv: line 2: participant P1: field 'time_known'"):
        read_facts(tmp_path / "bad.csv")
    (tmp_path / "bad.csv").write_text("participant_id,time_known,fact,value\nP1,2020-01-01,bmi,fat\n")
    with pytest.raises(CohortError, match=r"line 2: participant P1: field 'value'"):
        read_facts(tmp_path / "bad.csv")


def test_cli_attach_by_map_writes_columns_and_facts(tmp_path):
    src = write_export(tmp_path / "s")
    coh = make_cohort(tmp_path / "c")
    (tmp_path / "map.csv").write_text("participant_id,patient_id\nP1,pat-a\nP2,pat-b\n")
    r = runner.invoke(app, ["import", "synthea", str(src), "--cohort", str(coh), "--map", str(tmp_path / "map.csv")])
    assert r.exit_code == 0, r.output
    c = Cohort(coh)
    p1, p3 = c["P1"], c["P3"]
    assert p1.ehr["sex"] == "M" and p1.ehr["hypertension"] == 1 and p1.ehr["diabetes"] == 1
    assert p1.ehr["age"] == pytest.approx(69.8, abs=0.1)  # as of the first wearable sample, 2020-02-01
    assert p1.ehr["vaccine_doses"] == 0  # doses come in 2021: not known on 2020-02-01
    assert p1.symptom_onset_date == dt.date(2020, 3, 1)  # cohort labels untouched
    assert p3.ehr == {}  # no EHR: missing modality, no columns
    facts = read_facts(coh)
    assert {f.participant_id for f in facts} == {"P1", "P2"}
    ctx = context_as_of([f for f in facts if f.participant_id == "P1"], dt.date(2021, 3, 1))
    assert ctx["vaccine_doses"] == 2.0
    assert c.read_stream("P1", "hr") is not None  # streams untouched


def test_cli_assign_seed_is_deterministic_and_fraction_leaves_some_without(tmp_path):
    src = write_export(tmp_path / "s")
    outs = []
    for i in range(2):
        coh = make_cohort(tmp_path / f"c{i}")
        r = runner.invoke(app, ["import", "synthea", str(src), "--cohort", str(coh), "--assign-seed", "7"])
        assert r.exit_code == 0, r.output
        outs.append((coh / "ehr_facts.csv").read_text())
    assert outs[0] == outs[1]
    m = assign_participants([f"P{i}" for i in range(100)], [f"x{i}" for i in range(100)], seed=3, fraction=0.6)
    assert 45 <= len(m) <= 75
    assert m == assign_participants([f"P{i}" for i in range(100)], [f"x{i}" for i in range(100)], seed=3, fraction=0.6)


def test_cli_ehr_only_cohort(tmp_path):
    src = write_export(tmp_path / "s")
    r = runner.invoke(app, ["import", "synthea", str(src), "--out", str(tmp_path / "e")])
    assert r.exit_code == 0, r.output
    c = Cohort(tmp_path / "e")
    assert [p.participant_id for p in c.participants] == ["pat-a", "pat-b", "pat-c"]
    assert all(c.stream_kinds(p.participant_id) == [] for p in c.participants)
    b = c["pat-b"]
    assert b.diagnosis_date == dt.date(2020, 3, 5) and b.symptom_onset_date == dt.date(2020, 3, 5)
    assert b.ehr["immunosuppressed"] == 0  # as of the day before onset, the cancer had resolved


def test_cli_errors_are_clear(tmp_path):
    src = write_export(tmp_path / "s")
    coh = make_cohort(tmp_path / "c")
    r = runner.invoke(app, ["import", "synthea", str(src), "--cohort", str(coh)])
    assert r.exit_code == 2 and "--map" in r.output
    r = runner.invoke(app, ["import", "synthea", str(src)])
    assert r.exit_code == 2 and "exactly one of --cohort" in r.output
    r = runner.invoke(app, ["import", "synthea", str(src), "--cohort", str(coh), "--fraction", "0.5"])
    assert r.exit_code == 2 and "--fraction applies to --assign-seed only" in r.output
    (tmp_path / "map.csv").write_text("participant_id,patient_id\nNOPE,pat-a\n")
    r = runner.invoke(app, ["import", "synthea", str(src), "--cohort", str(coh), "--map", str(tmp_path / "map.csv")])
    assert r.exit_code == 2 and "not in the cohort" in r.output
    (tmp_path / "map2.csv").write_text("participant_id,patient_id\nP1,pat-a\nP2,pat-a\n")
    with pytest.raises(CohortError, match="line 3: field 'patient_id': mapped twice"):
        read_mapping(tmp_path / "map2.csv")
    r = runner.invoke(app, ["import", "synthea", str(tmp_path / "nowhere"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "patients.csv: missing" in r.output


@pytest.mark.data
def test_real_synthea_543(tmp_path):
    if not (SYNTHEA / "patients.csv").is_file():
        pytest.skip(f"Synthea data not found at {SYNTHEA} (set PRODROMAL_DATA)")
    rec = read_synthea(SYNTHEA)
    assert rec.counts["patients"] == 543
    assert len(rec.covid_diagnosis) == 414  # PROVENANCE.md: COVID-19 in 414 patients
    assert rec.counts["condition:hypertension"] == 126
    assert rec.problems == []
    r = runner.invoke(app, ["import", "synthea", str(SYNTHEA), "--out", str(tmp_path / "e")])
    assert r.exit_code == 0, r.output
    c = Cohort(tmp_path / "e")
    assert len(c.participants) == 543 and sum(p.labelled for p in c.participants) == 414
