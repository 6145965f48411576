"""``prodromal report``: a replay's evaluation as one self-contained HTML file with PNG figures.

Figures (matplotlib, Agg, embedded as base64 PNG): per-participant timelines (nightly resting HR
with the personal baseline band, alert nights, symptom onset and diagnosis), the day-level ROC
curve with a participant-bootstrap confidence band, the lead-time distribution, false-alert days
per participant-month by calendar month; tables: headline figures with 95 % CIs, per subgroup
(age band, sex; "not recorded" shown as its own row); and a methods paragraph generated from
``run.json`` to paste into a paper.

Definitions are those of :mod:`detectors.evaluation` (reference day R = symptom onset, else
diagnosis): positive days ``[R-7, R+14]``, negative days outside ``[R-21, R+28]`` (and every day
of unlabelled participants when the cohort declares them healthy), monitored days only.

The same run folder always gives a byte-identical file: no wall-clock time, sorted iteration,
PNG metadata stripped, fixed bootstrap seed.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import html
import io
import json
import math
from pathlib import Path

import numpy as np

from detectors.evaluation import EXCLUDE, ILLNESS, ParticipantDays, auroc, evaluate

__all__ = ["write_report", "render_report", "methods_paragraph", "ReportError", "roc_band"]

EPOCH = dt.date(1970, 1, 1)
NOT_RECORDED = "not recorded"
COLORS = {"rhr": "#c0392b", "band": "#b8c2cc", "base": "#7f8c8d", "yellow": "#e6b800", "red": "#d63031",
          "onset": "#7b3fa0", "diag": "#1f6f8b", "main": "#243b53"}


class ReportError(ValueError):
    """The run folder cannot be reported on (missing or malformed file)."""


def _num(s) -> float:
    try:
        v = float(s)
    except (TypeError, ValueError):
        return math.nan
    return v


def _day(text: str) -> int | None:
    return (dt.date.fromisoformat(text) - EPOCH).days if text else None


def _date(day: int) -> dt.date:
    return EPOCH + dt.timedelta(days=int(day))


def _age_band(age) -> str:
    a = _num(age)
    if not math.isfinite(a):
        return NOT_RECORDED
    return "<30" if a < 30 else "30-44" if a < 45 else "45-59" if a < 60 else "60+"


def load_run(run_dir: str | Path) -> dict:
    """Read a run folder into per-participant arrays (sorted by participant id, then day)."""
    run_dir = Path(run_dir)
    need = ("run.json", "evaluation.json", "scores.csv", "features.csv", "participants.csv")
    for f in need:
        if not (run_dir / f).is_file():
            raise ReportError(f"{run_dir}: {f} missing (not a replay run folder; run `prodromal replay ... --out DIR`)")
    try:
        run = json.loads((run_dir / "run.json").read_text(encoding="utf-8"))
        ev = json.loads((run_dir / "evaluation.json").read_text(encoding="utf-8"))
    except ValueError as e:
        raise ReportError(f"{run_dir}: bad JSON ({e})") from None
    people: dict[str, dict] = {}
    with open(run_dir / "participants.csv", newline="", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            sex = (row.get("sex") or "").strip() or NOT_RECORDED
            people[row["participant_id"]] = {"onset": _day(row.get("symptom_onset_date", "")),
                                             "diagnosis": _day(row.get("diagnosis_date", "")),
                                             "age_band": _age_band(row.get("age")), "sex": sex, "rows": {}}
    for fname, cols in (("scores.csv", ("score", "level")),
                        ("features.csv", ("hr_capture", "rhr_ns_bpm", "rhr_ns_bpm_base", "rhr_ns_bpm_spread"))):
        with open(run_dir / fname, newline="", encoding="utf-8") as fh:
            for i, row in enumerate(csv.DictReader(fh), start=2):
                try:
                    p = people.setdefault(row["participant_id"], {"onset": None, "diagnosis": None, "age_band": NOT_RECORDED,
                                                                  "sex": NOT_RECORDED, "rows": {}})
                    p["rows"].setdefault(_day(row["date"]), {}).update({c: _num(row.get(c)) for c in cols})
                except (KeyError, ValueError) as e:
                    raise ReportError(f"{run_dir / fname} line {i}: bad row ({e})") from None
    for p in people.values():
        days = sorted(p["rows"])
        p["day"] = np.array(days, dtype=np.int64)
        for c in ("score", "level", "hr_capture", "rhr_ns_bpm", "rhr_ns_bpm_base", "rhr_ns_bpm_spread"):
            p[c] = np.array([p["rows"][d].get(c, math.nan) for d in days], dtype=float)
        del p["rows"]
    return {"run": run, "evaluation": ev, "people": dict(sorted(people.items())), "path": run_dir}


def _parts(data: dict) -> list[ParticipantDays]:
    """ParticipantDays for evaluation, with the replay's inclusion rule."""
    healthy = bool(data["evaluation"].get("unlabelled_healthy"))
    out = []
    for pid, p in data["people"].items():
        ref = p["onset"] if p["onset"] is not None else p["diagnosis"]
        if ref is None and not healthy:
            continue
        lvl = np.nan_to_num(p["level"], nan=0).astype(np.int64)
        cap = np.nan_to_num(p["hr_capture"], nan=0.0)
        out.append(ParticipantDays(pid, p["day"], p["score"], lvl, cap > 0, ref,
                                   {"age_band": p["age_band"], "sex": p["sex"]}))
    return out


