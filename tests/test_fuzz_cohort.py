"""Bad-input fuzzing of the cohort format: cohort.json, participants.csv, stream CSV/npz, waveform npz.

Each mutated file either raises :class:`CohortError` naming the file and a
line, row or field, or is read with bad samples dropped and counted. See
tests/_badinput.py for the outcome rules and the summary file.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from _badinput import (
    FUTURE_TIMES,
    FUZZ_EXAMPLES,
    NAN_INF,
    NEGATIVE_TIMES,
    WRONG_TYPES,
    Tally,
    check_error,
    cut,
    garbage_bytes,
    garbage_text,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams import cohort as cohort_mod
from streams.cohort import TIME_MAX_S, TIME_MIN_S, Cohort, CohortError

FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
PID = "P1"
T0 = 1_700_000_000.0
MANIFEST = json.dumps({"format": "prodromal-cohort", "version": 1, "name": "fz"})
PARTICIPANTS = "participant_id,utc_offset_s,symptom_onset_date,diagnosis_date,age,sex\nP1,3600,2023-11-20,,41,F\nP2,0,,,,\n"


@pytest.fixture(scope="module")
def tallies():
    t = {k: Tally(f"cohort {k}") for k in ("participants.csv", "cohort.json", "stream csv", "stream npz", "waveform npz")}
    yield t
    for x in t.values():
        x.save()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_cohort")


def _write(root, manifest: bytes | str = MANIFEST, participants: bytes | str = PARTICIPANTS):
    d = root / "c"
    (d / "data" / PID).mkdir(parents=True, exist_ok=True)
    for f in (d / "data" / PID).iterdir():
        f.unlink()
    for name, content in (("cohort.json", manifest), ("participants.csv", participants)):
        (d / name).write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    return d


def _open(d, names):
    try:
        c = Cohort(d)
    except CohortError as e:
        return check_error(e, names), None
    return "accepted", c


def _stream(c, d, kind="hr"):
    f = next((d / "data" / PID).glob(f"{kind}.*"))
    try:
        sd = c.read_stream(PID, kind)
    except CohortError as e:
        return check_error(e, [f.name])
    assert np.all(np.isfinite(sd.time)) and np.all(np.isfinite(sd.values))
    assert np.all((sd.time >= TIME_MIN_S) & (sd.time < TIME_MAX_S))
    assert np.all(np.diff(sd.time) > 0)
    return "dropped" if sd.dropped or sd.duplicates else "accepted"


# ---- participants.csv and cohort.json ---------------------------------------------------------


@FUZZ
@given(frac=st.floats(0, 1))
def test_participants_truncated(root, tallies, frac):
    d = _write(root, participants=cut(PARTICIPANTS.encode(), frac))
    tallies["participants.csv"].add("truncated", _open(d, ["participants.csv"])[0])


@FUZZ
@given(col=st.sampled_from(["utc_offset_s", "symptom_onset_date", "diagnosis_date", "age", "participant_id"]),
       bad=st.sampled_from(WRONG_TYPES + NAN_INF + ["1e400", "-50401", "99999999999999999999"]) | garbage_text)
def test_participants_wrong_type(root, tallies, col, bad):
    lines = PARTICIPANTS.splitlines()
    header = lines[0].split(",")
    row = lines[1].split(",")
    row[header.index(col)] = bad.replace(",", ";").replace('"', "'").replace("\n", " ").replace("\r", " ")
    kind = "nan_inf" if bad in NAN_INF or bad == "1e400" else "wrong_type" if bad in WRONG_TYPES else "unicode_garbage"
    d = _write(root, participants="\n".join([lines[0], ",".join(row), lines[2]]) + "\n")
    out, c = _open(d, ["participants.csv"])
    if c is not None and col == "utc_offset_s":
        assert abs(c[PID].utc_offset_s) <= 14 * 3600
    if c is not None and col == "age" and kind == "nan_inf":
        assert "age" not in c[PID].ehr  # non-finite EHR numbers are unknown, not values
        out = "dropped"
    tallies["participants.csv"].add(kind, out)


@FUZZ
@given(pos=st.floats(0, 1), piece=garbage_bytes | garbage_text.map(lambda s: s.encode("utf-8")))
def test_participants_garbage(root, tallies, pos, piece):
    data = PARTICIPANTS.encode()
    i = int(len(data) * pos)
    d = _write(root, participants=data[:i] + piece + data[i:])
    tallies["participants.csv"].add("unicode_garbage", _open(d, ["participants.csv"])[0])


@pytest.mark.parametrize("date", NEGATIVE_TIMES + FUTURE_TIMES)
def test_participants_label_dates_far_away(root, tallies, date):
    d = _write(root, participants=PARTICIPANTS.replace("2023-11-20", date[:10]))
    out, _ = _open(d, ["participants.csv"])
    tallies["participants.csv"].add("negative_time" if date in NEGATIVE_TIMES else "future_time", out)


def test_participants_oversized(root, tallies, monkeypatch):
    d = _write(root, participants=PARTICIPANTS.replace("41", "4" * 200_000))
    out, _ = _open(d, ["participants.csv"])
    assert out == "error"  # a field past the csv module's limit
    tallies["participants.csv"].add("oversized", out)
    d = _write(root)
    monkeypatch.setattr(cohort_mod, "MAX_FILE_BYTES", 50)
    out, _ = _open(d, ["participants.csv"])
    assert out == "error"
    tallies["participants.csv"].add("oversized", out)


@FUZZ
@given(frac=st.floats(0, 0.999))
def test_manifest_truncated(root, tallies, frac):
    d = _write(root, manifest=cut(MANIFEST.encode(), frac))
    out, _ = _open(d, ["cohort.json"])
    tallies["cohort.json"].add("truncated", out)


@pytest.mark.parametrize("manifest", [
    "[]", "null", "42", '"prodromal-cohort"', '{"format": 1}', '{"format": "prodromal-cohort", "version": "x"}',
    '{"format": "prodromal-cohort", "version": [1]}', '{"format": "prodromal-cohort", "version": 1e999}',
    '{"format": "prodromal-cohort", "version": NaN}', '{"format": "prodromal-cohort", "version": 99}',
])
def test_manifest_wrong_type(root, tallies, manifest):
    d = _write(root, manifest=manifest)
    out, _ = _open(d, ["cohort.json"])
    assert out == "error"
    tallies["cohort.json"].add("nan_inf" if "NaN" in manifest or "e999" in manifest else "wrong_type", out)


@FUZZ
@given(piece=garbage_bytes)
def test_manifest_garbage(root, tallies, piece):
    d = _write(root, manifest=piece + MANIFEST.encode())
    tallies["cohort.json"].add("unicode_garbage", _open(d, ["cohort.json"])[0])


def test_manifest_oversized_and_deep(root, tallies):
    for m in ('{"format": "prodromal-cohort", "pad": "' + "x" * (2 * 1024 * 1024) + '"}', "[" * 100_000):
        d = _write(root, manifest=m)
        out, _ = _open(d, ["cohort.json"])
        assert out == "error"
        tallies["cohort.json"].add("oversized", out)


# ---- derived streams: CSV -------------------------------------------------------------------------


def _csv_rows(n=30):
    return [[str(T0 + 60 * i), str(60.0 + i % 7)] for i in range(n)]


def _csv(rows, header="time,hr_bpm"):
    return header + "\n" + "\n".join(",".join(r) for r in rows) + "\n"


def _with_csv(root, text: bytes | str):
    d = _write(root)
    (d / "data" / PID / "hr.csv").write_bytes(text if isinstance(text, bytes) else text.encode("utf-8"))
    return d, Cohort(d)


@FUZZ
@given(frac=st.floats(0, 1))
def test_stream_csv_truncated(root, tallies, frac):
    d, c = _with_csv(root, cut(_csv(_csv_rows()).encode(), frac))
    tallies["stream csv"].add("truncated", _stream(c, d))


@FUZZ
@given(i=st.integers(0, 29), col=st.sampled_from([0, 1]), bad=st.sampled_from(WRONG_TYPES) | garbage_text)
def test_stream_csv_wrong_type(root, tallies, i, col, bad):
    rows = _csv_rows()
    rows[i][col] = bad.replace(",", ";").replace('"', "'").replace("\n", " ").replace("\r", " ")
    d, c = _with_csv(root, _csv(rows))
    tallies["stream csv"].add("wrong_type" if bad in WRONG_TYPES else "unicode_garbage", _stream(c, d))


@FUZZ
@given(idx=st.sets(st.integers(0, 29), min_size=1, max_size=5), col=st.sampled_from([0, 1]), bad=st.sampled_from(NAN_INF))
def test_stream_csv_nan_inf(root, tallies, idx, col, bad):
    rows = _csv_rows()
    for i in idx:
        rows[i][col] = bad
    d, c = _with_csv(root, _csv(rows))
    out = _stream(c, d)
    assert out == "dropped"
    tallies["stream csv"].add("nan_inf", out)


@FUZZ
@given(i=st.integers(0, 29), when=st.sampled_from(NEGATIVE_TIMES + FUTURE_TIMES + ["-1", "-1e12", "5e9", "1e300", "0001-01-01T00:00:00+01:00"]))
def test_stream_csv_bad_times(root, tallies, i, when):
    rows = _csv_rows()
    rows[i][0] = when.replace(" ", "T")
    d, c = _with_csv(root, _csv(rows))
    out = _stream(c, d)
    assert out == "dropped" or (out == "error" and when.startswith("12000"))  # year 12000 is not ISO-8601
    future = when in FUTURE_TIMES or when in ("5e9", "1e300")
    tallies["stream csv"].add("future_time" if future else "negative_time", out)


@FUZZ
@given(pos=st.floats(0, 1), piece=garbage_bytes)
def test_stream_csv_garbage_bytes(root, tallies, pos, piece):
    data = _csv(_csv_rows()).encode()
    i = int(len(data) * pos)
    d, c = _with_csv(root, data[:i] + piece + data[i:])
    tallies["stream csv"].add("unicode_garbage", _stream(c, d))


def test_stream_csv_oversized(root, tallies, monkeypatch):
    rows = _csv_rows()
    rows[3][1] = "6" * 200_000
    d, c = _with_csv(root, _csv(rows))
    tallies["stream csv"].add("oversized", _stream(c, d))
    d, c = _with_csv(root, _csv(_csv_rows()))
    monkeypatch.setattr(cohort_mod, "MAX_FILE_BYTES", 100)
    out = _stream(c, d)
    assert out == "error"
    tallies["stream csv"].add("oversized", out)


# ---- derived streams: npz -------------------------------------------------------------------------


def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _with_npz(root, data: bytes, name="hr.npz"):
    d = _write(root)
    (d / "data" / PID / name).write_bytes(data)
    return d, Cohort(d)


GOOD = {"time": T0 + 60.0 * np.arange(50), "hr_bpm": 60.0 + np.arange(50) % 9}


@FUZZ
@given(frac=st.floats(0, 1))
def test_stream_npz_truncated(root, tallies, frac):
    d, c = _with_npz(root, cut(_npz(**GOOD), frac))
    tallies["stream npz"].add("truncated", _stream(c, d))


@FUZZ
@given(pos=st.integers(0, 10_000), flip=st.integers(1, 255))
def test_stream_npz_bitflip(root, tallies, pos, flip):
    b = bytearray(_npz(**GOOD))
    b[pos % len(b)] ^= flip
    d, c = _with_npz(root, bytes(b))
    tallies["stream npz"].add("unicode_garbage", _stream(c, d))


WRONG_ARRAYS = [
    {"time": np.array(["a", "b"]), "hr_bpm": np.array([60.0, 61.0])},
    {"time": GOOD["time"], "hr_bpm": np.array(["x"] * 50)},
    {"time": GOOD["time"][:10], "hr_bpm": GOOD["hr_bpm"]},
    {"time": GOOD["time"]},
    {"hr_bpm": GOOD["hr_bpm"]},
    {"t0": np.array([T0, T0]), "period_s": np.float64(60), "hr_bpm": GOOD["hr_bpm"]},
    {"t0": np.float64(T0), "period_s": np.array([60.0, 1.0]), "hr_bpm": GOOD["hr_bpm"]},
    {"t0": np.float64(T0), "period_s": np.float64(-60), "hr_bpm": GOOD["hr_bpm"]},
    {"t0": np.float64(T0), "period_s": np.float64(0), "hr_bpm": GOOD["hr_bpm"]},
    {"time": GOOD["time"].astype(np.complex128), "hr_bpm": GOOD["hr_bpm"]},
    {"time": np.array([[T0, T0 + 60]]), "hr_bpm": np.array([[60.0, 61.0]])},
    {"time": np.array([], dtype=float), "hr_bpm": np.array([], dtype=float)},
    {"time": GOOD["time"].astype(bool), "hr_bpm": GOOD["hr_bpm"]},
]


@pytest.mark.parametrize("i", range(len(WRONG_ARRAYS)))
def test_stream_npz_wrong_type(root, tallies, i):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # complex -> real casts warn; the reader must still decide
        d, c = _with_npz(root, _npz(**WRONG_ARRAYS[i]))
        tallies["stream npz"].add("wrong_type", _stream(c, d))


def test_stream_npz_object_array_refused(root, tallies):
    buf = io.BytesIO()
    np.savez(buf, time=np.array([T0, None], dtype=object), hr_bpm=np.array([60.0, 61.0]))
    d, c = _with_npz(root, buf.getvalue())
    out = _stream(c, d)
    assert out == "error"  # never unpickled
    tallies["stream npz"].add("wrong_type", out)


@FUZZ
@given(idx=st.sets(st.integers(0, 49), min_size=1, max_size=10), field=st.sampled_from(["time", "hr_bpm"]),
       bad=st.sampled_from([np.nan, np.inf, -np.inf]))
def test_stream_npz_nan_inf(root, tallies, idx, field, bad):
    a = {k: v.copy() for k, v in GOOD.items()}
    a[field][list(idx)] = bad
    d, c = _with_npz(root, _npz(**a))
    out = _stream(c, d)
    assert out == "dropped"
    tallies["stream npz"].add("nan_inf", out)


@FUZZ
@given(idx=st.sets(st.integers(0, 49), min_size=1, max_size=10), bad=st.sampled_from([-1.0, -1e12, -9.2e18, TIME_MAX_S, 1e15, 1e300]),
       regular=st.booleans())
def test_stream_npz_bad_times(root, tallies, idx, bad, regular):
    if regular:  # a regular stream whose start is absurd: every sample goes
        a = {"t0": np.float64(bad), "period_s": np.float64(60.0), "hr_bpm": GOOD["hr_bpm"]}
    else:
        a = {k: v.copy() for k, v in GOOD.items()}
        a["time"][list(idx)] = bad
    d, c = _with_npz(root, _npz(**a))
    out = _stream(c, d)
    assert out == "dropped"
    tallies["stream npz"].add("negative_time" if bad < 0 else "future_time", out)


def test_stream_npz_oversized(root, tallies, monkeypatch):
    d, c = _with_npz(root, _npz(**GOOD))
    monkeypatch.setattr(cohort_mod, "MAX_FILE_BYTES", 1000)
    out = _stream(c, d)
    assert out == "error"
    tallies["stream npz"].add("oversized", out)
    # a compressed member that inflates past the limit (zip bomb) is refused before reading
    buf = io.BytesIO()
    np.savez_compressed(buf, time=np.zeros(100_000), hr_bpm=np.zeros(100_000))
    assert len(buf.getvalue()) < 1000 * 10
    monkeypatch.setattr(cohort_mod, "MAX_FILE_BYTES", 50_000)
    d, c = _with_npz(root, buf.getvalue())
    out = _stream(c, d)
    assert out == "error"
    tallies["stream npz"].add("oversized", out)


# ---- waveforms ------------------------------------------------------------------------------------


WAVE = {"fs": np.float64(32.0), "seg_t0": np.array([T0, T0 + 3600]), "seg_len": np.array([64, 32]),
        "ppg": np.sin(np.arange(96) / 5.0)[None, :]}


def _wave(c, d):
    f = d / "data" / PID / "ppg.npz"
    try:
        w = c.read_waveform(PID, "ppg")
    except CohortError as e:
        return check_error(e, [f.name])
    assert sum(s.shape[1] for _, s in w.segments()) == w.values.shape[1]
    assert np.all(np.isfinite(w.seg_t0))
    return "accepted"


@FUZZ
@given(frac=st.floats(0, 1))
def test_waveform_truncated(root, tallies, frac):
    d, c = _with_npz(root, cut(_npz(**WAVE), frac), "ppg.npz")
    tallies["waveform npz"].add("truncated", _wave(c, d))


@FUZZ
@given(pos=st.integers(0, 10_000), flip=st.integers(1, 255))
def test_waveform_bitflip(root, tallies, pos, flip):
    b = bytearray(_npz(**WAVE))
    b[pos % len(b)] ^= flip
    d, c = _with_npz(root, bytes(b), "ppg.npz")
    tallies["waveform npz"].add("unicode_garbage", _wave(c, d))


@pytest.mark.parametrize("change,kind", [
    ({"fs": np.float64(np.nan)}, "nan_inf"), ({"fs": np.float64(np.inf)}, "nan_inf"),
    ({"seg_t0": np.array([np.nan, T0])}, "nan_inf"), ({"seg_t0": np.array([-1e9, T0])}, "negative_time"),
    ({"seg_t0": np.array([T0, 1e13])}, "future_time"), ({"fs": np.array([32.0, 64.0])}, "wrong_type"),
    ({"fs": np.array("fast")}, "wrong_type"), ({"seg_len": np.array([64, -32])}, "wrong_type"),
    ({"seg_len": np.array([64, 33])}, "wrong_type"), ({"ppg": np.zeros((2, 2, 24))}, "wrong_type"),
    ({"seg_len": np.array([64.5, 31.5])}, "wrong_type"), ({"seg_t0": np.array([T0])}, "wrong_type"),
])
def test_waveform_bad_fields(root, tallies, change, kind):
    d, c = _with_npz(root, _npz(**{**WAVE, **change}), "ppg.npz")
    out = _wave(c, d)
    assert out == "error"
    tallies["waveform npz"].add(kind, out)


def test_waveform_oversized(root, tallies, monkeypatch):
    d, c = _with_npz(root, _npz(**WAVE), "ppg.npz")
    monkeypatch.setattr(cohort_mod, "MAX_FILE_BYTES", 500)
    out = _wave(c, d)
    assert out == "error"
    tallies["waveform npz"].add("oversized", out)
