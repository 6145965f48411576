"""Bounded soak: a simulated cohort through the broker and two workers, faults at random times.

Everything runs on loopback: a fresh Tansu broker, a fresh influxd 1.6.7 behind the v2 adapter and
a fault-injecting proxy (tests/integration), two ``prodromal worker`` processes. The cohort is
published paced over the soak duration while, at random times (seeded), one of these faults hits:

* ``influx_error``  InfluxDB answers 503 for a while
* ``influx_slow``   InfluxDB answers slower than the client timeout
* ``influx_down``   connections to InfluxDB are reset
* ``worker_kill``   SIGKILL of the "victim" worker, restarted a few seconds later (same folders)

At the end InfluxDB is healthy again and the alert points in InfluxDB are compared with an
undisturbed in-process replay of the same cohort. The "stable" worker is never killed: its
resident memory is sampled throughout (memory growth = RSS at the end minus RSS at 25 % of the run).

Printed: fault scenarios run and survived, alerts lost (must be 0) and duplicated (must be 0),
soak duration, events processed (messages and samples through the broker), memory growth.

Usage::

    python bench/soak.py                       # 3 minutes, 6 participants x 60 days
    python bench/soak.py --minutes 10 --participants 12 --seed 2
"""

from __future__ import annotations

import argparse
import collections
import json
import random
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests" / "integration"))
sys.path.insert(0, str(ROOT))