def _pos_neg(parts: list[ParticipantDays]) -> list[tuple[np.ndarray, np.ndarray]]:
    res = []
    for p in parts:
        fin = np.isfinite(p.score) & p.monitored
        if p.reference_day is None:
            res.append((p.score[:0], p.score[fin]))
            continue
        rel = p.day - p.reference_day
        ill = fin & (rel >= ILLNESS[0]) & (rel <= ILLNESS[1])
        out = fin & ((rel < EXCLUDE[0]) | (rel > EXCLUDE[1]))
        res.append((p.score[ill], p.score[out]))
    return res


def _roc(pos: np.ndarray, neg: np.ndarray, grid: np.ndarray) -> np.ndarray:
    """TPR at each FPR of ``grid`` (step curve, alerts when score >= threshold)."""
    thr = np.unique(np.concatenate([pos, neg]))[::-1]
    tpr = np.concatenate([[0.0], [(pos >= t).mean() for t in thr]])
    fpr = np.concatenate([[0.0], [(neg >= t).mean() for t in thr]])
    return np.interp(grid, fpr, tpr)


def roc_band(parts: list[ParticipantDays], n_boot: int = 200, seed: int = 0) -> dict | None:
    """Day-level ROC and a 95 % percentile band from resampling participants; None without both classes."""
    pn = _pos_neg(parts)
    pos = np.concatenate([a for a, _ in pn]) if pn else np.array([])
    neg = np.concatenate([b for _, b in pn]) if pn else np.array([])
    if pos.size == 0 or neg.size == 0:
        return None
    grid = np.linspace(0, 1, 101)
    curves, aucs = [], []
    rng = np.random.default_rng(seed)
    for _ in range(n_boot):
        idx = rng.integers(0, len(pn), len(pn))
        bp = np.concatenate([pn[i][0] for i in idx])
        bn = np.concatenate([pn[i][1] for i in idx])
        if bp.size and bn.size:
            curves.append(_roc(bp, bn, grid))
            aucs.append(auroc(bp, bn))
    band = np.percentile(np.array(curves), [2.5, 97.5], axis=0) if len(curves) >= 10 else None
    return {"fpr": grid, "tpr": _roc(pos, neg, grid), "band": band, "auroc": auroc(pos, neg), "n_pos": int(pos.size),
            "n_neg": int(neg.size), "auroc_ci": [float(np.percentile(aucs, 2.5)), float(np.percentile(aucs, 97.5))] if len(aucs) >= 10 else None}


