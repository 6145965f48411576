"""Import the Stanford / Mishra 2020 Fitbit minute layout into a prodromal cohort.

Input folder layout (any participants, not only the nine in ../shared/data)::

    <ID>_hr.csv or <ID>_hr.csv.zip        columns: [index], user, datetime, heartrate
    <ID>_steps.csv or <ID>_steps.csv.zip  columns: [index], user, datetime, steps
    onset_labels_aligned_to_these_files.csv   (optional) participant_id,symptom_onset_date,diagnosis_date,...

``datetime`` is device-local time (``YYYY-MM-DD HH:MM:SS``); the cohort keeps it
with ``utc_offset_s = 0`` (the files are de-identified and shifted; local
clock time is what NightSignal's night window needs). Labels may also come
from a ``--labels`` CSV with ``participant_id,symptom_onset_date,diagnosis_date``.

Rows whose ``user`` differs from the file's ID, with unparseable timestamps or
non-numeric values raise :class:`~streams.cohort.CohortError` naming file, line
and field; values outside the plausibility range are counted and dropped.
"""

from __future__ import annotations

import csv
import io
import re
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from streams.cohort import CohortError, CohortWriter, Participant, _clean, parse_date

__all__ = ["import_stanford", "read_fitbit_csv", "ImportSummary"]

_NAME = re.compile(r"^(?P<pid>[A-Za-z0-9_.-]+)_(?P<kind>hr|steps)\.csv(\.zip)?$")
MAX_FILE_BYTES = 2 * 1024**3
_FIELD = {"hr": "heartrate", "steps": "steps"}
#: What a corrupt zip member raises while it is opened or inflated.
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, NotImplementedError)


@dataclass
class ImportSummary:
    participants: int
    samples: dict[str, int]
    dropped: dict[str, int]
    duplicates: dict[str, int]
    labelled: int
    out: Path


def _open_text(path: Path) -> io.TextIOBase:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise CohortError(f"{path}: larger than {MAX_FILE_BYTES} bytes")
    if path.suffix == ".zip":
        try:
            zf = zipfile.ZipFile(path)
        except (*_ZIP_ERRORS, ValueError, OSError) as e:  # a damaged central directory raises any of these
            raise CohortError(f"{path}: not a valid zip file ({type(e).__name__})") from None
        names = [n for n in zf.namelist() if n.endswith(".csv") and not n.startswith("__MACOSX")]
        if len(names) != 1:
            raise CohortError(f"{path}: expected exactly one .csv inside, found {len(names)}")
        if zf.getinfo(names[0]).file_size > MAX_FILE_BYTES:
            raise CohortError(f"{path}: member {names[0]} larger than {MAX_FILE_BYTES} bytes")
        try:
            return io.TextIOWrapper(zf.open(names[0]), encoding="utf-8", newline="")
        except (*_ZIP_ERRORS, RuntimeError, OSError) as e:  # RuntimeError: an encrypted member; OSError: a bad offset
            raise CohortError(f"{path}: member {names[0]}: corrupt zip: {str(e)[:120]}") from None
    return open(path, encoding="utf-8", newline="")


def read_fitbit_csv(path: Path, pid: str, kind: str) -> tuple[np.ndarray, np.ndarray]:
    """Read one Fitbit minute/second file: (time as naive-local UTC seconds, values)."""
    field = _FIELD[kind]
    with _open_text(path) as fh:
        rd = csv.reader(fh)
        try:
            header = [h.strip() for h in next(rd)]
        except StopIteration:
            raise CohortError(f"{path}: participant {pid}: empty file") from None
        except (UnicodeDecodeError, csv.Error, *_ZIP_ERRORS) as e:
            raise CohortError(f"{path}: line 1: unreadable header: {str(e)[:120]}") from None
        for need in ("datetime", field):
            if need not in header:
                raise CohortError(f"{path}: line 1: participant {pid}: field {need!r} missing from header {header[:6]}")
        iu = header.index("user") if "user" in header else None
        it, iv = header.index("datetime"), header.index(field)
        width = len(header)
        times: list[str] = []
        vals: list[str] = []
        lines: list[int] = []
        try:
            for row in rd:
                line = rd.line_num  # physical line, right after blank lines too
                if not row:
                    continue
                if len(row) != width:
                    raise CohortError(f"{path}: line {line}: participant {pid}: expected {width} fields, got {len(row)}")
                if iu is not None and row[iu] != pid:
                    raise CohortError(f"{path}: line {line}: field 'user': {row[iu][:20]!r} differs from the file's participant {pid}")
                times.append(row[it])
                vals.append(row[iv])
                lines.append(line)
        except (UnicodeDecodeError, csv.Error, *_ZIP_ERRORS) as e:
            raise CohortError(f"{path}: line {rd.line_num}: participant {pid}: unreadable: {str(e)[:120]}") from None
    try:
        t = np.array(times, dtype="datetime64[s]").astype(np.int64).astype(np.float64)
    except ValueError:
        for i, s in enumerate(times):
            try:
                np.datetime64(s, "s")
            except ValueError:
                raise CohortError(f"{path}: line {lines[i]}: participant {pid}: field 'datetime': not a timestamp: {s[:40]!r}") from None
        raise
    try:
        v = np.array(vals, dtype=np.float64)
    except ValueError:
        for i, s in enumerate(vals):
            try:
                float(s)
            except ValueError:
                raise CohortError(f"{path}: line {lines[i]}: participant {pid}: field {field!r}: not a number: {s[:40]!r}") from None
        raise
    return t, v


