"""Bad-input fuzzing of the Stanford/Fitbit reader (plain CSV and zip) and of import_stanford.

Every mutated file either raises :class:`CohortError` naming file and line or
field, or is read with the bad values dropped and counted (by the same
``_clean`` step :func:`import_stanford` applies). See tests/_badinput.py.
"""

from __future__ import annotations

import datetime as dt
import io
import zipfile

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

from streams.cohort import CohortError, _clean
from streams.importers import stanford
from streams.importers.stanford import import_stanford, read_fitbit_csv

PID = "ABC1234"
FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])


@pytest.fixture(scope="module")
def tally():
    t = Tally("stanford fitbit csv/zip")
    yield t
    t.save()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_stanford")


def _rows(n: int = 40) -> list[list[str]]:
    t0 = dt.datetime(2020, 3, 1, 22, 0)
    return [[PID, str(t0 + dt.timedelta(minutes=i)), str(60 + i % 9)] for i in range(n)]


def _text(rows, header=("user", "datetime", "heartrate")) -> str:
    return "\n".join([",".join(header), *(",".join(r) for r in rows)]) + "\n"


def _read(path, kind="hr"):
    """The importer's read path: read_fitbit_csv then _clean. Returns the outcome."""
    try:
        t, v = read_fitbit_csv(path, PID, kind)
        sd = _clean(kind, t, v, f"{path}: participant {PID}")
    except CohortError as e:
        return check_error(e, [path.name])
    assert np.all(np.isfinite(sd.time)) and np.all(np.isfinite(sd.values))
    assert np.all(np.diff(sd.time) > 0), "times sorted and unique after cleaning"
    assert len(sd) + sd.dropped + sd.duplicates == len(t)
    return "dropped" if sd.dropped or sd.duplicates else "accepted"


def _zip(name: str, text: bytes) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as z:
        z.writestr(name, text)
    return buf.getvalue()


@FUZZ
@given(frac=st.floats(0, 1), zipped=st.booleans())
def test_truncated(folder, tally, frac, zipped):
    data = _text(_rows()).encode()
    if zipped:
        f = folder / f"{PID}_hr.csv.zip"
        f.write_bytes(cut(_zip(f"{PID}_hr.csv", data), frac))
    else:
        f = folder / f"{PID}_hr.csv"
        f.write_bytes(cut(data, frac))
    tally.add("truncated", _read(f))


@FUZZ
@given(i=st.integers(0, 39), col=st.sampled_from([1, 2]), bad=st.sampled_from(WRONG_TYPES) | garbage_text.filter(lambda s: "\n" not in s and "\r" not in s))
def test_wrong_type(folder, tally, i, col, bad):
    rows = _rows()
    rows[i][col] = bad.replace(",", ";").replace('"', "'")
    f = folder / f"{PID}_hr.csv"
    f.write_text(_text(rows))
    out = _read(f)
    tally.add("wrong_type", out)


@FUZZ
@given(idx=st.sets(st.integers(0, 39), min_size=1, max_size=10), bad=st.sampled_from(NAN_INF))
def test_nan_inf_values_dropped(folder, tally, idx, bad):
    rows = _rows()
    for i in idx:
        rows[i][2] = bad
    f = folder / f"{PID}_hr.csv"
    f.write_text(_text(rows))
    out = _read(f)
    assert out == "dropped"
    tally.add("nan_inf", out)


@FUZZ
@given(i=st.integers(0, 39), when=st.sampled_from(NEGATIVE_TIMES + ["NaT"]))
def test_negative_time_dropped(folder, tally, i, when):
    rows = _rows()
    rows[i][1] = when
    f = folder / f"{PID}_hr.csv"
    f.write_text(_text(rows))
    out = _read(f)
    tally.add("negative_time", out)
    if out != "error":  # NaT and dates before 1970 are read, then dropped
        assert out == "dropped"