FAULTS = ("influx_error", "influx_slow", "influx_down", "worker_kill")


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=3.0, help="soak duration (publishing time)")
    ap.add_argument("--participants", type=int, default=6)
    ap.add_argument("--days", type=int, default=60)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--settle", type=float, default=240.0, help="max seconds to wait for alerts after the soak")
    ap.add_argument("--keep", action="store_true", help="keep the work folder (logs, spools) for inspection")
    ap.add_argument("--spool-bytes", type=int, default=16384,
                    help="spool bound of the workers (small, so InfluxDB faults also fill it)")
    ap.add_argument("--when-full", default="wait", choices=["wait", "drop"], help="spool.when_full of the workers")
    a = ap.parse_args()

    from faultproxy import FaultProxy
    from harness import (
        WorkerProc,
        create_topics,
        influx_alerts,
        replay_alert_points,
        wait_for,
        worker_env,
    )
    from services import InfluxD, Tansu, V2Adapter, missing_services

    from streams.produce import produce
    from streams.settings import load_settings
    from streams.simulate import simulate_cohort

    miss = missing_services()
    if miss:
        print("soak unavailable:", "; ".join(miss))
        return 0
    rng = random.Random(a.seed)
    work = Path(tempfile.mkdtemp(prefix="prodromal-soak-"))
    print(f"soak: {a.participants} participants x {a.days} days, {a.minutes:.1f} min, seed {a.seed}, folder {work}", flush=True)
    cohort = simulate_cohort(work / "soak-sim", participants=a.participants, days=a.days, seed=a.seed)
    t0 = time.perf_counter()
    expected = replay_alert_points(cohort, work / "replay")
    print(f"in-process replay: {len(expected)} alert points in {time.perf_counter() - t0:.1f} s", flush=True)

    broker = Tansu(work / "tansu").start()
    influxd = InfluxD(work / "influx").start()
    influxd.create_database("prodromal")
    adapter = V2Adapter(influxd.url).start()
    proxy = FaultProxy(adapter.url, delay_s=5.0).start()
    create_topics(broker)
    spool = {"PRODROMAL_SPOOL__MAX_BYTES": str(a.spool_bytes), "PRODROMAL_SPOOL__SEGMENT_BYTES": str(min(4096, a.spool_bytes)),
             "PRODROMAL_SPOOL__WHEN_FULL": a.when_full}
    env = worker_env(broker, proxy, work / "stable", "soak-sim", **spool)
    venv = worker_env(broker, proxy, work / "victim", "soak-sim", **spool)
    stable = WorkerProc(env, work / "stable", "stable")
    victim = WorkerProc(venv, work / "victim", "victim-0")
    workers = [stable, victim]
    runs: list[dict] = []
    mem: list[tuple[float, float]] = []
    box: dict = {}
    full_alarms = 0
    try:
        stable.wait_ready(90)
        victim.wait_ready(90)
        kafka = load_settings(env={}, overrides={"kafka.broker": broker.url}).kafka
        seconds = a.minutes * 60

        def publish():
            try:
                box["stats"] = produce(cohort, kafka, chunk_s=6 * 3600, speed=a.days * 86400 / seconds)
            except Exception as e:
                box["error"] = repr(e)

        pub = threading.Thread(target=publish, daemon=True)
        t_start = time.monotonic()
        pub.start()
        # fault schedule: random start times, one fault at a time, 5-15 s each
        schedule = []
        t = rng.uniform(5, 15)
        while t < seconds - 10:
            schedule.append((t, rng.choice(FAULTS), rng.uniform(5, 15)))
            t += schedule[-1][2] + rng.uniform(5, 20)
        kills = 0
        for at, fault, length in schedule:
            while time.monotonic() - t_start < at:
                r = rss_mb(stable.proc.pid)
                if r:
                    mem.append((time.monotonic() - t_start, r))
                time.sleep(0.5)
            print(f"  t={time.monotonic() - t_start:6.1f} s  fault {fault} for {length:.0f} s", flush=True)
            run = {"fault": fault, "at_s": round(at, 1), "length_s": round(length, 1)}
            if fault == "worker_kill":
                victim.kill()
                time.sleep(length)
                kills += 1
                victim = WorkerProc(venv, work / "victim", f"victim-{kills}")
                workers.append(victim)
                try:
                    victim.wait_ready(90)
                    run["restarted"] = True
                except RuntimeError as e:
                    run["restarted"] = False
                    run["error"] = str(e)[-300:]
            else:
                proxy.mode = {"influx_error": "error", "influx_slow": "slow", "influx_down": "down"}[fault]
                time.sleep(length)
                proxy.mode = "ok"
            run["stable_alive"] = stable.proc.poll() is None
            runs.append(run)
        while pub.is_alive():
            r = rss_mb(stable.proc.pid)
            if r:
                mem.append((time.monotonic() - t_start, r))
            time.sleep(0.5)
        soak_s = time.monotonic() - t_start
        proxy.mode = "ok"

        def alerts():
            try:
                return influx_alerts(influxd)
            except Exception:
                return []

        settled = wait_for(lambda: set(alerts()) >= expected, a.settle, 1.0)
        time.sleep(3)  # let late duplicates (if any) land before counting
        got = alerts()
        r = rss_mb(stable.proc.pid)
        if r:
            mem.append((time.monotonic() - t_start, r))
        full_alarms = sum(w.log.read_text(errors="replace").count("ALARM: spool") for w in workers)
    finally:
        for w in workers:
            w.stop()
        proxy.stop()
        adapter.stop()
        influxd.stop()
        broker.stop()
        if not a.keep:
            import shutil

            shutil.rmtree(work, ignore_errors=True)

    st = box.get("stats")
    lost = len(expected - set(got))
    dup = sum(n - 1 for n in collections.Counter(got).values() if n > 1)
    wrong = len(set(got) - expected)
    survived = sum(1 for r in runs if r.get("stable_alive") and r.get("restarted", True))
    by_kind = collections.Counter(r["fault"] for r in runs)
    q = [m for t, m in mem if t >= 0.25 * soak_s]
    growth = (q[-1] - q[0]) if len(q) >= 2 else float("nan")
    print()
    print(f"fault scenarios run: {len(runs)} ({', '.join(f'{k} {v}' for k, v in sorted(by_kind.items()))}); survived: {survived}")
    print(f"alerts expected (in-process replay): {len(expected)}; in InfluxDB: {len(set(got))}; "
          f"lost: {lost}; duplicated: {dup}; wrong: {wrong}; settled: {settled}")
    print(f"spool: {a.spool_bytes} bytes per worker, when_full={a.when_full}; spool-full episodes (alarms): {full_alarms}")
    print(f"soak duration: {soak_s:.0f} s publishing (+ settle); events processed: "
          f"{st.messages if st else 0} messages, {st.samples if st else 0} samples "
          f"({(st.samples / soak_s) if st else 0:,.0f} samples/s paced)" + (f"; produce error: {box['error']}" if "error" in box else ""))
    if mem:
        def at(frac):
            return next((m for t, m in mem if t >= frac * soak_s), mem[-1][1])

        print(f"memory (stable worker RSS, MB): start {mem[0][1]:.0f}, 25 % {at(0.25):.0f}, 50 % {at(0.5):.0f}, "
              f"75 % {at(0.75):.0f}, end {mem[-1][1]:.0f}; growth over the last 75 %: {growth:+.1f} MB, "
              f"over the last 50 %: {mem[-1][1] - at(0.5):+.1f} MB")
    out = ROOT / "artifacts" / "soak_summary.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps({"runs": runs, "lost": lost, "duplicated": dup, "wrong": wrong, "settled": settled,
                               "soak_s": soak_s, "messages": st.messages if st else 0, "samples": st.samples if st else 0,
                               "rss_mb": mem[-200:], "growth_mb": growth, "expected_alerts": len(expected),
                               "spool_bytes": a.spool_bytes, "when_full": a.when_full, "spool_full_alarms": full_alarms}, indent=1) + "\n")
    faults = ROOT / "artifacts" / "faults_summary.json"
    if faults.is_file():
        print("\nfault tests (tests/integration/test_faults.py, last run):")
        for name, r in sorted(json.loads(faults.read_text()).items()):
            print(f"  {name}: survived {r['survived']}, lost {r['lost']}, duplicated {r['duplicated']}"
                  + (f" ({r['note']})" if r.get("note") else ""))
    return 0 if (lost == 0 and dup == 0 and wrong == 0 and survived == len(runs)) else 1


if __name__ == "__main__":
    sys.exit(main())
