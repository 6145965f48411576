"""Parameters of the synthetic cohort, each with its value and its source.

Every number the simulator draws from lives here (or in :mod:`detectors.ehr` for the
OpenSAFELY severity ratios), so ``docs/simulate.md`` and ``bench/calibrate_sim.py``
can print one table. ``Mayer 2022`` figures were measured on the real per-day model
parameters of 75 COVID-19 cases with >= 10 pre-onset days (days -60..-14 as baseline)
in ``shared/data/mayer2022_covid_daily_hr_params`` by ``bench/calibrate_sim.py``;
"recalled" marks a literature value not re-checked against the paper here.
"""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = ["SimConfig", "PARAMETER_TABLE", "INFECTION_OR", "UTC_OFFSETS_H"]

#: Odds ratios for *acquiring* an infection during the study (not severity).
INFECTION_OR: dict[str, float] = {
    "obesity": 1.46,  # Popkin 2020 Obes Rev meta-analysis, OR of testing positive (recalled)
    "diabetes": 1.2,  # modelling choice: exposure via care contacts; weak evidence
    "chronic_kidney": 1.3,  # dialysis / care contacts (modelling choice)
    "immunosuppressed": 1.5,  # modelling choice (higher susceptibility)
    "chronic_lung": 1.15,  # modelling choice
    "vaccinated_2plus": 0.6,  # ~40 % effectiveness against infection, Omicron era (recalled)
    "prior_infection": 0.6,  # waning protection (SIREN 2021 reported 84 %; recalled)
}

#: Home time zones (hours east of UTC) and their weights: mostly US, some Europe.
UTC_OFFSETS_H: tuple[tuple[int, float], ...] = ((-8, 0.25), (-7, 0.1), (-6, 0.2), (-5, 0.3), (0, 0.05), (1, 0.1))


