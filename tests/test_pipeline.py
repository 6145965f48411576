"""FeaturePipeline: chunking invariance, causality, warm-up, guard, rebaseline, lags, pickling, advance."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.pipeline import BASE_FEATURES, MODEL_FEATURES, FeaturePipeline, PipelineParams

DAY = 86400
I_NS = BASE_FEATURES.index("rhr_ns_bpm")


def assert_rows_equal(a, b) -> None:
    assert len(a) == len(b)
    for ra, rb in zip(a, b, strict=True):
        assert (ra.participant_id, ra.day, ra.day_start, ra.guarded) == (rb.participant_id, rb.day, rb.day_start, rb.guarded)
        assert ra.values.keys() == rb.values.keys()
        np.testing.assert_array_equal(np.array(list(ra.values.values())), np.array([rb.values[k] for k in ra.values]))
        for f in ("base", "spread", "dev", "z", "rest_hourly", "x"):
            np.testing.assert_array_equal(getattr(ra, f), getattr(rb, f), err_msg=f"day {ra.day} field {f}")


def _rich_streams(gen, days=12, seed=3):
    """Minute HR + steps, night beats (IBI) and a skin-temperature stream."""
    s = gen.minute_streams(days, seed=seed, elevation={8: 6.0, 9: 6.0})
    rng = np.random.default_rng(seed)
    bts, ibis = [], []
    for d in range(days):
        t0 = (gen.START_DAY + d) * DAY + 3600.0
        ibi = rng.normal(900, 40, 3000).clip(600, 1300)
        bts.append(t0 + np.cumsum(ibi) / 1000.0)
        ibis.append(ibi)
    s["ibi"] = (np.concatenate(bts), np.concatenate(ibis))
    tt = gen.START_DAY * DAY + np.arange(0, days * DAY, 300.0) + 17.0
    s["temp"] = (tt, 34.0 + rng.normal(0, 0.2, tt.size))
    return s


def _run_blocks(blocks, pid="P", params=None):
    fp = FeaturePipeline(pid, params=params or PipelineParams())
    rows = []
    for blk in blocks:
        rows += fp.update_many(blk)
    return rows + fp.flush()


@pytest.fixture(scope="module")
def rich(gen):
    s = _rich_streams(gen)
    edges = gen.START_DAY * DAY + np.arange(0, 13) * float(DAY)
    ref = _run_blocks(gen.blocks_of(s, edges))
    return s, ref


def test_reference_has_every_day_and_real_values(rich, gen):
    s, ref = rich
    assert [r.day for r in ref] == list(range(gen.START_DAY, gen.START_DAY + 12))
    assert all(np.isfinite(r.values["hrv_rmssd_ms"]) and np.isfinite(r.values["temp_c"]) for r in ref[1:])
    assert ref[8].values["rhr_ns_bpm"] > ref[7].values["rhr_ns_bpm"] + 4


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(st.lists(st.floats(min_value=30.0, max_value=3 * DAY), min_size=1, max_size=60))
def test_random_block_sizes_give_identical_rows(rich, gen, sizes):
    s, ref = rich
    t0 = gen.START_DAY * DAY
    edges = t0 + np.concatenate(([0.0], np.cumsum(sizes)))
    edges = np.concatenate((edges[edges < t0 + 12 * DAY], [t0 + 12 * DAY + 1]))
    assert_rows_equal(_run_blocks(gen.blocks_of(s, edges)), ref)


@pytest.mark.parametrize("via", ["update", "update_many"])
def test_per_kind_interleaved_updates_give_identical_rows(rich, gen, via):
    """One kind per call, kinds in a rotating order, chunks shorter than the lateness."""
    s, ref = rich
    rng = np.random.default_rng(11)
    t0 = gen.START_DAY * DAY
    sizes = rng.uniform(60.0, 850.0, int(12 * DAY / 400))
    edges = t0 + np.concatenate(([0.0], np.cumsum(sizes)))
    edges = np.concatenate((edges[edges < t0 + 12 * DAY], [t0 + 12 * DAY + 1]))
    fp = FeaturePipeline("P")
    rows = []
    kinds = list(s)
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:], strict=True)):
        for k in kinds[i % len(kinds):] + kinds[: i % len(kinds)]:
            t, v = s[k]
            lo, hi = np.searchsorted(t, [a, b])
            if hi > lo:
                rows += fp.update(k, t[lo:hi], v[lo:hi]) if via == "update" else fp.update_many([(k, t[lo:hi], v[lo:hi])])
    rows += fp.flush()
    assert fp.epochs.stats.late == 0
    assert_rows_equal(rows, ref)


@pytest.mark.parametrize("cut_day", [3, 9, 20])
def test_rows_of_a_day_do_not_change_when_later_days_are_appended(gen, cut_day):
    s = gen.minute_streams(30, seed=5, elevation={k: 7.0 for k in range(21, 26)})
    t0 = gen.START_DAY * DAY
    short = {k: (t[t < t0 + cut_day * DAY], v[t < t0 + cut_day * DAY]) for k, (t, v) in s.items()}
    edges = t0 + np.arange(0, 31) * float(DAY)
    full = _run_blocks(gen.blocks_of(s, edges))
    part = _run_blocks(gen.blocks_of(short, edges))
    assert len(part) == cut_day
    assert_rows_equal(part, full[:cut_day])


def test_warm_up_gives_nan_z_until_min_days(gen):
    s = gen.minute_streams(10, seed=1)
    rows = _run_blocks([[(k, t, v) for k, (t, v) in s.items()]], params=PipelineParams(baseline_min_days=7))
    for r in rows[:7]:
        assert np.isnan(r.z).all() and np.isnan(r.base).all()
    assert np.isfinite(rows[7].z[I_NS]) and np.isfinite(rows[7].base[I_NS])


def test_model_vector_lags_and_mean(gen):
    s = gen.minute_streams(14, seed=2)
    rows = _run_blocks([[(k, t, v) for k, (t, v) in s.items()]])
    assert all(r.x.shape == (len(MODEL_FEATURES),) for r in rows)
    names = list(MODEL_FEATURES)
    for i in range(9, 14):
        r = rows[i]
        for j, f in enumerate(BASE_FEATURES):
            x = dict(zip(names, r.x, strict=True))
            np.testing.assert_equal(x[f"{f}_z"], r.z[j])
            np.testing.assert_equal(x[f"{f}_z_lag1"], rows[i - 1].z[j])
            np.testing.assert_equal(x[f"{f}_z_lag2"], rows[i - 2].z[j])
            np.testing.assert_equal(x[f"{f}_dev"], r.dev[j])
            trio = np.array([r.z[j], rows[i - 1].z[j], rows[i - 2].z[j]])
            if np.isfinite(trio).any():
                assert x[f"{f}_z_mean3"] == pytest.approx(np.nanmean(trio))
        assert x["hr_capture"] == r.values["hr_capture"]


def test_guard_keeps_an_infection_like_rise_out_of_the_baseline(gen):
    elev = {k: 8.0 for k in range(30, 36)}
    s = gen.minute_streams(40, seed=9, noise_bpm=1.0, elevation=elev)
    rows = _run_blocks([[(k, t, v) for k, (t, v) in s.items()]])
    assert not any(r.guarded for r in rows[:30])
    assert all(r.guarded for r in rows[30:36])
    # the baseline of the days after the rise is the one from before it
    np.testing.assert_array_equal(rows[36].base[I_NS], rows[30].base[I_NS])
    assert rows[36].z[I_NS] == pytest.approx((rows[36].values["rhr_ns_bpm"] - rows[30].base[I_NS]) / rows[30].spread[I_NS])
    # without the guard the rise leaks into the baseline
    unguarded = _run_blocks([[(k, t, v) for k, (t, v) in s.items()]], params=PipelineParams(guard_bpm=np.inf))
    assert unguarded[36].base[I_NS] > rows[36].base[I_NS]
    assert not any(r.guarded for r in unguarded)


def test_rebaseline_after_a_long_shift(gen):
    elev = {k: 9.0 for k in range(30, 100)}  # a lasting change, e.g. new medication
    s = gen.minute_streams(100, seed=4, noise_bpm=0.8, elevation=elev)
    rows = _run_blocks([[(k, t, v) for k, (t, v) in s.items()]])
    shifted = rows[30:]
    assert all(r.guarded for r in shifted[:15])
    last = rows[-1]
    assert not last.guarded
    assert abs(last.z[I_NS]) < 2.0
    assert last.base[I_NS] == pytest.approx(rows[29].base[I_NS] + 9.0, abs=1.0)
    # the guarded stretch ends: at most rebaseline (14) + half a window (14) + a few days
    n_guarded = sum(r.guarded for r in shifted)
    assert 15 <= n_guarded <= 32


def test_pickled_pipeline_resumes_identically(rich, gen):
    s, ref = rich
    edges = gen.START_DAY * DAY + np.arange(0, 13) * float(DAY) + 3 * 3600.0
    edges[0] = gen.START_DAY * DAY
    blocks = gen.blocks_of(s, edges)
    fp = FeaturePipeline("P")
    rows = []
    for blk in blocks[:5]:
        rows += fp.update_many(blk)
    fp2 = pickle.loads(pickle.dumps(fp))
    for blk in blocks[5:]:
        rows += fp2.update_many(blk)
    rows += fp2.flush()
    assert_rows_equal(rows, ref)


def test_advance_closes_an_idle_day(gen):
    s = gen.minute_streams(3, seed=1)
    t0 = gen.START_DAY * DAY
    cut = t0 + 2 * DAY + 6 * 3600  # data stops at 06:00 on day 3
    fp = FeaturePipeline("P")
    rows = fp.update_many([(k, t[t < cut], v[t < cut]) for k, (t, v) in s.items()])
    assert [r.day for r in rows] == [gen.START_DAY, gen.START_DAY + 1]
    more = fp.advance(t0 + 3 * DAY)
    assert [r.day for r in more] == [gen.START_DAY + 2]
    assert more[0].values["hr_capture"] == pytest.approx(0.25)
    assert fp.flush() == []


def test_unknown_kind_names_participant():
    fp = FeaturePipeline("P7")
    with pytest.raises(ValueError, match="participant P7: unknown stream kind 'spo2'"):
        fp.update("spo2", np.zeros(1), np.zeros(1))
    with pytest.raises(ValueError, match="participant P7"):
        fp.update_many([("hr", np.zeros(1), np.full(1, 60.0)), ("x", np.zeros(1), np.zeros(1))])


def test_pickled_state_is_compact_and_resumes_identically():
    """A worker pickles this after every message: unused buffer capacity and empty epoch columns stay out."""
    import pickle

    from detectors.pipeline import FeaturePipeline

    t = np.arange(0.0, 12 * 86400, 5.0)
    hr = 60 + 5 * np.sin(t / 3600)
    ts = np.arange(0.0, 12 * 86400, 60.0)
    steps = (np.arange(ts.size) % 97 == 0) * 30.0
    cut, cut_s = np.searchsorted(t, 7.3 * 86400), np.searchsorted(ts, 7.3 * 86400)
    a = FeaturePipeline("P1")
    a.update_many([("hr", t[:cut], hr[:cut]), ("steps", ts[:cut_s], steps[:cut_s])])  # one big block
    blob = pickle.dumps(a)
    assert len(blob) < 200_000
    b = pickle.loads(blob)
    rest = [("hr", t[cut:], hr[cut:]), ("steps", ts[cut_s:], steps[cut_s:])]
    ra, rb = a.update_many(rest) + a.flush(), b.update_many(rest) + b.flush()
    assert len(ra) == len(rb) > 0
    for x, y in zip(ra, rb, strict=True):
        np.testing.assert_array_equal(x.x, y.x)
