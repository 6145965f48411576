"""Wearable-only vs early vs late EHR fusion on a simulated cohort (participant-grouped CV).

One feature pass over the cohort (the shared feature pipeline), then K folds with
whole participants held out. In each fold, on the training participants:

- ``wearable``: LightGBM on the wearable model features (the `lightgbm` detector);
- ``early``: LightGBM on wearable + EHR features (:data:`detectors.fusion.EARLY_FEATURES`);
- ``late``: the wearable model's score and the EHR prior through the logistic model of
  :mod:`detectors.fusion`, fitted on inner out-of-fold wearable scores (3 inner folds).

Every day of the held-out participants is scored (out-of-fold), alert thresholds are
the pooled out-of-fold negative-day quantiles (97 % / 99.5 % specificity) and the
alert policy and evaluation are the replay's own (:mod:`detectors.policy`,
:mod:`detectors.evaluation`): AUROC, sensitivity at 90 % specificity, early detection
rate, false alert days per month, with 95 % bootstrap CIs over participants; Brier
score (labelled days) with CI; reliability (10 bins); per subgroup (age band, sex)
and by EHR presence; training and scoring time.

Run: ``.venv/bin/python bench/fusion_compare.py --participants 2000 --days 120 --seed 11``
(``--cohort DIR`` to use an existing simulated cohort).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from detectors.base import Score
from detectors.evaluation import ParticipantDays, evaluate
from detectors.fusion import (
    ehr_matrix,
    fit_late,
    late_design,
    wearable_available,
)
from detectors.models import fit_model, predict_proba_many
from detectors.pipeline import PipelineParams
from detectors.policy import AlertPolicy
from detectors.training import choose_thresholds, day_labels
from streams.cohort import Cohort
from streams.importers.ehr_facts import read_facts
from streams.replay import age_band, local_day
from streams.train import cohort_rows

STRATEGIES = ("wearable", "early", "late")


def features(cohort: Cohort):
    healthy = bool(cohort.manifest.get("unlabelled_healthy", False))
    facts: dict[str, list] = {}
    for f in read_facts(cohort.path):
        facts.setdefault(f.participant_id, []).append(f)
    out = []
    for p, rows in cohort_rows(cohort, PipelineParams()):
        if not rows:
            continue
        ref = p.reference_date
        rd = local_day(ref) if ref else None
        days = np.array([r.day for r in rows], dtype=np.int64)
        out.append({
            "pid": p.participant_id,
            "day": days,
            "x": np.vstack([r.x for r in rows]),
            "e": ehr_matrix(facts.get(p.participant_id, []), rows),
            "w": wearable_available(rows),
            "mon": np.array([r.values.get("hr_capture", 0.0) > 0 for r in rows]),
            "y": day_labels(days, rd, healthy=healthy),
            "ref": rd,
            "sub": {"age_band": age_band(p.ehr.get("age")), "sex": p.ehr.get("sex")},
            "has_ehr": bool(p.participant_id in facts),
        })
    return out


def stack(parts, key, labelled=False):
    if labelled:
        return np.concatenate([q[key][q["y"] >= 0] for q in parts])
    return np.concatenate([q[key] for q in parts])


def fold_ids(n: int, k: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.permutation(np.arange(n) % k)


def run_fold(train, test, seed: int, timing: dict) -> dict[str, list[np.ndarray]]:
    Xw, E, W, y = (stack(train, k, True) for k in ("x", "e", "w", "y"))
    out: dict[str, list[np.ndarray]] = {}
    t = time.perf_counter()
    mw = fit_model("lightgbm", Xw, y, seed=seed)
    timing["train_wearable"] += time.perf_counter() - t
    t = time.perf_counter()
    me = fit_model("lightgbm", np.hstack([Xw, E]), y, seed=seed)
    timing["train_early"] += time.perf_counter() - t
    t = time.perf_counter()
    inner = fold_ids(len(train), 3, seed + 7)
    oof = []
    for k in range(3):
        tr = [q for q, f in zip(train, inner, strict=True) if f != k]
        te = [q for q, f in zip(train, inner, strict=True) if f == k]
        m = fit_model("lightgbm", stack(tr, "x", True), stack(tr, "y", True), seed=seed)
        oof.append((te, predict_proba_many("lightgbm", m, stack(te, "x", True))))
    s_in = np.concatenate([s for _, s in oof])
    te_all = [q for te, _ in oof for q in te]
    D = late_design(s_in, stack(te_all, "w", True), stack(te_all, "e", True))
    b0, b = fit_late(D, stack(te_all, "y", True))
    timing["train_late"] += time.perf_counter() - t  # inner CV + logistic; its wearable model is added at the end
    for q in test:
        t = time.perf_counter()
        sw = predict_proba_many("lightgbm", mw, q["x"])
        timing["score_wearable"] += time.perf_counter() - t
        t = time.perf_counter()
        se = predict_proba_many("lightgbm", me, np.hstack([q["x"], q["e"]]))
        timing["score_early"] += time.perf_counter() - t
        t = time.perf_counter()
        sl = 0.5 * (1 + np.tanh(0.5 * (b0 + late_design(sw, q["w"], q["e"]) @ b)))
        timing["score_late"] += time.perf_counter() - t
        out.setdefault("wearable", []).append(sw)
        out.setdefault("early", []).append(se)
        out.setdefault("late", []).append(sl)
    out["late_coef"] = [np.concatenate([[b0], b])]
    return out


def brier_ci(parts, scores, n_boot: int, seed: int) -> tuple[float, list[float]]:
    per = [(float(np.sum((s[q["y"] >= 0] - q["y"][q["y"] >= 0]) ** 2)), int((q["y"] >= 0).sum())) for q, s in zip(parts, scores, strict=True)]
    sse = np.array([a for a, _ in per])
    n = np.array([b for _, b in per])
    est = sse.sum() / n.sum()
    rng = np.random.default_rng(seed)
    draws = []
    for _ in range(n_boot):
        i = rng.integers(0, len(per), len(per))
        draws.append(sse[i].sum() / max(n[i].sum(), 1))
    return est, [float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))]


def reliability(parts, scores, bins: int = 10) -> list[tuple[float, float, int]]:
    s = np.concatenate([sc[q["y"] >= 0] for q, sc in zip(parts, scores, strict=True)])
    y = np.concatenate([q["y"][q["y"] >= 0] for q in parts])
    edges = np.quantile(s, np.linspace(0, 1, bins + 1))
    idx = np.clip(np.searchsorted(edges, s, side="right") - 1, 0, bins - 1)
    return [(float(s[idx == k].mean()), float(y[idx == k].mean()), int((idx == k).sum())) for k in range(bins) if (idx == k).any()]


def pdays(parts, scores, thresholds) -> list[ParticipantDays]:
    pol = AlertPolicy(thresholds=thresholds)
    out = []
    for q, s in zip(parts, scores, strict=True):
        st = pol.new_state()
        lv = np.array([pol.decide(st, int(d), Score(float(v))).level for d, v in zip(q["day"], s, strict=True)])
        out.append(ParticipantDays(q["pid"], q["day"], s, lv, q["mon"], q["ref"], q["sub"]))
    return out


def fmt(v, ci=None, pct=False):
    if v is None or (isinstance(v, float) and not np.isfinite(v)):
        return "n/a"
    f = (lambda x: f"{100 * x:.1f}%") if pct else (lambda x: f"{x:.3f}")
    return f"{f(v)} [{f(ci[0])}, {f(ci[1])}]" if ci else f(v)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--participants", type=int, default=2000)
    ap.add_argument("--days", type=int, default=120)
    ap.add_argument("--seed", type=int, default=11)
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--bootstrap", type=int, default=200)
    ap.add_argument("--cohort", type=Path, default=None, help="use this simulated cohort instead of simulating")
    args = ap.parse_args()
    tmp = None
    t0 = time.perf_counter()
    if args.cohort is None:
        from streams.simulate import simulate_cohort

        tmp = tempfile.TemporaryDirectory(prefix="fusion_compare_")
        path = simulate_cohort(Path(tmp.name) / "sim", participants=args.participants, days=args.days, seed=args.seed)
        print(f"simulated {args.participants} participants x {args.days} days (seed {args.seed}) in {time.perf_counter() - t0:.0f} s")
    else:
        path = args.cohort
    cohort = Cohort(path)
    t = time.perf_counter()
    parts = features(cohort)
    print(f"features: {len(parts)} participants, {sum(q['day'].size for q in parts)} participant-days in {time.perf_counter() - t:.0f} s")
    has = np.array([q["has_ehr"] for q in parts])
    lab = np.array([q["ref"] is not None for q in parts])
    print(f"EHR: {has.mean():.1%} of participants have EHR facts; labelled (infected, symptomatic): {lab.sum()}")
    folds = fold_ids(len(parts), args.folds, args.seed)
    scores = {s: [None] * len(parts) for s in STRATEGIES}
    timing = dict.fromkeys(["train_wearable", "train_early", "train_late", "score_wearable", "score_early", "score_late"], 0.0)
    coefs = []
    for k in range(args.folds):
        tr = [q for q, f in zip(parts, folds, strict=True) if f != k]
        te_idx = np.flatnonzero(folds == k)
        res = run_fold(tr, [parts[i] for i in te_idx], args.seed + k, timing)
        coefs.append(res.pop("late_coef")[0])
        for s in STRATEGIES:
            for i, v in zip(te_idx, res[s], strict=True):
                scores[s][i] = v
        print(f"fold {k + 1}/{args.folds} done ({time.perf_counter() - t0:.0f} s)", flush=True)
    timing["train_late"] += timing["train_wearable"]  # late includes its wearable model
    timing["score_late"] += timing["score_wearable"]
    days_total = sum(q["day"].size for q in parts)
    y_all = np.concatenate([q["y"] for q in parts])
    results = {}
    for s in STRATEGIES:
        oof = np.concatenate(scores[s])
        th = choose_thresholds(oof, y_all)
        pd_ = pdays(parts, scores[s], th)
        ev = evaluate(pd_, n_boot=args.bootstrap, seed=args.seed)
        br, brci = brier_ci(parts, scores[s], args.bootstrap, args.seed)
        ev_e = evaluate([p for p, h in zip(pd_, has, strict=True) if h], n_boot=0)
        ev_n = evaluate([p for p, h in zip(pd_, has, strict=True) if not h], n_boot=0)
        results[s] = (ev, br, brci, ev_e, ev_n, reliability(parts, scores[s]), th)

    print(f"\n== overall (participant-grouped {args.folds}-fold CV, out-of-fold; 95% bootstrap CI over participants)")
    print(f"{'strategy':9s} {'AUROC':24s} {'sens@90%spec':24s} {'early detection':26s} {'false alert d/month':24s} {'Brier':24s}")
    for s in STRATEGIES:
        ev, br, brci, *_ = results[s]
        ci = ev.get("ci95", {})
        print(f"{s:9s} {fmt(ev['auroc'], ci.get('auroc')):24s} {fmt(ev['sens_at_90_spec'], ci.get('sens_at_90_spec')):24s} "
              f"{fmt(ev['early_detection_rate'], ci.get('early_detection_rate'), True):26s} "
              f"{fmt(ev['false_alert_days_per_month'], ci.get('false_alert_days_per_month')):24s} {fmt(br, brci)}")
    print("\n== by EHR presence (AUROC / early detection / false alert d/month)")
    for s in STRATEGIES:
        _, _, _, ee, en, _, _ = results[s]
        print(f"{s:9s} with EHR ({ee['participants']}): {fmt(ee['auroc'])} / {fmt(ee['early_detection_rate'], pct=True)} / "
              f"{fmt(ee['false_alert_days_per_month'])}   without EHR ({en['participants']}): {fmt(en['auroc'])} / "
              f"{fmt(en['early_detection_rate'], pct=True)} / {fmt(en['false_alert_days_per_month'])}")
    print("\n== per subgroup (AUROC / early detection)")
    groups = sorted(results["wearable"][0].get("subgroups", {}))
    for g in groups:
        line = f"{g:18s}"
        for s in STRATEGIES:
            f = results[s][0]["subgroups"][g]
            line += f"  {s}: {fmt(f['auroc'])} / {fmt(f['early_detection_rate'], pct=True)} (n={f['labelled']})"
        print(line)
    print("\n== reliability (mean predicted -> observed positive rate, labelled days, 10 quantile bins)")
    for s in STRATEGIES:
        rel = results[s][5]
        print(f"{s:9s} " + "  ".join(f"{a:.3f}->{b:.3f}" for a, b, _ in rel))
    c = np.mean(coefs, axis=0)
    print(f"\nlate-fusion logistic (mean over folds): intercept {c[0]:.3f}; w*logit(score) {c[1]:.3f}, w {c[2]:.3f}, "
          f"has_ehr*prior_logodds {c[3]:.3f}, has_ehr {c[4]:.3f}")
    print("\n== time (all folds, 1 thread)")
    for s in STRATEGIES:
        tr, sc = timing[f"train_{s}"], timing[f"score_{s}"]
        print(f"{s:9s} train {tr:7.1f} s   score {sc:6.2f} s ({days_total / max(sc, 1e-9):,.0f} participant-days/s)")
    print(f"time ratio late/wearable training {timing['train_late'] / timing['train_wearable']:.1f}x, "
          f"early/wearable {timing['train_early'] / timing['train_wearable']:.1f}x")
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
