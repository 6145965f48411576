"""FHIR R4 JSON (Bundles, single resources, or bulk-export NDJSON) -> dated EHR facts.

Resources read (everything else is counted and ignored):

- ``Patient``: ``birthDate`` -> ``birth_date``; ``gender`` male/female -> ``sex``.
- ``Condition``: ``code.coding`` (SNOMED CT; ``code.text`` as fallback) mapped by
  :mod:`streams.importers.ehr_codes`; known from ``recordedDate``, else
  ``onsetDateTime`` / ``onsetPeriod.start``; ``abatementDateTime`` adds a 0 fact.
  ``verificationStatus`` refuted / entered-in-error are skipped.
- ``Immunization``: SARS-CoV-2 vaccines (CVX ``vaccineCode``, or its text) with
  status ``completed`` -> ``vaccine_dose`` at ``occurrenceDateTime`` (dose number
  from ``protocolApplied[0].doseNumberPositiveInt`` when given).
- ``Observation``: BMI (LOINC 39156-5, ``valueQuantity.value``) -> ``bmi``;
  SARS-CoV-2 PCR/antigen (LOINC 94500-6, 94309-2, 94531-1, 94558-4, ...) ->
  ``test_sars_cov_2`` 1/0 from ``valueCodeableConcept`` (SNOMED 260373001 Detected,
  260415000 Not detected, 10828004 Positive, 260385009 Negative, or the text) or
  ``valueString``. Known from ``issued`` (when the result was reported), else
  ``effectiveDateTime`` / ``effectivePeriod.end`` / ``effectiveInstant``.
  Status entered-in-error / cancelled are skipped.

Subjects are resolved from ``Patient/<id>``, ``urn:uuid:<id>`` (a Bundle entry's
``fullUrl``) or an absolute URL ending in ``Patient/<id>``.

Dates: a FHIR partial date (``2020`` or ``2020-05``) is taken at the *end* of its
period for a fact's known time (never earlier than it could have been known),
and at its middle for a birth date. Date-only values mean 00:00 UTC.

Errors: a document that cannot be read at all (not UTF-8 JSON, too large, too deep,
not a Bundle or resource, too many entries) raises :class:`FhirError` naming the
file; a bad entry is reported in ``problems`` (file, entry index, resource type,
field) and skipped. Health values never appear in messages.
"""

from __future__ import annotations

import calendar
import datetime as dt
import json
import os
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from detectors.ehr import EhrError, Fact, date_to_time
from streams.importers.ehr_codes import (
    LOINC_BMI,
    LOINC_SARS_COV_2,
    condition_from_code,
    interpret_result,
    is_covid_vaccine,
)

__all__ = ["FhirError", "FhirRecords", "parse_fhir_bytes", "read_fhir", "MAX_BYTES", "MAX_ENTRIES"]

MAX_BYTES = 256 * 1024 * 1024  # per file
MAX_ENTRIES = 1_000_000  # per file
MAX_PROBLEMS_KEPT = 200
MAX_ID = 64
# Plausible clinical time range; outside it a date is an error, not a fact.
MIN_TIME = -3786825600.0  # 1850-01-01
MAX_TIME = 7258118400.0  # 2200-01-01


class FhirError(ValueError):
    """A FHIR document or entry is malformed. The message names file, entry, resource type and field."""


@dataclass
class FhirRecords:
    """Facts per FHIR Patient id, plus counts and the problems met (skipped entries)."""

    facts: dict[str, list[Fact]] = field(default_factory=dict)
    counts: Counter = field(default_factory=Counter)
    problems: list[str] = field(default_factory=list)

    def problem(self, msg: str) -> None:
        self.counts["skipped"] += 1
        if len(self.problems) < MAX_PROBLEMS_KEPT:
            self.problems.append(msg)

    def add(self, fact: Fact) -> None:
        self.facts.setdefault(fact.participant_id, []).append(fact)
        self.counts[f"fact:{fact.fact}"] += 1


class _Bad(Exception):
    """An entry-level problem (field, reason); turned into a FhirRecords problem."""

    def __init__(self, fld: str, why: str):
        super().__init__(f"field {fld!r}: {why}")


def _get(obj: Any, path: str, kind: type | tuple[type, ...], required: bool = False) -> Any:
    """obj[a][b]... with type checks; missing -> None (or _Bad if required)."""
    cur = obj
    for part in path.split("."):
        if not isinstance(cur, dict) or part not in cur:
            if required:
                raise _Bad(path, "missing")
            return None
        cur = cur[part]
    if cur is None:
        if required:
            raise _Bad(path, "missing")
        return None
    label = {float: "a number", str: "a string", dict: "an object", list: "a list"}.get(kind, "another type")
    if kind is float:
        kind = (int, float)
    if not isinstance(cur, kind) or isinstance(cur, bool):
        raise _Bad(path, f"expected {label}")
    return cur


