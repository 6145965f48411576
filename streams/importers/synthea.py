"""Synthea CSV export -> dated EHR facts, attached to a cohort or as an EHR-only cohort.

Files read from the export folder (``SRC``):

- ``patients.csv`` (required): ``Id``, ``BIRTHDATE``, ``GENDER`` (and ``DEATHDATE``)
  -> ``birth_date`` and ``sex`` facts, known from the birth date.
- ``conditions.csv`` (required): ``START``, ``STOP``, ``PATIENT``, ``CODE`` (SNOMED CT),
  ``DESCRIPTION`` -> condition facts (1 at START, 0 at STOP when given) by the map in
  :mod:`streams.importers.ehr_codes`; COVID-19 (840539006) -> a ``covid19`` fact at START.
- ``immunizations.csv`` (optional): ``DATE``, ``PATIENT``, ``CODE`` (CVX),
  ``DESCRIPTION`` -> ``vaccine_dose`` facts for SARS-CoV-2 vaccines (dose number by order).
- ``observations.csv`` (optional): ``DATE``, ``PATIENT``, ``CODE`` (LOINC), ``VALUE`` ->
  ``bmi`` (39156-5) and ``test_sars_cov_2`` (SARS-CoV-2 PCR/antigen LOINC codes;
  "Detected"/"Not detected").

Rows that cannot be read are counted and reported (file, line, field), never fatal;
a missing required file or column is a :class:`~streams.cohort.CohortError`.
Synthea writes dates; each date-only fact is known from 00:00 UTC that day.
"""

from __future__ import annotations

import csv
import datetime as dt
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from detectors.ehr import EhrError, Fact, date_to_time
from streams.cohort import CohortError
from streams.importers.ehr_codes import (
    LOINC_BMI,
    LOINC_SARS_COV_2,
    condition_from_code,
    interpret_result,
    is_covid_vaccine,
)

__all__ = ["SyntheaRecords", "read_synthea"]

MAX_PROBLEMS_KEPT = 50
# Symptom findings Synthea's COVID-19 module records at onset (for EHR-only cohort labels).
COVID_SYMPTOMS = frozenset({"386661006", "49727002", "36955009", "84229001", "267036007", "267102003", "68962001"})


@dataclass
class SyntheaRecords:
    """What a Synthea export says, keyed by Synthea patient id."""

    facts: dict[str, list[Fact]] = field(default_factory=dict)
    death_date: dict[str, dt.date] = field(default_factory=dict)
    covid_diagnosis: dict[str, dt.date] = field(default_factory=dict)  # first COVID-19 START
    covid_onset: dict[str, dt.date] = field(default_factory=dict)  # first symptom at that episode
    counts: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def problem(self, msg: str) -> None:
        self.counts["bad_rows"] += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(msg)

    @property
    def patient_ids(self) -> list[str]:
        return sorted(self.facts)


def _rows(path: Path, need: tuple[str, ...]):
    fh = open(path, newline="", encoding="utf-8-sig")
    rd = csv.DictReader(fh)
    if not rd.fieldnames:
        fh.close()
        raise CohortError(f"{path}: empty file")
    header = [h.strip().upper() for h in rd.fieldnames]
    missing = [n for n in need if n not in header]
    if missing:
        fh.close()
        raise CohortError(f"{path}: line 1: column(s) {', '.join(missing)} missing from header")
    rd.fieldnames = header

    def gen():
        with fh:
            yield from enumerate(rd, start=2)

    return gen()


def _date(text: str | None) -> dt.date | None:
    text = (text or "").strip()
    if not text:
        return None
    return dt.date.fromisoformat(text[:10])


