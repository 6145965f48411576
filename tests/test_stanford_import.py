"""Stanford/Mishra Fitbit importer: good folders, malformed files, out-of-range values, the real data."""

from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from streams.cli import app
from streams.cohort import Cohort, CohortError
from streams.importers.stanford import import_stanford

HR_HEAD = ",user,datetime,heartrate\n"
ST_HEAD = ",user,datetime,steps\n"


def _hr_rows(pid: str, n: int = 5, start: str = "2020-03-10 00:00:00", values=None) -> str:
    t0 = dt.datetime.fromisoformat(start)
    values = values if values is not None else [60 + i for i in range(n)]
    return "".join(f"{i},{pid},{(t0 + dt.timedelta(seconds=10 * i)).isoformat(' ')},{v}\n" for i, v in enumerate(values))


def _st_rows(pid: str, n: int = 3, start: str = "2020-03-10 00:00:00") -> str:
    t0 = dt.datetime.fromisoformat(start)
    return "".join(f"{i},{pid},{(t0 + dt.timedelta(minutes=i)).isoformat(' ')},{i * 10}\n" for i in range(n))


def _zip(path: Path, members: dict[str, str]) -> None:
    with zipfile.ZipFile(path, "w") as zf:
        for name, text in members.items():
            zf.writestr(name, text)


def _folder(tmp_path: Path) -> Path:
    src = tmp_path / "src"
    src.mkdir()
    (src / "AAA1_hr.csv").write_text(HR_HEAD + _hr_rows("AAA1"))
    (src / "AAA1_steps.csv").write_text(ST_HEAD + _st_rows("AAA1"))
    _zip(src / "BBB2_hr.csv.zip", {"BBB2_hr.csv": HR_HEAD + _hr_rows("BBB2", values=[70, 300, 71, 10, 72])})
    _zip(src / "BBB2_steps.csv.zip", {"BBB2_steps.csv": ST_HEAD + _st_rows("BBB2"), "__MACOSX/._x.csv": "junk"})
    (src / "onset_labels_aligned_to_these_files.csv").write_text(
        "participant_id,symptom_onset_date,diagnosis_date,extra\nAAA1,2020-03-20,2020-03-25,x\nBBB2,,,y\n")
    (src / "README.txt").write_text("not a data file")
    return src


def test_import_a_folder_with_plain_and_zipped_files(tmp_path):
    s = import_stanford(_folder(tmp_path), tmp_path / "out")
    assert s.participants == 2 and s.labelled == 1
    assert s.samples == {"hr": 5 + 3, "steps": 6}
    assert s.dropped == {"hr": 2, "steps": 0}  # 300 and 10 bpm are out of range: counted, not fatal
    c = Cohort(tmp_path / "out")
    assert [p.participant_id for p in c.participants] == ["AAA1", "BBB2"]
    assert c["AAA1"].symptom_onset_date == dt.date(2020, 3, 20) and c["AAA1"].diagnosis_date == dt.date(2020, 3, 25)
    assert not c["BBB2"].labelled and c["AAA1"].utc_offset_s == 0
    hr = c.read_stream("AAA1", "hr")
    t0 = (dt.datetime(2020, 3, 10) - dt.datetime(1970, 1, 1)).total_seconds()
    assert hr.time.tolist() == [t0 + 10 * i for i in range(5)]  # device-local clock kept as-is
    assert hr.values.tolist() == [60.0, 61.0, 62.0, 63.0, 64.0]
    assert c.read_stream("BBB2", "hr").values.tolist() == [70.0, 71.0, 72.0]
    assert c.read_stream("AAA1", "steps").values.tolist() == [0.0, 10.0, 20.0]


def test_labels_option_overrides_the_default_file(tmp_path):
    src = _folder(tmp_path)
    lab = tmp_path / "labels.csv"
    lab.write_text("participant_id,symptom_onset_date,diagnosis_date\nBBB2,,2020-04-01\n")
    s = import_stanford(src, tmp_path / "out", labels=lab)
    c = Cohort(tmp_path / "out")
    assert s.labelled == 1 and not c["AAA1"].labelled and c["BBB2"].reference_date == dt.date(2020, 4, 1)
    with pytest.raises(CohortError, match="labels file not found"):
        import_stanford(src, tmp_path / "out2", labels=tmp_path / "nope.csv")


