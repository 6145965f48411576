"""EpochAccumulator: chunk invariance, duplicates, lateness, invalid values, IBI differences, advance/flush."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.epochs import EPOCH_COLUMNS, QUANTUM, EpochAccumulator, Epochs


def _cat(parts: list[Epochs]) -> Epochs:
    parts = [p for p in parts if len(p)]
    if not parts:
        return Epochs(np.zeros(0), np.zeros((0, len(EPOCH_COLUMNS))))
    return Epochs(np.concatenate([p.minute for p in parts]), np.vstack([p.data for p in parts]))


def _same(a: Epochs, b: Epochs) -> None:
    np.testing.assert_array_equal(a.minute, b.minute)
    # bit for bit, NaN (no steps sample) equal to NaN
    np.testing.assert_array_equal(a.data, b.data)


def _streams(seed: int, hours: float = 3.0) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Several kinds at different, irregular rates, with float values that do not sum exactly."""
    rng = np.random.default_rng(seed)
    end = hours * 3600
    hr_t = np.sort(rng.uniform(0, end, int(hours * 400)))
    st_t = np.arange(0, end, 60.0)
    beats = np.cumsum(rng.uniform(0.7, 1.1, int(hours * 3600)))
    beats = beats[beats < end]
    ibi = np.diff(np.concatenate(([0.0], beats))) * 1000.0
    tt = np.sort(rng.uniform(0, end, int(hours * 30)))
    return {
        "hr": (hr_t, rng.uniform(50, 90, hr_t.size)),
        "steps": (st_t, rng.integers(0, 100, st_t.size).astype(float)),
        "ibi": (beats, ibi),
        "temp": (tt, rng.uniform(33, 36, tt.size)),
        "resp": (tt, rng.uniform(12, 18, tt.size)),
    }


def _whole(streams, lateness=900.0) -> Epochs:
    acc = EpochAccumulator(lateness_s=lateness)
    return _cat([acc.update_many([(k, t, v) for k, (t, v) in streams.items()]), acc.flush()])


STREAMS0 = _streams(0)
END0 = 3 * 3600.0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.floats(min_value=1.0, max_value=END0 - 1.0), min_size=1, max_size=30))
def test_update_many_any_block_chunking_gives_identical_epochs(cuts):
    ref = _whole(STREAMS0)
    edges = np.unique(np.concatenate(([0.0], np.asarray(cuts), [END0 + 1])))
    acc = EpochAccumulator(lateness_s=900.0)
    parts = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        block = []
        for k, (t, v) in STREAMS0.items():
            i, j = np.searchsorted(t, [a, b])
            block.append((k, t[i:j], v[i:j]))
        parts.append(acc.update_many(block))
    parts.append(acc.flush())
    _same(_cat(parts), ref)
    assert acc.stats.late == 0 and acc.stats.duplicate == 0


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.floats(min_value=10.0, max_value=800.0), min_size=1, max_size=40), st.randoms(use_true_random=False))
def test_per_kind_updates_in_random_order_give_identical_epochs(steps, rnd):
    """Per-kind update() calls, kinds shuffled within each block (blocks shorter than the lateness)."""
    ref = _whole(STREAMS0)
    edges = np.concatenate(([0.0], np.cumsum(steps)))
    edges = np.unique(np.concatenate((edges[edges < END0], np.arange(edges[edges < END0][-1], END0 + 800, 800.0))))
    acc = EpochAccumulator(lateness_s=900.0)
    parts = []
    kinds = list(STREAMS0)
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        rnd.shuffle(kinds)
        for k in kinds:
            t, v = STREAMS0[k]
            i, j = np.searchsorted(t, [a, b])
            parts.append(acc.update(k, t[i:j], v[i:j]))
    parts.append(acc.flush())
    assert acc.stats.late == 0
    _same(_cat(parts), ref)


def test_epoch_sums_match_a_direct_per_minute_computation():
    ep = _whole(STREAMS0)
    t, v = STREAMS0["hr"]
    m = np.floor(t / 60).astype(int)
    for k in (0, 17, 100, 179):
        row = np.flatnonzero(ep.minute == k * 60.0)[0]
        assert ep.col("hr_n")[row] == (m == k).sum()
        # fixed-point sums: each sample quantised to QUANTUM
        assert ep.col("hr_sum")[row] == np.rint(v[m == k] / QUANTUM).sum()
        assert ep.mean("hr")[row] == pytest.approx(v[m == k].mean(), abs=QUANTUM)
    assert ep.minute.tolist() == [60.0 * i for i in range(ep.minute.size)]  # contiguous minutes


