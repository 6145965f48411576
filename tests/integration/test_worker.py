"""The live deployment on real services: produce + Faust workers + InfluxDB give the replay's alerts,
through malformed input, a killed worker and an InfluxDB outage."""

from __future__ import annotations

import collections

import pytest
from harness import (
    WorkerProc,
    create_topics,
    influx_alerts,
    read_topic,
    replay_alert_points,
    send_raw,
    wait_for,
    worker_env,
)

from streams.codec import decode_record
from streams.produce import produce
from streams.settings import load_settings

pytestmark = [pytest.mark.integration, pytest.mark.slow]


@pytest.fixture(scope="module")
def cohort(tmp_path_factory):
    from streams.simulate import simulate_cohort

    return simulate_cohort(tmp_path_factory.mktemp("sim") / "kafka-sim", participants=3, days=45, seed=3)


@pytest.fixture(scope="module")
def expected(cohort, tmp_path_factory):
    pts = replay_alert_points(cohort, tmp_path_factory.mktemp("replay"))
    assert pts, "the test cohort must alert"
    return pts


def _produce(broker, cohort):
    kafka = load_settings(env={}, overrides={"kafka.broker": broker.url}).kafka
    return produce(cohort, kafka, chunk_s=86400)


def _settled(influx, expected):
    def ok():
        try:
            return set(influx_alerts(influx)) >= expected
        except Exception:
            return False

    return ok


def test_kafka_gives_the_replay_alerts_and_dead_letters_bad_input(fresh_broker, influx, cohort, expected, tmp_path):
    d, a = influx
    create_topics(fresh_broker)
    w = WorkerProc(worker_env(fresh_broker, a, tmp_path / "w1", "kafka-sim"), tmp_path / "w1", "w1")
    try:
        w.wait_ready()
        bad = [
            ("wearable.hr", b"S00000", b"\x00\x01garbage"),
            ("wearable.hr", b"S00000", b'{"schema":"prodromal.samples","v":1,"participant":"S00000","kind":"hr","time":[-1],"values":[60]}'),
            ("wearable.steps", b"S00001", b'{"schema":"prodromal.samples","v":9}'),
            ("wearable.temp", None, b'{"schema":"prodromal.samples","v":1}'),
        ]
        send_raw(fresh_broker, bad[:2])
        st = _produce(fresh_broker, cohort)
        send_raw(fresh_broker, bad[2:])
        assert st.messages > 100
        assert wait_for(_settled(d, expected), 180), f"alerts in InfluxDB: {len(influx_alerts(d))} of {len(expected)}"
        got = influx_alerts(d)
        assert set(got) == expected  # same alerts as the in-process replay, no extra
        assert len(got) == len(set(got))
        dead = [decode_record(m.value, schema="prodromal.deadletter") for m in read_topic(fresh_broker, "prodromal.deadletter", 4)]
        reasons = " | ".join(x["reason"] for x in dead)
        assert len(dead) == 4, reasons
        for needle in ("neither JSON", "negative event time", "schema version 9", "no key"):
            assert needle in reasons
        alerts_topic = read_topic(fresh_broker, "detector.alerts", len(expected))
        assert {decode_record(m.value)["participant"] for m in alerts_topic} == {p for p, _, _ in expected}
    finally:
        w.stop()


def test_worker_sigkill_mid_run_loses_and_duplicates_nothing(fresh_broker, influx, cohort, expected, tmp_path):
    d, a = influx
    create_topics(fresh_broker)
    env = lambda n: worker_env(fresh_broker, a, tmp_path / n, "kafka-sim")  # noqa: E731
    w1, w2 = WorkerProc(env("w1"), tmp_path / "w1", "w1"), WorkerProc(env("w2"), tmp_path / "w2", "w2")
    try:
        w1.wait_ready()
        w2.wait_ready()
        kafka = load_settings(env={}, overrides={"kafka.broker": fresh_broker.url}).kafka
        import threading

        t = threading.Thread(target=produce, args=(cohort, kafka), kwargs={"chunk_s": 6 * 3600, "speed": 40 * 86400})
        t.start()  # ~1 s per recorded 40 days: the kill lands mid-recording
        wait_for(lambda: len(influx_alerts(d)) > 0 or not t.is_alive(), 60, 0.2)
        w1.kill()  # SIGKILL: no commit, no flush; its partitions and table state move to w2
        t.join()
        assert wait_for(_settled(d, expected), 240), f"alerts in InfluxDB: {len(influx_alerts(d))} of {len(expected)}"
        got = influx_alerts(d)
        assert set(got) == expected
        assert not [k for k, n in collections.Counter(got).items() if n > 1]
    finally:
        w1.kill()
        w2.stop()


def test_influx_outage_every_alert_arrives(fresh_broker, influx, cohort, expected, tmp_path):
    d, a = influx
    create_topics(fresh_broker)
    w = WorkerProc(worker_env(fresh_broker, a, tmp_path / "w1", "kafka-sim"), tmp_path / "w1", "w1")
    try:
        w.wait_ready()
        d.stop()  # InfluxDB down for the whole replay: points spool on the worker's disk
        _produce(fresh_broker, cohort)
        spool = tmp_path / "w1" / "spool"
        assert wait_for(lambda: any(spool.glob("spool-*.lp")), 60)
        d.start()
        assert wait_for(_settled(d, expected), 180), f"alerts in InfluxDB: {len(influx_alerts(d))} of {len(expected)}"
        assert set(influx_alerts(d)) == expected
        assert wait_for(lambda: not any(spool.glob("spool-*.lp")), 30)
    finally:
        w.stop()
