"""The real services and the InfluxDB sink end to end: broker round trip, v2 writes into influxd 1.6.7,
an InfluxDB outage spooled and drained with nothing lost or duplicated."""

from __future__ import annotations

import asyncio

import pytest

from streams.influx import InfluxSink
from streams.settings import InfluxSettings, SpoolSettings

pytestmark = pytest.mark.integration


def _sink(adapter, tmp_path, **kw):
    cfg = InfluxSettings(url=adapter.url, bucket="prodromal/autogen", token="t", batch_size=50,
                         max_retries=1, retry_interval_ms=10, max_retry_delay_ms=50, timeout_ms=2000, **kw)  # fmt: skip
    return InfluxSink(cfg, SpoolSettings(dir=tmp_path / "spool"))


def _alert_lines(n, start=0):
    return [f"alert,cohort=t,participant=P{i % 7},model=m,level=red score={i / 10},level_code=2i,night=\"n{i}\" "
            f"{1_600_000_000 + 86400 * i}" for i in range(start, start + n)]  # fmt: skip


def test_v2_writes_land_in_influxd(influx, tmp_path):
    d, a = influx
    s = _sink(a, tmp_path)
    s.write(_alert_lines(120))
    s.write(_alert_lines(20))  # redelivered: same identity overwrites
    s.close()
    assert s.stats.written == 140 and s.stats.spooled == 0
    rows = d.rows("SELECT * FROM alert", "prodromal")
    assert len(rows) == 120
    assert {r["participant"] for r in rows} == {f"P{i}" for i in range(7)}


def test_influx_outage_loses_nothing(influx, tmp_path):
    d, a = influx
    s = _sink(a, tmp_path)
    s.write(_alert_lines(60))
    s.flush()
    d.stop()  # outage
    s.write(_alert_lines(90, start=60))
    s.flush()
    assert s.stats.spooled == 90 and s.pending() > 0
    d.start()  # back, same data dir
    s._degraded_until = 0  # skip the backoff wait
    assert s.drain()
    s.close()
    rows = d.rows("SELECT score FROM alert", "prodromal")
    assert len(rows) == 150
    assert sorted(r["time"] for r in rows) == [1_600_000_000 + 86400 * i for i in range(150)]


def test_broker_keyed_round_trip(broker):
    from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

    broker.create_topic("smoke", 3)

    async def run():
        p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await p.start()
        try:
            for i in range(30):
                await p.send_and_wait("smoke", f"v{i}".encode(), key=f"P{i % 5}".encode())
        finally:
            await p.stop()
        c = AIOKafkaConsumer("smoke", bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                             group_id="g-smoke", session_timeout_ms=6000, heartbeat_interval_ms=1000)  # fmt: skip
        await c.start()
        got: dict[str, set[int]] = {}
        n = 0
        try:
            while n < 30:
                batch = await asyncio.wait_for(c.getmany(timeout_ms=500), 30)
                for tp, msgs in batch.items():
                    n += len(msgs)
                    for m in msgs:
                        got.setdefault(m.key.decode(), set()).add(tp.partition)
        finally:
            await c.stop()
        return got

    got = asyncio.run(asyncio.wait_for(run(), 120))
    assert len(got) == 5
    assert all(len(parts) == 1 for parts in got.values())  # one participant, one partition
