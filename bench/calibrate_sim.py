"""Calibrate the synthetic cohort against real per-day HR-model parameters (Mayer 2022).

Mayer et al. 2022 fitted, per person and day, ``HR = shift + amp*cos(2 pi (t - phase)/24 h)
+ hr_per_step * steps + AR noise`` on 5-minute bins of Fitbit data of COVID-19 cases
(day 0 = symptom onset). This script computes the between-person spread, the
day-to-day spread and the infection signature from those real parameters, fits the
same model to a simulated cohort of symptomatic infected participants, and prints
both side by side. It also prints simulator-only figures (NightSignal resting HR,
RMSSD, breathing, temperature) around onset.

Usage::

    python bench/calibrate_sim.py [--data ../shared/data] [--participants 80] [--seed 7]
"""

from __future__ import annotations

import argparse
import glob
import os
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from streams.simulate import SimConfig, simulate_participant

BASE = (-60, -14)  # baseline days relative to onset (Mayer data: as many people as possible)
COLS = {
    "Constant Vertical Shift in HR": "shift",
    "Amplitude of Circadian Oscillation": "amp",
    "Horizontal Shift (Phase Estimate-Raw)": "phase",
    "Heart Rate Increase per Step": "hrstep",
    "Uncorrelated noise (standard deviation)": "noise",
    "Daily step count": "steps",
    "Number of data points": "n",
}


def load_mayer(data: Path) -> pd.DataFrame:
    files = sorted(glob.glob(str(data / "mayer2022_covid_daily_hr_params" / "*_results.csv")))
    if not files:
        raise SystemExit(f"no Mayer files under {data}/mayer2022_covid_daily_hr_params")
    parts = []
    for f in files:
        d = pd.read_csv(f, skipinitialspace=True)
        d.columns = [c.strip() for c in d.columns]
        d = d.rename(columns=COLS)
        d["pid"] = Path(f).name[:10]
        parts.append(d[["Day", "pid", *COLS.values()]])
    d = pd.concat(parts, ignore_index=True)
    return d[d.n >= 144]  # at least half a day of 5-min bins, as for the simulated fits


