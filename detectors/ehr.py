"""EHR context: dated facts, the feature vector known on a day, and a literature risk prior.

An EHR fact is what a health record says about a participant, stamped with the
time from which it is *known* (``time_known``, UTC seconds). Everything a
detector sees from the EHR goes through :func:`context_as_of`, which uses only
facts known by the end of the scored day: a diagnosis recorded next week never
leaks into today's score.

Fact vocabulary (:data:`FACT_NAMES`)
------------------------------------
``birth_date``
    value: ISO date string ``YYYY-MM-DD``. Age is computed at the scored day.
``age_years``
    value: age in years at ``time_known`` (sources that give age, not birth
    date, e.g. an age band's midpoint). Age at the day = value + elapsed years.
``sex``
    value: ``"F"`` or ``"M"`` (anything else is treated as unknown).
``bmi``
    value: body mass index, kg/m2. The latest known value wins.
``hypertension``, ``diabetes``, ``obesity``, ``chronic_lung``, ``chronic_heart``,
``chronic_kidney``, ``immunosuppressed``
    value: 1 (condition recorded / active) or 0 (resolved or recorded absent).
    The latest known value wins.
``vaccine_dose``
    value: dose number if known, else 1. Each fact is one SARS-CoV-2 vaccine dose.
``covid19``
    value: 1. A recorded SARS-CoV-2 infection (diagnosis), dated at onset.
``test_sars_cov_2``
    value: 1 positive, 0 negative. Dated when the result is known.

Feature vector (:data:`EHR_FEATURES`)
-------------------------------------
Fixed order; NaN when unknown. ``has_ehr`` is 1 when at least one fact is known
by the day, else 0 (then every other feature is NaN: *missing EHR* is a
modality state, not "healthy"). With an EHR, a comorbidity never recorded is 0
(the usual EHR convention: absence of a code is absence of the condition), and
``vaccine_doses`` / ``prior_infections`` are counts (0 when none).

``prior_infections`` and ``days_since_infection`` count SARS-CoV-2 episodes
(``covid19`` diagnoses or positive tests; facts within 90 days of each other are
one episode) known at least ``prior_gap_days`` (default 30) before the day.
Why the gap: a positive test from the current illness is the label itself; a
detector that sees it is not detecting anything early.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

__all__ = [
    "Fact",
    "FACT_NAMES",
    "CONDITIONS",
    "EHR_FEATURES",
    "COHORT_COLUMNS",
    "EhrError",
    "EhrTimeline",
    "context_as_of",
    "cohort_columns",
    "risk_factors",
    "ehr_risk_prior",
    "date_to_time",
]

DAY_S = 86400.0
YEAR_DAYS = 365.2425
EPISODE_DAYS = 90.0

CONDITIONS = (
    "hypertension",
    "diabetes",
    "obesity",
    "chronic_lung",
    "chronic_heart",
    "chronic_kidney",
    "immunosuppressed",
)
FACT_NAMES = (
    "birth_date",
    "age_years",
    "sex",
    "bmi",
    *CONDITIONS,
    "vaccine_dose",
    "covid19",
    "test_sars_cov_2",
)

#: The EHR feature vector, in this order (see the module docstring).
EHR_FEATURES = (
    "has_ehr",
    "age_years",
    "sex_male",
    "bmi",
    *CONDITIONS,
    "vaccine_doses",
    "days_since_vaccine",
    "prior_infections",
    "days_since_infection",
)

#: Participant-level columns of a cohort's participants.csv (same as streams.cohort.EHR_COLUMNS).
COHORT_COLUMNS = (
    "age",
    "sex",
    "bmi",
    *CONDITIONS,
    "vaccine_doses",
)


class EhrError(ValueError):
    """An EHR fact is malformed (names the participant and field)."""


@dataclass(frozen=True, slots=True)
class Fact:
    """One dated EHR fact.

    Attributes
    ----------
    participant_id : str
    time_known : float
        UTC seconds from which the fact is known. Date-only facts sit at 00:00 UTC.
    fact : str
        One of :data:`FACT_NAMES`.
    value : float or str
        Number, or a string for ``sex`` and ``birth_date``.
    """

    participant_id: str
    time_known: float
    fact: str
    value: float | str

    def check(self) -> Fact:
        """Validate; return self. Raises :class:`EhrError` naming participant and field."""
        where = f"participant {self.participant_id}: fact {self.fact!r}"
        if self.fact not in FACT_NAMES:
            raise EhrError(f"{where}: unknown fact name; valid: {', '.join(FACT_NAMES)}")
        if not isinstance(self.time_known, int | float) or not math.isfinite(self.time_known):
            raise EhrError(f"{where}: field 'time_known' must be finite UTC seconds")
        if self.fact == "birth_date":
            try:
                dt.date.fromisoformat(str(self.value)[:10])
            except ValueError:
                raise EhrError(f"{where}: field 'value': not an ISO date: {str(self.value)[:40]!r}") from None
        elif self.fact == "sex":
            if str(self.value).upper()[:1] not in ("F", "M"):
                raise EhrError(f"{where}: field 'value': sex must be 'F' or 'M'")
        else:
            try:
                v = float(self.value)
            except (TypeError, ValueError):
                raise EhrError(f"{where}: field 'value': not a number: {str(self.value)[:40]!r}") from None
            if not math.isfinite(v):
                raise EhrError(f"{where}: field 'value': not finite")
            if self.fact == "bmi" and not 8.0 <= v <= 120.0:
                raise EhrError(f"{where}: field 'value': BMI {v:g} outside 8-120 kg/m2")
            if self.fact == "age_years" and not 0.0 <= v <= 130.0:
                raise EhrError(f"{where}: field 'value': age {v:g} outside 0-130 years")
        return self


def date_to_time(d: dt.date | str) -> float:
    """UTC seconds of 00:00 UTC on a date (date-only EHR facts are stamped there)."""
    if isinstance(d, str):
        d = dt.date.fromisoformat(d[:10])
    return float((d - dt.date(1970, 1, 1)).days) * DAY_S


def _cutoff(day: dt.date | float, utc_offset_s: float) -> tuple[float, float]:
    """(cutoff, reference time): facts with time_known < cutoff are usable."""
    if isinstance(day, dt.date):
        start = date_to_time(day) - utc_offset_s
        return start + DAY_S, start + DAY_S
    t = float(day)
    return math.nextafter(t, math.inf), t


def _episodes(times: list[float]) -> list[float]:
    """Start times of infection episodes (facts < EPISODE_DAYS apart are one episode)."""
    out: list[float] = []
    last = -math.inf
    for t in sorted(times):
        if t - last >= EPISODE_DAYS * DAY_S:
            out.append(t)
        last = t
    return out


def context_as_of(
    facts: Iterable[Fact],
    day: dt.date | float,
    *,
    utc_offset_s: float = 0.0,
    prior_gap_days: float = 30.0,
) -> dict[str, float]:
    """The EHR feature vector known on a day.

    Parameters
    ----------
    facts : iterable of Fact
        One participant's facts, any order.
    day : datetime.date or float
        A local date (facts known before the end of that local day are used), or a
        UTC time in seconds (facts known at or before it are used).
    utc_offset_s : float
        Participant's offset from UTC, used when ``day`` is a date.
    prior_gap_days : float
        Infections/positive tests count as *prior* only when known this many days
        before the day (keeps the current illness's diagnosis out of the features).

    Returns
    -------
    dict
        Keys :data:`EHR_FEATURES`; floats, NaN where unknown.

    Examples
    --------
    >>> f = [Fact("P1", date_to_time("1980-06-01"), "birth_date", "1980-06-01"),
    ...      Fact("P1", date_to_time("2020-05-01"), "diabetes", 1.0)]
    >>> c = context_as_of(f, dt.date(2020, 4, 30))
    >>> round(c["age_years"], 1), c["diabetes"]
    (39.9, 0.0)
    >>> context_as_of(f, dt.date(2020, 5, 1))["diabetes"]
    1.0
    """
    cutoff, ref = _cutoff(day, utc_offset_s)
    known = sorted((f for f in facts if f.time_known < cutoff), key=lambda f: f.time_known)
    nan = float("nan")
    out = dict.fromkeys(EHR_FEATURES, nan)
    if not known:
        out["has_ehr"] = 0.0
        return out
    out["has_ehr"] = 1.0
    for c in CONDITIONS:
        out[c] = 0.0
    doses: list[float] = []
    inf_times: list[float] = []
    birth: float | None = None
    age_at: tuple[float, float] | None = None
    for f in known:  # sorted by time: later facts overwrite earlier ones
        name = f.fact
        if name == "birth_date":
            try:
                birth = date_to_time(str(f.value))
            except ValueError:
                continue
        elif name == "age_years":
            age_at = (f.time_known, float(f.value))
        elif name == "sex":
            s = str(f.value).upper()[:1]
            out["sex_male"] = 1.0 if s == "M" else 0.0 if s == "F" else nan
        elif name == "bmi":
            out["bmi"] = float(f.value)
        elif name in CONDITIONS:
            out[name] = 1.0 if float(f.value) > 0 else 0.0
        elif name == "vaccine_dose":
            doses.append(f.time_known)
        elif name == "covid19" and float(f.value) > 0:
            inf_times.append(f.time_known)
        elif name == "test_sars_cov_2" and float(f.value) > 0:
            inf_times.append(f.time_known)
    if birth is not None:
        out["age_years"] = (ref - birth) / DAY_S / YEAR_DAYS
    elif age_at is not None:
        out["age_years"] = age_at[1] + (ref - age_at[0]) / DAY_S / YEAR_DAYS
    if math.isfinite(out["bmi"]) and out["bmi"] >= 30.0:
        out["obesity"] = 1.0  # a measured BMI of 30+ is obesity even if never coded
    out["vaccine_doses"] = float(len(doses))
    if doses:
        out["days_since_vaccine"] = (ref - doses[-1]) / DAY_S
    prior = [t for t in _episodes(inf_times) if t <= ref - prior_gap_days * DAY_S]
    out["prior_infections"] = float(len(prior))
    if prior:
        out["days_since_infection"] = (ref - prior[-1]) / DAY_S
    return out


def cohort_columns(context: Mapping[str, float]) -> dict[str, float | str]:
    """Participant-level cohort columns (:data:`COHORT_COLUMNS`) from a context; unknown omitted."""
    if not context.get("has_ehr"):
        return {}
    out: dict[str, float | str] = {}
    age = context.get("age_years", math.nan)
    if math.isfinite(age):
        out["age"] = round(age, 1)
    sm = context.get("sex_male", math.nan)
    if math.isfinite(sm):
        out["sex"] = "M" if sm else "F"
    for k in ("bmi", *CONDITIONS, "vaccine_doses"):
        v = context.get(k, math.nan)
        if math.isfinite(v):
            out[k] = round(v, 2) if k == "bmi" else int(v)
    return out


class EhrTimeline:
    """Facts of many participants, answering "what was known on day d" (river-like).

    Examples
    --------
    >>> tl = EhrTimeline()
    >>> tl.update(Fact("P1", date_to_time("2021-01-10"), "vaccine_dose", 1))
    >>> tl.get("P1", dt.date(2021, 1, 9))["vaccine_doses"], tl.get("P1", dt.date(2021, 1, 10))["vaccine_doses"]
    (nan, 1.0)
    """

    def __init__(self, prior_gap_days: float = 30.0):
        self.prior_gap_days = prior_gap_days
        self._facts: dict[str, list[Fact]] = {}

    def update(self, fact: Fact) -> None:
        self._facts.setdefault(fact.participant_id, []).append(fact.check())

    def update_many(self, facts: Iterable[Fact]) -> None:
        for f in facts:
            self.update(f)

    def facts(self, participant_id: str) -> list[Fact]:
        return list(self._facts.get(participant_id, ()))

    def participants(self) -> list[str]:
        return sorted(self._facts)

    def get(self, participant_id: str, day: dt.date | float, utc_offset_s: float = 0.0) -> dict[str, float]:
        return context_as_of(
            self._facts.get(participant_id, ()), day, utc_offset_s=utc_offset_s, prior_gap_days=self.prior_gap_days
        )


# ---- risk prior -------------------------------------------------------------------------
# Relative risks of severe COVID-19 (COVID-19-related death) from OpenSAFELY, fully adjusted
# hazard ratios: Williamson EJ et al. "Factors associated with COVID-19-related death using
# OpenSAFELY", Nature 584:430-436 (2020), doi:10.1038/s41586-020-2521-4.
# Verified against the abstract / secondary summaries: male 1.59; age 80+ 20.61 (ref 50-59);
# obesity class I/II/III 1.05 / 1.40 / 1.92. Recalled from the paper's Table 2 (treat as
# approximate): ages 18-39 0.06, 40-49 0.30, 60-69 2.40, 70-79 6.08; diabetes 1.31 (HbA1c
# < 58 mmol/mol; 1.95 when uncontrolled); chronic respiratory disease 1.63; chronic cardiac
# disease 1.17; reduced kidney function (eGFR 30-60) 1.33; other immunosuppressive
# condition 2.21; hypertension 0.89 once the others are adjusted for (so it is used as 1.0:
# a prior should not *lower* risk for a CDC-listed condition on the strength of an adjusted
# estimate). Vaccination and prior infection (recalled, order of magnitude only):
# two vaccine doses cut severe outcomes roughly 5-10 fold in 2021 (CDC MMWR reports); prior
# infection gave ~84 % protection against reinfection (SIREN, Hall VJ et al., Lancet
# 397:1459, 2021). Hazard ratios are used as odds ratios (rare-outcome approximation).
AGE_BANDS_HR = ((40.0, 0.06), (50.0, 0.30), (60.0, 1.0), (70.0, 2.40), (80.0, 6.08), (math.inf, 20.61))
RISK_OR = {
    "sex_male": 1.59,
    "diabetes": 1.31,
    "chronic_lung": 1.63,
    "chronic_heart": 1.17,
    "chronic_kidney": 1.33,
    "immunosuppressed": 2.21,
    "hypertension": 1.0,
}
BMI_BANDS_OR = ((30.0, 1.0), (35.0, 1.05), (40.0, 1.40), (math.inf, 1.92))
VACCINE_OR = (1.0, 0.5, 0.2, 0.15)  # doses 0, 1, 2, 3+
PRIOR_INFECTION_OR = 0.5  # deliberately milder than SIREN's 0.16: waning, variants


def risk_factors(context: Mapping[str, float]) -> dict[str, float]:
    """Log odds ratio contributed by each known risk factor (unknown factors contribute 0).

    The keys explain a prior ("age_years", "sex_male", "bmi", conditions, "vaccine_doses",
    "prior_infections"); only non-zero contributions are returned.
    """
    out: dict[str, float] = {}
    if not context.get("has_ehr"):
        return out
    age = context.get("age_years", math.nan)
    if math.isfinite(age):
        for upper, hr in AGE_BANDS_HR:
            if age < upper:
                out["age_years"] = math.log(hr)
                break
    bmi = context.get("bmi", math.nan)
    if math.isfinite(bmi):
        for upper, orr in BMI_BANDS_OR:
            if bmi < upper:
                out["bmi"] = math.log(orr)
                break
    elif context.get("obesity") == 1.0:
        out["obesity"] = math.log(1.05)
    for k, orr in RISK_OR.items():
        if context.get(k) == 1.0:
            out[k] = math.log(orr)
    doses = context.get("vaccine_doses", math.nan)
    if math.isfinite(doses) and doses > 0:
        out["vaccine_doses"] = math.log(VACCINE_OR[min(int(doses), 3)])
    pi = context.get("prior_infections", math.nan)
    if math.isfinite(pi) and pi > 0:
        out["prior_infections"] = math.log(PRIOR_INFECTION_OR)
    return {k: v for k, v in out.items() if v != 0.0}


def ehr_risk_prior(context: Mapping[str, float], base_risk: float = 0.05) -> float:
    """Prior probability of a severe infection course given the EHR context.

    ``logit(p) = logit(base_risk) + sum(log OR_i)`` over the known factors of
    :func:`risk_factors` (OpenSAFELY hazard ratios, reference: a 50-59 year-old
    woman with none of the conditions, unvaccinated, no prior infection). Without
    EHR (``has_ehr`` 0) the prior is ``base_risk`` itself: absence of a record says
    nothing. ``base_risk`` is the reference person's risk; set it to the cohort's
    prevalence when using the prior as a feature or as a late-fusion input.

    Examples
    --------
    >>> ehr_risk_prior({"has_ehr": 0.0})
    0.05
    >>> old = ehr_risk_prior({"has_ehr": 1.0, "age_years": 82.0, "sex_male": 1.0})
    >>> young = ehr_risk_prior({"has_ehr": 1.0, "age_years": 25.0, "sex_male": 0.0})
    >>> young < 0.05 < old
    True
    """
    if not 0.0 < base_risk < 1.0:
        raise ValueError(f"base_risk must be in (0, 1), got {base_risk}")
    factors = risk_factors(context)
    if not factors:
        return float(base_risk)
    z = math.log(base_risk / (1.0 - base_risk)) + sum(factors.values())
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)