# ---- figures ---------------------------------------------------------------------------------------
def _mpl():
    import matplotlib  # noqa: PLC0415 - keep `prodromal --help` free of matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    matplotlib.rcParams.update({"svg.hashsalt": "prodromal", "font.size": 9, "axes.spines.top": False,
                                "axes.spines.right": False, "axes.titlesize": 10, "figure.dpi": 100})
    return plt


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, metadata={"Software": None}, bbox_inches="tight", pad_inches=0.15)
    fig.clf()
    _mpl().close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


def _dates(days: np.ndarray):
    import matplotlib.dates as mdates  # noqa: PLC0415

    return mdates.date2num([_date(d) for d in days])


def fig_timelines(data: dict, alerts: dict[str, list[tuple[int, str]]], pids: list[str]) -> str:
    import matplotlib.dates as mdates  # noqa: PLC0415

    plt = _mpl()
    ncol = 2 if len(pids) > 1 else 1
    nrow = max(1, math.ceil(len(pids) / ncol))
    fig, axes = plt.subplots(nrow, ncol, figsize=(6.2 * ncol, 1.9 * nrow), squeeze=False)
    for ax in axes.flat[len(pids):]:
        ax.set_visible(False)
    for ax, pid in zip(axes.flat, pids, strict=False):
        p = data["people"][pid]
        x = _dates(p["day"])
        lo, hi = p["rhr_ns_bpm_base"] - 2 * p["rhr_ns_bpm_spread"], p["rhr_ns_bpm_base"] + 2 * p["rhr_ns_bpm_spread"]
        for d, lvl in alerts.get(pid, []):
            ax.axvspan(_dates([d])[0] - 0.5, _dates([d])[0] + 0.5, color=COLORS[lvl if lvl in COLORS else "yellow"],
                       alpha=0.35, lw=0)
        ax.fill_between(x, lo, hi, color=COLORS["band"], alpha=0.6, lw=0, label="baseline ± 2 SD")
        ax.plot(x, p["rhr_ns_bpm_base"], color=COLORS["base"], lw=0.9, ls="--", label="baseline")
        ax.plot(x, p["rhr_ns_bpm"], color=COLORS["rhr"], lw=1.3, label="resting HR")
        for key, col, name in (("onset", "onset", "symptom onset"), ("diagnosis", "diag", "diagnosis")):
            if p[key] is not None:
                ax.axvline(_dates([p[key]])[0], color=COLORS[col], ls="--" if key == "onset" else ":", lw=1.4, label=name)
        ax.set_title(f"{pid}  ({len(alerts.get(pid, []))} alert nights)", loc="left")
        ax.set_ylabel("bpm")
        ax.xaxis.set_major_locator(mdates.MonthLocator())
        ax.xaxis.set_major_formatter(mdates.DateFormatter("%b %Y"))
    handles, labels = axes.flat[0].get_legend_handles_labels()
    from matplotlib.patches import Patch  # noqa: PLC0415

    handles += [Patch(color=COLORS["yellow"], alpha=0.35), Patch(color=COLORS["red"], alpha=0.35)]
    labels += ["yellow alert", "red alert"]
    seen = dict(zip(labels, handles, strict=True))
    fig.legend(list(seen.values()), list(seen), loc="upper center", ncol=len(seen), frameon=False, bbox_to_anchor=(0.5, 1.0))
    fig.tight_layout(rect=(0, 0, 1, 1 - 0.35 / (1.9 * nrow)))
    return _png(fig)


def fig_roc(roc: dict, detector: str) -> str:
    plt = _mpl()
    fig, ax = plt.subplots(figsize=(4.6, 4.2))
    if roc["band"] is not None:
        ax.fill_between(roc["fpr"], roc["band"][0], roc["band"][1], color=COLORS["main"], alpha=0.18, lw=0,
                        label="95 % band (bootstrap over participants)")
    ci = f" ({roc['auroc_ci'][0]:.2f}-{roc['auroc_ci'][1]:.2f})" if roc["auroc_ci"] else ""
    ax.plot(roc["fpr"], roc["tpr"], color=COLORS["main"], lw=2, label=f"{detector}: AUROC {roc['auroc']:.2f}{ci}")
    ax.plot([0, 1], [0, 1], color="#999", lw=0.8, ls=":")
    ax.set_xlabel("false positive rate (1 - specificity), days")
    ax.set_ylabel("true positive rate (sensitivity), days")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1.01)
    ax.legend(loc="lower right", fontsize=8, frameon=False)
    ax.set_title(f"Day-level ROC ({roc['n_pos']} illness days, {roc['n_neg']} healthy days)", loc="left")
    return _png(fig)