def fit_days(hr_min: np.ndarray, steps_min: np.ndarray, onset: int) -> pd.DataFrame:
    """Mayer's model per day on 5-min bins (HR mean, steps per minute) by least squares.

    ``hr_min``/``steps_min`` are minute arrays from local midnight of day 0 (NaN when
    missing); ``onset`` is the onset's day index. Ordinary least squares, no AR error
    term: the same fit is applied to real minute data (Stanford) and to simulated data.
    """
    nd = hr_min.size // 1440
    hr = hr_min[: nd * 1440].astype(np.float64).reshape(nd, 288, 5)
    st = steps_min[: nd * 1440].astype(np.float64).reshape(nd, 288, 5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hb = np.nanmean(hr, axis=2)
        sb = np.nanmean(st, axis=2)
    ang = 2 * np.pi * (np.arange(288) + 0.5) / 288
    rows = []
    for d in range(nd):
        ok = np.isfinite(hb[d]) & np.isfinite(sb[d])
        if ok.sum() < 144:
            continue
        x = np.column_stack([np.ones(ok.sum()), np.cos(ang[ok]), np.sin(ang[ok]), sb[d, ok]])
        b, *_ = np.linalg.lstsq(x, hb[d, ok], rcond=None)
        res = hb[d, ok] - x @ b
        peak = (np.arctan2(b[2], b[1]) % (2 * np.pi)) / (2 * np.pi) * 288
        rows.append((d - onset, b[0], np.hypot(b[1], b[2]), peak, b[3], res.std(), np.nansum(steps_min[d * 1440 : (d + 1) * 1440]), ok.sum()))
    return pd.DataFrame(rows, columns=["Day", "shift", "amp", "phase", "hrstep", "noise", "steps", "n"])


def stanford_minutes(data: Path):
    """Yield (participant, minute HR, minute steps, onset day index) of the real Stanford files."""
    root = data / "stanford_covid_wearables_mishra2020"
    lab = root / "onset_labels_aligned_to_these_files.csv"
    if not lab.is_file():
        return
    for _, row in pd.read_csv(lab).iterrows():
        pid = row.participant_id
        fh, fs = root / f"{pid}_hr.csv.zip", root / f"{pid}_steps.csv.zip"
        ref = row.symptom_onset_date if isinstance(row.symptom_onset_date, str) else row.diagnosis_date
        if not (fh.is_file() and fs.is_file()) or not isinstance(ref, str):
            continue
        hr, st = pd.read_csv(fh), pd.read_csv(fs)
        th = pd.to_datetime(hr.datetime).dt.floor("min")
        ts = pd.to_datetime(st.datetime).dt.floor("min")
        day0 = min(th.min(), ts.min()).normalize()
        n = int(((max(th.max(), ts.max()) - day0).days + 1) * 1440)
        hm = np.full(n, np.nan)
        g = hr.groupby(((th - day0).dt.total_seconds() // 60).astype(int)).heartrate.mean()
        hm[g.index.values] = g.values
        sm = np.full(n, np.nan)
        g = st.groupby(((ts - day0).dt.total_seconds() // 60).astype(int)).steps.sum()
        sm[g.index.values] = g.values
        yield pid, hm, sm, int((pd.Timestamp(ref) - day0).days), isinstance(row.symptom_onset_date, str)


def load_stanford(data: Path) -> tuple[pd.DataFrame, list]:
    """Our per-day fit on the real Stanford minute data (people with a symptom onset), and the minutes."""
    out, minutes = [], []
    for pid, hm, sm, onset, has_onset in stanford_minutes(data):
        minutes.append((pid, hm, sm, onset))
        if not has_onset:
            continue
        f = fit_days(hm, sm, onset)
        f["pid"] = pid
        out.append(f)
    return (pd.concat(out, ignore_index=True) if out else pd.DataFrame()), minutes


def nightly_rhr(hm: np.ndarray, sm: np.ndarray) -> np.ndarray:
    """NightSignal resting HR per day: mean of zero-step minutes 00:00-06:59 (>= 60 minutes)."""
    nd = hm.size // 1440
    h = hm[: nd * 1440].astype(np.float64).reshape(nd, 1440)[:, :420]
    s = sm[: nd * 1440].reshape(nd, 1440)[:, :420]
    r = np.where(s == 0, h, np.nan)
    c = np.isfinite(r).sum(axis=1)
    with np.errstate(all="ignore"):
        v = np.nansum(r, axis=1) / c
    v[c < 60] = np.nan
    return v


def night_stats(minutes: list) -> dict:
    """Between-person level and within-person spread of nightly RHR before onset - 10 days."""
    med, sd, mad, cap = [], [], [], []
    for _pid, hm, sm, onset in minutes:
        v = nightly_rhr(hm, sm)[: max(onset - 10, 0)]
        cap.append(np.isfinite(v).mean() if v.size else np.nan)
        v = v[np.isfinite(v)]
        if v.size < 10:
            continue
        med.append(np.median(v))
        sd.append(v.std())
        mad.append(1.4826 * np.median(np.abs(v - np.median(v))))
    return {
        "nightly RHR people (>= 10 pre-onset nights)": f"{len(med)}",
        "nightly RHR between people mean +- SD": f"{np.mean(med):.1f} +- {np.std(med):.1f}",
        "nightly RHR within-person SD, median": f"{np.median(sd):.2f}",
        "nightly RHR within-person MAD-SD, median": f"{np.median(mad):.2f}",
        "nights with a resting HR (capture), median": f"{np.nanmedian(cap):.2f}",
    }


def figures(d: pd.DataFrame, min_base_days: int = 10) -> dict:
    """The calibration figures of a table of per-day parameters (real or simulated)."""
    base = d[(d.Day >= BASE[0]) & (d.Day <= BASE[1])]
    g = base.groupby("pid")
    keep = g.size() >= min_base_days
    med = g[["shift", "amp", "phase", "hrstep", "noise", "steps"]].median()[keep]
    dev = base.join(med["shift"].rename("b"), on="pid").dropna(subset=["b"]).sort_values(["pid", "Day"])
    dev["r"] = dev["shift"] - dev["b"]
    lag1 = dev.groupby("pid").r.apply(lambda x: x.autocorr()).median()
    lsteps = dev.assign(ls=np.log(dev.steps + 100)).groupby("pid").ls.std().median()
    full = d.join(med[["shift", "steps"]].add_suffix("_b"), on="pid").dropna(subset=["shift_b"])
    full["dshift"] = full["shift"] - full.shift_b
    full["rsteps"] = full.steps / full.steps_b.clip(lower=1)
    by_day = full[(full.Day >= -7) & (full.Day <= 21)].groupby("Day").agg(dshift=("dshift", "median"), rsteps=("rsteps", "median"))
    win = full[(full.Day >= -3) & (full.Day <= 1)].groupby("pid").dshift.mean()
    q = lambda s: f"{s.median():.2f} ({s.quantile(.25):.2f}-{s.quantile(.75):.2f})"  # noqa: E731
    return {
        "people with baseline": f"{int(keep.sum())}",
        "mesor between people mean +- SD (bpm)": f"{med['shift'].mean():.1f} +- {med['shift'].std():.1f}",
        "circadian amplitude median (IQR) bpm": q(med["amp"]),
        "circadian peak median (clock)": f"{int(med['phase'].median() * 5 // 60):02d}:{int(med['phase'].median() * 5 % 60):02d}",
        "HR per step median (IQR)": q(med["hrstep"]),
        "residual noise SD median (bpm)": f"{med['noise'].median():.2f}",
        "daily steps median (IQR)": f"{med['steps'].median():.0f} ({med['steps'].quantile(.25):.0f}-{med['steps'].quantile(.75):.0f})",
        "mesor within-person SD (bpm)": f"{dev.groupby('pid').r.std().median():.2f}",
        "mesor lag-1 autocorrelation": f"{lag1:.2f}",
        "log(steps+100) within-person SD": f"{lsteps:.2f}",
        "mean mesor rise days -3..+1, median (IQR)": q(win),
        "share with rise > 2 bpm / < 1 bpm": f"{(win > 2).mean():.2f} / {(win < 1).mean():.2f}",
        "_by_day": by_day,
    }


def night_figures(sps: list) -> pd.DataFrame:
    """Simulator-only: NightSignal resting HR, RMSSD, breathing, temperature around onset."""
    rows = []
    for sp in sps:
        on = sp.plan.onset_day
        hr = sp.hr.reshape(-1, 1440)[:, :420].astype(np.float64)
        st = sp.steps.reshape(-1, 1440)[:, :420]
        rest = np.where(st == 0, hr, np.nan)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rhr = np.nanmean(rest, axis=1)
            resp = np.nanmean(sp.resp.reshape(-1, 1440)[:, :420], axis=1)
            temp = np.nanmean(sp.temp.reshape(-1, 1440)[:, :420], axis=1)
        day = np.floor((sp.ibi_time - sp.t0) / 86400).astype(int)
        rm = np.full(hr.shape[0], np.nan)
        seg = np.floor((sp.ibi_time - sp.t0) / 60).astype(int)
        for d in np.unique(day):
            m = day == d
            x, s = sp.ibi_ms[m].astype(np.float64), seg[m]
            dd = np.diff(x)[np.diff(s) == 0]
            rm[d] = np.sqrt(np.mean(dd**2)) if dd.size else np.nan
        b = slice(max(0, on - 40), on - 10)
        for d in range(max(0, on - 7), min(hr.shape[0], on + 15)):
            rows.append((d - on, sp.profile.hr_responder, rhr[d] - np.nanmedian(rhr[b]), rm[d] / np.nanmedian(rm[b]),
                         resp[d] - np.nanmedian(resp[b]), temp[d] - np.nanmedian(temp[b])))
    return pd.DataFrame(rows, columns=["Day", "responder", "drhr", "rrmssd", "dresp", "dtemp"])


def bridge(data: Path, mayer: pd.DataFrame, stan: pd.DataFrame) -> str:
    """Our fit vs Mayer's fit on the same person-days (Stanford people with a Mayer file)."""
    lab = data / "stanford_covid_wearables_mishra2020" / "onset_labels_aligned_to_these_files.csv"
    if stan.empty or not lab.is_file():
        return "n/a"
    ids = pd.read_csv(lab).set_index("participant_id").mayer2022_file_id.dropna()
    m = mayer.assign(participant=mayer.pid.map({v: k for k, v in ids.items()})).dropna(subset=["participant"])
    j = stan.merge(m, left_on=["pid", "Day"], right_on=["participant", "Day"], suffixes=("", "_m"))
    if j.empty:
        return "n/a"
    return (f"{j.participant.nunique()} people, {len(j)} days: mesor {np.median(j['shift'] - j.shift_m):+.1f} bpm, "
            f"amplitude x{np.median(j.amp) / np.median(j.amp_m):.2f}, HR/step x{np.median(j.hrstep) / np.median(j.hrstep_m):.2f}, "
            f"noise x{np.median(j.noise) / np.median(j.noise_m):.2f}; r(mesor) {np.corrcoef(j['shift'], j.shift_m)[0, 1]:.2f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    repo = Path(__file__).resolve().parents[1]
    ap.add_argument("--data", default=os.environ.get("PRODROMAL_DATA", str(repo / ".." / "shared" / "data")))
    ap.add_argument("--participants", type=int, default=80)
    ap.add_argument("--seed", type=int, default=7)
    a = ap.parse_args()
    data = Path(a.data)
    mayer = load_mayer(data)
    real = figures(mayer)
    stan_days, stan_minutes = load_stanford(data)
    stan = figures(stan_days, min_base_days=5) if not stan_days.empty else None
    cfg = SimConfig(days=120, infected_fraction=1.0, asymptomatic_fraction=0.0)
    t = time.perf_counter()
    sps, fits = [], []
    for i in range(a.participants):
        sp = simulate_participant(a.seed, i, cfg)
        on = sp.plan.onset_day
        if on is None or on < 24:
            continue
        f = fit_days(sp.hr, sp.steps, on)
        f["pid"] = sp.profile.participant_id
        fits.append(f)
        sps.append(sp)
    el = time.perf_counter() - t
    sim = figures(pd.concat(fits, ignore_index=True))
    print(f"Per-day HR model (Mayer 2022: HR = mesor + circadian cosine + HR/step x steps + noise, 5-min bins)\n"
          f"real: Mayer's own fits (126 COVID cases) and our OLS fit on the real Stanford minute data;\n"
          f"simulator: our OLS fit on {len(sps)} simulated symptomatic infected (seed {a.seed}; simulated+fitted in {el:.1f} s)\n")
    print(f"our fit vs Mayer's fit on the same days: {bridge(data, mayer, stan_days)}\n")
    print(f"{'figure':44s} {'Mayer fits (real)':>20s} {'our fit, Stanford':>20s} {'our fit, simulator':>20s}")
    for k in real:
        if not k.startswith("_"):
            print(f"{k:44s} {real[k]:>20s} {(stan[k] if stan else 'n/a'):>20s} {sim[k]:>20s}")
    print("\nmedian change vs personal baseline (days -60..-14) by day from onset (mesor bpm; steps ratio)")
    print(f"{'day':>4s} {'Mayer dHR':>10s} {'sim dHR':>9s} {'Mayer steps':>12s} {'sim steps':>10s}")
    rb, sb = real["_by_day"], sim["_by_day"]
    for d in range(-7, 22):
        r = rb.loc[d] if d in rb.index else None
        s = sb.loc[d] if d in sb.index else None
        fmt = lambda x, c, w: f"{x[c]:{w}.2f}" if x is not None else " " * w  # noqa: E731
        print(f"{d:4d} {fmt(r, 'dshift', 10)} {fmt(s, 'dshift', 9)} {fmt(r, 'rsteps', 12)} {fmt(s, 'rsteps', 10)}")
    print("\nNightSignal nightly resting HR (00:00-06:59, zero steps), nights before onset - 10")
    ns_real = night_stats(stan_minutes) if stan_minutes else {}
    ns_sim = night_stats([(sp.profile.participant_id, sp.hr, sp.steps, sp.plan.onset_day) for sp in sps])
    print(f"{'figure':44s} {'Stanford (real)':>20s} {'simulator':>20s}")
    for k in ns_sim:
        print(f"{k:44s} {ns_real.get(k, 'n/a'):>20s} {ns_sim[k]:>20s}")
    nf = night_figures(sps)
    print("\nsimulator only, HR responders: median change vs nights -40..-10 (NightSignal RHR: 00:00-06:59, zero steps)")
    resp = nf[nf.responder]
    g = resp.groupby("Day").median()
    print(f"{'day':>4s} {'dRHR bpm':>9s} {'RMSSD x':>8s} {'dresp rpm':>10s} {'dtemp C':>8s}")
    for d, row in g.iterrows():
        print(f"{d:4d} {row.drhr:9.2f} {row.rrmssd:8.2f} {row.dresp:10.2f} {row.dtemp:8.2f}")
    w = resp[(resp.Day >= -3) & (resp.Day <= 1)]
    print(f"\nmean NightSignal RHR rise over nights -3..+1: responders {w.drhr.mean():.2f} bpm; "
          f"non-responders {nf[~nf.responder & (nf.Day >= -3) & (nf.Day <= 1)].drhr.mean():.2f} bpm")


if __name__ == "__main__":
    main()
