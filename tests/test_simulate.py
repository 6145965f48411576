"""Synthetic cohort generator: determinism, plausibility, infection and stressor signatures, EHR links."""

from __future__ import annotations

import csv
import datetime as dt
import filecmp
from pathlib import Path

import numpy as np
import pytest

from detectors.records import STREAMS
from streams.cohort import EHR_COLUMNS, Cohort
from streams.simulate import SimConfig, draw_profile, simulate_cohort, simulate_participant

SEED = 11


def _rows(path: Path) -> list[dict[str, str]]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def cohort(tmp_path_factory) -> Path:
    return simulate_cohort(tmp_path_factory.mktemp("a") / "sim", participants=12, days=40, seed=SEED,
                           infected_fraction=0.5, ehr_fraction=0.5)


def _nightly_rhr(sp) -> np.ndarray:
    """NightSignal resting HR per local day: mean HR 00:00-06:59 over zero-step minutes."""
    hr = sp.hr.reshape(-1, 1440)[:, :420].astype(np.float64)
    st = sp.steps.reshape(-1, 1440)[:, :420]
    rest = np.where(st == 0, hr, np.nan)
    cnt = np.isfinite(rest).sum(axis=1)
    with np.errstate(invalid="ignore"):
        out = np.nansum(rest, axis=1) / cnt
    out[cnt < 60] = np.nan
    return out


def test_same_seed_gives_byte_identical_files(cohort, tmp_path):
    again = simulate_cohort(tmp_path / "sim", participants=12, days=40, seed=SEED, infected_fraction=0.5, ehr_fraction=0.5)
    files = sorted(p.relative_to(cohort) for p in cohort.rglob("*") if p.is_file())
    assert files == sorted(p.relative_to(again) for p in again.rglob("*") if p.is_file())
    assert len(files) > 12 * 5
    for f in files:
        assert filecmp.cmp(cohort / f, again / f, shallow=False), f


def test_other_seed_differs_and_participant_is_reproducible_alone(cohort):
    cfg = SimConfig(days=40, infected_fraction=0.5, ehr_fraction=0.5)
    alone = simulate_participant(SEED, 7, cfg)
    with np.load(cohort / "data" / "S00007" / "hr.npz") as z:
        stored = z["hr_bpm"]
    np.testing.assert_array_equal(stored, alone.hr)  # participant 7 does not depend on 0-6
    other = simulate_participant(SEED + 1, 7, cfg)
    assert not np.array_equal(np.nan_to_num(other.hr), np.nan_to_num(alone.hr))


def test_all_samples_inside_stream_ranges(cohort):
    c = Cohort(cohort)
    for p in c.participants:
        for kind in ("hr", "steps", "temp", "resp", "ibi"):
            f = cohort / "data" / p.participant_id / f"{kind}.npz"
            with np.load(f) as z:
                v = z[STREAMS[kind].field]
            assert v.dtype == np.float32
            fin = v[np.isfinite(v)]
            assert fin.size > 0, (p.participant_id, kind)
            spec = STREAMS[kind]
            assert fin.min() >= spec.lo and fin.max() <= spec.hi, (p.participant_id, kind, fin.min(), fin.max())
            s = c.read_stream(p.participant_id, kind)
            assert s.dropped == v.size - fin.size  # only the NaN gaps are dropped on reading