def fig_lead(leads: list[int], median: float | None) -> str:
    plt = _mpl()
    fig, ax = plt.subplots(figsize=(4.8, 3.2))
    if leads:
        lo, hi = min(min(leads), -7), max(max(leads), 10)
        ax.hist(leads, bins=np.arange(lo - 0.5, hi + 1.5), color=COLORS["main"], alpha=0.85, rwidth=0.85)
        if median is not None:
            ax.axvline(median, color=COLORS["red"], lw=1.5, ls="--", label=f"median {median:g} days")
            ax.legend(frameon=False, fontsize=8)
        ax.axvline(0, color=COLORS["onset"], lw=1, ls=":")
    else:
        ax.text(0.5, 0.5, "no alert within [R-10, R+7] of any labelled participant", ha="center", va="center",
                transform=ax.transAxes, color="#777")
    ax.set_xlabel("lead time: days before symptom onset (negative = after)")
    ax.set_ylabel("participants")
    ax.yaxis.get_major_locator().set_params(integer=True)
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_title(f"Lead time of the first alert (n = {len(leads)})", loc="left")
    return _png(fig)


def false_alerts_by_month(parts: list[ParticipantDays]) -> list[tuple[str, int, int]]:
    """(YYYY-MM, false-alert days, monitored days outside illness) per calendar month, sorted."""
    acc: dict[str, list[int]] = {}
    for p in parts:
        rel = p.day - p.reference_day if p.reference_day is not None else None
        out = p.monitored if rel is None else p.monitored & ((rel < EXCLUDE[0]) | (rel > EXCLUDE[1]))
        for d, o, lv in zip(p.day, out, p.level, strict=True):
            if o:
                a = acc.setdefault(_date(d).strftime("%Y-%m"), [0, 0])
                a[0] += int(lv > 0)
                a[1] += 1
    return [(m, a[0], a[1]) for m, a in sorted(acc.items())]


def fig_false_alerts(months: list[tuple[str, int, int]]) -> str:
    plt = _mpl()
    fig, ax = plt.subplots(figsize=(max(4.8, 0.55 * len(months) + 1.5), 3.2))
    if months:
        rate = [30.0 * fa / mon for _, fa, mon in months]
        bars = ax.bar(range(len(months)), rate, color=COLORS["yellow"], edgecolor="#8a6d00", lw=0.6)
        for b, (_, fa, mon) in zip(bars, months, strict=True):
            ax.text(b.get_x() + b.get_width() / 2, b.get_height(), f"{fa}/{mon}", ha="center", va="bottom", fontsize=7, color="#555")
        ax.set_xticks(range(len(months)), [m for m, _, _ in months], rotation=45, ha="right")
    else:
        ax.text(0.5, 0.5, "no monitored days outside illness windows", ha="center", va="center", transform=ax.transAxes)
    ax.set_ylabel("false-alert days per 30 days")
    ax.set_title("False-alert days per participant-month (labels: alert days / monitored days)", loc="left")
    return _png(fig)


# ---- text and tables ---------------------------------------------------------------------------------
def _fmt(v, pct: bool = False, nd: int = 2) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{100 * v:.0f} %" if pct else f"{v:.{nd}f}".rstrip("0").rstrip(".") if isinstance(v, float) else str(v)


def _ci(ev: dict, key: str, pct: bool = False, bare: bool = False) -> str:
    ci = (ev.get("ci95") or {}).get(key)
    if not ci:
        return ""
    text = f"{_fmt(ci[0], pct)} to {_fmt(ci[1], pct)}"
    return text if bare else f" (95 % CI {text})"


