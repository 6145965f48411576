"""Detection on the real Stanford Fitbit participants with every detector, beside the published anchors.

    python bench/stanford_detection.py [--data ../shared/data] [--train-participants 400]

The supervised detectors (forest, lightgbm) are trained on a simulated cohort
only (no Stanford participant is used for training or thresholds), so every
Stanford participant is held out. Thresholds are the detectors' fixed defaults
or the training cohort's out-of-fold choice: nothing is tuned per participant
or on these data. Evaluation definitions: README, "Evaluation definitions".
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ANCHORS = [
    ("NightSignal (Alavi 2022, real-time, 84 infections)", "67/84 alerted before or without symptoms (80%), median 3 d before onset; 1.15 alert-days per person for non-COVID stressors"),
    ("Mishra 2020 CuSum (online, 32 infected)", "~63-67% alerted before onset (recalled); RHR-Diff offline 26/32 with alterations, 22 at/before onset"),
    ("TemPredict RF (Mason 2022, Oura)", "AUC 0.819, sens 82% / spec 63%, 2.75 d before testing (different labels: test-seeking)"),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=ROOT / ".." / "shared" / "data")
    ap.add_argument("--train-participants", type=int, default=400)
    ap.add_argument("--train-days", type=int, default=120)
    ap.add_argument("--work", type=Path, default=None)
    args = ap.parse_args()
    src = args.data / "stanford_covid_wearables_mishra2020"
    if not src.is_dir():
        print(f"Stanford data not found at {src}: nothing to measure")
        return
    work = args.work or Path(tempfile.mkdtemp(prefix="prodromal-stanford-"))
    from streams.importers.stanford import import_stanford
    from streams.registry import make_detector
    from streams.replay import replay
    from streams.simulate import simulate_cohort
    from streams.train import train

    import_stanford(src, work / "stanford")
    t0 = time.perf_counter()
    sim = simulate_cohort(work / "sim_train", participants=args.train_participants, days=args.train_days, seed=7)
    print(f"training cohort: simulated {args.train_participants} x {args.train_days} days in {time.perf_counter() - t0:.0f} s")
    for kind in ("lightgbm", "forest"):
        r = train(sim, kind, work / f"model_{kind}", threads=2)
        print(f"  {kind}: grouped 5-fold CV AUROC {r.cv['auroc']:.3f}, sens@95%spec {r.cv['sens_at_95_spec']:.2f}, "
              f"thresholds {r.thresholds[0]:.3f}/{r.thresholds[1]:.3f}")
    print(f"\nStanford Fitbit, {src.name}: evaluated participants are those with an aligned onset or diagnosis date")
    hdr = f"{'detector':<12}{'early':>9}{'rate':>7}{'median lead':>13}{'lead IQR':>12}{'FA days/mo':>12}{'AUROC':>8}{'alert days':>12}"
    print(hdr)
    print("-" * len(hdr))
    for name in ("nightsignal", "cusum", "online", "forest", "lightgbm"):
        det = make_detector(name, work / f"model_{name}" if name in ("forest", "lightgbm") else None)
        r = replay(work / "stanford", det, work / f"run_{name}", n_boot=200)
        ev = r.evaluation
        rate = "n/a" if ev["early_detection_rate"] is None else f"{100 * ev['early_detection_rate']:.0f}%"
        lead = "n/a" if ev["median_lead_days"] is None else f"{ev['median_lead_days']:+.1f} d"
        iqr = "n/a" if not ev.get("lead_days_iqr") else f"{ev['lead_days_iqr'][0]:+.0f}..{ev['lead_days_iqr'][1]:+.0f}"
        fa = "n/a" if ev["false_alert_days_per_month"] is None else f"{ev['false_alert_days_per_month']:.2f}"
        au = "n/a" if ev["auroc"] is None else f"{ev['auroc']:.3f}"
        print(f"{name:<12}{ev['detected_early']:>5}/{ev['labelled']:<3}{rate:>7}{lead:>13}{iqr:>12}{fa:>12}{au:>8}{r.alerts:>12}")
        per = ", ".join(f"{q['participant_id']}:{q['first_alert_rel_onset']}" for q in ev["per_participant"] if q["labelled"])
        print(f"{'':<12}first alert day relative to onset in [-10, +7]: {per}")
    print("\npublished anchors (different cohorts and definitions; context, not a like-for-like comparison):")
    for a, b in ANCHORS:
        print(f"  {a}: {b}")


if __name__ == "__main__":
    main()
