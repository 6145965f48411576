"""The worker's engine without Faust: topics consumed in any interleaving give the replay's alerts;
bad messages raise CodecError (dead letter) and leave the stream usable."""

from __future__ import annotations

import csv
import random
from collections import defaultdict

import pytest

from detectors.base import LEVEL_NAMES
from streams.codec import CodecError
from streams.produce import _stamp, cohort_messages
from streams.registry import make_detector
from streams.replay import replay
from streams.settings import load_settings
from streams.worker import Engine, WorkerError


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from streams.simulate import simulate_cohort

    return simulate_cohort(tmp_path_factory.mktemp("sim") / "c", participants=3, days=45, seed=3)


@pytest.fixture(scope="module")
def reference(cohort, tmp_path_factory):
    out = tmp_path_factory.mktemp("run")
    replay(cohort, make_detector("nightsignal"), out, n_boot=0)
    with open(out / "alerts.csv", newline="") as fh:
        return {(r["participant_id"], r["date"], r["level"]) for r in csv.DictReader(fh)}


def _run(engine, msgs, seed, roundtrip_every=0.0, batch=1):
    queues = defaultdict(list)
    for m in msgs:
        queues[m.topic].append(m)
    rng = random.Random(seed)
    feeds, alerts, days = {}, set(), 0

    def feed_of(pid):
        if pid not in feeds:
            feeds[pid] = engine.loads(None, pid)
        return feeds[pid]

    names = list(queues)
    order = []
    while names:
        k = rng.choice(names)  # adversarial: one topic may run days ahead of another
        for _ in range(batch):  # a fetch returns a run of one partition's messages
            order.append(queues[k].pop(0))
            if not queues[k]:
                names.remove(k)
                break
    for m in order:
        pid, feed, results = engine.handle(m.topic, m.key, _stamp(m.value), feed_of)
        if rng.random() < roundtrip_every:  # state through the changelog's serialisation
            data = engine.dumps(feed)
            engine._cache.clear()  # force a real unpickle
            feeds[pid] = engine.loads(data, pid)
        days += len(results)
        alerts |= {(r.row.participant_id, r.row.date.isoformat(), LEVEL_NAMES[r.decision.level])
                   for r in results if r.decision.level > 0}  # fmt: skip
    return alerts, days, feeds


@pytest.mark.parametrize("seed, batch, chunk_s", [(1, 1, 6 * 3600), (2, 1, 86400), (0, 100, 86400), (3, 30, 3600)])
def test_any_topic_interleaving_gives_the_replay_alerts(cohort, reference, seed, batch, chunk_s):
    engine = Engine(load_settings(env={}))
    alerts, days, feeds = _run(engine, list(cohort_messages(cohort, chunk_s=chunk_s)), seed, roundtrip_every=0.05, batch=batch)
    assert reference, "the test cohort must have alerts to compare"
    assert alerts == reference
    assert days == 3 * 45
    assert all(f.closed for f in feeds.values())
    assert all(f.monitor.features.epochs.stats.late == 0 for f in feeds.values())


def test_redelivered_messages_change_nothing(cohort, reference):
    engine = Engine(load_settings(env={}))
    msgs = list(cohort_messages(cohort, chunk_s=6 * 3600))
    rng = random.Random(5)
    again = msgs[:]
    for i in sorted(rng.sample(range(len(msgs) - 20), 15), reverse=True):  # at-least-once redelivery
        again[i + 1 : i + 1] = [msgs[i]]
    alerts, _, _ = _run(engine, again, 3)
    assert alerts == reference


def test_bad_messages_are_named(cohort):
    engine = Engine(load_settings(env={}))
    msgs = list(cohort_messages(cohort, chunk_s=6 * 3600, limit=1))
    data = next(m for m in msgs if m.topic == "wearable.hr")
    feeds = {}

    def feed_of(pid):
        return feeds.setdefault(pid, engine.loads(None, pid))

    cases = [
        ("wearable.hr", None, data.value, "no key"),
        ("wearable.hr", b"OTHER", _stamp(data.value), "differs from field 'participant'"),
        ("wearable.steps", data.key, _stamp(data.value), "on topic"),
        ("wearable.hr", data.key, b"\x00garbage", "neither JSON"),
        ("ehr.context", data.key, b'{"schema":"prodromal.context","v":1,"utc_offset_s":"x"}', "utc_offset_s"),
        ("ehr.context", data.key, b'{"schema":"prodromal.weird","v":1}', "not accepted"),
    ]
    for topic, key, value, match in cases:
        with pytest.raises(CodecError, match=match):
            engine.handle(topic, key, value, feed_of)
    # the participant's stream still works after the bad messages
    for m in msgs:
        engine.handle(m.topic, m.key, _stamp(m.value), feed_of)
    assert feeds[data.key.decode()].closed
    dl = engine.dead_letter("wearable.hr", 0, 7, b"P1", b"\x00garbage", "neither JSON")
    assert b'"reason":"neither JSON"' in dl and b'"offset":7' in dl


def test_missing_or_corrupt_model_refuses_to_start(tmp_path):
    with pytest.raises(WorkerError, match="cannot load detector 'lightgbm'"):
        Engine(load_settings(env={}, overrides={"worker.detector": "lightgbm"}))
    bad = tmp_path / "model"
    bad.mkdir()
    (bad / "artifact.json").write_text("{corrupt")
    with pytest.raises(WorkerError, match="cannot load detector 'forest'"):
        Engine(load_settings(env={}, overrides={"worker.detector": "forest", "worker.model": str(bad)}))


def test_idle_tick_closes_open_days(cohort):
    engine = Engine(load_settings(env={}))
    msgs = [m for m in cohort_messages(cohort, chunk_s=6 * 3600, limit=1) if b"prodromal.eos" not in m.value]
    feeds = {}

    def feed_of(pid):
        return feeds.setdefault(pid, engine.loads(None, pid))

    days = 0
    for m in msgs:
        days += len(engine.handle(m.topic, m.key, _stamp(m.value), feed_of)[2])
    assert days < 45  # without an end marker the last day(s) stay open
    tick = b'{"schema":"prodromal.idle","v":1,"participant":"%s"}' % msgs[0].key
    days += len(engine.handle("ehr.context", msgs[0].key, tick, feed_of)[2])
    assert days >= 44
    assert engine.handle("ehr.context", msgs[0].key, tick, feed_of)[2] == []  # one close per silence