def _kv(d: dict, skip: tuple = ()) -> str:
    return ", ".join(f"{k} = {v}" for k, v in sorted(d.items()) if k not in skip and v is not None)


def methods_paragraph(run: dict, ev: dict) -> str:
    """A paragraph describing data, pipeline, detector, alert policy and evaluation, from ``run.json``."""
    det = run.get("detector") or {}
    name = det.get("detector", "?") if isinstance(det, dict) else str(det)
    pipe, pol, win = run.get("pipeline") or {}, run.get("policy") or {}, run.get("evaluation_windows") or {}
    thr = [t for t in pol.get("thresholds", []) if t is not None]
    budget = pol.get("budget_per_30d")
    rule = f" ({det['rule']})" if isinstance(det, dict) and det.get("rule") else ""
    ill, early, lead, exc = (win.get(k, d) for k, d in (("illness", ILLNESS), ("early", (-10, 0)), ("lead", (-10, 7)), ("excluded_for_false_alerts", EXCLUDE)))
    boot = ev.get("bootstrap") or {}
    s = [
        f"We replayed the {run.get('cohort', '?')} cohort (source: {run.get('cohort_source') or 'not recorded'}; "
        f"{run.get('participants', '?')} participants, {run.get('participant_days', '?')} participant-days, "
        f"{run.get('samples', '?')} wearable samples read, {run.get('samples_dropped', 0)} dropped at reading as missing or "
        f"implausible) through the "
        f"prodromal in-process pipeline, which uses the same operators as the streaming workers and only data available "
        f"up to each night (causal).",
        f"Nightly features were compared with each participant's own baseline: the median and a robust standard deviation "
        f"of the previous {pipe.get('baseline_window_days', '?')} days, used once at least {pipe.get('baseline_min_days', '?')} days "
        f"were available (feature pipeline version {pipe.get('version', '?')}; settings: {_kv(pipe, ('version',))}).",
        f"The {name} detector{rule} scored each night ({_kv(det, ('detector', 'rule')) or 'default settings'}); an alert "
        f"policy turned scores into yellow/red alert nights at thresholds {', '.join(_fmt(float(t)) for t in thr) or 'n/a'} "
        f"after {pol.get('consecutive', 1)} consecutive night(s) above threshold, "
        f"{f'with at most {budget} alert days per participant per 30 days' if budget else 'without an alert budget'}.",
        f"The reference day R was the symptom-onset date, or the diagnosis date when onset was unknown. An infection counted "
        f"as detected early when the first alert fell in [R{early[0]:+d}, R{early[1]:+d}] days; lead time was R minus the day of "
        f"the first alert in [R{lead[0]:+d}, R{lead[1]:+d}]; false-alert days were alert days outside [R{exc[0]:+d}, R{exc[1]:+d}] "
        f"(every day for participants without infection) per 30 monitored days; for the day-level ROC, days in "
        f"[R{ill[0]:+d}, R{ill[1]:+d}] were positive and monitored days outside [R{exc[0]:+d}, R{exc[1]:+d}] negative."
        + (" Participants without labels were treated as healthy." if ev.get("unlabelled_healthy") else
           " Participants without labels were left out of label-based figures."),
        f"Confidence intervals are 2.5-97.5 percentiles of {boot.get('resamples', 'n/a')} bootstrap resamples of participants "
        f"(seed {boot.get('seed', 'n/a')}).",
        f"Of {ev.get('labelled', 0)} labelled participants, {ev.get('detected_early', 0)} were detected early "
        f"({_fmt(ev.get('early_detection_rate'), True)}{', 95 % CI ' + _ci(ev, 'early_detection_rate', True, bare=True) if _ci(ev, 'early_detection_rate', True) else ''}); the median lead time was "
        f"{_fmt(ev.get('median_lead_days'))} days{_ci(ev, 'median_lead_days')}; there were "
        f"{_fmt(ev.get('false_alert_days_per_month'))} false-alert days per participant-month{_ci(ev, 'false_alert_days_per_month')}"
        + (f"; the day-level AUROC was {_fmt(ev.get('auroc'))}{_ci(ev, 'auroc')}." if ev.get("auroc") is not None else "."),
    ]
    return " ".join(s)


