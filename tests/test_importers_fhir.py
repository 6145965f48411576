"""FHIR R4 importer: parsing, malformed input (file, entry, resource, field), size limits, fuzzing."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from detectors.ehr import context_as_of
from streams.cli import app
from streams.cohort import Cohort, CohortWriter, Participant
from streams.importers.ehr_facts import read_facts
from streams.importers.fhir import FhirError, FhirRecords, parse_fhir_bytes, read_fhir

FIX = Path(__file__).parent / "fixtures" / "fhir"
PAT = "11111111-aaaa-4bbb-8ccc-000000000001"
runner = CliRunner()


def facts(rec: FhirRecords, pid: str) -> dict[str, list]:
    out: dict[str, list] = {}
    for f in rec.facts[pid]:
        out.setdefault(f.fact, []).append((f.value, dt.datetime.fromtimestamp(f.time_known, dt.UTC).isoformat()))
    return out


def test_valid_bundle():
    rec = read_fhir(FIX / "bundle_valid.json")
    assert rec.problems == []
    f = facts(rec, PAT)
    assert f["birth_date"] == [("1960-03-15", "1960-03-15T00:00:00+00:00")]
    assert f["sex"][0][0] == "M"
    assert f["hypertension"] == [(1.0, "2010-06-01T10:00:00+00:00")]
    assert f["diabetes"][0][0] == 1.0
    assert f["vaccine_dose"] == [(1.0, "2021-01-10T09:00:00+00:00")]  # influenza vaccine not counted
    assert f["bmi"] == [(31.4, "2019-11-02T08:00:00+00:00")]
    # known when issued (reported), not when the swab was taken
    assert (1.0, "2020-03-02T14:30:00+00:00") in f["test_sars_cov_2"]
    assert (0.0, "2020-08-01T00:00:00+00:00") in f["test_sars_cov_2"]
    assert rec.counts["condition_unmapped"] == 1 and rec.counts["observation_other"] == 1


def test_test_result_is_not_known_before_it_is_issued():
    rec = read_fhir(FIX / "bundle_valid.json")
    fs = rec.facts[PAT]
    # swab on 2020-03-01, result issued 2020-03-02: not a known infection on the swab day
    assert context_as_of(fs, dt.date(2020, 3, 1), prior_gap_days=0)["prior_infections"] == 0.0
    assert context_as_of(fs, dt.date(2020, 3, 2), prior_gap_days=0)["prior_infections"] == 1.0


def test_bad_entries_are_reported_with_file_entry_type_field_and_skipped():
    rec = read_fhir(FIX / "bundle_bad_entries.json")
    probs = "\n".join(rec.problems)
    assert "bundle_bad_entries.json: entry 1: Observation: field 'valueQuantity.value': expected a number" in probs
    assert "entry 2: Condition: field 'subject.reference': missing" in probs
    assert "entry 3: field 'resource'" in probs
    assert "entry 4: Immunization: field 'occurrenceDateTime': not a FHIR date/dateTime" in probs
    assert rec.counts["skipped"] == 4
    f = facts(rec, "p2")
    assert f["birth_date"] == [("1975-07-01", "1975-07-01T00:00:00+00:00")]  # partial birth date: mid-year
    assert f["chronic_lung"] == [(1.0, "2018-04-30T00:00:00+00:00")]  # partial date: end of the month


def test_ndjson_bad_line_is_skipped():
    rec = read_fhir(FIX / "export.ndjson")
    assert rec.problems == [f"{FIX / 'export.ndjson'}: line 3: not valid JSON"]
    assert facts(rec, "p3")["test_sars_cov_2"][0][0] == 1.0


def test_whole_file_errors_name_the_file(tmp_path):
    bad = tmp_path / "x.json"
    bad.write_text("{not json")
    with pytest.raises(FhirError, match=r"x.json: not valid JSON: line 1 column 2"):
        read_fhir(bad)
    bad.write_bytes(b"\xff\xfe\x00garbage")
    with pytest.raises(FhirError, match=r"x.json: not UTF-8"):
        read_fhir(bad)
    bad.write_text("[1, 2]")
    with pytest.raises(FhirError, match=r"x.json: not a FHIR resource"):
        read_fhir(bad)
    bad.write_text('{"resourceType": "Bundle", "entry": {"a": 1}}')
    with pytest.raises(FhirError, match=r"x.json: Bundle: field 'entry': expected a list"):
        read_fhir(bad)
    bad.write_text("[" * 100000 + "]" * 100000)
    with pytest.raises(FhirError, match=r"x.json: .*(deep|not a FHIR)"):
        read_fhir(bad)
    with pytest.raises(FhirError, match="no such file"):
        read_fhir(tmp_path / "missing.json")


def test_size_limits(tmp_path):
    doc = (FIX / "bundle_valid.json").read_bytes()
    with pytest.raises(FhirError, match=r"bytes exceed the limit of 100"):
        parse_fhir_bytes(doc, "b.json", max_bytes=100)
    with pytest.raises(FhirError, match=r"11 entries exceed the limit of 5"):
        parse_fhir_bytes(doc, "b.json", max_entries=5)
    (tmp_path / "big.json").write_bytes(doc)
    with pytest.raises(FhirError, match=r"big.json: \d+ bytes exceed"):
        read_fhir(tmp_path / "big.json", max_bytes=100)


def test_folder_skips_unreadable_file_unless_strict(tmp_path):
    (tmp_path / "a.json").write_bytes((FIX / "bundle_valid.json").read_bytes())
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "b.json").write_text("{oops")
    rec = read_fhir(tmp_path)
    assert PAT in rec.facts and rec.counts["files"] == 1
    assert any("b.json: not valid JSON" in p for p in rec.problems)
    with pytest.raises(FhirError, match="b.json"):
        read_fhir(tmp_path, strict=True)


def test_cli_attach_with_patient_ids_as_participants(tmp_path):
    w = CohortWriter(tmp_path / "c", name="c", source="t")
    w.add_participant(Participant("p2"))
    w.add_participant(Participant("p3"))
    w.add_participant(Participant("P9"))
    w.close()
    r = runner.invoke(app, ["import", "fhir", str(FIX), "--cohort", str(tmp_path / "c"), "--as-of", "2022-06-01"])
    assert r.exit_code == 0, r.output
    assert "entries skipped" in r.output
    c = Cohort(tmp_path / "c")
    assert c["p2"].ehr["chronic_lung"] == 1 and c["p3"].ehr["sex"] == "F"
    assert c["P9"].ehr == {}
    assert {f.participant_id for f in read_facts(tmp_path / "c")} == {"p2", "p3"}


def test_cli_bad_single_file_fails_clearly(tmp_path):
    (tmp_path / "x.json").write_text("nope")
    r = runner.invoke(app, ["import", "fhir", str(tmp_path / "x.json"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "x.json: not valid JSON" in r.output


# ---- fuzzing: nothing but FhirError, ever ----------------------------------------------
json_leaf = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(allow_nan=False), st.text(max_size=12))
json_val = st.recursive(
    json_leaf,
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.text(max_size=8), kids, max_size=4)),
    max_leaves=20,
)
KEYS = ["resourceType", "id", "subject", "patient", "code", "coding", "system", "reference", "birthDate", "gender",
        "onsetDateTime", "recordedDate", "abatementDateTime", "status", "vaccineCode", "occurrenceDateTime",
        "valueQuantity", "value", "valueCodeableConcept", "valueString", "issued", "effectiveDateTime",
        "protocolApplied", "doseNumberPositiveInt", "verificationStatus", "text", "effectivePeriod", "end"]
VALUES = st.one_of(
    json_leaf,
    st.sampled_from(["Patient", "Condition", "Observation", "Immunization", "Bundle", "Patient/x", "urn:uuid:x",
                     "http://loinc.org", "http://snomed.info/sct", "39156-5", "94500-6", "59621000", "208",
                     "2020", "2020-02", "2020-02-30", "2020-01-01T25:00:00Z", "9999-12-31T23:59:59-14:00",
                     "0001-01-01", "0001-01-01T00:00:00+14:00", "0000", "1849-12", "Detected", "completed",
                     "male"]),
)
fhirish = st.recursive(
    VALUES,
    lambda kids: st.one_of(st.lists(kids, max_size=4), st.dictionaries(st.sampled_from(KEYS), kids, max_size=6)),
    max_leaves=30,
)


def _bundle(entries):
    return {"resourceType": "Bundle", "entry": [{"fullUrl": "urn:uuid:x", "resource": e} for e in entries]}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.one_of(json_val, fhirish, st.lists(fhirish, max_size=5).map(_bundle)))
def test_fuzz_json_only_fhir_error(doc):
    data = json.dumps(doc).encode()
    try:
        rec = parse_fhir_bytes(data, "fuzz.json")
    except FhirError as e:
        assert str(e).startswith("fuzz.json")
        return
    # the handlers' safety net must never be what saved us: every problem is anticipated
    assert not any("unreadable entry" in p for p in rec.problems), rec.problems
    for fs in rec.facts.values():
        for f in fs:
            f.check()


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=200))
def test_fuzz_bytes_only_fhir_error(data):
    for nd in (False, True):
        try:
            parse_fhir_bytes(data, "fuzz.bin", ndjson=nd)
        except FhirError:
            pass