def _parse_time(text: str, fld: str, mode: str = "end") -> float:
    """FHIR date/dateTime/instant -> UTC seconds, within 1850-2200."""
    t = _parse_time_any(text, fld, mode)
    if not MIN_TIME <= t < MAX_TIME:
        raise _Bad(fld, "date outside 1850-2200")
    return t


def _parse_time_any(text: str, fld: str, mode: str) -> float:
    """Partial dates at the end ('end') or middle ('mid') of their period."""
    t = text.strip()
    if len(t) > 40:
        raise _Bad(fld, "date too long")
    try:
        if len(t) == 4:
            y = int(t)
            d = dt.date(y, 12, 31) if mode == "end" else dt.date(y, 7, 1)
            return date_to_time(d)
        if len(t) == 7:
            y, m = int(t[:4]), int(t[5:7])
            last = calendar.monthrange(y, m)[1]
            return date_to_time(dt.date(y, m, last if mode == "end" else 15))
        if len(t) == 10:
            return date_to_time(dt.date.fromisoformat(t))
        ts = dt.datetime.fromisoformat(t.replace("Z", "+00:00"))
    except (ValueError, OverflowError):
        raise _Bad(fld, "not a FHIR date/dateTime") from None
    if ts.tzinfo is None:
        ts = ts.replace(tzinfo=dt.UTC)
    try:
        return ts.timestamp()
    except (OverflowError, ValueError, OSError):
        raise _Bad(fld, "date out of range") from None


def _codings(concept: Any, fld: str) -> list[tuple[str, str, str]]:
    """(system, code, display) of a CodeableConcept, plus ('', '', text)."""
    if concept is None:
        return []
    if not isinstance(concept, dict):
        raise _Bad(fld, "expected a CodeableConcept object")
    out = []
    coding = concept.get("coding")
    if coding is not None:
        if not isinstance(coding, list):
            raise _Bad(f"{fld}.coding", "expected a list")
        for c in coding:
            if not isinstance(c, dict):
                raise _Bad(f"{fld}.coding", "expected objects")
            vals = [c.get(k) for k in ("system", "code", "display")]
            out.append(tuple(v if isinstance(v, str) else "" for v in vals))
    text = concept.get("text")
    if isinstance(text, str):
        out.append(("", "", text))
    return out


def _subject(res: dict, fld: str, full_urls: dict[str, str]) -> str:
    ref = _get(res, f"{fld}.reference", str, required=True)
    if ref in full_urls:
        pid = full_urls[ref]
    elif "Patient/" in ref:
        pid = ref.rsplit("Patient/", 1)[1].split("/")[0]
    elif ref.startswith("urn:uuid:"):
        pid = ref[len("urn:uuid:") :]
    else:
        raise _Bad(f"{fld}.reference", "not a Patient reference")
    return _check_id(pid, f"{fld}.reference")


def _check_id(pid: str, fld: str) -> str:
    if not pid or len(pid) > MAX_ID or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in pid):
        raise _Bad(fld, f"patient id must be 1-{MAX_ID} characters of letters, digits, '-', '_', '.'")
    return pid


def _patient(res: dict, rec: FhirRecords, full_urls: dict[str, str]) -> None:
    pid = _check_id(_get(res, "id", str, required=True), "id")
    rec.facts.setdefault(pid, [])
    bd = _get(res, "birthDate", str)
    t_birth = None
    if bd is not None:
        t_birth = _parse_time(bd, "birthDate", mode="mid")
        rec.add(Fact(pid, t_birth, "birth_date", dt.datetime.fromtimestamp(t_birth, dt.UTC).date().isoformat()))
    sex = {"male": "M", "female": "F"}.get(_get(res, "gender", str) or "")
    if sex:
        # Sex is known when the record is: from birth if we know it, else from the epoch.
        rec.add(Fact(pid, t_birth if t_birth is not None else 0.0, "sex", sex))


def _condition(res: dict, rec: FhirRecords, full_urls: dict[str, str]) -> None:
    pid = _subject(res, "subject", full_urls)
    for c in _codings(_get(res, "verificationStatus", dict), "verificationStatus"):
        if c[1] in ("refuted", "entered-in-error"):
            rec.counts["condition_refuted"] += 1
            return
    name = None
    for system, code, display in _codings(_get(res, "code", dict, required=True), "code"):
        if system and "snomed" not in system.lower():
            continue
        name = condition_from_code(code, display)
        if name:
            break
    if name is None:
        rec.counts["condition_unmapped"] += 1
        return
    when = _get(res, "recordedDate", str) or _get(res, "onsetDateTime", str) or _get(res, "onsetPeriod.start", str)
    if when is None:
        raise _Bad("recordedDate", "missing (and no onsetDateTime / onsetPeriod.start)")
    t = _parse_time(when, "recordedDate/onsetDateTime")
    rec.add(Fact(pid, t, name, 1.0))
    abate = _get(res, "abatementDateTime", str)
    if abate is not None and name != "covid19":
        ta = _parse_time(abate, "abatementDateTime")
        if ta >= t:
            rec.add(Fact(pid, ta, name, 0.0))