def test_redelivered_chunk_is_dropped_and_counted_as_duplicates():
    acc = EpochAccumulator(lateness_s=3600)
    t = np.arange(0, 600, 5.0)
    v = np.full(t.size, 70.0)
    acc.update("hr", t, v)
    acc.update("hr", t[40:80], v[40:80])  # at-least-once redelivery of part of the chunk
    assert acc.stats.duplicate == 40
    assert acc.stats.accepted == t.size
    ep = acc.flush()
    assert ep.col("hr_n").sum() == t.size
    assert ep.col("hr_sum").sum() * QUANTUM == pytest.approx(70.0 * t.size)


def test_duplicates_within_one_chunk_are_counted():
    acc = EpochAccumulator(lateness_s=3600)
    acc.update("hr", np.array([0.0, 5.0, 5.0, 10.0]), np.array([60.0, 61.0, 61.0, 62.0]))
    assert acc.stats.duplicate == 1 and acc.stats.accepted == 3


def test_same_time_in_another_kind_is_not_a_duplicate():
    acc = EpochAccumulator(lateness_s=3600)
    acc.update("hr", np.array([0.0]), np.array([60.0]))
    acc.update("resp", np.array([0.0]), np.array([15.0]))
    assert acc.stats.duplicate == 0 and acc.stats.accepted == 2


def test_late_samples_beyond_lateness_are_dropped_and_counted():
    acc = EpochAccumulator(lateness_s=120)
    t = np.arange(0, 1200, 60.0)
    closed = acc.update("hr", t, np.full(t.size, 60.0))
    # watermark 1140 -> minutes ending at or before 1020 are closed (17 minutes)
    assert closed.minute.tolist() == [60.0 * i for i in range(17)]
    assert acc.closed_until == 1020.0
    acc.update("hr", np.array([100.0, 1000.0]), np.array([99.0, 99.0]))
    assert acc.stats.late == 2
    rest = acc.flush()
    assert rest.mean("hr").tolist() == [60.0, 60.0, 60.0]  # minutes 17-19, the late 99s absent
    assert closed.mean("hr")[1] == 60.0  # the closed minute was not changed


def test_out_of_order_within_lateness_is_accepted():
    acc = EpochAccumulator(lateness_s=600)
    acc.update("hr", np.array([0.0, 30.0, 300.0]), np.array([60.0, 62.0, 70.0]))
    acc.update("hr", np.array([10.0, 250.0]), np.array([64.0, 80.0]))  # older than the watermark, within lateness
    assert acc.stats.late == 0 and acc.stats.accepted == 5
    ep = acc.flush()
    assert ep.col("hr_n")[0] == 3 and ep.mean("hr")[0] == pytest.approx(62.0)
    assert ep.mean("hr")[4] == 80.0 and ep.mean("hr")[5] == 70.0


def test_invalid_values_are_counted_and_dropped():
    acc = EpochAccumulator(lateness_s=600)
    t = np.arange(0, 360, 60.0)
    acc.update("hr", t, np.array([60.0, 300.0, np.nan, 10.0, 61.0, -5.0]))
    acc.update("steps", np.array([0.0, np.nan]), np.array([5.0, 3.0]))  # non-finite time
    assert acc.stats.invalid == 5 and acc.stats.accepted == 3
    ep = acc.flush()
    assert ep.col("hr_n").sum() == 2 and ep.col("hr_sum").sum() * QUANTUM == pytest.approx(121.0)


def test_unknown_kind_and_shape_mismatch_raise():
    acc = EpochAccumulator()
    with pytest.raises(ValueError, match="unknown stream kind 'bogus'.*valid: hr"):
        acc.update("bogus", np.zeros(1), np.zeros(1))
    with pytest.raises(ValueError, match="hr: time has 2 samples, values 1"):
        acc.update("hr", np.zeros(2), np.zeros(1))


def test_ibi_successive_differences_known_answer():
    # beats whose times are one interval apart: successive differences count
    ibi = np.array([800.0, 820.0, 790.0, 830.0, 800.0])
    t = 10.0 + np.cumsum(ibi) / 1000.0
    acc = EpochAccumulator(lateness_s=0)
    acc.update("ibi", t[:2], ibi[:2])
    acc.update("ibi", t[2:], ibi[2:])  # the difference across the chunk boundary counts too
    ep = acc.flush()
    d = np.diff(ibi)
    assert ep.col("ibi_nd").sum() == 4
    assert ep.col("ibi_ssd").sum() * QUANTUM**2 == pytest.approx((d**2).sum())
    assert ep.col("ibi_n").sum() == 5 and ep.col("ibi_sum").sum() * QUANTUM == pytest.approx(ibi.sum())
    assert ep.col("ibi_sq").sum() * QUANTUM**2 == pytest.approx((ibi**2).sum())


