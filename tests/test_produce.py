"""The cohort -> Kafka message stream: event-time order, keys, chunking, context first, end markers last."""

from __future__ import annotations

import numpy as np
import pytest

from streams.codec import decode_chunk, decode_record
from streams.produce import _stamp, cohort_messages


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from streams.simulate import simulate_cohort

    return simulate_cohort(tmp_path_factory.mktemp("sim") / "c", participants=3, days=4, seed=5)


@pytest.mark.parametrize("codec", ["binary", "json"])
def test_messages_are_ordered_keyed_and_complete(cohort, codec):
    from streams.cohort import Cohort

    msgs = list(cohort_messages(cohort, chunk_s=3600, codec=codec))
    assert [m.time for m in msgs] == sorted(m.time for m in msgs)  # merged in event time
    c = Cohort(cohort)
    for p in c.participants:
        pid = p.participant_id
        mine = [m for m in msgs if m.key == pid.encode()]
        assert mine[0].topic == "ehr.context"
        ctx = decode_record(mine[0].value, schema="prodromal.context")
        assert ctx["utc_offset_s"] == p.utc_offset_s and set(ctx["kinds"]) == set(c.stream_kinds(pid))
        ends = [m for m in mine if b"prodromal.eos" in m.value]
        assert len(ends) == len(ctx["kinds"]) and mine[-len(ends):] == ends
        for kind in ctx["kinds"]:
            chunks = [decode_chunk(_stamp(m.value)) for m in mine if m.topic == f"wearable.{kind}" and m not in ends]
            t = np.concatenate([ch.time for ch in chunks])
            sd = c.read_stream(pid, kind)
            np.testing.assert_array_equal(t, sd.time)  # every sample once, in order
            np.testing.assert_array_equal(np.concatenate([ch.values for ch in chunks]), sd.values.astype(np.float64))
            assert all(np.floor(ch.time / 3600).min() == np.floor(ch.time / 3600).max() for ch in chunks)
            assert all(ch.time_received is not None for ch in chunks)


def test_bad_arguments():
    with pytest.raises(ValueError, match="unknown codec"):
        list(cohort_messages("nowhere", codec="avro"))
    with pytest.raises(ValueError, match="chunk_s"):
        list(cohort_messages("nowhere", chunk_s=0))
