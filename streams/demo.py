"""`prodromal demo`: the main job on the embedded default, end to end, no servers.

Simulates a training cohort and a separate test cohort (different participants,
so the evaluation holds whole participants out), trains LightGBM with
participant-grouped cross-validation, replays the test cohort through every
reference and learned detector, and prints one comparison table. Every run
folder can then be opened with `prodromal dashboard` or `prodromal report`.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["run_demo"]

DETECTORS = ("nightsignal", "cusum", "online", "lightgbm")


def run_demo(out: str | Path, participants: int = 120, test_participants: int = 80, days: int = 120, seed: int = 7,
             say=print, progress_factory=None) -> dict:
    from streams.registry import make_detector
    from streams.replay import replay
    from streams.simulate import simulate_cohort
    from streams.train import train

    out = Path(out)
    bar = progress_factory or (lambda n, label: (_Null(), lambda *_: None))
    say(f"simulating a training cohort ({participants} participants x {days} days, seed {seed}) "
        f"and a test cohort ({test_participants} x {days}, seed {seed + 1})")
    ctx, adv = bar(participants, "simulate train")
    with ctx:
        train_c = simulate_cohort(out / "cohorts" / "train", participants=participants, days=days, seed=seed,
                                  progress=adv)
    ctx, adv = bar(test_participants, "simulate test")
    with ctx:
        test_c = simulate_cohort(out / "cohorts" / "test", participants=test_participants, days=days, seed=seed + 1,
                                 progress=adv)
    ctx, adv = bar(participants, "train lightgbm")
    with ctx:
        tr = train(train_c, "lightgbm", out / "models" / "lightgbm", seed=seed, threads=2, progress=adv)
    cv = tr.cv
    say(f"lightgbm: participant-grouped {cv['folds']}-fold CV AUROC {cv['auroc']:.3f}, "
        f"sensitivity at 95% specificity {cv['sens_at_95_spec']:.2f} ({tr.seconds:.1f} s)")
    results = {}
    for name in DETECTORS:
        det = make_detector(name, out / "models" / "lightgbm" if name == "lightgbm" else None)
        ctx, adv = bar(test_participants, f"replay {name}")
        with ctx:
            r = replay(test_c, det, out / "runs" / name, n_boot=200, progress=adv)
        results[name] = r
    say("")
    say(f"held-out test cohort: {test_participants} participants, evaluation as defined in the README")
    hdr = f"{'detector':<12}{'early det.':>12}{'median lead':>13}{'false alerts/mo':>17}{'AUROC':>8}{'alert days':>12}"
    say(hdr)
    say("-" * len(hdr))
    for name, r in results.items():
        ev = r.evaluation
        edr = "n/a" if ev["early_detection_rate"] is None else f"{ev['detected_early']}/{ev['labelled']} {100 * ev['early_detection_rate']:.0f}%"
        lead = "n/a" if ev["median_lead_days"] is None else f"{ev['median_lead_days']:.1f} d"
        fa = "n/a" if ev["false_alert_days_per_month"] is None else f"{ev['false_alert_days_per_month']:.2f}"
        au = "n/a" if ev["auroc"] is None else f"{ev['auroc']:.3f}"
        say(f"{name:<12}{edr:>12}{lead:>13}{fa:>17}{au:>8}{r.alerts:>12}")
    say("")
    say(f"run folders: {out / 'runs'}/<detector> (alerts.csv, scores.csv, features.csv, points.lp, evaluation.json)")
    return {k: v.evaluation for k, v in results.items()}


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *a):
        return False
