"""Drive real workers against real services: start/kill `prodromal worker` processes, produce a
cohort, read alerts back from InfluxDB and from the in-process replay. Used by the integration
tests and by bench/stream.py."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from services import InfluxD, Tansu, V2Adapter, _die_with_parent

from streams.settings import TANSU_FAUST
from streams.topics import TOPICS

PARTITIONS = 4
REPO = Path(__file__).resolve().parents[2]


def worker_env(broker: Tansu, adapter: V2Adapter | None, workdir: Path, cohort: str, **extra: str) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PRODROMAL_")}
    env.update({
        "PRODROMAL_KAFKA__BROKER": broker.url,
        **{f"PRODROMAL_FAUST__{k.upper()}": str(v) for k, v in TANSU_FAUST.items()},
        "PRODROMAL_FAUST__TOPIC_PARTITIONS": str(PARTITIONS),
        "PRODROMAL_FAUST__DATA_DIR": str(workdir / "faust"),
        "PRODROMAL_INFLUX__BUCKET": "prodromal/autogen",
        "PRODROMAL_INFLUX__TOKEN": "test-token",
        "PRODROMAL_INFLUX__MAX_RETRIES": "1",
        "PRODROMAL_INFLUX__RETRY_INTERVAL_MS": "100",
        "PRODROMAL_INFLUX__MAX_RETRY_DELAY_MS": "1000",
        "PRODROMAL_INFLUX__TIMEOUT_MS": "3000",
        "PRODROMAL_INFLUX__FLUSH_INTERVAL_MS": "200",
        "PRODROMAL_SPOOL__DIR": str(workdir / "spool"),
        "PRODROMAL_WORKER__COHORT": cohort,
        "PRODROMAL_WORKER__IDLE_CHECK_INTERVAL_S": "2",
    })  # fmt: skip
    if adapter is not None:
        env["PRODROMAL_INFLUX__URL"] = adapter.url
    env.update(extra)
    return env


class WorkerProc:
    """One `prodromal worker` process (its own session; stopped by pid)."""

    def __init__(self, env: dict, workdir: Path, name: str):
        self.workdir = workdir
        workdir.mkdir(parents=True, exist_ok=True)
        self.log = workdir / f"{name}.log"
        fh = open(self.log, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "streams.cli", "worker", "--loglevel", "info"], cwd=REPO,
                                     env=env, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True, preexec_fn=_die_with_parent)  # fmt: skip
        fh.close()

    def wait_ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            text = self.log.read_text(errors="replace")
            if "Ready" in text:
                return
            if self.proc.poll() is not None:
                raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{text[-3000:]}")
            time.sleep(0.2)
        raise RuntimeError(f"worker not ready in {timeout} s:\n{self.log.read_text(errors='replace')[-3000:]}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


def create_topics(broker: Tansu) -> None:
    for t in TOPICS:
        broker.create_topic(t, PARTITIONS)


def replay_alert_points(cohort: Path, out: Path) -> set[tuple]:
    """(participant, level, time) of every alert point of the in-process replay."""
    from streams.registry import make_detector
    from streams.replay import replay

    replay(cohort, make_detector("nightsignal"), out, n_boot=0)
    return _alert_points((out / "points.lp").read_text().splitlines())


def _alert_points(lines) -> set[tuple]:
    out = set()
    for line in lines:
        if not line.startswith("alert,"):
            continue
        head, ts = line.split(" ", 1)[0], line.rsplit(" ", 1)[1]  # string fields may hold spaces
        tags = dict(kv.split("=", 1) for kv in head.split(",")[1:])
        out.add((tags["participant"], tags["level"], int(ts)))
    return out


def influx_alerts(influx: InfluxD, db: str = "prodromal") -> list[tuple]:
    rows = influx.rows("SELECT * FROM alert", db)
    return [(r["participant"], r["level"], int(r["time"])) for r in rows]


def influx_count(influx: InfluxD, measurement: str, db: str = "prodromal") -> int:
    try:
        rows = influx.rows(f'SELECT count("score") FROM "{measurement}"', db)
    except Exception:
        return -1
    return int(rows[0]["count"]) if rows else 0


def wait_for(cond, timeout: float, every: float = 0.5) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(every)
    return cond()


def read_topic(broker: Tansu, topic: str, min_messages: int, timeout: float = 30) -> list:
    """All messages of a topic (from the beginning), waiting until at least ``min_messages``."""
    from aiokafka import AIOKafkaConsumer

    async def run():
        c = AIOKafkaConsumer(topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest",
                             enable_auto_commit=False, group_id=None)  # fmt: skip
        await c.start()
        out = []
        try:
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                batch = await c.getmany(timeout_ms=500)
                for msgs in batch.values():
                    out.extend(msgs)
                if len(out) >= min_messages and not batch:
                    break
        finally:
            await c.stop()
        return out

    return asyncio.run(run())


def send_raw(broker: Tansu, items: list[tuple[str, bytes | None, bytes]]) -> None:
    from aiokafka import AIOKafkaProducer

    async def run():
        p = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
        await p.start()
        try:
            for topic, key, value in items:
                await p.send_and_wait(topic, value, key=key)
        finally:
            await p.stop()

    asyncio.run(run())
