"""Replay throughput and memory, beside a straightforward pandas NightSignal pipeline, in one run.

    python bench/replay.py [--data ../shared/data] [--sim-participants 1000] [--sim-days 120]

Pinned to one core with one BLAS/OpenMP thread. Prints, for the Stanford Fitbit
data (import excluded and included) and a simulated cohort: participant-days per
second and samples per second of prodromal's whole replay (epochs, all daily
features, baselines, NightSignal, alert policy, run-folder outputs), the same
for the pandas peer (resample to minutes, keep zero-step night minutes, group by
night, expanding median, two-night rule), and the ratio. Peak memory (max RSS)
of replays in child processes shows how memory grows with participants and days.
"""

from __future__ import annotations

import argparse
import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import json  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def pin_one_core() -> None:
    if hasattr(os, "sched_setaffinity"):
        cpus = sorted(os.sched_getaffinity(0))
        os.sched_setaffinity(0, {cpus[-1]})


def pandas_from_cohort(cohort_path: Path) -> tuple[float, int]:
    """The pandas peer over a cohort folder's npz streams; returns (seconds, nights)."""
    import pandas as pd
    from pandas_nightsignal import nightsignal_pandas

    from streams.cohort import Cohort

    t0 = time.perf_counter()
    c = Cohort(cohort_path)
    nights = 0
    for p in c.participants:
        hr = c.read_stream(p.participant_id, "hr")
        st = c.read_stream(p.participant_id, "steps")
        if hr is None or st is None:
            continue
        h = pd.DataFrame({"datetime": pd.to_datetime(hr.time, unit="s"), "heartrate": hr.values})
        s = pd.DataFrame({"datetime": pd.to_datetime(st.time, unit="s"), "steps": st.values})
        nights += len(nightsignal_pandas(h, s))
    return time.perf_counter() - t0, nights


def pandas_from_csv(src: Path) -> tuple[float, int]:
    from pandas_nightsignal import nightsignal_pandas, read_fitbit_pandas

    t0 = time.perf_counter()
    nights = 0
    for f in sorted(src.glob("*_hr.csv*")):
        pid = f.name.split("_hr.csv")[0]
        sf = next(iter(src.glob(f"{pid}_steps.csv*")), None)
        if sf is None:
            continue
        nights += len(nightsignal_pandas(read_fitbit_pandas(f), read_fitbit_pandas(sf)))
    return time.perf_counter() - t0, nights


def ours(cohort_path: Path, out: Path) -> tuple[float, int, int]:
    from detectors.nightsignal import NightSignal
    from streams.replay import replay

    t0 = time.perf_counter()
    r = replay(cohort_path, NightSignal(), out, n_boot=0)
    return time.perf_counter() - t0, r.days, r.samples


def row(label: str, sec: float, days: int, samples: int | None, peer_sec: float | None = None) -> None:
    sps = f"{samples / sec:>14,.0f}" if samples else f"{'-':>14}"
    ratio = f"{peer_sec / sec:>8.1f}x" if peer_sec else f"{'':>9}"
    print(f"  {label:<44}{sec:>9.2f} s{days / sec:>12,.0f}{sps}{ratio}")


def header() -> None:
    print(f"  {'':<44}{'time':>11}{'days/s':>12}{'samples/s':>14}{'vs pandas':>9}")


def child_peak_rss(cohort: Path, out: Path, limit: int | None) -> float:
    """Max RSS (MB) of a child process replaying (the first ``limit`` participants of) a cohort."""
    code = (
        "import resource, sys, json\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from detectors.nightsignal import NightSignal\n"
        "from streams.replay import replay\n"
        f"r = replay({str(cohort)!r}, NightSignal(), {str(out)!r}, n_boot=0, limit={limit!r})\n"
        "print(json.dumps({'rss_mb': resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 'days': r.days}))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(res.stdout.strip().splitlines()[-1])["rss_mb"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data")
    ap.add_argument("--sim-participants", type=int, default=1000)
    ap.add_argument("--sim-days", type=int, default=120)
    ap.add_argument("--work", type=Path, default=None, help="scratch folder (default: a temp dir)")
    args = ap.parse_args()
    pin_one_core()
    work = args.work or Path(tempfile.mkdtemp(prefix="prodromal-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    print(f"bench/replay: one core, scratch {work}")

    src = args.data / "stanford_covid_wearables_mishra2020"
    if src.is_dir():
        from streams.importers.stanford import import_stanford

        print(f"\nStanford Fitbit data ({src})")
        header()
        t0 = time.perf_counter()
        import_stanford(src, work / "stanford")
        t_imp = time.perf_counter() - t0
        t_rep, days, samples = ours(work / "stanford", work / "run_stanford")
        p_npz, p_n = pandas_from_cohort(work / "stanford")
        p_csv, _ = pandas_from_csv(src)
        row("prodromal replay (import excluded)", t_rep, days, samples, p_npz)
        row("pandas NightSignal (from the same cohort files)", p_npz, days, samples)
        row("prodromal import + replay (from the CSV zips)", t_imp + t_rep, days, samples, p_csv)
        row("pandas NightSignal (read_csv of the CSV zips)", p_csv, days, samples)
        print(f"  (import alone {t_imp:.2f} s; pandas nights {p_n}, prodromal participant-days {days})")
    else:
        print(f"\nStanford data not found at {src}: skipped")

    from streams.simulate import simulate_cohort

    n, d = args.sim_participants, args.sim_days
    sim = work / f"sim_{n}x{d}"
    print(f"\nsimulated cohort {n} participants x {d} days")
    t0 = time.perf_counter()
    simulate_cohort(sim, participants=n, days=d, seed=11)
    t_sim = time.perf_counter() - t0
    size = sum(f.stat().st_size for f in sim.rglob("*") if f.is_file()) / 1e9
    print(f"  simulation {t_sim:.1f} s, {size:.2f} GB on disk (not part of the replay figures)")
    header()
    t_rep, days, samples = ours(sim, work / "run_sim")
    p_npz, _ = pandas_from_cohort(sim)
    row("prodromal replay (import excluded)", t_rep, days, samples, p_npz)
    row("pandas NightSignal (from the same cohort files)", p_npz, days, samples)

    print("\npeak memory (max RSS of a child process replaying NightSignal)")
    half = max(1, n // 4)
    short = work / f"sim_{half}x{max(d // 2, 30)}"
    simulate_cohort(short, participants=half, days=max(d // 2, 30), seed=11)
    for label, coh, lim in (
        (f"{half} participants x {max(d // 2, 30)} days", short, None),
        (f"{half} participants x {d} days", sim, half),
        (f"{n} participants x {d} days", sim, None),
    ):
        print(f"  {label:<44}{child_peak_rss(coh, work / 'run_mem', lim):>9.0f} MB")


if __name__ == "__main__":
    main()