def test_ibi_difference_not_counted_across_a_gap():
    ibi = np.array([800.0, 820.0, 790.0, 830.0])
    t = np.cumsum(ibi) / 1000.0
    t[2:] += 30.0  # a 30 s hole (missed beats): no successive difference across it
    acc = EpochAccumulator(lateness_s=0)
    acc.update("ibi", t, ibi)
    ep = acc.flush()
    assert ep.col("ibi_nd").sum() == 2
    assert ep.col("ibi_ssd").sum() * QUANTUM**2 == pytest.approx(20.0**2 + 40.0**2)


def test_advance_closes_every_minute_up_to_until():
    acc = EpochAccumulator(lateness_s=900)
    t = np.arange(0, 3600, 60.0)
    first = acc.update("hr", t, np.full(t.size, 60.0))
    rest = acc.advance(86400.0)
    allm = _cat([first, rest])
    # every minute of the day closed, the idle ones empty
    assert allm.minute.tolist() == [60.0 * i for i in range(1440)]
    assert allm.col("hr_n")[:60].tolist() == [1.0] * 60
    assert allm.col("hr_n")[60:].sum() == 0
    assert np.isnan(allm.col("steps")).all()
    assert acc.closed_until == 86400.0
    # a sample for a closed minute is late now
    acc.update("hr", np.array([50000.0]), np.array([60.0]))
    assert acc.stats.late == 1


def test_advance_before_any_data_and_backwards_is_a_no_op():
    acc = EpochAccumulator()
    assert len(acc.advance(1e6)) == 0
    acc.update("hr", np.array([2e6]), np.array([60.0]))
    assert len(acc.advance(1e6)) == 0


def test_flush_closes_up_to_last_minute_with_data_only():
    acc = EpochAccumulator(lateness_s=900)
    acc.update("hr", np.array([0.0, 125.0]), np.array([60.0, 62.0]))
    ep = acc.flush()
    assert ep.minute.tolist() == [0.0, 60.0, 120.0]
    assert ep.col("hr_n").tolist() == [1.0, 0.0, 1.0]
    assert len(acc.flush()) == 0  # nothing left


def test_steps_column_nan_without_sample_and_sums_with_samples():
    acc = EpochAccumulator(lateness_s=0)
    first = acc.update_many([("steps", np.array([0.0, 30.0, 120.0]), np.array([3.0, 4.0, 0.0])),
                             ("hr", np.array([65.0]), np.array([60.0]))])
    ep = _cat([first, acc.flush()])
    s = ep.col("steps") * QUANTUM
    assert s[0] == 7.0 and np.isnan(s[1]) and s[2] == 0.0


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.floats(min_value=1.0, max_value=END0 - 1.0), st.floats(min_value=0.0, max_value=2400.0)),
                min_size=1, max_size=20))
def test_at_least_once_redelivery_gives_identical_epochs(chunks):
    """Each block also re-sends up to 40 minutes before it: within the lateness the repeats are
    duplicates, beyond it they are late; either way the epochs equal a clean delivery."""
    ref = _whole(STREAMS0)
    cuts = sorted(c for c, _ in chunks)
    back = [b for _, b in sorted(chunks)]
    edges = np.concatenate(([0.0], cuts, [END0 + 1]))
    acc = EpochAccumulator(lateness_s=900.0)
    parts = []
    for n, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        a2 = max(0.0, a - (back[n - 1] if n else 0.0))
        blk = []
        for k, (t, v) in STREAMS0.items():
            i, j = np.searchsorted(t, [a2, b])
            blk.append((k, t[i:j], v[i:j]))
        parts.append(acc.update_many(blk))
    parts.append(acc.flush())
    _same(_cat(parts), ref)
    total = sum(t.size for t, _ in STREAMS0.values())
    assert acc.stats.accepted == total


def test_a_later_listed_kind_that_starts_earlier_is_not_late():
    """update_many must not anchor on the first item: steps starting before the HR are kept."""
    t_hr = np.arange(3600.0, 7200.0, 60.0)
    t_st = np.arange(0.0, 7200.0, 60.0)
    a = EpochAccumulator()
    e1 = a.update_many([("hr", t_hr, np.full(t_hr.size, 60.0)), ("steps", t_st, np.ones(t_st.size))])
    e1 = _cat([e1, a.flush()])
    b = EpochAccumulator()
    e2 = b.update_many([("steps", t_st, np.ones(t_st.size)), ("hr", t_hr, np.full(t_hr.size, 60.0))])
    e2 = _cat([e2, b.flush()])
    assert a.stats.late == 0 and b.stats.late == 0
    _same(e1, e2)
    assert e1.minute[0] == 0.0