def _immunization(res: dict, rec: FhirRecords, full_urls: dict[str, str]) -> None:
    pid = _subject(res, "patient", full_urls)
    status = _get(res, "status", str)
    if status not in (None, "completed"):
        rec.counts["immunization_not_completed"] += 1
        return
    codes = _codings(_get(res, "vaccineCode", dict, required=True), "vaccineCode")
    if not any(is_covid_vaccine(code if "cvx" in sys.lower() or not sys else "", disp) for sys, code, disp in codes):
        rec.counts["immunization_other"] += 1
        return
    when = _get(res, "occurrenceDateTime", str, required=True)
    t = _parse_time(when, "occurrenceDateTime")
    dose = 1.0
    pa = _get(res, "protocolApplied", list)
    if pa and isinstance(pa[0], dict):
        n = pa[0].get("doseNumberPositiveInt")
        if isinstance(n, int) and not isinstance(n, bool) and 0 < n < 100:
            dose = float(n)
    rec.add(Fact(pid, t, "vaccine_dose", dose))


def _observation(res: dict, rec: FhirRecords, full_urls: dict[str, str]) -> None:
    status = _get(res, "status", str)
    if status in ("entered-in-error", "cancelled"):
        return
    loinc = {code for sys, code, _ in _codings(_get(res, "code", dict, required=True), "code") if "loinc" in sys.lower()}
    is_bmi = LOINC_BMI in loinc
    is_test = bool(loinc & LOINC_SARS_COV_2)
    if not (is_bmi or is_test):
        rec.counts["observation_other"] += 1
        return
    pid = _subject(res, "subject", full_urls)
    when = (
        _get(res, "issued", str)
        or _get(res, "effectiveDateTime", str)
        or _get(res, "effectivePeriod.end", str)
        or _get(res, "effectiveInstant", str)
    )
    if when is None:
        raise _Bad("issued", "missing (and no effectiveDateTime / effectivePeriod.end)")
    t = _parse_time(when, "issued/effectiveDateTime")
    if is_bmi:
        v = _get(res, "valueQuantity.value", float, required=True)
        try:
            rec.add(Fact(pid, t, "bmi", float(v)).check())
        except (EhrError, OverflowError):
            raise _Bad("valueQuantity.value", "BMI outside 8-120 kg/m2") from None
        return
    result = None
    for _, code, text in _codings(_get(res, "valueCodeableConcept", dict), "valueCodeableConcept"):
        result = interpret_result(code) if code else None
        if result is None:
            result = interpret_result(text)
        if result is not None:
            break
    if result is None:
        vs = _get(res, "valueString", str)
        result = interpret_result(vs) if vs else None
    if result is None:
        raise _Bad("valueCodeableConcept", "SARS-CoV-2 result not understood (want Detected/Not detected)")
    rec.add(Fact(pid, t, "test_sars_cov_2", result))


_HANDLERS = {
    "Patient": _patient,
    "Condition": _condition,
    "Immunization": _immunization,
    "Observation": _observation,
}


def _resources(doc: Any, source: str, max_entries: int) -> list[tuple[str, Any, str | None]]:
    """(where, resource, fullUrl) for every resource of a Bundle (nested Bundles too) or a resource."""
    if not isinstance(doc, dict):
        raise FhirError(f"{source}: not a FHIR resource (top level must be a JSON object)")
    rt = doc.get("resourceType")
    if not isinstance(rt, str):
        raise FhirError(f"{source}: field 'resourceType' missing: not a FHIR resource")
    if rt != "Bundle":
        return [(source, doc, None)]
    entries = doc.get("entry", [])
    if entries is None:
        entries = []
    if not isinstance(entries, list):
        raise FhirError(f"{source}: Bundle: field 'entry': expected a list")
    if len(entries) > max_entries:
        raise FhirError(f"{source}: Bundle: field 'entry': {len(entries)} entries exceed the limit of {max_entries}")
    out: list[tuple[str, Any, str | None]] = []
    for i, e in enumerate(entries):
        where = f"{source}: entry {i}"
        if not isinstance(e, dict):
            out.append((where, None, None))
            continue
        res = e.get("resource")
        fu = e.get("fullUrl") if isinstance(e.get("fullUrl"), str) else None
        if isinstance(res, dict) and res.get("resourceType") == "Bundle":
            out.extend(_resources(res, where, max_entries - len(out)))
        else:
            out.append((where, res, fu))
    return out


