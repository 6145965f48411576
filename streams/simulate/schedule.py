"""Day-level plan of one simulated participant: events, sleep windows, wear, effect curves.

Everything here is per day or per event (a few hundred numbers); the minute-level
arrays are built from it in :mod:`streams.simulate.physiology`. Minutes count from
local midnight of the start date; night ``n`` is the sleep that starts in the
evening of day ``n`` (``n = -1`` is the night before the start).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field

import numpy as np

from streams.simulate.params import SimConfig
from streams.simulate.profile import Profile

__all__ = ["DayPlan", "plan_days", "infection_curves", "MIN_PER_DAY"]

MIN_PER_DAY = 1440


@dataclass
class DayPlan:
    days: int
    onset_day: int | None
    weekday: np.ndarray  # weekday of day d (0 Monday), d = 0..days-1
    sleep_on: np.ndarray  # minute of sleep onset of night n = -1..days-1 (index n+1)
    sleep_off: np.ndarray
    steps_target: np.ndarray  # per day
    worn_off: list[tuple[int, int]]  # [start, end) minute ranges without the device
    # additive effects on minute ranges: (start, end, hr_bpm, log_rmssd, resp_rpm, temp_c, awake_only)
    effects: list[tuple[int, int, float, float, float, float, bool]]
    workouts: list[tuple[int, int, float, float]]  # (start, duration, cadence, extra bpm)
    events: list[tuple[int, str, str]] = field(default_factory=list)  # (day, event, detail)
    other_illness: list[tuple[int, float, float]] = field(default_factory=list)  # (day, hr_bpm, duration)


def infection_curves(t_days: np.ndarray, inf: dict[str, float], symptomatic: bool) -> dict[str, np.ndarray]:
    """Shapes of the infection signature at ``t_days`` relative to symptom onset.

    ``hr``: 0 before ``-pre_days``, rises to 1 at ``peak_day``, decays to ~5 % by
    ``recovery_days``. ``sick``: symptomatic sickness behaviour (fewer steps, more
    sleep), 0 at onset, 1 at day 2, a shoulder, fading with the recovery; ``rest``:
    the same a day later (awake HR lowered by lying down). ``fever``: short,
    -2..+4 days. ``linger``: small post-viral elevation fading over ~6 weeks.
    """
    t = np.asarray(t_days, dtype=np.float64)
    s0, tp, rec = -inf["pre_days"], inf["peak_day"], inf["recovery_days"]
    tau = max(rec - tp, 2.0) / 3.0
    hr = np.zeros_like(t)
    rise = (t >= s0) & (t < tp)
    hr[rise] = (t[rise] - s0) / (tp - s0)
    post = t >= tp
    hr[post] = np.exp(-(t[post] - tp) / tau)
    sick = np.zeros_like(t)
    rest = np.zeros_like(t)
    if symptomatic:
        # rise over two days, a shoulder, then recovery: Mayer 2022's steps stay ~0.45-0.6 of
        # baseline over days 3-11 and recover by ~day 13-16
        sick = _shoulder(t, 2.0, 0.8 * rec)
        rest = _shoulder(t - 1.0, 2.0, 0.6 * rec)  # bed rest lags the first symptoms by ~a day
    fever = np.zeros_like(t)
    f = (t >= -2.0)
    fever[f] = np.exp(-0.5 * ((t[f] - 1.0) / 1.5) ** 2)
    linger = np.zeros_like(t)
    g = t >= tp
    linger[g] = (1.0 - np.exp(-(t[g] - tp) / 3.0)) * np.exp(-(t[g] - tp) / 40.0)
    return {"hr": hr, "sick": sick, "rest": rest, "fever": fever, "linger": linger}


def _shoulder(t: np.ndarray, rise: float, width: float) -> np.ndarray:
    out = np.zeros_like(t)
    a = (t >= 0) & (t < rise)
    out[a] = t[a] / rise
    b = t >= rise
    out[b] = np.exp(-(((t[b] - rise) / max(width, 1.0)) ** 2))
    return out


def _night(d: int) -> tuple[int, int]:
    return d * MIN_PER_DAY + 20 * 60, (d + 1) * MIN_PER_DAY + 10 * 60


def plan_days(p: Profile, cfg: SimConfig, r: np.random.Generator) -> DayPlan:
    """Draw the day-level plan (deterministic given the generator)."""
    D = cfg.days
    start = dt.date.fromisoformat(cfg.start_date)
    wd = np.array([(start + dt.timedelta(days=d)).weekday() for d in range(-1, D + 1)])  # index d+1
    onset = p.onset_day(D)
    effects: list[tuple[int, int, float, float, float, float, bool]] = []
    workouts: list[tuple[int, int, float, float]] = []
    events: list[tuple[int, str, str]] = []
    mid_shift = np.zeros(D + 1)
    dur_shift = np.zeros(D + 1)
    steps_mult = np.ones(D)
    rate = p.stress_rate * D / 30.0

    def near_illness(d: int) -> bool:
        return onset is not None and -14 <= d - onset <= 21

    if cfg.stressors:
        # alcohol: one night, mostly Friday/Saturday
        for d in r.integers(0, D, r.poisson(2.5 * rate if p.drinks else 0.0)):
            d = int(d)
            if r.random() < 0.6:
                d = d + (4 - int(wd[d + 1])) % 7 + int(r.integers(0, 2))
            if d >= D:
                continue
            mag = float(r.uniform(2.0, 7.0))
            a, b = _night(d)
            effects.append((a, b, mag, -float(r.uniform(0.15, 0.45)), 0.2, 0.1, False))
            mid_shift[d + 1] += 20.0
            dur_shift[d + 1] -= 30.0
            events.append((d, "alcohol", f"{mag:.1f}"))
        for d in r.integers(0, D, r.poisson(3.0 * rate)):
            d = int(d)
            dur = float(r.uniform(40.0, 90.0))
            st = d * MIN_PER_DAY + int(r.uniform(16 * 60, 19 * 60))
            workouts.append((st, int(dur), float(r.uniform(150.0, 168.0)), float(r.uniform(15.0, 30.0))))
            mag = float(r.uniform(1.0, 4.0))
            a, b = _night(d)
            effects.append((st + int(dur), b, mag, -0.15, 0.1, 0.05, False))
            events.append((d, "hard_exercise", f"{mag:.1f}"))
        for d in r.integers(0, D, r.poisson(1.5 * rate)):
            d = int(d)
            loss = float(r.uniform(60.0, 150.0))
            dur_shift[d + 1] -= loss
            mid_shift[d + 1] += float(r.uniform(0.0, 60.0))
            mag = float(r.uniform(1.0, 3.0))
            a, b = _night(d)
            effects.append((a, b, mag, -0.1, 0.1, 0.0, False))
            effects.append((b, b + 12 * 60, 2.0, 0.0, 0.0, 0.0, True))
            events.append((d, "poor_sleep", f"{mag:.1f}"))
        for d in r.integers(0, D, r.poisson(0.3 * rate)):
            d = int(d)
            shift_h = float(r.uniform(1.0, 3.0)) * (1 if r.random() < 0.5 else -1)  # mostly domestic
            for k in range(int(abs(shift_h)) + 1):
                if d + 1 + k <= D:
                    mid_shift[d + 1 + k] += 60.0 * shift_h * max(0.0, 1.0 - k / abs(shift_h))
            mag = float(r.uniform(2.0, 4.0))
            for k, f in ((0, 1.0), (1, 0.5)):
                a, b = _night(d + k)
                effects.append((a, b, mag * f, -0.15 * f, 0.2 * f, 0.0, False))
            if d < D:
                steps_mult[d] *= 0.6
            events.append((d, "travel", f"{shift_h:+.1f}h"))
    for vd in p.vaccine_days:
        if 0 <= vd < D:
            mag = float(r.uniform(1.0, 4.0))
            for k, f in ((0, 1.0), (1, 0.5)):
                a, b = _night(vd + k)
                effects.append((a, b, mag * f, -0.1 * f, 0.2 * f, 0.2 * f, False))
            events.append((vd, "vaccination", f"{mag:.1f}"))
    # minor non-COVID illness (cold, flu-like): no pre-symptomatic phase worth the name
    other: list[tuple[int, float, float]] = []
    for d in r.integers(3, max(D - 3, 4), r.poisson(cfg.other_illness_per_30d * D / 30.0)):
        d = int(d)
        if d >= D or near_illness(d):
            continue
        mag, dur = float(r.uniform(1.0, 4.0)), float(r.uniform(3.0, 6.0))
        other.append((d, mag, dur))
        events.append((d, "other_illness", f"{mag:.1f}"))
    # sickness factor at each day's noon, for steps and sleep
    noon = np.arange(D + 1) + 0.5  # noon of day i: steps of day i, sleep of the night ending on day i
    sick_day = np.zeros(D + 1)
    if onset is not None:
        sick_day = infection_curves(noon - onset, p.inf, not p.asymptomatic)["sick"]
    oth_day = np.zeros(D + 1)
    for d0, _m, dur in other:
        x = noon - d0
        oth_day += np.where((x >= 0) & (x < dur), 1.0 - x / dur, 0.0)
    # sleep windows of nights -1..D-1
    weekend = np.isin(wd[: D + 1], (4, 5))  # Friday and Saturday evenings
    mid = p.midsleep_min + cfg.midsleep_night_sd_min * r.standard_normal(D + 1) + 45.0 * weekend + mid_shift
    dur = (
        p.sleep_dur_min + cfg.sleep_dur_night_sd_min * r.standard_normal(D + 1) + 30.0 * weekend + dur_shift
        + p.inf.get("sleep_gain_min", 0.0) * sick_day + 40.0 * np.minimum(oth_day, 1.0)
    )
    dur = np.clip(dur, 180.0, 720.0)
    base = (np.arange(D + 1)) * MIN_PER_DAY  # midnight after evening n = (n+1)*1440, n = -1.. -> index*1440
    on = np.round(base + mid - dur / 2).astype(np.int64)
    off = np.round(base + mid + dur / 2).astype(np.int64)
    for i in range(1, D + 1):
        if on[i] < off[i - 1] + 120:
            on[i] = off[i - 1] + 120
            off[i] = max(off[i], on[i] + 180)
    # steps target per day
    wk = np.isin(wd[1 : D + 1], (5, 6))
    tgt = p.steps_per_day * np.exp(cfg.steps_day_logsd * r.standard_normal(D)) * np.where(wk, 0.85, 1.0) * steps_mult
    tgt *= 1.0 - p.inf.get("steps_drop", 0.0) * sick_day[:D]
    tgt *= 1.0 - 0.25 * np.minimum(oth_day[:D], 1.0)
    # non-wear
    off_ranges: list[tuple[int, int]] = []
    day_off = r.random(D) < p.day_off_p
    run_on = r.random(D) < 0.4
    for d in np.flatnonzero(day_off):
        e = d + 2 if run_on[d] else d + 1
        off_ranges.append((int(d) * MIN_PER_DAY, int(e) * MIN_PER_DAY))
    night_off = r.random(D + 1) < p.night_off_p
    for i in np.flatnonzero(night_off):
        off_ranges.append((int(on[i]) - 60, int(off[i]) + 30))
    charge = r.random(D) < cfg.charge_per_day
    cu, cl = r.random(D), r.uniform(30.0, 90.0, D)
    for d in np.flatnonzero(charge):
        a, b = int(off[d]), int(on[d + 1])
        if b - a > 200:
            s = a + int(cu[d] * (b - a - cl[d]))
            off_ranges.append((s, s + int(cl[d])))
    ng = r.poisson(cfg.short_gaps_per_day, D)
    for d in np.flatnonzero(ng):
        for _ in range(int(ng[d])):
            s = int(d) * MIN_PER_DAY + int(r.integers(0, MIN_PER_DAY))
            off_ranges.append((s, s + int(r.integers(2, 21))))
    return DayPlan(
        days=D,
        onset_day=onset,
        weekday=wd[1 : D + 1],
        sleep_on=on,
        sleep_off=off,
        steps_target=tgt,
        worn_off=off_ranges,
        effects=effects,
        workouts=workouts,
        events=sorted(events),
        other_illness=other,
    )
