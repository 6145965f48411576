"""Codecs: exact round trips, strict decoding, and fuzzed input that only ever raises CodecError."""

from __future__ import annotations

import json
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from detectors.records import STREAMS, SampleChunk
from streams.codec import (
    CodecError,
    Decoder,
    decode_chunk,
    decode_record,
    encode_chunk,
    encode_record,
)

NOW = 1.9e9
pids = st.text(alphabet="ABCxyz0123456789-_.", min_size=1, max_size=64)
times = st.floats(0, 1.8e9, allow_nan=False)
f32 = st.floats(-1e6, 1e6, allow_nan=False, width=32)


@st.composite
def sample_chunks(draw):
    kind = draw(st.sampled_from(sorted(STREAMS)))
    n = draw(st.integers(0, 40))
    t = np.array(sorted(draw(st.lists(times, min_size=n, max_size=n))), dtype=np.float64)
    v = np.array(draw(st.lists(f32, min_size=n, max_size=n)), dtype=np.float32).astype(np.float64)
    recv = draw(st.one_of(st.none(), times))
    return SampleChunk(draw(pids), kind, t, v, time_received=recv)


@st.composite
def waveform_chunks(draw):
    kind = draw(st.sampled_from(["ppg", "acc"]))
    ch = 3 if kind == "acc" else draw(st.integers(1, 4))
    n = draw(st.integers(1, 50))
    v = np.array(draw(st.lists(f32, min_size=ch * n, max_size=ch * n)), dtype=np.float32).reshape(ch, n)
    fs = draw(st.sampled_from([25.0, 32.0, 64.0, 125.0]))
    return SampleChunk(draw(pids), kind, np.array([draw(times)]), v.astype(np.float64), fs=fs, time_received=draw(times))


def _same(a: SampleChunk, b: SampleChunk) -> None:
    assert (a.participant_id, a.kind, a.fs, a.time_received) == (b.participant_id, b.kind, b.fs, b.time_received)
    np.testing.assert_array_equal(a.time, b.time)
    np.testing.assert_array_equal(np.asarray(a.values, np.float64), b.values)


@settings(max_examples=150, deadline=None)
@given(c=st.one_of(sample_chunks(), waveform_chunks()), codec=st.sampled_from(["binary", "json"]), z=st.booleans())
def test_round_trip_is_exact(c, codec, z):
    _same(c, decode_chunk(encode_chunk(c, codec=codec, compress=z), now=NOW))


def test_nan_values_travel_as_gaps_but_nan_time_is_refused():
    c = SampleChunk("P1", "hr", np.array([0.0, 60.0]), np.array([np.nan, 61.0]), time_received=1.0)
    for codec in ("json", "binary"):
        d = decode_chunk(encode_chunk(c, codec=codec), now=NOW)
        assert np.isnan(d.values[0]) and d.values[1] == 61.0
    bad = SampleChunk("P1", "hr", np.array([np.nan]), np.array([61.0]))
    with pytest.raises(CodecError, match="sample 0 is not finite"):
        decode_chunk(encode_chunk(bad, codec="binary"), now=NOW)
    with pytest.raises(CodecError, match="'time': entry 0 is NoneType"):
        decode_chunk(_json(time=[None]), now=NOW)


def _json(**kw) -> bytes:
    obj = {"schema": "prodromal.samples", "v": 1, "participant": "P1", "kind": "hr", "time": [100.0], "values": [60.0],
           "time_received": 101.0}  # fmt: skip
    obj.update(kw)
    return json.dumps(obj).encode()


@pytest.mark.parametrize(
    "data, match",
    [
        (b"", "empty"),
        (b"hello", "neither JSON"),
        (b"{not json", "invalid JSON"),
        (b'{"a": NaN}', "NaN is not allowed"),
        (b"[1, 2]", "top level must be an object"),
        ("{\"x\": \"\udcff\"}".encode("utf-8", "surrogatepass"), "not UTF-8"),
        (_json(v=2), "schema version 2"),
        (_json(v=True), "must be an integer"),
        (_json(schema="other"), "field 'schema'"),
        (_json(kind="bp"), "field 'kind'"),
        (_json(participant="../etc"), "field 'participant'"),
        (_json(participant=7), "field 'participant'"),
        (_json(time=["100"]), "entry 0 is str"),
        (_json(values=[True]), "entry 0 is bool"),
        (_json(time=[100.0, 160.0]), "differ in length"),
        (_json(time=[-5.0]), "negative event time"),
        (_json(time=[NOW + 3600]), "in the future"),
        (_json(time_received="yesterday"), "time_received"),
        (b"{" * 100000, "nested too deeply|invalid JSON"),
        (b'{"x": 1e999}', "schema"),
    ],
)
def test_bad_json_is_named(data, match):
    with pytest.raises(CodecError, match=match):
        decode_chunk(data, now=NOW)


