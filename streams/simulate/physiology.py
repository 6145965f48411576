"""Minute-level physiology of one simulated participant (vectorised numpy).

HR per minute is the sum of: the person's sleeping level, an awake step, a
circadian cosine, a day-to-day AR(1) offset, the infection curves, stressors and
the menstrual rhythm, the response to steps (two first-order lags, 1 and 8 min:
fast rise and slower recovery), AR(1) physiological noise and sensor noise.
Temperature and breathing rate exist only asleep; beat intervals (IBI) are one
short segment every ``ibi_every_min`` minutes asleep, with RMSSD following the
participant's state.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np
from scipy.signal import lfilter

from streams.simulate.params import SimConfig
from streams.simulate.profile import Profile, participant_rng
from streams.simulate.schedule import MIN_PER_DAY, DayPlan, infection_curves, plan_days

__all__ = ["SimParticipant", "simulate_participant"]


@dataclass
class SimParticipant:
    """Arrays and truth of one simulated participant (minute grid from local midnight)."""

    profile: Profile
    plan: DayPlan
    t0: float  # UTC seconds of minute 0 (local midnight of the start date)
    hr: np.ndarray  # float32, NaN without data
    steps: np.ndarray
    temp: np.ndarray
    resp: np.ndarray
    ibi_time: np.ndarray  # float64 UTC seconds
    ibi_ms: np.ndarray  # float32
    asleep: np.ndarray  # bool
    worn: np.ndarray  # bool
    log_rmssd: np.ndarray  # float32, the state's log RMSSD (ms) per minute (drives IBI and raw PPG)
    truth: dict = field(default_factory=dict)


def _lowpass(x: np.ndarray, tau_min: float) -> np.ndarray:
    a = math.exp(-1.0 / tau_min)
    return lfilter([1.0 - a], [1.0, -a], x)


def _ar_noise(r: np.random.Generator, n: int, phi: float) -> np.ndarray:
    e = r.standard_normal(n) * math.sqrt(1.0 - phi * phi)
    return lfilter([1.0], [1.0, -phi], e)


def _ranges_mask(n: int, ranges: list[tuple[int, int]]) -> np.ndarray:
    """Boolean mask of the union of [start, end) ranges, clipped to [0, n)."""
    if not ranges:
        return np.zeros(n, dtype=bool)
    a = np.clip(np.array([r[0] for r in ranges], dtype=np.int64), 0, n)
    b = np.clip(np.array([r[1] for r in ranges], dtype=np.int64), 0, n)
    diff = np.zeros(n + 1, dtype=np.int64)
    np.add.at(diff, a, 1)
    np.add.at(diff, b, -1)
    return np.cumsum(diff[:n]) > 0


def _ranges_sum(n: int, a: np.ndarray, b: np.ndarray, v: np.ndarray) -> np.ndarray:
    diff = np.zeros(n + 1)
    np.add.at(diff, np.clip(a, 0, n), v)
    np.add.at(diff, np.clip(b, 0, n), -v)
    return np.cumsum(diff[:n])


def _daily_interp(values: np.ndarray, minutes: np.ndarray) -> np.ndarray:
    """Day-anchored values (at noon of days -1..D) interpolated to minutes: no midnight steps."""
    anchors = (np.arange(values.size) - 1 + 0.5) * MIN_PER_DAY
    return np.interp(minutes, anchors, values)


def _steps(p: Profile, plan: DayPlan, awake: np.ndarray, r: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Steps per minute and extra workout intensity (bpm) on the minute grid."""
    D = plan.days
    w_start = plan.sleep_off[:D]  # wake on day d
    w_end = plan.sleep_on[1 : D + 1]  # sleep onset in the evening of day d
    w_len = np.maximum(w_end - w_start, 60)
    tgt = plan.steps_target
    # bouts carry ~85 % of the day's steps: lognormal duration (median 3 min), cadence ~100/min;
    # draw twice the expected number and keep them until the day's share is reached, so the
    # day total follows the target (day-to-day spread comes from the target, as measured)
    k = np.ceil(2.0 * 0.85 * tgt / 380.0).astype(np.int64) + 2
    day = np.repeat(np.arange(D), k)
    m = day.size
    dur = np.clip(np.round(3.0 * np.exp(0.7 * r.standard_normal(m))), 1, 45).astype(np.int64)
    cad = np.clip(100.0 + 12.0 * r.standard_normal(m), 60.0, 130.0)
    cum = np.cumsum(dur * cad)
    first = np.cumsum(k) - k
    before = np.repeat(cum[first] - (dur * cad)[first], k)
    keep = (cum - before) <= 0.85 * tgt[day]
    day, dur, cad = day[keep], dur[keep], cad[keep]
    m = day.size
    st = w_start[day] + (r.random(m) * np.maximum(w_len[day] - dur, 1)).astype(np.int64)
    a, b, c = [st], [st + dur], [cad]
    extra = np.zeros(n)
    if plan.workouts:
        wo = np.array(plan.workouts, dtype=np.float64)
        ws, wdur = wo[:, 0].astype(np.int64), wo[:, 1].astype(np.int64)
        a.append(ws)
        b.append(ws + wdur)
        c.append(wo[:, 2])
        extra = _ranges_sum(n, ws, ws + wdur, wo[:, 3])
    level = _ranges_sum(n, np.concatenate(a), np.concatenate(b), np.concatenate(c))
    level = np.minimum(level, 190.0) * r.uniform(0.88, 1.05, n)
    # background steps: ~15 % of the day in scattered minutes
    pb = np.clip(0.15 * tgt / (7.0 * w_len), 0.0, 0.3)
    minute_day = np.minimum(np.arange(n) // MIN_PER_DAY, D - 1)
    bg = (r.random(n) < pb[minute_day]) * (1.0 + r.poisson(6.0, n))
    steps = np.round(level + bg) * awake
    return steps, extra * awake


def simulate_participant(seed: int, index: int, cfg: SimConfig, profile: Profile | None = None) -> SimParticipant:
    """Simulate participant ``index`` of cohort ``seed`` (deterministic; independent of the others)."""
    from streams.simulate.profile import draw_profile

    p = profile if profile is not None else draw_profile(seed, index, cfg)
    plan = plan_days(p, cfg, participant_rng(seed, index, 1))
    r = participant_rng(seed, index, 2)
    D = cfg.days
    n = D * MIN_PER_DAY
    mins = np.arange(n, dtype=np.float64)
    start = dt.date.fromisoformat(cfg.start_date)
    t0 = (start - dt.date(1970, 1, 1)).total_seconds() - p.utc_offset_s

    # sleep, brief awakenings, wear
    asleep = _ranges_mask(n, list(zip(plan.sleep_on.tolist(), plan.sleep_off.tolist(), strict=True)))
    nw = r.poisson(1.2, plan.sleep_on.size)
    idx = np.repeat(np.arange(plan.sleep_on.size), nw)
    ws = plan.sleep_on[idx] + 30 + (r.random(idx.size) * np.maximum(plan.sleep_off[idx] - plan.sleep_on[idx] - 60, 1)).astype(np.int64)
    wl = r.integers(2, 9, idx.size)
    waso = _ranges_mask(n, list(zip(ws.tolist(), (ws + wl).tolist(), strict=True)))
    asleep &= ~waso
    awake = ~asleep
    worn = ~_ranges_mask(n, plan.worn_off)

    steps, extra_bpm = _steps(p, plan, awake & ~waso, r, n)
    # bathroom trips: some awakenings carry a few steps
    trip = ws[(r.random(idx.size) < 0.4) & (ws >= 0) & (ws < n)]
    steps[trip] += r.integers(10, 41, trip.size)

    # effect curves
    inf = {"hr": 0.0, "sick": 0.0, "rest": 0.0, "fever": 0.0, "linger": 0.0}
    onset = plan.onset_day
    if onset is not None:
        inf = infection_curves(mins / MIN_PER_DAY - onset, p.inf, not p.asymptomatic)
    eff = plan.effects
    if eff:
        e = np.array(eff, dtype=np.float64)
        ea, eb = e[:, 0].astype(np.int64), e[:, 1].astype(np.int64)
        allday = e[:, 6] == 0
        st_hr = _ranges_sum(n, ea[allday], eb[allday], e[allday, 2])
        st_hr_awake = _ranges_sum(n, ea[~allday], eb[~allday], e[~allday, 2])
        st_rm = _ranges_sum(n, ea, eb, e[:, 3])
        st_resp = _ranges_sum(n, ea, eb, e[:, 4])
        st_temp = _ranges_sum(n, ea, eb, e[:, 5])
    else:
        st_hr = st_hr_awake = st_rm = st_resp = st_temp = np.zeros(n)
    oth = np.zeros(n)
    for d0, mag, dur in plan.other_illness:
        x = mins / MIN_PER_DAY - d0
        oth += mag * np.where((x >= -1) & (x < dur), np.where(x < 0, x + 1, 1.0 - x / dur), 0.0)
    men = np.zeros(n)
    men_hr = 0.0
    if p.cycle is not None:
        length, phase0 = p.cycle
        ph = ((mins / MIN_PER_DAY + phase0) % length) / length
        men = 0.5 * (1.0 + np.cos(2.0 * np.pi * (ph - 0.75)))  # peaks mid-luteal
        men_hr = 1.0 + 2.0 * (p.index % 7) / 6.0

    # day-to-day variation anchored at noon of days -1..D
    day_hr = _daily_interp(_ar1_days(r, D + 2, cfg.hr_day_sd_bpm, cfg.hr_day_phi), mins)
    day_awake = _daily_interp(cfg.hr_awake_day_sd_bpm * r.standard_normal(D + 2), mins)
    day_rm = _daily_interp(_ar1_days(r, D + 2, cfg.rmssd_day_logsd, 0.4), mins)
    day_resp = _daily_interp(_ar1_days(r, D + 2, cfg.resp_day_sd_rpm, 0.4), mins)
    day_temp = _daily_interp(_ar1_days(r, D + 2, cfg.temp_day_sd_c, 0.5), mins)

    clock = mins % MIN_PER_DAY
    circ = p.circ_amp_bpm * np.cos(2.0 * np.pi * (clock - p.circ_peak_min) / MIN_PER_DAY)
    drive = p.hr_per_step * steps + extra_bpm
    act = 0.7 * _lowpass(drive, 1.0) + 0.3 * _lowpass(drive, 8.0)
    noise_sd = np.where(awake, 7.5, 2.0) * p.hr_noise_mult
    hr = (
        p.rhr_sleep_bpm
        + (p.awake_delta_bpm + day_awake + st_hr_awake) * awake
        + circ
        + day_hr
        + p.inf.get("hr_bpm", 0.0) * inf["hr"]
        + p.inf.get("linger_bpm", 0.0) * inf["linger"]
        - p.inf.get("rest_bpm", 0.0) * inf["rest"] * awake
        + st_hr
        + oth
        + men_hr * men
        + act
        + noise_sd * _ar_noise(r, n, 0.85)
        + 0.8 * r.standard_normal(n)
    )
    art = r.random(n) < 5e-4  # sensor artefacts
    hr[art] += r.uniform(15.0, 40.0, int(art.sum()))
    hr = np.clip(hr, 32.0, 215.0)
    hr_ok = worn & (r.random(n) >= 0.01)  # 1 % dropped minutes

    # sleep-only streams: skin temperature and breathing rate
    onset_flag = asleep & ~np.r_[False, asleep[:-1]]
    last_on = np.maximum.accumulate(np.where(onset_flag, np.arange(n), 0))
    since = np.arange(n) - last_on
    sleep_ok = asleep & worn
    temp = (
        p.temp_c + day_temp + p.inf.get("temp_c", 0.0) * inf["fever"] + 0.3 * men + st_temp + 0.1 * oth / 2.5
        + 0.4 * (1.0 - np.exp(-since / 30.0)) - 0.2 + 0.08 * _ar_noise(r, n, 0.9)
    )
    resp = (
        p.resp_rpm + day_resp + p.inf.get("resp_rpm", 0.0) * inf["hr"] + 0.3 * men + st_resp + 0.1 * oth
        + 0.6 * r.standard_normal(n)
    )
    log_rm = (
        math.log(p.rmssd_ms) + day_rm + st_rm - 0.08 * men
        + np.log1p(-np.clip(p.inf.get("rmssd_drop", 0.0) * inf["hr"], 0.0, 0.9))
    )

    # beat intervals: one segment every ibi_every_min minutes asleep
    seg = np.flatnonzero(sleep_ok & hr_ok & (mins % cfg.ibi_every_min == 0))
    ibi_t, ibi_v = _ibi(r, seg, hr[seg], np.exp(log_rm[seg]), t0, cfg.ibi_segment_s)

    f32 = np.float32
    sp = SimParticipant(
        profile=p,
        plan=plan,
        t0=float(t0),
        hr=np.where(hr_ok, hr, np.nan).astype(f32),
        steps=np.where(worn, steps, np.nan).astype(f32),
        temp=np.where(sleep_ok, np.clip(temp, 25.0, 45.0), np.nan).astype(f32),
        resp=np.where(sleep_ok, np.clip(resp, 3.0, 60.0), np.nan).astype(f32),
        ibi_time=ibi_t,
        ibi_ms=ibi_v.astype(f32),
        asleep=asleep,
        worn=worn,
        log_rmssd=log_rm.astype(f32),
    )
    return sp


def _ar1_days(r: np.random.Generator, n: int, sd: float, phi: float) -> np.ndarray:
    e = r.standard_normal(n) * sd * math.sqrt(1.0 - phi * phi)
    x0 = r.standard_normal() * sd
    zi = np.array([phi * x0])
    return lfilter([1.0], [1.0, -phi], e, zi=zi)[0]


def _ibi(
    r: np.random.Generator, seg: np.ndarray, hr: np.ndarray, rmssd: np.ndarray, t0: float, seg_s: float
) -> tuple[np.ndarray, np.ndarray]:
    """Beat intervals for segments starting at minutes ``seg``.

    Per-beat white noise of SD rmssd/sqrt(2) makes the expected RMSSD equal the
    target; a slow sinusoid (breathing-like, 0.25 cycles/beat is avoided) adds
    realistic wander without changing RMSSD much.
    """
    if seg.size == 0:
        return np.zeros(0), np.zeros(0)
    nb = np.maximum(np.round(hr * seg_s / 60.0).astype(np.int64), 2)
    rep = np.repeat(np.arange(seg.size), nb)
    mean_ibi = 60000.0 / hr[rep]
    k = np.arange(rep.size) - np.repeat(np.cumsum(nb) - nb, nb)
    wander = 0.02 * mean_ibi * np.sin(2.0 * np.pi * k / 40.0 + np.repeat(r.uniform(0, 2 * np.pi, seg.size), nb))
    ibi = np.clip(mean_ibi + wander + r.standard_normal(rep.size) * rmssd[rep] / math.sqrt(2.0), 300.0, 2000.0)
    cum = np.cumsum(ibi)
    first = np.cumsum(nb) - nb
    start_cum = np.repeat(cum[first] - ibi[first], nb)
    t = t0 + seg[rep] * 60.0 + (cum - start_cum) / 1000.0
    return t, ibi