def _process(items: list[tuple[str, Any, str | None]], rec: FhirRecords) -> None:
    full_urls: dict[str, str] = {}
    for _, res, fu in items:
        if fu and isinstance(res, dict) and res.get("resourceType") == "Patient" and isinstance(res.get("id"), str):
            full_urls[fu] = res["id"]
    for where, res, _ in items:
        if not isinstance(res, dict):
            rec.problem(f"{where}: field 'resource': expected a FHIR resource object")
            continue
        rt = res.get("resourceType")
        if not isinstance(rt, str):
            rec.problem(f"{where}: field 'resourceType': missing")
            continue
        handler = _HANDLERS.get(rt)
        rec.counts[f"resource:{rt[:40]}"] += 1
        if handler is None:
            continue
        try:
            handler(res, rec, full_urls)
        except _Bad as e:
            rec.problem(f"{where}: {rt}: {e}")
        except (ValueError, TypeError, OverflowError, KeyError, IndexError) as e:
            # Safety net: an entry we failed to anticipate is still one bad entry, not a crash.
            rec.problem(f"{where}: {rt}: unreadable entry ({type(e).__name__})")


def parse_fhir_bytes(
    data: bytes,
    source: str = "<bytes>",
    records: FhirRecords | None = None,
    *,
    max_bytes: int = MAX_BYTES,
    max_entries: int = MAX_ENTRIES,
    ndjson: bool = False,
) -> FhirRecords:
    """Parse one FHIR JSON document (or NDJSON) into facts.

    Raises
    ------
    FhirError
        Only this, and only when the document as a whole cannot be read; bad
        entries are recorded in ``records.problems`` and skipped.

    Examples
    --------
    >>> doc = b'{"resourceType": "Patient", "id": "p1", "gender": "female", "birthDate": "1980-02-01"}'
    >>> sorted(f.fact for f in parse_fhir_bytes(doc).facts["p1"])
    ['birth_date', 'sex']
    """
    rec = records if records is not None else FhirRecords()
    if len(data) > max_bytes:
        raise FhirError(f"{source}: {len(data)} bytes exceed the limit of {max_bytes}")
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise FhirError(f"{source}: not UTF-8 text (byte {e.start})") from None
    if ndjson:
        items: list[tuple[str, Any, str | None]] = []
        for ln, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            if len(items) >= max_entries:
                raise FhirError(f"{source}: more than {max_entries} lines")
            try:
                doc = json.loads(line)
            except (json.JSONDecodeError, RecursionError):
                rec.problem(f"{source}: line {ln}: not valid JSON")
                continue
            where = f"{source}: line {ln}"
            try:
                items.extend(_resources(doc, where, max_entries))
            except (FhirError, RecursionError) as e:
                rec.problem(str(e) if isinstance(e, FhirError) else f"{where}: Bundles nested too deeply")
        _process(items, rec)
        return rec
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as e:
        raise FhirError(f"{source}: not valid JSON: line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise FhirError(f"{source}: JSON nested too deeply") from None
    try:
        items = _resources(doc, source, max_entries)
    except RecursionError:
        raise FhirError(f"{source}: Bundles nested too deeply") from None
    _process(items, rec)
    return rec


def read_fhir(
    path: str | os.PathLike,
    *,
    max_bytes: int = MAX_BYTES,
    max_entries: int = MAX_ENTRIES,
    strict: bool = False,
) -> FhirRecords:
    """Read a FHIR file (``.json`` Bundle/resource or ``.ndjson``) or a folder of them (recursive).

    In a folder, a file that cannot be read is reported in ``problems`` and skipped
    unless ``strict``; a single file given directly raises :class:`FhirError`.
    """
    path = Path(path)
    rec = FhirRecords()
    if path.is_file():
        files, single = [path], True
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file() and p.suffix.lower() in (".json", ".ndjson"))
        single = False
        if not files:
            raise FhirError(f"{path}: no .json or .ndjson files")
    else:
        raise FhirError(f"{path}: no such file or folder")
    for f in files:
        try:
            size = f.stat().st_size
            if size > max_bytes:
                raise FhirError(f"{f}: {size} bytes exceed the limit of {max_bytes}")
            parse_fhir_bytes(f.read_bytes(), str(f), rec, max_bytes=max_bytes, max_entries=max_entries,
                             ndjson=f.suffix.lower() == ".ndjson")
            rec.counts["files"] += 1
        except (FhirError, OSError) as e:
            if single or strict:
                if isinstance(e, OSError):
                    raise FhirError(f"{f}: unreadable: {e.strerror}") from None
                raise
            rec.problem(str(e) if isinstance(e, FhirError) else f"{f}: unreadable: {e.strerror}")
    return rec