def read_synthea(src: str | os.PathLike) -> SyntheaRecords:
    """Read a Synthea CSV export folder into dated facts per patient.

    Examples
    --------
    >>> rec = read_synthea("../shared/data/synthea_covid_uk_543")   # doctest: +SKIP
    >>> len(rec.patient_ids)                                          # doctest: +SKIP
    543
    """
    src = Path(src)
    rec = SyntheaRecords()
    pf, cf = src / "patients.csv", src / "conditions.csv"
    for f in (pf, cf):
        if not f.is_file():
            raise CohortError(f"{f}: missing (a Synthea CSV export needs patients.csv and conditions.csv)")
    for line, row in _rows(pf, ("ID", "BIRTHDATE", "GENDER")):
        pat = (row["ID"] or "").strip()
        where = f"{pf}: line {line}"
        if not pat:
            rec.problem(f"{where}: field 'Id': empty")
            continue
        try:
            bd = _date(row["BIRTHDATE"])
            dd = _date(row.get("DEATHDATE"))
        except ValueError:
            rec.problem(f"{where}: field 'BIRTHDATE'/'DEATHDATE': not an ISO date")
            continue
        if bd is None:
            rec.problem(f"{where}: field 'BIRTHDATE': empty")
            continue
        t = date_to_time(bd)
        fs = rec.facts.setdefault(pat, [])
        fs.append(Fact(pat, t, "birth_date", bd.isoformat()))
        sex = (row["GENDER"] or "").strip().upper()[:1]
        if sex in ("F", "M"):
            fs.append(Fact(pat, t, "sex", sex))
        if dd is not None:
            rec.death_date[pat] = dd
        rec.counts["patients"] += 1
    encounters_covid: dict[tuple[str, str], dt.date] = {}
    symptoms: list[tuple[str, str, dt.date]] = []
    for line, row in _rows(cf, ("START", "STOP", "PATIENT", "CODE", "DESCRIPTION")):
        where = f"{cf}: line {line}"
        pat = (row["PATIENT"] or "").strip()
        if pat not in rec.facts:
            rec.problem(f"{where}: field 'PATIENT': not in patients.csv")
            continue
        code = (row["CODE"] or "").strip()
        try:
            start, stop = _date(row["START"]), _date(row["STOP"])
        except ValueError:
            rec.problem(f"{where}: field 'START'/'STOP': not an ISO date")
            continue
        if start is None:
            rec.problem(f"{where}: field 'START': empty")
            continue
        if code in COVID_SYMPTOMS:
            symptoms.append((pat, (row.get("ENCOUNTER") or "").strip(), start))
        name = condition_from_code(code, row["DESCRIPTION"] or "")
        if name is None:
            continue
        rec.counts[f"condition:{name}"] += 1
        rec.facts[pat].append(Fact(pat, date_to_time(start), name, 1.0))
        if name == "covid19":
            if pat not in rec.covid_diagnosis or start < rec.covid_diagnosis[pat]:
                rec.covid_diagnosis[pat] = start
            encounters_covid[(pat, (row.get("ENCOUNTER") or "").strip())] = start
        elif stop is not None and stop >= start:
            rec.facts[pat].append(Fact(pat, date_to_time(stop), name, 0.0))
    for pat, enc, start in symptoms:
        diag = encounters_covid.get((pat, enc))
        if diag is not None and diag == rec.covid_diagnosis.get(pat):
            if pat not in rec.covid_onset or start < rec.covid_onset[pat]:
                rec.covid_onset[pat] = start
    _read_immunizations(src / "immunizations.csv", rec)
    _read_observations(src / "observations.csv", rec)
    return rec


def _read_immunizations(f: Path, rec: SyntheaRecords) -> None:
    if not f.is_file():
        return
    doses: dict[str, list[dt.date]] = {}
    for line, row in _rows(f, ("DATE", "PATIENT", "CODE")):
        pat = (row["PATIENT"] or "").strip()
        if pat not in rec.facts:
            rec.problem(f"{f}: line {line}: field 'PATIENT': not in patients.csv")
            continue
        if not is_covid_vaccine(row["CODE"] or "", row.get("DESCRIPTION") or ""):
            continue
        try:
            d = _date(row["DATE"])
        except ValueError:
            d = None
        if d is None:
            rec.problem(f"{f}: line {line}: field 'DATE': not an ISO date")
            continue
        doses.setdefault(pat, []).append(d)
    for pat, ds in doses.items():
        for i, d in enumerate(sorted(ds), start=1):
            rec.facts[pat].append(Fact(pat, date_to_time(d), "vaccine_dose", float(i)))
            rec.counts["vaccine_doses"] += 1


def _read_observations(f: Path, rec: SyntheaRecords) -> None:
    if not f.is_file():
        return
    for line, row in _rows(f, ("DATE", "PATIENT", "CODE", "VALUE")):
        code = (row["CODE"] or "").strip()
        if code != LOINC_BMI and code not in LOINC_SARS_COV_2:
            continue
        where = f"{f}: line {line}"
        pat = (row["PATIENT"] or "").strip()
        if pat not in rec.facts:
            rec.problem(f"{where}: field 'PATIENT': not in patients.csv")
            continue
        text = (row["DATE"] or "").strip()
        try:
            if len(text) <= 10:
                t = date_to_time(text)
            else:
                ts = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
                t = (ts if ts.tzinfo else ts.replace(tzinfo=dt.UTC)).timestamp()
        except ValueError:
            rec.problem(f"{where}: field 'DATE': not an ISO date or date-time")
            continue
        value = (row["VALUE"] or "").strip()
        if code == LOINC_BMI:
            try:
                fact = Fact(pat, t, "bmi", float(value)).check()
            except (ValueError, EhrError):
                rec.problem(f"{where}: field 'VALUE': BMI not a plausible number")
                continue
        else:
            res = interpret_result(value)
            if res is None:
                rec.problem(f"{where}: field 'VALUE': SARS-CoV-2 result not understood")
                continue
            fact = Fact(pat, t, "test_sars_cov_2", res)
        rec.facts[pat].append(fact)
        rec.counts[f"observation:{fact.fact}"] += 1
