"""SP Cup 2015 importer and `prodromal import spcup`: real data (marked `data`) and malformed files."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from scipy.io import savemat

from streams.cohort import Cohort, CohortError
from streams.importers.spcup import T0, import_spcup, load_recording, read_hr_ref

DATA = Path(os.environ.get("PRODROMAL_DATA", Path(__file__).parents[1] / ".." / "shared" / "data")).resolve()
SPCUP = DATA / "spcup2015_troika_ppg_acc"


def _fake(d: Path, name: str, rows: int = 6, n: int = 2000, bpm: bool = True) -> Path:
    rng = np.random.default_rng(0)
    t = np.arange(n) / 125.0
    sig = np.vstack([rng.normal(size=n)] * (rows - 5) + [np.sin(2 * np.pi * 1.5 * t)] * 2 + [rng.normal(0, 0.01, n)] * 3)
    savemat(d / f"{name}.mat", {"sig": sig})
    if bpm:
        k = (n - 1000) // 250 + 1
        ref = {"DATA": f"{name}_BPMtrace.mat", "TEST": f"True_{name.split('_', 1)[1]}.mat"}[name.split("_")[0]]
        savemat(d / ref, {"BPM0": np.full((k, 1), 90.0)})
    return d / f"{name}.mat"


def test_import_fake_training_and_test_layouts(tmp_path):
    src = tmp_path / "src"
    (src / "Training_data").mkdir(parents=True)
    (src / "TestData").mkdir()
    _fake(src / "Training_data", "DATA_01_TYPE01")
    _fake(src / "TestData", "TEST_S01_T01", rows=5)
    out = import_spcup(src, tmp_path / "cohort")
    c = Cohort(out)
    for pid in ("DATA_01_TYPE01", "TEST_S01_T01"):
        ppg, acc = c.read_waveform(pid, "ppg"), c.read_waveform(pid, "acc")
        assert ppg.values.shape == (2, 2000) and acc.values.shape == (3, 2000) and ppg.fs == 125.0
        assert float(ppg.seg_t0[0]) == T0
        np.testing.assert_allclose(ppg.values[0, :5], np.sin(2 * np.pi * 1.5 * np.arange(5) / 125.0), atol=1e-6)
        ref = read_hr_ref(out, pid)
        assert ref["hr_bpm"].shape == (5,) and float(ref["time"][0]) == T0 + 4.0


def test_malformed_files_name_file_and_field(tmp_path):
    savemat(tmp_path / "DATA_01_TYPE01.mat", {"x": np.zeros((6, 2000))})
    with pytest.raises(CohortError, match=r"DATA_01_TYPE01\.mat: field 'sig' missing"):
        load_recording(tmp_path / "DATA_01_TYPE01.mat")
    savemat(tmp_path / "DATA_02_TYPE02.mat", {"sig": np.zeros((4, 2000))})
    with pytest.raises(CohortError, match=r"DATA_02_TYPE02\.mat: field 'sig' has shape \(4, 2000\)"):
        load_recording(tmp_path / "DATA_02_TYPE02.mat")
    _fake(tmp_path, "DATA_03_TYPE02", bpm=False)
    savemat(tmp_path / "DATA_03_TYPE02_BPMtrace.mat", {"bpm": np.zeros(3)})
    with pytest.raises(CohortError, match=r"BPMtrace\.mat: field 'BPM0' missing"):
        load_recording(tmp_path / "DATA_03_TYPE02.mat")
    (tmp_path / "DATA_04_TYPE02.mat").write_bytes(b"not a mat file")
    with pytest.raises(CohortError, match=r"DATA_04_TYPE02\.mat: not a readable MATLAB"):
        load_recording(tmp_path / "DATA_04_TYPE02.mat")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CohortError, match="no SP Cup recordings"):
        import_spcup(tmp_path / "empty", tmp_path / "out")


def test_cli_reports_errors_and_success(tmp_path):
    from typer.testing import CliRunner

    from streams.cli import app

    r = CliRunner().invoke(app, ["import", "spcup", str(tmp_path / "missing"), "--out", str(tmp_path / "o")])
    assert r.exit_code == 2 and "not a folder" in r.output
    _fake(tmp_path, "DATA_05_TYPE02")
    r = CliRunner().invoke(app, ["import", "spcup", str(tmp_path), "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert "1 recordings (1 with reference HR)" in r.output


@pytest.mark.data
def test_real_spcup_import_and_estimate(tmp_path):
    if not SPCUP.is_dir():
        pytest.skip(f"SP Cup data not found at {SPCUP} (set PRODROMAL_DATA)")
    from detectors.ppg import estimate_hr

    out = import_spcup(SPCUP, tmp_path / "spcup")
    c = Cohort(out)
    pids = [p.participant_id for p in c.participants]
    assert len(pids) == 13 and "DATA_S04_T01" in pids and not any(p.startswith("TEST") for p in pids)
    ppg = c.read_waveform("DATA_01_TYPE01", "ppg")
    acc = c.read_waveform("DATA_01_TYPE01", "acc")
    ref = read_hr_ref(out, "DATA_01_TYPE01")
    assert ppg.values.shape == (2, 37937) and ref["hr_bpm"].size == 148
    hr = estimate_hr(ppg.values, acc.values, ppg.fs)
    assert np.mean(np.abs(hr[:148] - ref["hr_bpm"])) < 2.0