def test_duplicate_timestamps_are_counted(tmp_path):
    src = tmp_path / "s"
    src.mkdir()
    rows = _hr_rows("C1", 3) + "3,C1,2020-03-10 00:00:10,90\n"
    (src / "C1_hr.csv").write_text(HR_HEAD + rows)
    s = import_stanford(src, tmp_path / "o")
    assert s.duplicates["hr"] == 1 and s.samples["hr"] == 3


def _one(tmp_path: Path, name: str, text: str | None = None, zip_members: dict | None = None) -> Path:
    src = tmp_path / "bad"
    src.mkdir(exist_ok=True)
    if zip_members is not None:
        _zip(src / name, zip_members)
    else:
        (src / name).write_text(text)
    return src


@pytest.mark.parametrize(
    "text, match",
    [
        (",user,datetime,bpm\n0,P1,2020-03-10 00:00:00,60\n",
         r"P1_hr\.csv: line 1: participant P1: field 'heartrate' missing from header"),
        (",user,time,heartrate\n0,P1,2020-03-10 00:00:00,60\n", r"line 1: participant P1: field 'datetime' missing"),
        (HR_HEAD + "0,P1,2020-03-10 00:00:00,60\n1,P2,2020-03-10 00:00:10,61\n",
         r"P1_hr\.csv: line 3: field 'user': 'P2' differs from the file's participant P1"),
        (HR_HEAD + "0,P1,2020-03-10 00:00:00,60\n1,P1,10/03/2020 00:00,61\n",
         r"P1_hr\.csv: line 3: participant P1: field 'datetime': not a timestamp"),
        (HR_HEAD + "0,P1,2020-03-10 00:00:00,60\n1,P1,2020-03-10 00:00:10,sixty\n",
         r"P1_hr\.csv: line 3: participant P1: field 'heartrate': not a number: 'sixty'"),
        (HR_HEAD + "0,P1,2020-03-10 00:00:00,60\n1,P1,2020-03-10 00:00:10\n",
         r"P1_hr\.csv: line 3: participant P1: expected 4 fields, got 3"),
        ("", r"P1_hr\.csv: participant P1: empty file"),
    ],
)
def test_malformed_csv_names_file_line_participant_field(tmp_path, text, match):
    with pytest.raises(CohortError, match=match):
        import_stanford(_one(tmp_path, "P1_hr.csv", text), tmp_path / "out")


def test_corrupt_zip(tmp_path):
    src = _one(tmp_path, "P1_hr.csv.zip", "this is not a zip")
    with pytest.raises(CohortError, match=r"P1_hr\.csv\.zip: not a valid zip file"):
        import_stanford(src, tmp_path / "out")


def test_zip_with_two_csvs(tmp_path):
    src = _one(tmp_path, "P1_hr.csv.zip", zip_members={"a.csv": HR_HEAD, "b.csv": HR_HEAD})
    with pytest.raises(CohortError, match=r"P1_hr\.csv\.zip: expected exactly one \.csv inside, found 2"):
        import_stanford(src, tmp_path / "out")


def test_errors_inside_a_zip_name_the_zip_and_line(tmp_path):
    src = _one(tmp_path, "P1_hr.csv.zip", zip_members={"P1_hr.csv": HR_HEAD + "0,P1,2020-03-10 00:00:00,abc\n"})
    with pytest.raises(CohortError, match=r"P1_hr\.csv\.zip: line 2: participant P1: field 'heartrate'"):
        import_stanford(src, tmp_path / "out")


def test_steps_without_hr_and_empty_folder(tmp_path):
    src = _one(tmp_path, "P1_steps.csv", ST_HEAD + _st_rows("P1"))
    with pytest.raises(CohortError, match=r"participant P1: has a steps file but no P1_hr\.csv"):
        import_stanford(src, tmp_path / "out")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CohortError, match=r"no <ID>_hr\.csv"):
        import_stanford(tmp_path / "empty", tmp_path / "out")
    with pytest.raises(CohortError, match="not a folder"):
        import_stanford(tmp_path / "missing", tmp_path / "out")