@dataclass(frozen=True)
class SimConfig:
    """Settings of a simulated cohort. Defaults are the documented values.

    The between-person and day-to-day figures were chosen so that
    ``bench/calibrate_sim.py`` measures, on simulated data with Mayer's HR model,
    the spread Mayer 2022's real parameters show (see the module docstring).
    """

    days: int = 120
    start_date: str = "2024-01-01"
    infected_fraction: float = 0.3  # share with a SARS-CoV-2 infection during the study
    asymptomatic_fraction: float = 0.15  # of infections: no symptoms, no labels
    hr_nonresponder_fraction: float = 0.2  # of infections: no resting-HR rise (Mishra 2020: 26/32 responded)
    ehr_fraction: float = 0.7  # share of participants with an EHR record
    other_illness_per_30d: float = 0.05  # minor non-COVID illness (cold/flu-like), unlabelled
    ibi_every_min: int = 30  # one minute of beat intervals every N minutes of sleep
    ibi_segment_s: float = 60.0
    stressors: bool = True
    menstrual: bool = True
    # individual baselines (between-person distributions)
    rhr_sleep_mean_bpm: float = 64.0  # sleeping HR at the circadian mean; nightly RHR ~59 (Quer 2020 RHR 65.5+-7.7 by day)
    rhr_sleep_sd_bpm: float = 7.5
    awake_delta_mean_bpm: float = 10.0  # awake, still vs asleep
    awake_delta_sd_bpm: float = 3.0
    circ_amp_median_bpm: float = 2.0  # pure cosine term; with the sleep step our fit gives ~7 (Mayer 5.6 x bridge 1.36)
    circ_amp_logsd: float = 0.4
    hr_per_step_mean: float = 0.5  # bpm per (step/min): Mayer 2022 median 0.271 x bridge 1.59 (our OLS fit reads 1.59x Mayer's)
    hr_per_step_sd: float = 0.08
    steps_median_per_day: float = 8150.0  # Mayer 2022 median 8155 (IQR 6109-9644)
    steps_between_logsd: float = 0.38
    steps_day_logsd: float = 0.25  # Mayer 2022 within-person SD of log(steps+100) 0.40 (incl. weekday effect)
    rmssd_median_ms: float = 45.0  # nightly RMSSD at age 30 (Natarajan 2020 / Oura-type norms; recalled)
    rmssd_age_slope: float = -0.015  # log-ms per year of age (HRV falls with age; recalled)
    rmssd_between_logsd: float = 0.35
    resp_mean_rpm: float = 14.8  # nightly breathing rate (Natarajan 2020 Fitbit ~15 rpm; recalled)
    resp_sd_rpm: float = 1.5
    temp_mean_c: float = 34.3  # wrist/finger skin temperature asleep (Mason 2022 dermal temp; recalled)
    temp_sd_c: float = 0.5
    midsleep_mean_min: float = 225.0  # 03:45 local (chronotype; recalled population surveys)
    midsleep_sd_min: float = 50.0
    sleep_dur_mean_min: float = 430.0  # 7.2 h on wearables (recalled)
    sleep_dur_sd_min: float = 35.0
    # day-to-day variation (within person)
    hr_day_sd_bpm: float = 3.0  # all-day AR(1) offset; Mayer 2022 fitted mesor SD 3.3 bpm incl. fit noise
    hr_day_phi: float = 0.5  # Mayer 2022 lag-1 autocorrelation of the mesor 0.44
    hr_awake_day_sd_bpm: float = 2.5  # extra awake-only daily offset (posture, caffeine, stress)
    rmssd_day_logsd: float = 0.12
    resp_day_sd_rpm: float = 0.35
    temp_day_sd_c: float = 0.15
    midsleep_night_sd_min: float = 35.0
    sleep_dur_night_sd_min: float = 50.0
    # infection signature
    inf_hr_median_bpm: float = 6.0  # peak nightly RHR rise of responders (Alavi 2022 thresholds +3/+4; 3-10 bpm reported)
    inf_hr_logsd: float = 0.4
    inf_pre_days: tuple[float, float] = (2.0, 5.0)  # rise starts 2-5 days before onset (Mishra 2020, Alavi 2022)
    inf_peak_day: tuple[float, float] = (0.0, 2.0)
    inf_recovery_days: tuple[float, float] = (7.0, 21.0)  # back to ~5 % of the peak
    inf_rest_bpm: float = 8.0  # awake HR lowered by bed rest when ill (fits Mayer's post-onset mesor dip)
    inf_steps_drop: tuple[float, float] = (0.4, 0.8)  # Mayer 2022 median steps ratio 0.43-0.59 at days 3-8
    inf_sleep_gain_min: tuple[float, float] = (30.0, 100.0)  # sleep up when ill (Radin 2021 JAMA Netw Open; recalled)
    inf_rmssd_drop: tuple[float, float] = (0.1, 0.35)  # HRV down (Natarajan 2020; Hirten 2021; recalled)
    inf_resp_rpm: tuple[float, float] = (0.5, 2.5)  # Natarajan 2020 ~ +1 rpm; anchors.md 1-2 rpm
    inf_temp_median_c: float = 0.5  # Mason 2022 TemPredict: temperature adds 4.9 % AUC; size recalled
    inf_linger_bpm: tuple[float, float] = (0.0, 3.0)  # post-viral elevation (Radin 2021; Mayer days 17-28 +1.5)
    vaccine_shrink: float = 0.7  # >= 2 doses: magnitude x0.7
    vaccine_shorten: float = 0.6  # >= 2 doses: duration x0.6 (Antonelli 2022 Lancet ID; recalled)
    severity_gain: float = 0.15  # magnitude multiplier = exp(gain * sum log OpenSAFELY HR), clipped
    # non-wear
    night_off_mean: float = 0.05  # whole nights without the device
    day_off_mean: float = 0.02
    charge_per_day: float = 0.4
    short_gaps_per_day: float = 1.0
    extra: dict = field(default_factory=dict)

    def check(self) -> SimConfig:
        """Validate; raise ValueError naming the bad setting."""
        for name in ("infected_fraction", "asymptomatic_fraction", "hr_nonresponder_fraction", "ehr_fraction"):
            v = getattr(self, name)
            if not 0.0 <= v <= 1.0:
                raise ValueError(f"{name} must be within [0, 1], got {v}")
        if self.days < 1:
            raise ValueError(f"days must be >= 1, got {self.days}")
        if self.ibi_every_min < 1:
            raise ValueError(f"ibi_every_min must be >= 1, got {self.ibi_every_min}")
        return self


