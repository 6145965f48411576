"""Streaming operator: any chunking gives the same output; gaps, redelivery, mismatched ACC, bad input."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.epochs import EpochAccumulator
from detectors.ppg import estimate_hr_detailed
from detectors.ppg.stream import RawStreamOperator
from detectors.records import STREAMS
from streams.synth_raw import simulate_raw

T0 = 1.7e9
FS = 32.0


@pytest.fixture(scope="module")
def sim():
    # rest then a bout of arm motion: every output kind appears
    s = simulate_raw(seed=8, duration_s=330, fs=FS, hr_bpm=62.0, rmssd_ms=35.0, noise_level=0.03)
    m = simulate_raw(seed=9, duration_s=330, fs=FS, hr_bpm=62.0, motion_level=0.6, cadence_hz=1.8, noise_level=0.03)
    cut = int(200 * FS)
    s.acc[:, cut:] = m.acc[:, cut:]
    s.ppg[:, cut:] += m.ppg[:, cut:] - m.ppg[:, cut:].mean(axis=1, keepdims=True)
    return s


def _run(sim, sizes, acc_first=False, op=None):
    op = op or RawStreamOperator()
    out = []
    n = sim.ppg.shape[1]
    pos = 0
    for c in sizes:
        if pos >= n:
            break
        c = min(c, n - pos)
        t = T0 + pos / FS
        pair = [("ppg", sim.ppg[:, pos : pos + c]), ("acc", sim.acc[:, pos : pos + c])]
        for kind, v in (pair[::-1] if acc_first else pair):
            out += op.update(kind, t, FS, v)
        pos += c
    out += op.flush()
    return _collect(out), op


def _collect(out):
    res: dict[str, tuple[list, list]] = {}
    for kind, t, v in out:
        assert kind in STREAMS
        assert t.shape == v.shape and t.ndim == 1
        res.setdefault(kind, ([], []))
        res[kind][0].append(t)
        res[kind][1].append(v)
    return {k: (np.concatenate(a), np.concatenate(b)) for k, (a, b) in res.items()}


def _same(a, b):
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k][0], b[k][0], err_msg=k)
        np.testing.assert_array_equal(a[k][1], b[k][1], err_msg=k)


@pytest.fixture(scope="module")
def reference(sim):
    return _run(sim, [int(FS)] * 400)[0]  # one-second chunks


def test_every_kind_is_produced_and_plausible(reference):
    assert set(reference) == {"hr", "ibi", "resp", "enmo", "steps"}
    for k, (t, v) in reference.items():
        assert np.all(np.diff(t) > 0), k
        spec = STREAMS[k]
        assert np.all((v >= spec.lo) & (v <= spec.hi)), k
    hr = reference["hr"][1]
    assert abs(np.median(hr) - 62.0) < 2.0
    assert reference["steps"][1][reference["steps"][0] > T0 + 210].sum() > 50
    # beat intervals and respiration only while the arm is still (motion from 200 s)
    assert reference["ibi"][0].max() < T0 + 202
    assert reference["resp"][0].max() < T0 + 200
    assert reference["ibi"][0].size > 150


def test_stream_equals_batch_online(sim, reference):
    b = estimate_hr_detailed(sim.ppg, sim.acc, FS, method="online")
    t, v = reference["hr"]
    k = np.round((t - T0 - 4.0) / 2.0).astype(int)
    np.testing.assert_array_equal(v, b.hr_bpm[k])


@pytest.mark.parametrize("seed", range(4))
def test_random_chunkings_give_identical_output(sim, reference, seed):
    rng = np.random.default_rng(seed)
    sizes = rng.integers(1, int(40 * FS), size=2000).tolist()
    _same(_run(sim, sizes, acc_first=bool(seed % 2))[0], reference)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(st.lists(st.integers(min_value=1, max_value=int(30 * FS)), min_size=1, max_size=60))
def test_chunking_invariance_hypothesis(sim, reference, sizes):
    sizes = sizes + [int(30 * FS)] * 400  # cover the recording whatever was drawn
    _same(_run(sim, sizes)[0], reference)


def test_redelivered_chunks_are_dropped(sim, reference):
    op = RawStreamOperator()
    out = []
    n = sim.ppg.shape[1]
    c = int(10 * FS)
    for pos in range(0, n, c):
        for _ in range(2):  # at-least-once: every chunk twice
            for kind, w in (("ppg", sim.ppg), ("acc", sim.acc)):
                out += op.update(kind, T0 + pos / FS, FS, w[:, pos : pos + c])
    out += op.flush()
    _same(_collect(out), reference)
    assert op.stats.dropped_overlap == 2 * n


def test_gap_restarts_segment_and_feeds_epochs(sim):
    n = sim.ppg.shape[1]
    half = n // 2
    op = RawStreamOperator()
    out = []
    for lo, hi, t0 in ((0, half, T0), (half, n, T0 + half / FS + 600.0)):  # 10 min gap
        for pos in range(lo, hi, int(5 * FS)):
            e = min(pos + int(5 * FS), hi)
            t = t0 + (pos - lo) / FS
            out += op.update("ppg", t, FS, sim.ppg[:, pos:e])
            out += op.update("acc", t, FS, sim.acc[:, pos:e])
    out += op.flush()
    res = _collect(out)
    assert op.stats.segments == {"ppg": 2, "acc": 2}
    t = res["hr"][0]
    seg1_end, seg2_start = T0 + half / FS, T0 + half / FS + 600.0
    assert not np.any((t > seg1_end) & (t < seg2_start))
    assert np.any(t > seg2_start)
    acc = EpochAccumulator()  # default lateness (120 s) covers the operator latency (< 70 s + chunk)
    for kind, tt, vv in out:
        acc.update(kind, tt, vv)
    ep = acc.flush()
    assert ep.col("hr_n").sum() > 0 and ep.col("enmo_n").sum() > 0 and ep.col("ibi_n").sum() > 0


def test_acc_at_another_rate_is_not_used_for_hr_but_for_activity(sim):
    op = RawStreamOperator()
    out = []
    acc2 = np.repeat(sim.acc, 2, axis=1)  # 64 Hz
    for pos in range(0, sim.ppg.shape[1], int(10 * FS)):
        out += op.update("ppg", T0 + pos / FS, FS, sim.ppg[:, pos : pos + int(10 * FS)])
        out += op.update("acc", T0 + pos / FS, 2 * FS, acc2[:, 2 * pos : 2 * pos + int(20 * FS)])
    out += op.flush()
    res = _collect(out)
    assert op.stats.hr_no_acc == op.stats.hr_windows > 0
    assert "enmo" in res and "hr" in res


def test_ppg_only_participant_gets_hr_after_the_wait(sim):
    op = RawStreamOperator(acc_wait_s=20.0)
    out = []
    for pos in range(0, int(120 * FS), int(10 * FS)):
        out += op.update("ppg", T0 + pos / FS, FS, sim.ppg[:, pos : pos + int(10 * FS)])
    res = _collect(out)
    assert res["hr"][0].size > 0
    assert res["hr"][0].max() < T0 + 120 - 20


def test_bad_chunks_raise_clear_errors_or_are_gated():
    op = RawStreamOperator()
    with pytest.raises(ValueError, match="unknown waveform kind 'ecg'"):
        op.update("ecg", T0, FS, np.zeros((1, 10)))
    with pytest.raises(ValueError, match=r"acc: expected \(3, n\)"):
        op.update("acc", T0, FS, np.zeros((2, 10)))
    with pytest.raises(ValueError, match="fs"):
        op.update("ppg", T0, 2.0, np.zeros((1, 10)))
    with pytest.raises(ValueError, match="t0"):
        op.update("ppg", float("nan"), FS, np.zeros((1, 10)))
    # NaN runs and a flat line: no crash, no HR from them
    x = np.full((1, int(200 * FS)), np.nan)
    x[0, int(100 * FS) :] = 7.0
    out = op.update("ppg", T0, FS, x) + op.update("acc", T0, FS, np.zeros((3, x.shape[1]))) + op.flush()
    res = _collect(out) if out else {}
    assert "hr" not in res and "ibi" not in res
    assert np.all(res["enmo"][1] == 0.0)


def test_replay_pattern_whole_acc_segment_then_whole_ppg(sim, reference):
    """The replay driver sends a whole ACC segment, then the whole PPG segment."""
    from detectors.ppg.stream import RawOperator

    op = RawOperator()
    out = op.update("acc", T0, FS, sim.acc) + op.update("ppg", T0, FS, sim.ppg) + op.flush()
    _same(_collect(out), reference)
    assert op.stats.hr_no_acc == 0