@pytest.mark.parametrize(
    "labels, match",
    [
        ("id,symptom_onset_date\nP1,2020-01-01\n", r"labels\.csv: line 1: header must contain 'participant_id'"),
        ("participant_id,symptom_onset_date,diagnosis_date\nP1,2020-31-01,\n",
         r"labels\.csv: line 2: participant P1: field 'symptom_onset_date': not an ISO date"),
    ],
)
def test_bad_labels_file(tmp_path, labels, match):
    src = _one(tmp_path, "P1_hr.csv", HR_HEAD + _hr_rows("P1"))
    lab = tmp_path / "labels.csv"
    lab.write_text(labels)
    with pytest.raises(CohortError, match=match):
        import_stanford(src, tmp_path / "out", labels=lab)


def test_cli_import_stanford(tmp_path):
    runner = CliRunner()
    src = _folder(tmp_path)
    r = runner.invoke(app, ["import", "stanford", str(src), "--out", str(tmp_path / "out")])
    assert r.exit_code == 0, r.output
    assert "stanford: 2 participants (1 labelled)" in r.output and "dropped out of range 2+0" in r.output
    bad = _one(tmp_path, "P1_hr.csv", HR_HEAD + "0,P1,2020-03-10 00:00:00,sixty\n")
    r = runner.invoke(app, ["import", "stanford", str(bad), "--out", str(tmp_path / "o2")])
    assert r.exit_code == 2
    assert "error: import stanford:" in r.output and "line 2" in r.output and "'heartrate'" in r.output


@pytest.mark.data
def test_real_stanford_data_nine_participants_eight_labelled(data_dir, tmp_path):
    src = data_dir / "stanford_covid_wearables_mishra2020"
    if not src.is_dir():
        pytest.skip(f"{src} is absent")
    s = import_stanford(src, tmp_path / "stanford")
    assert s.participants == 9 and s.labelled == 8
    assert s.samples["hr"] > 1_000_000 and s.samples["steps"] > 500_000
    c = Cohort(tmp_path / "stanford")
    assert len(c.participants) == 9
    assert sum(p.labelled for p in c.participants) == 8
    assert not c["AQC0L71"].labelled
    assert c["AURCTAK"].symptom_onset_date is None and c["AURCTAK"].reference_date == dt.date(2020, 5, 9)
    assert c["A0NVTRV"].symptom_onset_date == dt.date(2020, 4, 20)
    hr = c.read_stream("A0NVTRV", "hr")
    assert np.all(np.diff(hr.time) > 0) and hr.values.min() >= 25 and hr.values.max() <= 250
    first = dt.datetime(1970, 1, 1) + dt.timedelta(seconds=float(hr.time[0]))
    assert first.date() == dt.date(2020, 3, 10)
    # and the imported cohort replays through NightSignal: unlabelled AQC0L71 is left out of the figures
    from streams.registry import make_detector
    from streams.replay import replay

    r = replay(tmp_path / "stanford", make_detector("nightsignal"), tmp_path / "ns", n_boot=0)
    ev = r.evaluation
    assert r.participants == 9 and len(ev["per_participant"]) == 9
    assert ev["participants"] == 8 and ev["labelled"] == 8 and ev["unlabelled_healthy"] is False
    assert r.days > 600 and 0 <= ev["detected_early"] <= 8 and ev["auroc"] is None


def test_error_line_counts_blank_lines(tmp_path):
    """The reported line is the file's physical line, also after blank lines."""
    from streams.cohort import CohortError
    from streams.importers.stanford import read_fitbit_csv

    f = tmp_path / "P1_hr.csv"
    f.write_text(",user,datetime,heartrate\n0,P1,2020-01-01 00:00:00,60\n\n1,P1,2020-01-01 00:01:00,sixty\n")
    with pytest.raises(CohortError, match=r"line 4: participant P1: field 'heartrate'"):
        read_fitbit_csv(f, "P1", "hr")
