"""One simulated person: latent traits, EHR record, infection plan (no minute data).

A profile is drawn from its own random stream, derived from ``(seed, index)`` only,
so a participant is the same whatever the cohort size or number of days, and the
infection/EHR relation can be checked on thousands of profiles in milliseconds.
"""

from __future__ import annotations

import datetime as dt
import math
from dataclasses import dataclass, field

import numpy as np

from detectors.ehr import CONDITIONS, Fact, date_to_time, risk_factors
from streams.simulate.params import INFECTION_OR, UTC_OFFSETS_H, SimConfig

__all__ = ["Profile", "draw_profile", "participant_rng", "ehr_facts", "ehr_columns"]


def participant_rng(seed: int, index: int, stream: int) -> np.random.Generator:
    """Independent generator for one participant and one purpose (0 profile, 1 day plan, 2 minutes)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), int(stream)]))


#: Median of :func:`severity_index` over simulated people (measured on 3,000 profiles).
SEVERITY_MEDIAN = -1.2


def _sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


@dataclass
class Profile:
    index: int
    participant_id: str
    utc_offset_s: int
    age: float
    sex: str
    bmi: float
    conditions: dict[str, int]
    vaccine_days: list[int]  # dose days relative to the study start (negative = before)
    prior_infection_day: int | None
    has_ehr: bool
    # physiology
    rhr_sleep_bpm: float
    awake_delta_bpm: float
    circ_amp_bpm: float
    circ_peak_min: float
    hr_per_step: float
    hr_noise_mult: float  # person's minute-to-minute HR variability (x the default noise SD)
    steps_per_day: float
    rmssd_ms: float
    resp_rpm: float
    temp_c: float
    midsleep_min: float
    sleep_dur_min: float
    night_off_p: float
    day_off_p: float
    stress_rate: float  # person multiplier of stressor rates
    drinks: bool
    cycle: tuple[float, float] | None  # (length days, phase days) or None
    # infection plan
    infected: bool
    asymptomatic: bool
    hr_responder: bool
    onset_u: float  # position of onset inside the allowed window (0-1)
    inf: dict[str, float] = field(default_factory=dict)  # drawn magnitudes and timings
    diagnosis_delay: int = 0
    p_infection: float = 0.0

    @property
    def doses_before_start(self) -> int:
        return sum(1 for d in self.vaccine_days if d < 0)

    def onset_day(self, days: int) -> int | None:
        """Onset day index (0 = start date) for a study of ``days``; None if uninfected."""
        if not self.infected:
            return None
        lo = min(28, days // 3)
        hi = max(lo, days - 10)
        return int(lo + round(self.onset_u * (hi - lo)))


def _risk_context(p: Profile) -> dict[str, float]:
    c = {"has_ehr": 1.0, "age_years": p.age, "sex_male": 1.0 if p.sex == "M" else 0.0, "bmi": p.bmi}
    c.update({k: float(v) for k, v in p.conditions.items()})
    c["vaccine_doses"] = float(p.doses_before_start)
    c["prior_infections"] = 1.0 if p.prior_infection_day is not None else 0.0
    return c


def severity_index(p: Profile) -> float:
    """Sum of OpenSAFELY log hazard ratios (detectors.ehr) without the protective terms."""
    f = risk_factors(_risk_context(p))
    return float(sum(v for k, v in f.items() if k not in ("vaccine_doses", "prior_infections")))


def draw_profile(seed: int, index: int, cfg: SimConfig) -> Profile:
    """Draw participant ``index`` of cohort ``seed`` (deterministic)."""
    r = participant_rng(seed, index, 0)
    u = r.random(64)  # fixed block of uniforms: adding a trait later does not shift others
    n = r.standard_normal(64)
    age = float(np.clip(42.0 + 14.0 * n[0], 18.0, 85.0))
    sex = "F" if u[0] < 0.5 else "M"
    bmi = float(np.clip(26.5 * math.exp(0.17 * n[1]) + 0.04 * (age - 42.0), 16.0, 60.0))
    cond = {
        "hypertension": int(u[1] < _sigmoid(-3.0 + 0.06 * (age - 18) + 0.08 * (bmi - 26.5))),
        "diabetes": int(u[2] < _sigmoid(-4.5 + 0.05 * (age - 18) + 0.12 * (bmi - 26.5))),
        "obesity": int(bmi >= 30.0),
        "chronic_lung": int(u[3] < 0.08),
        "chronic_heart": int(u[4] < _sigmoid(-5.5 + 0.07 * (age - 18))),
        "chronic_kidney": 0,
        "immunosuppressed": int(u[6] < 0.03),
    }
    cond["chronic_kidney"] = int(u[5] < _sigmoid(-5.5 + 0.06 * (age - 18) + 0.8 * cond["diabetes"] + 0.6 * cond["hypertension"]))
    # vaccine doses before the start (older people more), and maybe one during the study
    pd = np.array([0.2, 0.05, 0.35, 0.3, 0.1]) if age < 60 else np.array([0.1, 0.03, 0.27, 0.4, 0.2])
    doses = int(np.searchsorted(np.cumsum(pd), u[7] * pd.sum()))
    last = -int(30 + u[8] * 335)
    vdays = sorted(last - 120 * k - int(u[9 + k] * 40) for k in range(doses))
    if u[14] < 0.15:
        vdays.append(int(u[15] * 1000))  # day inside the study; dropped later if beyond its end
    prior = -int(90 + u[16] * 640) if u[17] < 0.25 else None
    offs = np.array([o for o, _ in UTC_OFFSETS_H])
    w = np.array([p for _, p in UTC_OFFSETS_H])
    off_h = int(offs[np.searchsorted(np.cumsum(w), u[18] * w.sum())])
    steps = cfg.steps_median_per_day * math.exp(cfg.steps_between_logsd * n[2]) * (1.0 - 0.004 * max(0.0, age - 50))
    rhr = (
        cfg.rhr_sleep_mean_bpm + cfg.rhr_sleep_sd_bpm * n[3] + (2.5 if sex == "F" else 0.0) + 0.25 * (bmi - 26.5)
        - 1.0 * math.log(steps / cfg.steps_median_per_day) * 3.0
    )
    midsleep = cfg.midsleep_mean_min + cfg.midsleep_sd_min * n[4] - 0.8 * (age - 42.0)
    p = Profile(
        index=index,
        participant_id=f"S{index:05d}",
        utc_offset_s=off_h * 3600,
        age=round(age, 1),
        sex=sex,
        bmi=round(bmi, 1),
        conditions=cond,
        vaccine_days=vdays,
        prior_infection_day=prior,
        has_ehr=bool(u[19] < cfg.ehr_fraction),
        rhr_sleep_bpm=float(np.clip(rhr, 40.0, 90.0)),
        awake_delta_bpm=float(np.clip(cfg.awake_delta_mean_bpm + cfg.awake_delta_sd_bpm * n[5], 6.0, 28.0)),
        circ_amp_bpm=float(cfg.circ_amp_median_bpm * math.exp(cfg.circ_amp_logsd * n[6])),
        circ_peak_min=float(midsleep + 720.0 + 60.0 * n[7]),
        hr_per_step=float(np.clip(cfg.hr_per_step_mean + cfg.hr_per_step_sd * n[8], 0.15, 0.8)),
        hr_noise_mult=float(math.exp(0.17 * n[17])),  # Mayer 2022: noise SD 6.0 +- 1.0 between people
        steps_per_day=float(steps),
        rmssd_ms=float(cfg.rmssd_median_ms * math.exp(cfg.rmssd_age_slope * (age - 30.0) + cfg.rmssd_between_logsd * n[9])),
        resp_rpm=float(np.clip(cfg.resp_mean_rpm + cfg.resp_sd_rpm * n[10], 9.0, 24.0)),
        temp_c=float(cfg.temp_mean_c + cfg.temp_sd_c * n[11]),
        midsleep_min=float(midsleep),
        sleep_dur_min=float(np.clip(cfg.sleep_dur_mean_min + cfg.sleep_dur_sd_min * n[12], 300.0, 560.0)),
        night_off_p=float(r.beta(1.2, 1.2 / cfg.night_off_mean - 1.2)) if cfg.night_off_mean > 0 else 0.0,
        day_off_p=float(r.beta(1.0, 1.0 / cfg.day_off_mean - 1.0)) if cfg.day_off_mean > 0 else 0.0,
        stress_rate=float(math.exp(0.5 * n[13])),
        drinks=bool(u[20] > 0.15),
        cycle=(float(28.0 + 2.0 * n[14]), float(u[21] * 28.0)) if (cfg.menstrual and sex == "F" and age < 50 and u[22] < 0.7) else None,
        infected=False,
        asymptomatic=False,
        hr_responder=True,
        onset_u=float(u[23]),
    )
    # infection: logit(p) = logit(base) + sum log OR (centred on the population prevalence)
    z = 0.0
    for k in ("obesity", "diabetes", "chronic_kidney", "immunosuppressed", "chronic_lung"):
        z += math.log(INFECTION_OR[k]) * cond[k]
    if p.doses_before_start >= 2:
        z += math.log(INFECTION_OR["vaccinated_2plus"])
    if prior is not None:
        z += math.log(INFECTION_OR["prior_infection"])
    f = cfg.infected_fraction
    if f <= 0.0 or f >= 1.0:
        p.p_infection = f
    else:
        # -0.25: the typical person's offset from the population mean of z (rough centring)
        p.p_infection = _sigmoid(math.log(f / (1.0 - f)) + z + 0.25)
    p.infected = bool(u[24] < p.p_infection)
    sev = severity_index(p)
    vacc = p.doses_before_start >= 2
    # centred on the population median (-1.2: the reference of the HRs is a 50-59 year-old)
    rel = sev - SEVERITY_MEDIAN
    mag_mult = float(np.clip(math.exp(cfg.severity_gain * rel), 0.6, 2.0)) * (cfg.vaccine_shrink if vacc else 1.0)
    dur_mult = float(np.clip(math.exp(0.2 * rel), 0.6, 2.0)) * (cfg.vaccine_shorten if vacc else 1.0)
    p.asymptomatic = bool(u[25] < cfg.asymptomatic_fraction * (1.5 if vacc else 1.0))
    p.hr_responder = bool(u[26] >= cfg.hr_nonresponder_fraction)
    lo_r, hi_r = cfg.inf_recovery_days
    p.inf = {
        "hr_bpm": float(cfg.inf_hr_median_bpm * math.exp(cfg.inf_hr_logsd * n[15]) * mag_mult * (1.0 if p.hr_responder else 0.1)),
        "pre_days": float(cfg.inf_pre_days[0] + u[27] * (cfg.inf_pre_days[1] - cfg.inf_pre_days[0])),
        "peak_day": float(cfg.inf_peak_day[0] + u[28] * (cfg.inf_peak_day[1] - cfg.inf_peak_day[0])),
        "recovery_days": float(np.clip((lo_r + u[29] * (hi_r - lo_r)) * dur_mult, 4.0, 35.0)),
        "rest_bpm": float(cfg.inf_rest_bpm * (0.5 + u[30]) * mag_mult),
        "steps_drop": float(np.clip((cfg.inf_steps_drop[0] + u[31] * (cfg.inf_steps_drop[1] - cfg.inf_steps_drop[0])) * math.sqrt(mag_mult), 0.1, 0.9)),
        "sleep_gain_min": float(cfg.inf_sleep_gain_min[0] + u[32] * (cfg.inf_sleep_gain_min[1] - cfg.inf_sleep_gain_min[0])),
        "rmssd_drop": float(np.clip((cfg.inf_rmssd_drop[0] + u[33] * (cfg.inf_rmssd_drop[1] - cfg.inf_rmssd_drop[0])) * mag_mult, 0.0, 0.6)),
        "resp_rpm": float((cfg.inf_resp_rpm[0] + u[34] * (cfg.inf_resp_rpm[1] - cfg.inf_resp_rpm[0])) * mag_mult * (0.15 if u[35] < 0.2 else 1.0)),
        "temp_c": float(cfg.inf_temp_median_c * math.exp(0.5 * n[16]) * mag_mult * (0.15 if u[36] < 0.2 else 1.0)),
        "linger_bpm": float(cfg.inf_linger_bpm[0] + u[37] * (cfg.inf_linger_bpm[1] - cfg.inf_linger_bpm[0])) * (1.0 if p.hr_responder else 0.2),
        "severity_index": sev,
    }
    if p.asymptomatic:
        for k in ("hr_bpm", "rmssd_drop", "resp_rpm", "temp_c", "linger_bpm"):
            p.inf[k] *= 0.5
        for k in ("rest_bpm", "steps_drop", "sleep_gain_min"):
            p.inf[k] = 0.0
    p.diagnosis_delay = int(u[38] * 8)  # 0-7 days
    return p


def ehr_columns(p: Profile) -> dict[str, float | str]:
    """participants.csv EHR columns (known at the study start); empty without an EHR."""
    if not p.has_ehr:
        return {}
    out: dict[str, float | str] = {"age": p.age, "sex": p.sex, "bmi": p.bmi}
    for k in CONDITIONS:
        out[k] = int(p.conditions[k])
    out["vaccine_doses"] = p.doses_before_start
    return out


def ehr_facts(
    p: Profile,
    seed: int,
    start: dt.date,
    days: int,
    onset_day: int | None,
    other_illness_days: list[int],
) -> list[Fact]:
    """Dated EHR facts (detectors.ehr vocabulary) of a participant with an EHR; [] without."""
    if not p.has_ehr:
        return []
    pid = p.participant_id
    r = participant_rng(seed, p.index, 9)  # dates of old diagnoses and tests
    t0 = date_to_time(start)

    def at(day: int) -> float:
        return t0 + day * 86400.0

    birth = start - dt.timedelta(days=int(p.age * 365.2425))
    facts = [
        Fact(pid, at(-int(365 * 5 + r.integers(0, 365 * 5))), "birth_date", birth.isoformat()),
        Fact(pid, at(-int(365 * 5 + r.integers(0, 365 * 5))), "sex", p.sex),
        Fact(pid, at(-int(r.integers(20, 400))), "bmi", float(p.bmi)),
    ]
    for k in CONDITIONS:
        if p.conditions[k] and k != "obesity":
            facts.append(Fact(pid, at(-int(r.integers(60, 365 * 8))), k, 1.0))
    if p.conditions["obesity"]:
        facts.append(Fact(pid, at(-int(r.integers(20, 400))), "obesity", 1.0))
    dose = 0
    for d in sorted(p.vaccine_days):
        if d >= days:
            continue
        dose += 1
        facts.append(Fact(pid, at(d), "vaccine_dose", float(dose)))
    if p.prior_infection_day is not None:
        facts.append(Fact(pid, at(p.prior_infection_day), "covid19", 1.0))
        facts.append(Fact(pid, at(p.prior_infection_day), "test_sars_cov_2", 1.0))
    if onset_day is not None and not p.asymptomatic:
        dx = onset_day + p.diagnosis_delay
        facts.append(Fact(pid, at(dx), "test_sars_cov_2", 1.0))
        facts.append(Fact(pid, at(dx), "covid19", 1.0))
    for d in other_illness_days:
        if r.random() < 0.5:
            facts.append(Fact(pid, at(d + 1), "test_sars_cov_2", 0.0))
    return facts
