"""The cohort's dated EHR facts file and attaching EHR to a cohort (shared by the EHR importers).

``COHORT/ehr_facts.csv`` has the header ``participant_id,time_known,fact,value``:
``time_known`` is an ISO date (``YYYY-MM-DD``, meaning 00:00 UTC) or an ISO
date-time with offset; ``fact`` one of :data:`detectors.ehr.FACT_NAMES`; ``value``
a number, or ``F``/``M`` for ``sex`` and an ISO date for ``birth_date``.

Participant-level columns (:data:`streams.cohort.EHR_COLUMNS`) are written into
``participants.csv`` as the context *as of* a date per participant (by default the
participant's first wearable sample, or for a cohort without wearable data the
last fact of the record). These static columns are a convenience for tables and
subgroup reports; detectors should use the dated facts.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from detectors.ehr import FACT_NAMES, EhrError, Fact, cohort_columns, context_as_of, date_to_time
from streams.cohort import EHR_COLUMNS, LABEL_COLUMNS, Cohort, CohortError, Participant

__all__ = [
    "FACTS_FILE",
    "write_facts",
    "read_facts",
    "read_mapping",
    "assign_participants",
    "attach_ehr",
    "time_to_iso",
    "write_ehr_only_cohort",
]

FACTS_FILE = "ehr_facts.csv"


def time_to_iso(t: float) -> str:
    """ISO date when ``t`` is 00:00 UTC, else ISO date-time in UTC."""
    d = dt.datetime.fromtimestamp(t, dt.UTC)
    if d.hour == d.minute == d.second == 0 and d.microsecond == 0:
        return d.date().isoformat()
    return d.isoformat(timespec="seconds")


def write_facts(path: str | os.PathLike, facts: Iterable[Fact]) -> int:
    """Write facts sorted by participant, time, fact; return the number written."""
    rows = sorted(facts, key=lambda f: (f.participant_id, f.time_known, f.fact, str(f.value)))
    tmp = Path(str(path) + ".tmp")
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        wr = csv.writer(fh)
        wr.writerow(["participant_id", "time_known", "fact", "value"])
        for f in rows:
            v = f.value if isinstance(f.value, str) else f"{float(f.value):g}"
            wr.writerow([f.participant_id, time_to_iso(f.time_known), f.fact, v])
    os.replace(tmp, path)
    return len(rows)


def _parse_time(text: str, where: str) -> float:
    text = text.strip()
    try:
        if len(text) == 10:
            return date_to_time(text)
        t = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise CohortError(f"{where}: field 'time_known': not an ISO date or date-time: {text[:40]!r}") from None
    if t.tzinfo is None:
        t = t.replace(tzinfo=dt.UTC)
    return t.timestamp()


def read_facts(path: str | os.PathLike) -> list[Fact]:
    """Read and validate an ``ehr_facts.csv``; errors name file, line and field. Empty if absent."""
    path = Path(path)
    if path.is_dir():
        path = path / FACTS_FILE
    if not path.is_file():
        return []
    out: list[Fact] = []
    with open(path, newline="", encoding="utf-8") as fh:
        rd = csv.DictReader(fh)
        need = ("participant_id", "time_known", "fact", "value")
        if not rd.fieldnames or any(n not in rd.fieldnames for n in need):
            raise CohortError(f"{path}: line 1: header must contain {', '.join(need)}")
        for line, row in enumerate(rd, start=2):
            where = f"{path}: line {line}"
            pid = (row["participant_id"] or "").strip()
            if not pid:
                raise CohortError(f"{where}: field 'participant_id': empty")
            t = _parse_time(row["time_known"] or "", f"{where}: participant {pid}")
            name = (row["fact"] or "").strip()
            raw = (row["value"] or "").strip()
            value: float | str = raw
            if name not in ("sex", "birth_date"):
                try:
                    value = float(raw)
                except ValueError:
                    raise CohortError(f"{where}: participant {pid}: field 'value': not a number: {raw[:40]!r}") from None
            try:
                out.append(Fact(pid, t, name, value).check())
            except EhrError as e:
                raise CohortError(f"{where}: {e}") from None
    return out


def read_mapping(path: str | os.PathLike) -> dict[str, str]:
    """Read a ``participant_id,patient_id`` CSV into {patient_id: participant_id}."""
    path = Path(path)
    out: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as fh:
        rd = csv.DictReader(fh)
        if not rd.fieldnames or "participant_id" not in rd.fieldnames or "patient_id" not in rd.fieldnames:
            raise CohortError(f"{path}: line 1: header must contain participant_id,patient_id")
        seen: set[str] = set()
        for line, row in enumerate(rd, start=2):
            pid, pat = (row["participant_id"] or "").strip(), (row["patient_id"] or "").strip()
            if not pid or not pat:
                raise CohortError(f"{path}: line {line}: empty participant_id or patient_id")
            if pid in seen:
                raise CohortError(f"{path}: line {line}: participant {pid}: mapped twice")
            if pat in out:
                raise CohortError(f"{path}: line {line}: field 'patient_id': mapped twice")
            seen.add(pid)
            out[pat] = pid
    return out


def assign_participants(
    participant_ids: list[str], patient_ids: list[str], seed: int, fraction: float = 1.0
) -> dict[str, str]:
    """Deterministic random {patient_id: participant_id}; a ``1 - fraction`` share gets no EHR.

    The same ids and seed give the same assignment on every machine (sorted inputs,
    numpy's PCG64).
    """
    if not 0.0 <= fraction <= 1.0:
        raise ValueError(f"fraction must be in [0, 1], got {fraction}")
    rng = np.random.default_rng(seed)
    parts = sorted(participant_ids)
    pats = sorted(patient_ids)
    rng.shuffle(pats)
    with_ehr = [p for p in parts if rng.random() < fraction]
    return {pat: pid for pat, pid in zip(pats, with_ehr, strict=False)}


def _first_sample_date(cohort: Cohort, p: Participant) -> dt.date | None:
    first = None
    for kind in cohort.stream_kinds(p.participant_id):
        try:
            s = cohort.read_stream(p.participant_id, kind)
        except CohortError:
            continue
        if s is not None and len(s):
            t = float(s.time[0]) + p.utc_offset_s
            first = t if first is None else min(first, t)
    if first is None:
        return None
    return dt.datetime.fromtimestamp(first, dt.UTC).date()


def _write_participants(cohort_dir: Path, participants: list[Participant]) -> None:
    cols = ["participant_id", "utc_offset_s", *LABEL_COLUMNS]
    extra: list[str] = [c for c in EHR_COLUMNS if any(c in p.ehr for p in participants)]
    for p in participants:
        for k in p.ehr:
            if k not in extra:
                extra.append(k)
    tmp = cohort_dir / "participants.csv.tmp"
    with open(tmp, "w", newline="", encoding="utf-8") as fh:
        wr = csv.DictWriter(fh, fieldnames=cols + extra, extrasaction="ignore")
        wr.writeheader()
        for p in participants:
            wr.writerow(p.to_row())
    os.replace(tmp, cohort_dir / "participants.csv")


def attach_ehr(
    cohort_dir: str | os.PathLike,
    facts_by_patient: Mapping[str, list[Fact]],
    mapping: Mapping[str, str],
    source: str,
    as_of: dt.date | None = None,
) -> dict[str, int]:
    """Attach EHR facts to an existing cohort.

    ``mapping`` maps patient id -> participant id. Facts are re-keyed to the
    participant, merged with the cohort's existing ``ehr_facts.csv`` (this source's
    participants replaced), and the EHR columns of those participants rewritten in
    ``participants.csv``. Participants without a patient keep no EHR (missing
    modality). Returns counts.
    """
    cohort_dir = Path(cohort_dir)
    cohort = Cohort(cohort_dir)
    known = {p.participant_id for p in cohort.participants}
    unknown = sorted(pid for pid in mapping.values() if pid not in known)
    if unknown:
        raise CohortError(
            f"{cohort_dir / 'participants.csv'}: mapping names {len(unknown)} participant(s) not in the cohort, "
            f"e.g. {unknown[0]!r}"
        )
    new: dict[str, list[Fact]] = {}
    missing_patients = 0
    for pat, pid in mapping.items():
        fs = facts_by_patient.get(pat)
        if fs is None:
            missing_patients += 1
            continue
        new[pid] = [Fact(pid, f.time_known, f.fact, f.value) for f in fs]
    old = [f for f in read_facts(cohort_dir / FACTS_FILE) if f.participant_id not in new]
    n_facts = write_facts(cohort_dir / FACTS_FILE, old + [f for fs in new.values() for f in fs])
    for p in cohort.participants:
        if p.participant_id not in new:
            continue
        day = as_of or _first_sample_date(cohort, p) or _last_fact_date(new[p.participant_id])
        for c in EHR_COLUMNS:
            p.ehr.pop(c, None)
        p.ehr.update(cohort_columns(context_as_of(new[p.participant_id], day, utc_offset_s=p.utc_offset_s)))
    _write_participants(cohort_dir, cohort.participants)
    man_path = cohort_dir / "cohort.json"
    man = json.loads(man_path.read_text())
    srcs = list(man.get("ehr_sources", []))
    if source not in srcs:
        srcs.append(source)
    man["ehr_sources"] = srcs
    man_path.write_text(json.dumps(man, indent=2, sort_keys=True) + "\n")
    return {
        "participants": len(cohort.participants),
        "with_ehr": len(new),
        "facts": n_facts,
        "patients_not_found": missing_patients,
    }


def write_ehr_only_cohort(
    out: str | os.PathLike,
    facts_by_patient: Mapping[str, list[Fact]],
    source: str,
    name: str | None = None,
    labels: Mapping[str, tuple[dt.date | None, dt.date | None]] | None = None,
    as_of: dt.date | None = None,
) -> dict[str, int]:
    """Write a cohort with EHR but no wearable streams (participant id = patient id).

    ``labels`` maps patient id -> (symptom_onset_date, diagnosis_date). Participant
    columns are the context as of ``as_of`` (default: the day before the label date,
    else the last fact of the record).
    """
    from streams.cohort import CohortWriter, _check_pid

    out = Path(out)
    w = CohortWriter(out, name=name or out.name, source=source, notes={"ehr_sources": [source], "wearables": False})
    labels = labels or {}
    all_facts: list[Fact] = []
    for pat in sorted(facts_by_patient):
        fs = facts_by_patient[pat]
        pid = _check_pid(pat, f"patient {pat[:80]!r}")
        onset, diag = labels.get(pat, (None, None))
        ref = onset or diag
        day = as_of or ((ref - dt.timedelta(days=1)) if ref else _last_fact_date(fs))
        p = Participant(pid, 0, onset, diag)
        p.ehr.update(cohort_columns(context_as_of(fs, day)))
        w.add_participant(p)
        all_facts.extend(Fact(pid, f.time_known, f.fact, f.value) for f in fs)
    w.close()
    n = write_facts(out / FACTS_FILE, all_facts)
    return {"participants": len(facts_by_patient), "with_ehr": len(facts_by_patient), "facts": n,
            "labelled": sum(1 for v in labels.values() if v[0] or v[1])}


def _last_fact_date(facts: list[Fact]) -> dt.date:
    t = max(f.time_known for f in facts)
    return dt.datetime.fromtimestamp(t, dt.UTC).date()


# Every fact name is writable in the CSV; kept here so a reader can list them in errors.
VALID_FACTS = FACT_NAMES


def import_ehr(
    facts_by_patient: Mapping[str, list[Fact]],
    source: str,
    *,
    cohort: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    map_csv: str | os.PathLike | None = None,
    assign_seed: int | None = None,
    fraction: float = 1.0,
    as_of: dt.date | None = None,
    labels: Mapping[str, tuple[dt.date | None, dt.date | None]] | None = None,
) -> dict[str, int]:
    """The body of ``prodromal import synthea|fhir``: attach to ``cohort`` or write ``out``.

    Attaching needs ``map_csv`` (participant_id,patient_id) or ``assign_seed``;
    without either, patient ids are taken as participant ids (FHIR exports keyed
    by the study's own ids). Raises CohortError / ValueError with a clear message.
    """
    if (cohort is None) == (out is None):
        raise ValueError("give exactly one of --cohort (attach EHR to a cohort) or --out (EHR-only cohort)")
    if out is not None:
        if map_csv is not None or assign_seed is not None:
            raise ValueError("--map/--assign-seed apply to --cohort only")
        return write_ehr_only_cohort(out, facts_by_patient, source, labels=labels, as_of=as_of)
    if map_csv is not None and assign_seed is not None:
        raise ValueError("give --map or --assign-seed, not both")
    if fraction != 1.0 and assign_seed is None:
        raise ValueError("--fraction applies to --assign-seed only")
    if map_csv is not None:
        mapping = read_mapping(map_csv)
    elif assign_seed is not None:
        c = Cohort(cohort)
        mapping = assign_participants([p.participant_id for p in c.participants], list(facts_by_patient), assign_seed, fraction)
    else:
        c = Cohort(cohort)
        ids = {p.participant_id for p in c.participants}
        mapping = {pat: pat for pat in facts_by_patient if pat in ids}
        if not mapping:
            raise ValueError(
                "no patient id matches a participant id of the cohort: give --map participant_id,patient_id CSV "
                "or --assign-seed N"
            )
    return attach_ehr(cohort, facts_by_patient, mapping, source, as_of=as_of)