#: (parameter, value, source) rows for the documentation; see docs/simulate.md.
PARAMETER_TABLE: tuple[tuple[str, str, str], ...] = (
    ("nightly resting HR between people", "sleep level N(64, 7.5) bpm + BMI/sex/fitness terms -> NightSignal RHR 64.9 +- 8.2", "Stanford minute data 65.4 +- 7.3 (measured); Quer 2020 65.5 +- 7.7 by day (recalled)"),
    ("HR mesor (Mayer model) between people", "emerges: our fit 72.9 +- 8.2 bpm", "Mayer 2022 data: 76.5 +- 8.1 bpm minus the 3.6 bpm fit bridge (measured)"),
    ("circadian amplitude", "cosine median 2 bpm + 10 bpm awake step; our fit 7.4", "Mayer 2022 data: median 5.6 bpm x1.36 bridge = 7.6 (measured)"),
    ("circadian peak", "midsleep + 12 h +- 1 h (~15:45)", "Mayer 2022 data: phase median 189 x 5 min = 15:45 (measured)"),
    ("HR per step", "N(0.50, 0.08) bpm per step/min, 2-tau response (1, 8 min)", "Mayer 2022 data: median 0.271 x1.59 bridge; our fit on Stanford 0.53 (measured)"),
    ("minute HR noise", "AR(1) phi 0.85, SD 7.5 bpm awake / 2 asleep x person lognormal(0, 0.17); sensor 0.8 bpm; 0.05 % artefacts", "Mayer 2022 data: noise SD 5.9 (x1.22 bridge = 7.2), between-person CV 0.17 (measured)"),
    ("daily steps", "lognormal median 8150, between log-SD 0.38, day log-SD 0.25, weekend x0.85", "Mayer 2022 data: median 8155, IQR 6109-9644; within log-SD 0.40 (measured)"),
    ("day-to-day HR", "AR(1) phi 0.5, SD 3.0 bpm + awake-only SD 2.5", "Mayer 2022 data: mesor within-person SD 3.3, lag-1 r 0.44 (measured)"),
    ("nightly RMSSD", "lognormal median 45 ms at 30 y, -1.5 %/year, night log-SD 0.12", "Natarajan 2020 (recalled)"),
    ("breathing rate asleep", "N(14.8, 1.5) rpm, night SD 0.35", "Natarajan 2020 (recalled)"),
    ("skin temperature asleep", "N(34.3, 0.5) C, night SD 0.15, +0.4 C over the first hour asleep", "Mason 2022 TemPredict (recalled)"),
    ("sleep timing", "midsleep N(03:45, 50 min), duration N(430, 35) min; nightly SD 35 / 50 min; weekend +45 min later, +30 min longer", "population sleep surveys (recalled)"),
    ("infection: resting HR", "peak lognormal median 6 bpm; linear rise from 2-5 d before onset, peak day 0-2, recovery 7-21 d; 20 % non-responders", "Mishra 2020 (26/32 responders), Alavi 2022 (+3/+4 bpm rules, median 3 d before onset), Mayer 2022 (measured: median mesor +3.5 at day 0)"),
    ("infection: awake rest", "awake HR -8 x U(0.5, 1.5) bpm from day 1, shoulder 0.6 x recovery", "Mayer 2022 data: mesor -1.2 to -4 bpm at days 3-11 (measured)"),
    ("infection: steps", "x(1 - U(0.4, 0.8) x sickness), shoulder 0.8 x recovery", "Mayer 2022 data: median steps ratio 0.82 day 0, 0.43-0.59 days 3-8 (measured); Mishra 2020"),
    ("infection: sleep", "+U(30, 100) min x sickness", "Radin 2021 / Mishra 2020 (recalled)"),
    ("infection: HRV", "RMSSD x(1 - U(0.10, 0.35) x curve)", "Natarajan 2020; Hirten 2021 (recalled)"),
    ("infection: breathing", "+U(0.5, 2.5) rpm x curve", "Natarajan 2020 (recalled); anchors.md"),
    ("infection: temperature", "+lognormal median 0.5 C, fever curve -2..+4 d", "Mason 2022 TemPredict (recalled)"),
    ("asymptomatic infections", "15 % of infections, half magnitude, no labels", "modelling choice"),
    ("diagnosis delay", "0-7 days after onset, uniform", "brief; Alavi 2022 (recalled)"),
    ("stressors", "alcohol 2.5/30 d (+2-7 bpm one night, sleep 30 min shorter), hard exercise 3/30 d (45-90 min run; +1-4 that night), poor sleep 1.5/30 d (60-150 min less sleep; +1-3), travel 0.3/30 d (+2-4 for 2 nights, sleep shift 1-3 h re-entraining 1 h/day), vaccination during the study (+1-4 bpm, 2 nights)", "Alavi 2022 (non-COVID stressors 1.15 alert days/person); Pietila 2018 alcohol; Quer 2022 vaccine reactogenicity (recalled)"),
    ("menstrual cycle", "70 % of women 15-50: 28+-2 d, luteal +1-3 bpm, +0.3 C", "Goodale 2019; Shilaih 2018 (recalled)"),
    ("infection odds", "obesity 1.46, diabetes 1.2, CKD 1.3, immunosuppressed 1.5, lung 1.15, >=2 doses 0.6, prior infection 0.6", "Popkin 2020 (obesity); others modelling choices (see INFECTION_OR)"),
    ("severity", "magnitude x exp(0.15 sum log HR), duration x exp(0.2 sum log HR), clipped [0.6, 2]", "Williamson 2020 OpenSAFELY HRs (detectors.ehr.RISK_OR)"),
    ("vaccination", ">= 2 doses: magnitude x0.7, duration x0.6", "Antonelli 2022 Lancet Infect Dis (recalled)"),
    ("non-wear", "nights off 5 %, days off 2 %, charging 40 % of days (30-90 min), ~1 short gap/day", "RATE/Conroy 2022 capture >= 48 % (anchors.md); modelling choice"),
)
