"""Bad-input fuzzing of the SP Cup 2015 .mat reader (load_recording, import_spcup).

A damaged, wrongly typed, non-finite or oversized file raises CohortError
naming the file (and field); see tests/_badinput.py. MATLAB files carry no
clock, so negative/future times do not apply to them.
"""

from __future__ import annotations

import io
import warnings

import numpy as np
import pytest
from _badinput import FUZZ_EXAMPLES, Tally, check_error, cut, garbage_bytes
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from streams.cohort import CohortError
from streams.importers import spcup
from streams.importers.spcup import import_spcup, load_recording

FUZZ = settings(max_examples=FUZZ_EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
N = 1200  # just over one 8 s window at 125 Hz


def _mat(**variables) -> bytes:
    from scipy.io import savemat

    buf = io.BytesIO()
    savemat(buf, variables)
    return buf.getvalue()


def _sig(rows=6, n=N):
    r = np.random.default_rng(0)
    return r.normal(0, 1, (rows, n))


GOOD = _mat(sig=_sig())
GOOD_REF = _mat(BPM0=np.full((((N - 1000) // 250) + 1, 1), 80.0))


@pytest.fixture(scope="module")
def tally():
    t = Tally("spcup mat")
    yield t
    t.save()


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz_spcup")


def _load(root, rec: bytes, ref: bytes | None = GOOD_REF):
    f = root / "DATA_01_TYPE01.mat"
    f.write_bytes(rec)
    rf = root / "DATA_01_TYPE01_BPMtrace.mat"
    if ref is None:
        rf.unlink(missing_ok=True)
    else:
        rf.write_bytes(ref)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # scipy warns on odd headers; the outcome is what counts
            ppg, acc, r = load_recording(f)
    except CohortError as e:
        return check_error(e, [f.name, rf.name])
    assert ppg.shape[0] == 2 and acc.shape[0] == 3 and np.all(np.isfinite(ppg)) and np.all(np.isfinite(acc))
    assert r is None or np.all(np.isfinite(r))
    return "accepted"


@FUZZ
@given(frac=st.floats(0, 0.999), which=st.sampled_from(["rec", "ref"]))
def test_truncated(root, tally, frac, which):
    out = _load(root, cut(GOOD, frac), GOOD_REF) if which == "rec" else _load(root, GOOD, cut(GOOD_REF, frac))
    tally.add("truncated", out)


@FUZZ
@given(pos=st.integers(0, 100_000), flip=st.integers(1, 255))
def test_bitflip(root, tally, pos, flip):
    b = bytearray(GOOD)
    b[pos % len(b)] ^= flip
    tally.add("unicode_garbage", _load(root, bytes(b)))


@FUZZ
@given(pos=st.floats(0, 1), piece=garbage_bytes)
def test_garbage_inserted(root, tally, pos, piece):
    i = int(len(GOOD) * pos)
    tally.add("unicode_garbage", _load(root, GOOD[:i] + piece + GOOD[i:]))


WRONG = [
    {"sig": "not a signal"},
    {"sig": np.array([["a", "b"]])},
    {"sig": _sig(4)},
    {"sig": _sig(6, 100)},
    {"sig": _sig(6)[None]},
    {"sig": _sig(6).astype(np.complex128) * 1j},
    {"sig": np.empty((6, 0))},
    {"sig": {"a": 1}},
    {"sig": np.array([_sig(6), "x"], dtype=object)},
    {"other": _sig(6)},
]


@pytest.mark.parametrize("i", range(len(WRONG)))
def test_wrong_type(root, tally, i):
    out = _load(root, _mat(**WRONG[i]))
    assert out == "error"
    tally.add("wrong_type", out)


@pytest.mark.parametrize("ref", [{"BPM0": "x"}, {"BPM1": np.ones(3)}, {"BPM0": np.ones(3) * 1j}])
def test_wrong_type_reference(root, tally, ref):
    out = _load(root, GOOD, _mat(**ref))
    assert out == "error"
    tally.add("wrong_type", out)


@FUZZ
@given(row=st.integers(0, 5), col=st.integers(0, N - 1), bad=st.sampled_from([np.nan, np.inf, -np.inf]), in_ref=st.booleans())
def test_nan_inf_refused(root, tally, row, col, bad, in_ref):
    if in_ref:
        ref = np.full(((N - 1000) // 250) + 1, 80.0)
        ref[col % ref.size] = bad
        out = _load(root, GOOD, _mat(BPM0=ref))
    else:
        s = _sig()
        s[row, col] = bad
        out = _load(root, _mat(sig=s))
    assert out == "error"
    tally.add("nan_inf", out)


def test_oversized(root, tally, monkeypatch):
    monkeypatch.setattr(spcup, "MAX_FILE_BYTES", 1000)
    out = _load(root, GOOD)
    assert out == "error"
    tally.add("oversized", out)


def test_import_spcup_refuses_before_writing(root, tally, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "DATA_01_TYPE01.mat").write_bytes(GOOD)
    (src / "DATA_02_TYPE01.mat").write_bytes(cut(GOOD, 0.5))
    with pytest.raises(CohortError) as e:
        import_spcup(src, tmp_path / "out")
    tally.add("truncated", check_error(e.value, ["DATA_02_TYPE01.mat"]))
    assert not (tmp_path / "out").exists()  # validated everything before writing anything


def test_every_tag_bit_flip_is_refused_or_read(root, tally):
    """Each single-bit flip in the element tags of an uncompressed file (where scipy's reader faulted
    the process with SIGBUS before streams.importers.mat_guard) is refused with CohortError or read."""
    from scipy.io import savemat

    buf = io.BytesIO()
    savemat(buf, {"sig": _sig()}, do_compression=False)
    good = buf.getvalue()
    outcomes = []
    for pos in range(128, 192):
        for bit in range(8):
            b = bytearray(good)
            b[pos] ^= 1 << bit
            outcomes.append(_load(root, bytes(b)))
    for o in outcomes:
        tally.add("unicode_garbage", o)
    assert outcomes.count("error") > len(outcomes) // 2