def _table(head: list[str], rows: list[list[str]], cls: str = "") -> str:
    h = "".join(f"<th>{html.escape(c)}</th>" for c in head)
    b = "".join("<tr>" + "".join(f"<td>{html.escape(str(c))}</td>" for c in r) + "</tr>" for r in rows)
    return f'<table class="{cls}"><thead><tr>{h}</tr></thead><tbody>{b}</tbody></table>'


def _subgroup_rows(ev_all: dict, sub: dict) -> list[list[str]]:
    def row(name, f):
        return [name, f["participants"], f["labelled"], f"{f['detected_early']}/{f['labelled']}",
                _fmt(f["early_detection_rate"], True), _fmt(f["median_lead_days"]),
                _fmt(f["false_alert_days_per_month"]), f["monitored_days_outside_illness"], _fmt(f["auroc"])]

    rows = [row("all", ev_all)]
    order = {"<30": 0, "30-44": 1, "45-59": 2, "60+": 3, NOT_RECORDED: 9}
    for key, label in (("age_band", "age"), ("sex", "sex")):
        groups = sorted((k.split("=", 1)[1] for k in sub if k.startswith(key + "=")), key=lambda v: (order.get(v, 5), v))
        rows += [row(f"{label} {g}", sub[f"{key}={g}"]) for g in groups]
    return rows


CSS = """body{font:15px/1.5 "DejaVu Sans",system-ui,sans-serif;color:#1f2933;max-width:1100px;margin:24px auto;padding:0 20px}
h1{font-size:24px;margin-bottom:2px}h2{font-size:18px;margin-top:30px;border-bottom:1px solid #e4e7eb;padding-bottom:4px}
.sub{color:#616e7c}table{border-collapse:collapse;margin:8px 0;font-size:13px}th,td{padding:4px 10px;border-bottom:1px solid #e4e7eb;text-align:left}
th{color:#616e7c;font-weight:600}td:not(:first-child){font-variant-numeric:tabular-nums}img{max-width:100%}
.methods{background:#f5f7fa;border-left:4px solid #243b53;padding:10px 16px}figure{margin:10px 0 22px}figcaption{color:#616e7c;font-size:13px}
.row{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}.row figure{flex:1 1 45%;min-width:380px}"""