def test_plausible_physiology():
    cfg = SimConfig(days=30, infected_fraction=0.0)
    sp = simulate_participant(3, 0, cfg)
    rhr = np.nanmedian(_nightly_rhr(sp))
    assert 40 < rhr < 85
    day_hr = np.nanmean(np.where(sp.asleep, np.nan, sp.hr))
    assert day_hr > rhr + 5  # awake above asleep
    daily = np.nansum(sp.steps.reshape(-1, 1440), axis=1)
    assert 1000 < np.median(daily) < 25000
    asleep_steps = np.nansum(np.where(sp.asleep, sp.steps, 0))
    assert asleep_steps == 0
    # temperature and breathing only while asleep; IBI only asleep, RMSSD near the person's
    assert np.all(np.isnan(sp.temp[~sp.asleep])) and np.isfinite(sp.temp[sp.asleep & sp.worn]).all()
    minute = ((sp.ibi_time - sp.t0) // 60).astype(int)
    assert sp.asleep[minute].all()
    d = np.diff(sp.ibi_ms.astype(np.float64))[np.diff(minute) == 0]
    assert 0.6 * sp.profile.rmssd_ms < np.sqrt(np.mean(d * d)) < 1.6 * sp.profile.rmssd_ms
    worn_share = sp.worn.mean()
    assert 0.75 < worn_share < 1.0  # non-wear exists but is the exception


def test_infection_signature_in_nightly_resting_hr():
    cfg = SimConfig(days=60, infected_fraction=1.0, asymptomatic_fraction=0.0)
    rises, nonresp = [], []
    for i in range(40):
        sp = simulate_participant(5, i, cfg)
        on = sp.plan.onset_day
        assert on is not None
        rhr = _nightly_rhr(sp)
        base = np.nanmedian(rhr[max(0, on - 30) : on - 8])
        rise = np.nanmean(rhr[on - 3 : on + 2]) - base
        (rises if sp.profile.hr_responder else nonresp).append(rise)
    assert len(rises) >= 25
    assert np.mean(rises) > 2.0
    assert len(nonresp) >= 3 and np.mean(nonresp) < np.mean(rises) - 1.5


def test_infection_lowers_steps_after_onset():
    cfg = SimConfig(days=60, infected_fraction=1.0, asymptomatic_fraction=0.0)
    ratios = []
    for i in range(20):
        sp = simulate_participant(6, i, cfg)
        on = sp.plan.onset_day
        daily = np.nansum(sp.steps.reshape(-1, 1440), axis=1) / np.maximum(sp.worn.reshape(-1, 1440).mean(axis=1), 0.3)
        ratios.append(np.median(daily[on + 2 : on + 7]) / np.median(daily[: on - 7]))
    assert np.median(ratios) < 0.8


def test_stressors_raise_resting_hr_for_at_most_two_nights():
    cfg = SimConfig(days=90, infected_fraction=0.0, other_illness_per_30d=0.0, menstrual=False)
    first, later = [], []
    for i in range(30):
        sp = simulate_participant(8, i, cfg)
        rhr = _nightly_rhr(sp)
        base = np.nanmedian(rhr)
        days = [d for d, ev, _ in sp.plan.events]
        for d, ev, _ in sp.plan.events:
            if ev not in ("alcohol", "poor_sleep", "travel", "vaccination"):
                continue
            if any(0 < abs(o - d) <= 6 for o in days) or not 0 <= d < cfg.days - 6:
                continue  # isolated events only
            first.append(rhr[d + 1] - base)  # the night after the event's evening
            later.append(np.nanmean(rhr[d + 4 : d + 6]) - base)
    assert len(first) >= 15
    assert np.nanmean(first) > 1.5
    assert abs(np.nanmean(later)) < 1.0


def test_labels_only_for_symptomatic_infections(cohort):
    truth = {r["participant_id"]: r for r in _rows(cohort / "sim_truth.csv")}
    c = Cohort(cohort)
    assert any(t["infected"] == "1" for t in truth.values()) and any(t["infected"] == "0" for t in truth.values())
    for p in c.participants:
        t = truth[p.participant_id]
        if t["infected"] == "0" or t["asymptomatic"] == "1":
            assert p.symptom_onset_date is None and p.diagnosis_date is None
        else:
            assert p.symptom_onset_date.isoformat() == t["infection_onset_date"]
            assert 0 <= (p.diagnosis_date - p.symptom_onset_date).days <= 7


def test_asymptomatic_infections_have_no_labels():
    cfg = SimConfig(days=40, infected_fraction=1.0, asymptomatic_fraction=1.0)
    p = draw_profile(2, 0, cfg)
    assert p.infected and p.asymptomatic
    from streams.simulate import participant_record

    part, truth, _ = participant_record(simulate_participant(2, 0, cfg, p), cfg)
    assert not part.labelled and truth["infection_onset_date"]


def test_ehr_share_columns_and_facts(cohort):
    shares = [draw_profile(1, i, SimConfig(ehr_fraction=0.4)).has_ehr for i in range(2000)]
    assert abs(np.mean(shares) - 0.4) < 0.04
    c = Cohort(cohort)
    truth = {r["participant_id"]: r for r in _rows(cohort / "sim_truth.csv")}
    from streams.importers.ehr_facts import read_facts

    facts = read_facts(cohort / "ehr_facts.csv")
    with_facts = {f.participant_id for f in facts}
    for p in c.participants:
        if truth[p.participant_id]["has_ehr"] == "1":
            assert set(EHR_COLUMNS) <= set(p.ehr), p.participant_id
            assert p.participant_id in with_facts
        else:
            assert p.ehr == {} and p.participant_id not in with_facts
    # a positive test is known from the diagnosis date, never before
    for p in c.participants:
        pos = [f for f in facts if f.participant_id == p.participant_id and f.fact == "test_sars_cov_2" and f.value == 1.0]
        if p.diagnosis_date and truth[p.participant_id]["has_ehr"] == "1":
            t_dx = (p.diagnosis_date - dt.date(1970, 1, 1)).total_seconds()
            current = [f for f in pos if f.time_known >= t_dx - 30 * 86400]
            assert current and all(f.time_known == t_dx for f in current)


def test_risk_factors_raise_infection_rate():
    cfg = SimConfig(infected_fraction=0.3)
    ps = [draw_profile(4, i, cfg) for i in range(5000)]
    inf = np.array([p.infected for p in ps])
    risk = np.array([any(p.conditions[k] for k in ("obesity", "diabetes", "immunosuppressed", "chronic_kidney")) for p in ps])
    assert abs(inf.mean() - 0.3) < 0.04
    assert risk.sum() > 800 and (~risk).sum() > 800
    assert inf[risk].mean() > inf[~risk].mean() + 0.04


def test_vaccination_lowers_severity():
    cfg = SimConfig(infected_fraction=1.0, asymptomatic_fraction=0.0, hr_nonresponder_fraction=0.0)
    ps = [draw_profile(9, i, cfg) for i in range(1500)]
    vac = np.array([p.doses_before_start >= 2 for p in ps])
    mag = np.array([p.inf["hr_bpm"] for p in ps])
    rec = np.array([p.inf["recovery_days"] for p in ps])
    assert np.median(mag[vac]) < 0.85 * np.median(mag[~vac])
    assert np.median(rec[vac]) < 0.8 * np.median(rec[~vac])


def test_bad_settings_are_rejected(tmp_path):
    with pytest.raises(ValueError, match="infected_fraction"):
        simulate_cohort(tmp_path / "x", participants=1, days=2, infected_fraction=1.5)
    with pytest.raises(ValueError, match="unknown simulation setting"):
        simulate_cohort(tmp_path / "x", participants=1, days=2, not_a_setting=1)
    with pytest.raises(ValueError, match="start_date"):
        simulate_cohort(tmp_path / "x", participants=1, days=2, start_date="01/02/2024")
    with pytest.raises(ValueError, match="raw_participants"):
        simulate_cohort(tmp_path / "x", participants=1, days=2, raw_participants=2)


def test_raw_waveforms_for_chosen_participants(tmp_path):
    path = simulate_cohort(tmp_path / "raw", participants=2, days=3, seed=2, raw_participants=1, raw_hours=(1.0, 1.1))
    c = Cohort(path)
    w = c.read_waveform("S00000", "ppg")
    a = c.read_waveform("S00000", "acc")
    assert w is not None and a is not None and w.fs == 32.0
    assert w.values.shape[1] == a.values.shape[1] == int(w.seg_len.sum()) == w.seg_len.size * 6 * 60 * 32
    assert c.read_waveform("S00001", "ppg") is None


def test_cli_simulate(tmp_path):
    from typer.testing import CliRunner

    from streams.cli import app

    res = CliRunner().invoke(app, ["simulate", "--participants", "2", "--days", "3", "--seed", "1", "--out", str(tmp_path / "c")])
    assert res.exit_code == 0, res.output
    assert len(Cohort(tmp_path / "c").participants) == 2