@FUZZ
@given(i=st.integers(0, 39), when=st.sampled_from(FUTURE_TIMES))
def test_future_time_dropped(folder, tally, i, when):
    rows = _rows()
    rows[i][1] = when
    f = folder / f"{PID}_hr.csv"
    f.write_text(_text(rows))
    out = _read(f)
    tally.add("future_time", out)
    if out != "error":
        assert out == "dropped"


@FUZZ
@given(pos=st.floats(0, 1), piece=garbage_text | garbage_bytes, zipped=st.booleans())
def test_unicode_garbage(folder, tally, pos, piece, zipped):
    data = _text(_rows()).encode()
    raw = piece if isinstance(piece, bytes) else piece.encode("utf-8")
    i = int(len(data) * pos)
    data = data[:i] + raw + data[i:]
    if zipped:
        f = folder / f"{PID}_hr.csv.zip"
        f.write_bytes(_zip(f"{PID}_hr.csv", data))
    else:
        f = folder / f"{PID}_hr.csv"
        f.write_bytes(data)
    tally.add("unicode_garbage", _read(f))


@FUZZ
@given(pos=st.integers(30, 2000), flip=st.integers(1, 255))
def test_corrupt_zip_member(folder, tally, pos, flip):
    """A bit flip inside the compressed member (CRC or inflate error while reading)."""
    z = bytearray(_zip(f"{PID}_hr.csv", _text(_rows(200)).encode()))
    pos = pos % len(z)
    z[pos] ^= flip
    f = folder / f"{PID}_hr.csv.zip"
    f.write_bytes(bytes(z))
    tally.add("truncated", _read(f))


def test_oversized_file_and_field(folder, tally, monkeypatch):
    f = folder / f"{PID}_hr.csv"
    f.write_text(_text(_rows()))
    monkeypatch.setattr(stanford, "MAX_FILE_BYTES", 100)
    with pytest.raises(CohortError, match="larger than") as e:
        read_fitbit_csv(f, PID, "hr")
    tally.add("oversized", check_error(e.value, [f.name]))
    zf = folder / f"{PID}_hr.csv.zip"
    zf.write_bytes(_zip(f"{PID}_hr.csv", ("0" * 5000).encode()))  # compresses well: the member is what is big
    monkeypatch.setattr(stanford, "MAX_FILE_BYTES", 1000)
    with pytest.raises(CohortError, match="larger than") as e:
        read_fitbit_csv(zf, PID, "hr")
    tally.add("oversized", check_error(e.value, [zf.name]))
    monkeypatch.undo()
    rows = _rows()
    rows[5][2] = "9" * 200_000  # a field past the csv module's limit
    f.write_text(_text(rows))
    tally.add("oversized", _read(f))
    rows[5][2] = "9" * 5000  # a long but parseable number: inf, dropped
    f.write_text(_text(rows))
    tally.add("oversized", _read(f))


def test_import_stanford_bad_files_and_labels(folder, tally):
    src = folder / "src"
    src.mkdir(exist_ok=True)
    (src / f"{PID}_hr.csv").write_text(_text(_rows()))
    (src / f"{PID}_steps.csv").write_text(_text(_rows(), header=("user", "datetime", "steps")))
    for bad, kind in [("2020-13-45", "wrong_type"), ("\udcff".encode("utf-8", "surrogateescape").decode("latin-1"), "unicode_garbage")]:
        (src / "onset_labels_aligned_to_these_files.csv").write_text(
            f"participant_id,symptom_onset_date,diagnosis_date\n{PID},{bad},\n", encoding="utf-8")
        with pytest.raises(CohortError) as e:
            import_stanford(src, folder / "out")
        tally.add(kind, check_error(e.value, ["onset_labels_aligned_to_these_files.csv"]))
    (src / "onset_labels_aligned_to_these_files.csv").write_bytes(b"participant_id,symptom_onset_date\n\xff\xfe,2020-01-01\n")
    with pytest.raises(CohortError) as e:
        import_stanford(src, folder / "out")
    tally.add("unicode_garbage", check_error(e.value, ["onset_labels_aligned_to_these_files.csv"]))
