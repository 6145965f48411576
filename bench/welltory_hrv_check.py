"""Known-answer check of HRV code on real data: Welltory spot checks' raw RR vs the app's own values.

For every row of ``hrv_measurements.csv`` (raw RR intervals in ``rr_data`` and the
app's ``meanrr``, ``sdnn``, ``rmssd``, ``bpm``) this recomputes:

- ``direct``: plain numpy on all RR intervals (RMSSD = sqrt(mean(diff^2)); SDNN with
  ddof 0 and ddof 1);
- ``epochs``: prodromal's streaming path (``detectors.epochs.EpochAccumulator`` per
  spot check, then RMSSD/SDNN from the summed epoch columns, as ``detectors.daily``
  does) -- this applies the ``ibi`` plausibility range and the 2-s successive-beat rule;
- ``neurokit2`` (peer, if installed): ``nk.hrv_time`` on the same beats.

and prints agreement with the app (Pearson r, median absolute difference, share
within 1 ms and within 5 %) and the time each method takes, with the ratio.

Run: ``.venv/bin/python bench/welltory_hrv_check.py [DATA_DIR] [--limit N]``
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
import time
from pathlib import Path

import numpy as np

from detectors.epochs import EpochAccumulator
from streams.importers.welltory import parse_rr


def load(data: Path, limit: int | None):
    rows = []
    with open(data / "hrv_measurements.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            try:
                rr = parse_rr(row["rr_data"])
                app = {k: float(row[k]) for k in ("meanrr", "sdnn", "rmssd", "bpm")}
            except ValueError:
                continue
            if rr.size >= 3:
                rows.append((rr, app))
            if limit and len(rows) >= limit:
                break
    return rows


def direct(rr: np.ndarray) -> dict[str, float]:
    d = np.diff(rr)
    return {
        "meanrr": float(rr.mean()),
        "rmssd": float(np.sqrt(np.mean(d * d))),
        "sdnn": float(rr.std(ddof=0)),
        "sdnn_ddof1": float(rr.std(ddof=1)),
        "bpm": float(60000.0 / rr.mean()),
    }


def via_epochs(rr: np.ndarray) -> dict[str, float]:
    t = 1_600_000_000.0 + np.cumsum(rr) / 1000.0
    acc = EpochAccumulator(lateness_s=0)
    e1 = acc.update("ibi", t, rr)
    e2 = acc.flush()
    data = np.concatenate([e1.data, e2.data]) if len(e1) else e2.data
    from detectors.epochs import _COL  # the column layout is the operator's contract

    s, sq, n = data[:, _COL["ibi_sum"]].sum(), data[:, _COL["ibi_sq"]].sum(), data[:, _COL["ibi_n"]].sum()
    ssd, nd = data[:, _COL["ibi_ssd"]].sum(), data[:, _COL["ibi_nd"]].sum()
    m = s / n if n else np.nan
    return {
        "meanrr": float(m),
        "rmssd": float(np.sqrt(ssd / nd)) if nd else np.nan,
        "sdnn": float(np.sqrt(max(sq / n - m * m, 0.0))) if n else np.nan,
    }


def via_neurokit(rr: np.ndarray, nk) -> dict[str, float]:
    peaks = np.concatenate([[0], np.cumsum(rr)]).astype(int)
    r = nk.hrv_time(peaks, sampling_rate=1000, show=False)
    return {"rmssd": float(r["HRV_RMSSD"].iloc[0]), "sdnn": float(r["HRV_SDNN"].iloc[0]),
            "meanrr": float(r["HRV_MeanNN"].iloc[0])}


def agreement(ours: np.ndarray, app: np.ndarray) -> str:
    ok = np.isfinite(ours) & np.isfinite(app)
    a, b = ours[ok], app[ok]
    r = np.corrcoef(a, b)[0, 1] if a.size > 2 else np.nan
    ad = np.abs(a - b)
    rel = ad / np.maximum(np.abs(b), 1e-9)
    return (
        f"n={a.size:5d}  r={r:.4f}  median|diff|={np.median(ad):7.3f}  p95|diff|={np.percentile(ad, 95):8.3f}  "
        f"within 1 unit={np.mean(ad <= 1.0):6.1%}  within 5%={np.mean(rel <= 0.05):6.1%}"
    )


def main() -> int:
    default = Path(os.environ.get("PRODROMAL_DATA", Path(__file__).parents[1] / ".." / "shared" / "data"))
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data", nargs="?", default=str(default / "welltory_hrv_covid19"))
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--peer-limit", type=int, default=300, help="rows for the (slow) neurokit2 peer")
    args = ap.parse_args()
    data = Path(args.data)
    if not (data / "hrv_measurements.csv").is_file():
        print(f"skip: {data / 'hrv_measurements.csv'} not found", file=sys.stderr)
        return 2
    rows = load(data, args.limit)
    app = {k: np.array([a[k] for _, a in rows]) for k in ("meanrr", "sdnn", "rmssd", "bpm")}
    beats = sum(rr.size for rr, _ in rows)
    print(f"Welltory HRV spot checks: {len(rows)} with >= 3 RR intervals, {beats} beats")

    t0 = time.perf_counter()
    d = [direct(rr) for rr, _ in rows]
    t_direct = time.perf_counter() - t0
    t0 = time.perf_counter()
    e = [via_epochs(rr) for rr, _ in rows]
    t_epochs = time.perf_counter() - t0

    print("\n== direct numpy on all RR intervals vs the app")
    for k, lab in (("meanrr", "meanRR ms"), ("rmssd", "RMSSD ms"), ("sdnn", "SDNN ms (ddof 0)"),
                   ("sdnn_ddof1", "SDNN ms (ddof 1)"), ("bpm", "HR bpm")):
        ref = app["sdnn"] if k == "sdnn_ddof1" else app[k]
        print(f"{lab:18s} {agreement(np.array([x[k] for x in d]), ref)}")
    print("\n== prodromal epoch path (EpochAccumulator; range 240-2500 ms, successive beats <= 2 s) vs the app")
    for k, lab in (("meanrr", "meanRR ms"), ("rmssd", "RMSSD ms"), ("sdnn", "SDNN ms")):
        print(f"{lab:18s} {agreement(np.array([x[k] for x in e]), app[k])}")
    ours_rmssd = np.array([x["rmssd"] for x in e])
    direct_rmssd = np.array([x["rmssd"] for x in d])
    print(f"epoch path vs direct RMSSD: {agreement(ours_rmssd, direct_rmssd)}")

    print("\n== time")
    print(f"direct numpy : {t_direct * 1e3:8.1f} ms for {len(rows)} checks")
    print(f"epoch path   : {t_epochs * 1e3:8.1f} ms for {len(rows)} checks")
    try:
        import neurokit2 as nk
    except ImportError:
        print("neurokit2 not installed: peer skipped")
        return 0
    sub = rows[: args.peer_limit]
    t0 = time.perf_counter()
    p = [via_neurokit(rr, nk) for rr, _ in sub]
    t_nk = time.perf_counter() - t0
    per_nk = t_nk / len(sub)
    per_ep = t_epochs / len(rows)
    print(f"neurokit2    : {t_nk * 1e3:8.1f} ms for {len(sub)} checks")
    print(f"per check: epoch path {per_ep * 1e6:.0f} us, neurokit2 {per_nk * 1e6:.0f} us -> epoch path is {per_nk / per_ep:.1f}x faster")
    print("\n== neurokit2 (peer) vs the app, first", len(sub), "checks")
    for k in ("rmssd", "sdnn"):
        print(f"{k:18s} {agreement(np.array([x[k] for x in p]), app[k][: len(sub)])}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