def test_binary_damage_is_named():
    c = SampleChunk("P1", "ppg", np.array([100.0]), np.ones((1, 64)), fs=64.0, time_received=101.0)
    good = encode_chunk(c)
    with pytest.raises(CodecError, match="truncated header"):
        decode_chunk(good[:20], now=NOW)
    with pytest.raises(CodecError, match="payload truncated"):
        decode_chunk(good[:-3], now=NOW)
    with pytest.raises(CodecError, match="trailing bytes"):
        decode_chunk(good + b"\0", now=NOW)
    with pytest.raises(CodecError, match="schema version 9"):
        decode_chunk(good[:4] + b"\x09" + good[5:], now=NOW)
    with pytest.raises(CodecError, match="exceeds the limit"):
        Decoder(max_bytes=100).decode(good, now=NOW)
    with pytest.raises(CodecError, match="exceed the limit"):
        Decoder(max_samples=10).decode(good, now=NOW)
    bad_fs = SampleChunk("P1", "ppg", np.array([100.0]), np.ones((1, 4)), fs=5000.0)
    with pytest.raises(CodecError, match="fs"):
        decode_chunk(encode_chunk(bad_fs), now=NOW)
    acc2 = SampleChunk("P1", "acc", np.array([100.0]), np.ones((2, 4)), fs=32.0)
    with pytest.raises(CodecError, match="expected 3 channels"):
        decode_chunk(encode_chunk(acc2), now=NOW)


def test_zip_bomb_is_bounded():
    c = SampleChunk("P1", "ppg", np.array([100.0]), np.zeros((1, 16)), fs=64.0)
    raw = encode_chunk(c, compress=True)
    head = raw[: 44 + 3 + 2]
    bomb = head + zlib.compress(b"\0" * 50_000_000, 9)  # declares 16 samples, inflates to 50 MB
    assert len(bomb) < 100_000
    with pytest.raises(CodecError, match="does not match the declared size"):
        decode_chunk(bomb, now=NOW)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.binary(max_size=300))
def test_garbage_only_raises_codec_error(data):
    for d in (data, b"PRDM" + data, b"{" + data):
        try:
            decode_chunk(d, now=NOW)
        except CodecError:
            pass


@settings(max_examples=300, deadline=None)
@given(c=st.one_of(sample_chunks(), waveform_chunks()), codec=st.sampled_from(["binary", "json"]),
       z=st.booleans(), cut=st.integers(0, 10_000), flip=st.integers(0, 10_000), byte=st.integers(0, 255))  # fmt: skip
def test_damaged_messages_only_raise_codec_error(c, codec, z, cut, flip, byte):
    good = encode_chunk(c, codec=codec, compress=z)
    damaged = bytearray(good)
    damaged[flip % len(good)] = byte
    for d in (good[: cut % len(good)], bytes(damaged)):
        try:
            decode_chunk(d, now=NOW)
        except CodecError:
            pass


@given(obj=st.recursive(st.none() | st.booleans() | st.integers() | st.text(), lambda ch: st.lists(ch) | st.dictionaries(st.text(), ch), max_leaves=20))
@settings(max_examples=200, deadline=None)
def test_any_json_value_only_raises_codec_error(obj):
    try:
        decode_chunk(json.dumps(obj).encode(), now=NOW)
    except CodecError:
        pass
    try:
        decode_record(json.dumps(obj).encode(), schema="prodromal.alert")
    except CodecError:
        pass


def test_record_round_trip_and_schema_check():
    data = encode_record("prodromal.alert", {"participant": "P1", "score": np.float32(0.5), "level_code": np.int64(2), "x": float("nan")})
    rec = decode_record(data, schema="prodromal.alert")
    assert rec == {"schema": "prodromal.alert", "v": 1, "participant": "P1", "score": 0.5, "level_code": 2, "x": None}
    with pytest.raises(CodecError, match="expected 'prodromal.score'"):
        decode_record(data, schema="prodromal.score")
