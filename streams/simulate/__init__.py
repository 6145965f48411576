"""Synthetic cohorts: minute-level wearable physiology with infections, stressors and EHR.

``simulate_cohort`` writes a cohort folder (:mod:`streams.cohort` format) one
participant at a time; each participant comes from its own random streams derived
from ``(seed, index)``, so memory does not grow with the cohort, the same seed gives
byte-identical files, and participant ``i`` is the same in a 10- or 10,000-person
cohort (with the same settings).

Files written besides the cohort format's own::

    ehr_facts.csv    participant_id,time_known,fact,value (detectors.ehr vocabulary)
    sim_truth.csv    per participant: the hidden truth (infection incl. asymptomatic,
                     responder, magnitudes, other illness, baselines)
    sim_events.csv   participant_id,date,event,detail (stressors, illnesses, vaccination)

Parameters and sources (full table: ``docs/simulate.md``, :data:`PARAMETER_TABLE`)

=============================  ==========================================  =======================================
quantity                       value used                                  source
=============================  ==========================================  =======================================
HR mesor between people        our fit 72.9 +- 8.2 bpm (emerges)           Mayer 2022 76.5 +- 8.1 (measured) - 3.6
                                                                           bridge = 72.9
nightly resting HR             sleep level N(64, 7.5) bpm -> RHR 65 +- 8   Stanford real 65.4 +- 7.3 (measured);
                                                                           Quer 2020 65.5 +- 7.7 (recalled)
nightly RHR within-person      emerges: SD 3.2, MAD-SD 3.1 bpm             Stanford real: 4.1 / 3.2 (measured)
circadian amplitude / peak     cosine 2 bpm + 10 bpm awake step;           Mayer 2022: 5.6 bpm (x1.36 bridge = 7.6),
                               our fit 7.4 bpm, peak 16:07                 peak 15:47 (measured)
HR per step                    N(0.50, 0.08) bpm per step/min              Mayer 2022 0.27 x1.59 bridge; Stanford
                                                                           real 0.53 (our fit)
minute HR noise                AR(1) 7.5 bpm awake x person CV 0.17        Mayer 2022 5.9 x1.22 bridge; CV 0.17
daily steps                    median 8150; between log-SD 0.38,           Mayer 2022: 8155 (IQR 6109-9644),
                               day log-SD 0.25                             within log-SD 0.40 (measured)
day-to-day HR                  AR(1) phi 0.5, SD 3.0 + awake SD 2.5        Mayer 2022: SD 3.3, lag-1 r 0.44
infection resting HR           median +6 bpm, linear rise from 2-5 d       Mishra 2020, Alavi 2022 (NightSignal),
                               before onset, 20 % non-responders,          Mayer 2022 (+3.5 bpm median mesor at
                               recovery 7-21 d                             day 0, measured)
infection bed rest / steps     awake HR -8 bpm; steps x(1 - U(0.4, 0.8))   Mayer 2022: mesor -1..-4 and steps
                                                                           ratio 0.43-0.59 on days 3-8 (measured)
infection HRV / resp / temp    RMSSD -10..35 %, +0.5..2.5 rpm, +0.5 C      Natarajan 2020, Mason 2022 (TemPredict)
stressors                      alcohol, exercise, poor sleep, travel,      Alavi 2022 (non-COVID alert days)
                               vaccination: +1..7 bpm for 1-2 nights
infection odds (EHR)           obesity 1.46, diabetes 1.2, CKD 1.3, ...    Popkin 2020; modelling choices
severity (EHR)                 OpenSAFELY HRs -> magnitude, duration       Williamson 2020 (detectors.ehr)
vaccination (>= 2 doses)       magnitude x0.7, duration x0.6               Antonelli 2022 (recalled)
=============================  ==========================================  =======================================

Examples
--------
>>> from streams.simulate import simulate_cohort
>>> path = simulate_cohort("cohorts/tiny", participants=3, days=30, seed=1)   # doctest: +SKIP
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from streams.cohort import CohortWriter, Participant
from streams.simulate.params import PARAMETER_TABLE, SimConfig
from streams.simulate.physiology import SimParticipant, simulate_participant
from streams.simulate.profile import Profile, draw_profile, ehr_columns, ehr_facts

__all__ = [
    "simulate_cohort",
    "simulate_participant",
    "draw_profile",
    "participant_record",
    "SimConfig",
    "SimParticipant",
    "Profile",
    "PARAMETER_TABLE",
    "TRUTH_COLUMNS",
]

TRUTH_COLUMNS = (
    "participant_id", "has_ehr", "infected", "asymptomatic", "hr_responder", "infection_onset_date",
    "inf_hr_bpm", "inf_pre_days", "inf_recovery_days", "severity_index", "p_infection",
    "other_illness_date", "rhr_sleep_bpm", "rmssd_ms", "steps_per_day", "resp_rpm", "temp_c",
)


def participant_record(sp: SimParticipant, cfg: SimConfig) -> tuple[Participant, dict[str, str], list[list[str]]]:
    """Cohort participant (labels, EHR columns), truth row and event rows of a simulated person."""
    p = sp.profile
    start = dt.date.fromisoformat(cfg.start_date)
    onset = sp.plan.onset_day
    part = Participant(p.participant_id, p.utc_offset_s)
    if onset is not None and not p.asymptomatic:
        part.symptom_onset_date = start + dt.timedelta(days=onset)
        part.diagnosis_date = part.symptom_onset_date + dt.timedelta(days=p.diagnosis_delay)
    part.ehr = ehr_columns(p)
    other = sp.plan.other_illness
    truth = {
        "participant_id": p.participant_id,
        "has_ehr": str(int(p.has_ehr)),
        "infected": str(int(p.infected)),
        "asymptomatic": str(int(p.infected and p.asymptomatic)),
        "hr_responder": str(int(p.infected and p.hr_responder)),
        "infection_onset_date": (start + dt.timedelta(days=onset)).isoformat() if onset is not None else "",
        "inf_hr_bpm": f"{p.inf['hr_bpm']:.2f}" if p.infected else "",
        "inf_pre_days": f"{p.inf['pre_days']:.2f}" if p.infected else "",
        "inf_recovery_days": f"{p.inf['recovery_days']:.2f}" if p.infected else "",
        "severity_index": f"{p.inf['severity_index']:.3f}",
        "p_infection": f"{p.p_infection:.4f}",
        "other_illness_date": (start + dt.timedelta(days=other[0][0])).isoformat() if other else "",
        "rhr_sleep_bpm": f"{p.rhr_sleep_bpm:.2f}",
        "rmssd_ms": f"{p.rmssd_ms:.2f}",
        "steps_per_day": f"{p.steps_per_day:.0f}",
        "resp_rpm": f"{p.resp_rpm:.2f}",
        "temp_c": f"{p.temp_c:.2f}",
    }
    events = [[p.participant_id, (start + dt.timedelta(days=d)).isoformat(), ev, det] for d, ev, det in sp.plan.events]
    if onset is not None:
        events.append([p.participant_id, (start + dt.timedelta(days=onset)).isoformat(),
                       "covid19_asymptomatic" if p.asymptomatic else "covid19_onset", f"{p.inf['hr_bpm']:.1f}"])
    events.sort()
    return part, truth, events


def simulate_cohort(
    out: str | os.PathLike,
    participants: int = 200,
    days: int = 120,
    seed: int = 7,
    start_date: str = "2024-01-01",
    infected_fraction: float = 0.3,
    ehr_fraction: float = 0.7,
    raw_participants: int = 0,
    name: str | None = None,
    progress: Callable[[int], None] | None = None,
    raw_hours: tuple[float, float] = (0.0, 2.0),
    raw_fs: float = 32.0,
    raw_every_nights: int = 1,
    **settings,
) -> Path:
    """Simulate a cohort and write it to ``out``; return the folder.

    Parameters
    ----------
    out : path
        Cohort folder (created; existing files of the same names are overwritten).
    participants, days : int
        Cohort size and days per participant (from local midnight of ``start_date``).
    seed : int
        Same seed and settings give byte-identical files.
    infected_fraction : float
        Average share infected with SARS-CoV-2 during the study (risk factors move
        the individual probability around it).
    ehr_fraction : float
        Share of participants with an EHR record (EHR columns and dated facts).
    raw_participants : int
        Participants (the first N) that also get raw PPG (1 channel) and ACC for
        ``raw_hours`` (default 00:00-02:00) of every ``raw_every_nights``-th night at
        ``raw_fs`` Hz from :func:`streams.synth_raw.simulate_raw`, driven by their
        minute HR, RMSSD and breathing rate (see :mod:`streams.simulate.raw`).
    progress : callable, optional
        Called with the number of participants written so far.
    **settings
        Any other :class:`SimConfig` field (e.g. ``asymptomatic_fraction=0.2``).

    Returns
    -------
    pathlib.Path
    """
    if participants < 0:
        raise ValueError(f"participants must be >= 0, got {participants}")
    if not 0 <= raw_participants <= participants:
        raise ValueError(f"raw_participants must be within [0, participants={participants}], got {raw_participants}")
    unknown = set(settings) - set(SimConfig.__dataclass_fields__)
    if unknown:
        raise ValueError(f"unknown simulation setting(s) {sorted(unknown)}; valid: {', '.join(sorted(SimConfig.__dataclass_fields__))}")
    try:
        dt.date.fromisoformat(start_date)
    except ValueError:
        raise ValueError(f"start_date must be an ISO date YYYY-MM-DD, got {start_date!r}") from None
    cfg = replace(
        SimConfig(), days=int(days), start_date=start_date, infected_fraction=float(infected_fraction),
        ehr_fraction=float(ehr_fraction), **settings,
    ).check()
    out = Path(out)
    notes = {
        # participants without labels were simulated without a symptomatic infection:
        # evaluation and training count them as healthy (asymptomatic infections included, as a study would)
        "unlabelled_healthy": True,
        "simulator": {"seed": int(seed), "participants": int(participants), "days": cfg.days,
                      "start_date": start_date, "infected_fraction": cfg.infected_fraction,
                      "ehr_fraction": cfg.ehr_fraction, "raw_participants": int(raw_participants),
                      "raw_hours": list(raw_hours), "raw_fs": float(raw_fs), "raw_every_nights": int(raw_every_nights),
                      "settings": {k: v for k, v in settings.items()}},
    }
    w = CohortWriter(out, name=name or out.name, source="prodromal simulate", notes=notes)
    facts = []
    truth_rows: list[dict[str, str]] = []
    event_rows: list[list[str]] = []
    start = dt.date.fromisoformat(start_date)
    for i in range(participants):
        sp = simulate_participant(seed, i, cfg)
        part, truth, events = participant_record(sp, cfg)
        regular = {k: (sp.t0, 60.0, getattr(sp, k)) for k in ("hr", "steps", "temp", "resp")}
        waves = None
        if i < raw_participants:
            from streams.simulate.raw import raw_waveforms

            waves = raw_waveforms(sp, seed, hours=raw_hours, fs=raw_fs, every_nights=raw_every_nights) or None
        w.add_participant(part, streams={"ibi": (sp.ibi_time, sp.ibi_ms)}, regular=regular, waveforms=waves)
        facts.extend(ehr_facts(sp.profile, seed, start, cfg.days, sp.plan.onset_day, [d for d, _, _ in sp.plan.other_illness]))
        truth_rows.append(truth)
        event_rows.extend(events)
        if progress is not None:
            progress(i + 1)
    path = w.close()
    from streams.importers.ehr_facts import FACTS_FILE, write_facts

    write_facts(path / FACTS_FILE, facts)
    with open(path / "sim_truth.csv", "w", newline="", encoding="utf-8") as fh:
        wr = csv.DictWriter(fh, fieldnames=list(TRUTH_COLUMNS))
        wr.writeheader()
        wr.writerows(truth_rows)
    with open(path / "sim_events.csv", "w", newline="", encoding="utf-8") as fh:
        wr2 = csv.writer(fh)
        wr2.writerow(["participant_id", "date", "event", "detail"])
        wr2.writerows(event_rows)
    return path