def _read_labels(path: Path) -> dict[str, tuple]:
    with open(path, newline="", encoding="utf-8") as fh:
        rd = csv.DictReader(fh)
        try:
            return _label_rows(path, rd)
        except (UnicodeDecodeError, csv.Error) as e:
            raise CohortError(f"{path}: line {rd.line_num}: unreadable: {str(e)[:120]}") from None


def _label_rows(path: Path, rd: csv.DictReader) -> dict[str, tuple]:
    out = {}
    if not rd.fieldnames or "participant_id" not in rd.fieldnames:
        raise CohortError(f"{path}: line 1: header must contain 'participant_id'")
    for row in rd:
        line = rd.line_num  # physical line, right after blank lines too
        pid = (row.get("participant_id") or "").strip()
        where = f"{path}: line {line}: participant {pid}"
        out[pid] = (
            parse_date(row.get("symptom_onset_date") or "", f"{where}: field 'symptom_onset_date'"),
            parse_date(row.get("diagnosis_date") or "", f"{where}: field 'diagnosis_date'"),
        )
    return out


def import_stanford(src: str | Path, out: str | Path, labels: str | Path | None = None, progress=None) -> ImportSummary:
    """Import a folder of ``<ID>_hr.csv(.zip)`` / ``<ID>_steps.csv(.zip)`` files.

    Parameters
    ----------
    src : folder with the files.
    out : cohort folder to write.
    labels : optional labels CSV; default ``src/onset_labels_aligned_to_these_files.csv`` if present.
    """
    src = Path(src)
    if not src.is_dir():
        raise CohortError(f"{src}: not a folder")
    files: dict[str, dict[str, Path]] = {}
    for f in sorted(src.iterdir()):
        m = _NAME.match(f.name)
        if m:
            files.setdefault(m["pid"], {})[m["kind"]] = f
    if not files:
        raise CohortError(f"{src}: no <ID>_hr.csv(.zip) or <ID>_steps.csv(.zip) files")
    lab_path = Path(labels) if labels else src / "onset_labels_aligned_to_these_files.csv"
    labs = _read_labels(lab_path) if lab_path.is_file() else {}
    if labels and not lab_path.is_file():
        raise CohortError(f"{lab_path}: labels file not found")
    w = CohortWriter(out, name=Path(out).name, source=f"stanford-fitbit:{src.name}",
                     notes={"time_note": "device-local timestamps kept as-is (utc_offset_s=0)"})
    samples = {"hr": 0, "steps": 0}
    dropped = {"hr": 0, "steps": 0}
    dups = {"hr": 0, "steps": 0}
    labelled = 0
    for pid, kinds in files.items():
        if "hr" not in kinds:
            raise CohortError(f"{src}: participant {pid}: has a steps file but no {pid}_hr.csv(.zip)")
        streams = {}
        for kind, f in sorted(kinds.items()):
            t, v = read_fitbit_csv(f, pid, kind)
            sd = _clean(kind, t, v, f"{f}: participant {pid}")
            samples[kind] += len(sd)
            dropped[kind] += sd.dropped
            dups[kind] += sd.duplicates
            streams[kind] = (sd.time, sd.values)
        onset, diag = labs.get(pid, (None, None))
        labelled += onset is not None or diag is not None
        w.add_participant(Participant(pid, 0, onset, diag), streams=streams)
        if progress:
            progress(pid)
    w.close()
    return ImportSummary(len(files), samples, dropped, dups, labelled, Path(out))