def render_report(run_dir: str | Path, max_timelines: int = 24, n_boot: int = 200) -> str:
    """The report as an HTML string (deterministic for a given run folder)."""
    data = load_run(run_dir)
    run, ev = data["run"], data["evaluation"]
    det = run.get("detector") or {}
    name = det.get("detector", "?") if isinstance(det, dict) else str(det)
    parts = _parts(data)
    scoring = name != "nightsignal"  # as the replay: NightSignal is a rule, its figures are alert-based
    ev_sub = evaluate(parts, scoring=scoring, n_boot=0) if parts else {}
    alerts = {pid: [(int(d), "red" if lv >= 2 else "yellow") for d, lv in zip(p["day"], p["level"], strict=True) if lv > 0]
              for pid, p in data["people"].items()}
    labelled = [pid for pid, p in data["people"].items() if p["onset"] is not None or p["diagnosis"] is not None]
    order = labelled + [pid for pid in data["people"] if pid not in labelled]
    shown = [pid for pid in order if data["people"][pid]["day"].size][:max_timelines]
    figs = []
    if shown:
        figs.append(("timelines", fig_timelines(data, alerts, shown),
                     f"Nightly resting heart rate (red) against each participant's own baseline (dashed; grey band ± 2 robust SD), "
                     f"alert nights shaded yellow/red, symptom onset (purple dashed) and diagnosis (blue dotted). "
                     f"{len(shown)} of {len(data['people'])} participants shown, labelled first."))
    roc = roc_band(parts, n_boot=n_boot) if parts else None
    if roc is not None:
        figs.append(("roc", fig_roc(roc, name),
                     "Day-level ROC of the detector's nightly score; band: 2.5-97.5 percentiles over participant bootstrap resamples."
                     + (" For NightSignal the score is the night's resting-HR excess over the median (bpm); the rule itself "
                        "alerts at fixed thresholds." if name == "nightsignal" else "")))
    figs.append(("lead", fig_lead(list(ev.get("lead_days") or []), ev.get("median_lead_days")),
                 "Days from the first alert to symptom onset (first alert in [R-10, R+7]); positive = before onset."))
    months = false_alerts_by_month(parts)
    figs.append(("false_alerts", fig_false_alerts(months),
                 "False-alert days (outside [R-21, R+28]) per 30 monitored days, by calendar month."))
    head_rows = [["participants evaluated", ev.get("participants", 0), ""],
                 ["labelled (onset or diagnosis)", ev.get("labelled", 0), ""],
                 ["detected early [R-10, R]", f"{ev.get('detected_early', 0)}/{ev.get('labelled', 0)} ({_fmt(ev.get('early_detection_rate'), True)})",
                  _ci(ev, "early_detection_rate", True, bare=True)],
                 ["median lead time, days", _fmt(ev.get("median_lead_days")), _ci(ev, "median_lead_days", bare=True)],
                 ["false-alert days per participant-month", _fmt(ev.get("false_alert_days_per_month")),
                  _ci(ev, "false_alert_days_per_month", bare=True)],
                 ["day-level AUROC", _fmt(ev.get("auroc")), _ci(ev, "auroc", bare=True)],
                 ["sensitivity at 90 % specificity", _fmt(ev.get("sens_at_90_spec"), True), _ci(ev, "sens_at_90_spec", True, bare=True)]]
    sub_rows = _subgroup_rows(ev_sub, ev_sub.get("subgroups", {})) if ev_sub else []
    fig_html = {k: f'<figure><img alt="{k}" src="data:image/png;base64,{b64}"><figcaption>{html.escape(cap)}</figcaption></figure>'
                for k, b64, cap in figs}
    body = [
        f"<h1>Replay report: {html.escape(str(run.get('cohort', '?')))} · {html.escape(name)}</h1>",
        f'<p class="sub">Run folder {html.escape(Path(run_dir).name)}, replayed {html.escape(str(run.get("created", "?")))}; '
        f"{run.get('participants', '?')} participants, {run.get('participant_days', '?')} participant-days, {run.get('alerts', '?')} alert days.</p>",
        "<h2>Headline figures</h2>", _table(["figure", "value", "95 % CI"], head_rows),
        "<h2>Methods</h2>", f'<p class="methods">{html.escape(methods_paragraph(run, ev))}</p>',
        "<h2>Participants</h2>", fig_html.get("timelines", "<p>No participant-days.</p>"),
        "<h2>Discrimination and timing</h2>", '<div class="row">',
        fig_html.get("roc", "<p>ROC not available: needs both illness days and healthy days with a score.</p>"),
        fig_html["lead"], "</div>",
        "<h2>False alerts over time</h2>", fig_html["false_alerts"],
        "<h2>Subgroups</h2>",
        '<p class="sub">Age band and sex from the cohort\'s EHR columns ("not recorded" when missing); same definitions as above, no CIs (small groups).</p>',
        _table(["group", "participants", "labelled", "detected early", "rate", "median lead (d)", "false-alert days/month",
                "monitored days", "AUROC"], sub_rows) if sub_rows else "<p>No participants to evaluate.</p>",
    ]
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>prodromal report: "
            f"{html.escape(str(run.get('cohort', '?')))}</title><style>{CSS}</style></head><body>\n"
            + "\n".join(body) + "\n</body></html>\n")


def write_report(run_dir: str | Path, out: str | Path, max_timelines: int = 24) -> Path:
    """Render the report of ``run_dir`` into ``out`` (HTML, self-contained); return the path."""
    text = render_report(run_dir, max_timelines=max_timelines)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
