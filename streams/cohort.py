"""The on-disk cohort format: one folder per cohort, one sub-folder per participant.

Layout (format ``prodromal-cohort``, version 1)::

    COHORT/
      cohort.json              manifest: format, version, name, source, notes
      participants.csv         participant_id, utc_offset_s, symptom_onset_date,
                               diagnosis_date, [EHR columns: age, sex, bmi, ...]
      data/<participant_id>/<kind>.npz   (or <kind>.csv)

Derived-sample streams (``hr``, ``steps``, ``ibi``, ``temp``, ``resp``, ``enmo``)
are stored either *irregular* (arrays ``time`` and the kind's field, e.g.
``hr_bpm``) or *regular* (scalars ``t0`` and ``period_s`` plus the field array,
NaN where missing). A CSV stream has a header ``time,<field>`` where ``time`` is
UTC seconds or an ISO-8601 timestamp (naive timestamps are device-local time and
are converted with the participant's ``utc_offset_s``).

Raw waveforms (``ppg``, ``acc``) are stored as npz with ``fs`` (Hz),
``seg_t0`` (start time of each contiguous segment), ``seg_len`` (samples per
segment) and the samples, ``ppg`` as (channels, n) and ``acc`` as (3, n) in g.

Reading validates: a missing or malformed field raises :class:`CohortError`
naming the file, row, participant and field; samples outside the plausibility
range of :data:`detectors.records.STREAMS` are counted and dropped, never fatal.
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import zipfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from detectors.ehr import CONDITIONS
from detectors.records import STREAMS, WAVEFORMS, check_values

__all__ = [
    "CohortError",
    "Participant",
    "StreamData",
    "Waveform",
    "Cohort",
    "CohortWriter",
    "FORMAT",
    "VERSION",
    "parse_date",
    "EHR_COLUMNS",
]

FORMAT = "prodromal-cohort"
VERSION = 1
LABEL_COLUMNS = ("symptom_onset_date", "diagnosis_date")
#: Optional participant-level EHR context columns (numbers; sex as "F"/"M").
EHR_COLUMNS = ("age", "sex", "bmi", *CONDITIONS, "vaccine_doses")
MAX_PARTICIPANT_ID = 64
#: Event times outside [1970-01-01, 2100-01-01) are clock or transfer errors: dropped and counted
#: like out-of-range values (a single absurd time would otherwise stretch a replay over centuries).
TIME_MIN_S = 0.0
TIME_MAX_S = 4102444800.0
#: Largest cohort file read (a stream, waveform or table); bigger means a wrong file, not data.
MAX_FILE_BYTES = 2 * 1024**3
#: What np.load raises on a damaged npz (bad zip, inflate error, encrypted/unsupported member, bad header).
_NPZ_ERRORS = (OSError, ValueError, TypeError, EOFError, OverflowError, zipfile.BadZipFile, NotImplementedError,
               RuntimeError, zlib.error)


class CohortError(ValueError):
    """A cohort file is malformed. The message names file, row, participant, field."""


def parse_date(text: str, where: str) -> dt.date | None:
    text = (text or "").strip()
    if not text or text.lower() in ("na", "nan", "none", "null"):
        return None
    try:
        return dt.date.fromisoformat(text[:10])
    except ValueError:
        raise CohortError(f"{where}: not an ISO date (YYYY-MM-DD): {text[:40]!r}") from None


def _check_pid(pid: str, where: str) -> str:
    pid = pid.strip()
    if not pid:
        raise CohortError(f"{where}: empty participant_id")
    if len(pid) > MAX_PARTICIPANT_ID or not all(c.isalnum() or c in "-_." for c in pid):
        raise CohortError(
            f"{where}: participant_id must be 1-{MAX_PARTICIPANT_ID} characters of "
            f"letters, digits, '-', '_' or '.': {pid[:80]!r}"
        )
    return pid


@dataclass
class Participant:
    participant_id: str
    utc_offset_s: int = 0
    symptom_onset_date: dt.date | None = None
    diagnosis_date: dt.date | None = None
    ehr: dict[str, float | str] = field(default_factory=dict)

    @property
    def labelled(self) -> bool:
        return self.symptom_onset_date is not None or self.diagnosis_date is not None

    @property
    def reference_date(self) -> dt.date | None:
        """Symptom onset, or diagnosis date when onset is unknown."""
        return self.symptom_onset_date or self.diagnosis_date

    def to_row(self) -> dict[str, str]:
        row = {
            "participant_id": self.participant_id,
            "utc_offset_s": str(int(self.utc_offset_s)),
            "symptom_onset_date": self.symptom_onset_date.isoformat() if self.symptom_onset_date else "",
            "diagnosis_date": self.diagnosis_date.isoformat() if self.diagnosis_date else "",
        }
        for k, v in self.ehr.items():
            row[k] = "" if v is None else str(v)
        return row


@dataclass
class StreamData:
    """A validated derived-sample stream: sorted times and values, finite and in range."""

    kind: str
    time: np.ndarray
    values: np.ndarray
    dropped: int = 0  # samples dropped as out of range / non-finite
    duplicates: int = 0  # samples dropped as repeated event times

    def __len__(self) -> int:
        return int(self.time.size)


@dataclass
class Waveform:
    """A raw waveform in contiguous segments."""

    kind: str
    fs: float
    seg_t0: np.ndarray
    seg_len: np.ndarray
    values: np.ndarray  # (channels, n)

    def segments(self) -> Iterator[tuple[float, np.ndarray]]:
        start = 0
        for t0, n in zip(self.seg_t0.tolist(), self.seg_len.tolist(), strict=True):
            yield float(t0), self.values[:, start : start + int(n)]
            start += int(n)


def _check_size(path: Path, where: str) -> None:
    if path.stat().st_size > MAX_FILE_BYTES:
        raise CohortError(f"{where}: file larger than {MAX_FILE_BYTES} bytes")


def _check_npz(z, where: str) -> None:
    # np.savez members are stored uncompressed by prodromal, but a foreign npz may be a zip bomb
    total = sum(i.file_size for i in z.zip.infolist()) if getattr(z, "zip", None) is not None else 0
    if total > MAX_FILE_BYTES:
        raise CohortError(f"{where}: npz members hold {total} bytes uncompressed (limit {MAX_FILE_BYTES})")


def _clean(kind: str, t: np.ndarray, v: np.ndarray, where: str) -> StreamData:
    if t.shape != v.shape or t.ndim != 1:
        raise CohortError(f"{where}: field 'time' and '{STREAMS[kind].field}' differ in length")
    with np.errstate(invalid="ignore"):
        bad_t = ~np.isfinite(t) | (t < TIME_MIN_S) | (t >= TIME_MAX_S)
    ok = check_values(kind, v) & ~bad_t
    dropped = int(t.size - ok.sum())
    t, v = t[ok], v[ok]
    if t.size > 1 and np.any(np.diff(t) < 0):
        order = np.argsort(t, kind="stable")
        t, v = t[order], v[order]
    dup = 0
    if t.size > 1:
        keep = np.empty(t.size, dtype=bool)
        keep[0] = True
        np.not_equal(t[1:], t[:-1], out=keep[1:])
        dup = int(t.size - keep.sum())
        if dup:
            t, v = t[keep], v[keep]
    return StreamData(kind, t.astype(np.float64), v.astype(np.float32), dropped, dup)


def _parse_time_column(values: list[str], offset_s: int, where: str, lines: list[int] | None = None) -> np.ndarray:
    out = np.empty(len(values), dtype=np.float64)
    epoch = dt.datetime(1970, 1, 1)
    for i, s in enumerate(values):
        s = s.strip()
        try:
            out[i] = float(s)
            continue
        except ValueError:
            pass
        try:
            ts = dt.datetime.fromisoformat(s.replace("Z", "+00:00"))
        except ValueError:
            raise CohortError(
                f"{where}: line {lines[i] if lines else i + 2}: field 'time': not UTC seconds or ISO-8601: {s[:40]!r}"
            ) from None
        try:
            out[i] = ts.timestamp() if ts.tzinfo is not None else (ts - epoch).total_seconds() - offset_s
        except (OverflowError, ValueError):  # e.g. year 1 with a +01:00 offset
            out[i] = np.nan  # dropped and counted by _clean
    return out


class Cohort:
    """Read access to a cohort folder.

    Examples
    --------
    >>> c = Cohort("cohorts/sim")                      # doctest: +SKIP
    >>> [p.participant_id for p in c.participants][:2]  # doctest: +SKIP
    ['P0000', 'P0001']
    """

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)
        man = self.path / "cohort.json"
        if not man.is_file():
            raise CohortError(f"{man}: missing: not a prodromal cohort folder (run `prodromal import` or `prodromal simulate`)")
        if man.stat().st_size > 1024 * 1024:
            raise CohortError(f"{man}: larger than 1 MiB: not a cohort manifest")
        try:
            self.manifest = json.loads(man.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as e:
            raise CohortError(f"{man}: not valid JSON: {str(e)[:200]}") from None
        if not isinstance(self.manifest, dict):
            raise CohortError(f"{man}: expected a JSON object, got {type(self.manifest).__name__}")
        if self.manifest.get("format") != FORMAT:
            raise CohortError(f"{man}: field 'format': expected {FORMAT!r}, got {str(self.manifest.get('format'))[:40]!r}")
        try:
            version = int(self.manifest.get("version", 0))
        except (TypeError, ValueError, OverflowError):
            raise CohortError(f"{man}: field 'version': not an integer: {str(self.manifest.get('version'))[:40]!r}") from None
        if version > VERSION:
            raise CohortError(f"{man}: field 'version': {self.manifest.get('version')} is newer than this prodromal reads ({VERSION})")
        self.participants = self._read_participants()
        self._by_id = {p.participant_id: p for p in self.participants}

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", self.path.name))

    def __getitem__(self, pid: str) -> Participant:
        return self._by_id[pid]

    def _read_participants(self) -> list[Participant]:
        f = self.path / "participants.csv"
        if not f.is_file():
            raise CohortError(f"{f}: missing")
        _check_size(f, str(f))
        with open(f, newline="", encoding="utf-8") as fh:
            rd = csv.DictReader(fh)
            try:
                return self._participant_rows(f, rd)
            except (UnicodeDecodeError, csv.Error) as e:
                raise CohortError(f"{f}: line {rd.line_num}: unreadable: {str(e)[:120]}") from None

    def _participant_rows(self, f: Path, rd: csv.DictReader) -> list[Participant]:
        out: list[Participant] = []
        seen: set[str] = set()
        if not rd.fieldnames or "participant_id" not in rd.fieldnames:
            raise CohortError(f"{f}: line 1: header must contain 'participant_id'")
        for row in rd:
            line = rd.line_num  # physical line, right after blank lines too
            where = f"{f}: line {line}"
            pid = _check_pid(row.get("participant_id") or "", where)
            where += f": participant {pid}"
            # a row with more or fewer fields than the header would shift or drop values silently
            n_head = len(rd.fieldnames)
            if None in row:
                raise CohortError(f"{where}: expected {n_head} fields, got {n_head + len(row[None])}")
            short = [k for k, v in row.items() if v is None]
            if short:
                raise CohortError(f"{where}: expected {n_head} fields, got {n_head - len(short)} (field {short[0]!r} missing)")
            if pid in seen:
                raise CohortError(f"{where}: duplicate participant_id")
            seen.add(pid)
            try:
                off = int(float(row.get("utc_offset_s") or 0))
            except (ValueError, OverflowError):
                raise CohortError(f"{where}: field 'utc_offset_s': not a number: {row.get('utc_offset_s')!r}") from None
            if abs(off) > 14 * 3600:
                raise CohortError(f"{where}: field 'utc_offset_s': {off} outside +-14 h")
            p = Participant(
                pid,
                off,
                parse_date(row.get("symptom_onset_date") or "", f"{where}: field 'symptom_onset_date'"),
                parse_date(row.get("diagnosis_date") or "", f"{where}: field 'diagnosis_date'"),
            )
            for k, v in row.items():
                if k in ("participant_id", "utc_offset_s", *LABEL_COLUMNS) or k is None:
                    continue
                v = (v or "").strip()
                if v == "":
                    continue
                if k == "sex":
                    p.ehr[k] = v.upper()[:1]
                    continue
                try:
                    x = float(v)
                except ValueError:
                    p.ehr[k] = v
                    continue
                if np.isfinite(x):  # nan/inf in an EHR column mean "unknown": left out like an empty cell
                    p.ehr[k] = x
            out.append(p)
        return out

    def stream_kinds(self, pid: str) -> list[str]:
        d = self.path / "data" / pid
        if not d.is_dir():
            return []
        kinds = {p.name.split(".")[0] for p in d.iterdir() if p.suffix in (".npz", ".csv")}
        return sorted(k for k in kinds if k in STREAMS or k in WAVEFORMS)

    def read_stream(self, pid: str, kind: str) -> StreamData | None:
        """Read one derived-sample stream of a participant, validated; None if absent."""
        if kind not in STREAMS:
            raise CohortError(f"unknown stream kind {kind!r}; valid: {', '.join(STREAMS)}")
        spec = STREAMS[kind]
        base = self.path / "data" / pid / kind
        npz, csvf = base.with_suffix(".npz"), base.with_suffix(".csv")
        if npz.is_file():
            where = f"{npz}: participant {pid}"
            _check_size(npz, where)
            try:
                with np.load(npz, allow_pickle=False) as z:
                    _check_npz(z, where)
                    if spec.field not in z.files:
                        raise CohortError(f"{where}: field {spec.field!r} missing (has {', '.join(z.files)})")
                    v = np.asarray(z[spec.field], dtype=np.float64).ravel()
                    if "time" in z.files:
                        t = np.asarray(z["time"], dtype=np.float64).ravel()
                    elif "t0" in z.files and "period_s" in z.files:
                        period = float(z["period_s"])
                        if not period > 0:
                            raise CohortError(f"{where}: field 'period_s' must be > 0")
                        t = float(z["t0"]) + period * np.arange(v.size, dtype=np.float64)
                    else:
                        raise CohortError(f"{where}: field 'time' (or 't0' and 'period_s') missing")
            except _NPZ_ERRORS as e:
                if isinstance(e, CohortError):
                    raise
                raise CohortError(f"{where}: unreadable npz: {type(e).__name__}: {str(e)[:200]}") from None
            return _clean(kind, t, v, where)
        if csvf.is_file():
            return self._read_stream_csv(csvf, pid, kind)
        return None

    def _read_stream_csv(self, f: Path, pid: str, kind: str) -> StreamData:
        spec = STREAMS[kind]
        where = f"{f}: participant {pid}"
        _check_size(f, where)
        with open(f, newline="", encoding="utf-8", errors="strict") as fh:
            rd = csv.reader(fh)
            try:
                times, vals, lines = self._stream_csv_rows(rd, where, spec)
            except (UnicodeDecodeError, csv.Error) as e:
                raise CohortError(f"{where}: line {rd.line_num}: unreadable: {str(e)[:120]}") from None
        t = _parse_time_column(times, self._by_id[pid].utc_offset_s if pid in self._by_id else 0, where, lines)
        return _clean(kind, t, np.asarray(vals, dtype=np.float64), where)

    @staticmethod
    def _stream_csv_rows(rd, where: str, spec) -> tuple[list[str], list[float]]:
        try:
            header = next(rd)
        except StopIteration:
            raise CohortError(f"{where}: empty file") from None
        header = [h.strip() for h in header]
        for need in ("time", spec.field):
            if need not in header:
                raise CohortError(f"{where}: line 1: field {need!r} missing from header {header}")
        it, iv = header.index("time"), header.index(spec.field)
        times, vals, lines = [], [], []
        for row in rd:
            line = rd.line_num  # physical line, right after blank lines too
            if not row:
                continue
            if len(row) <= max(it, iv):
                raise CohortError(f"{where}: line {line}: expected {len(header)} fields, got {len(row)}")
            times.append(row[it])
            lines.append(line)
            try:
                vals.append(float(row[iv]) if row[iv].strip() else np.nan)
            except ValueError:
                raise CohortError(f"{where}: line {line}: field {spec.field!r}: not a number: {row[iv][:40]!r}") from None
        return times, vals, lines

    def read_waveform(self, pid: str, kind: str) -> Waveform | None:
        if kind not in WAVEFORMS:
            raise CohortError(f"unknown waveform kind {kind!r}; valid: {', '.join(WAVEFORMS)}")
        f = self.path / "data" / pid / f"{kind}.npz"
        if not f.is_file():
            return None
        where = f"{f}: participant {pid}"
        chans, fmin, fmax = WAVEFORMS[kind]
        _check_size(f, where)
        try:
            with np.load(f, allow_pickle=False) as z:
                _check_npz(z, where)
                for need in ("fs", "seg_t0", "seg_len", kind):
                    if need not in z.files:
                        raise CohortError(f"{where}: field {need!r} missing")
                fs = float(z["fs"])
                vals = np.asarray(z[kind], dtype=np.float64)
                seg_t0 = np.asarray(z["seg_t0"], dtype=np.float64).ravel()
                seg_len = np.asarray(z["seg_len"], dtype=np.int64).ravel()
        except _NPZ_ERRORS as e:
            if isinstance(e, CohortError):
                raise
            raise CohortError(f"{where}: unreadable npz: {type(e).__name__}: {str(e)[:200]}") from None
        if vals.ndim > 2:
            raise CohortError(f"{where}: field {kind!r}: expected (channels, n), got shape {vals.shape}")
        if not (np.all(np.isfinite(seg_t0)) and np.all((seg_t0 >= TIME_MIN_S) & (seg_t0 < TIME_MAX_S))):
            raise CohortError(f"{where}: field 'seg_t0': segment start outside 1970-2100 or not finite")
        if not (fmin <= fs <= fmax):
            raise CohortError(f"{where}: field 'fs': {fs} Hz outside {fmin}-{fmax} Hz")
        if vals.ndim == 1:
            vals = vals[None, :]
        if chans is not None and vals.shape[0] != chans:
            raise CohortError(f"{where}: field {kind!r}: expected {chans} channels, got {vals.shape[0]}")
        if seg_t0.size != seg_len.size or int(seg_len.sum()) != vals.shape[1] or np.any(seg_len < 0):
            raise CohortError(f"{where}: fields 'seg_t0'/'seg_len' do not describe the {vals.shape[1]} samples")
        return Waveform(kind, fs, seg_t0, seg_len, vals)


class CohortWriter:
    """Write a cohort folder.

    Examples
    --------
    >>> w = CohortWriter("cohorts/x", name="x", source="hand-made")          # doctest: +SKIP
    >>> w.add_participant(Participant("P1"), {"hr": (t, hr)})                 # doctest: +SKIP
    >>> w.close()                                                             # doctest: +SKIP
    """

    def __init__(self, path: str | os.PathLike, name: str, source: str, notes: dict | None = None):
        self.path = Path(path)
        (self.path / "data").mkdir(parents=True, exist_ok=True)
        self.manifest = {"format": FORMAT, "version": VERSION, "name": name, "source": source, **(notes or {})}
        self.participants: list[Participant] = []

    def add_participant(
        self,
        p: Participant,
        streams: dict[str, tuple[np.ndarray, np.ndarray]] | None = None,
        regular: dict[str, tuple[float, float, np.ndarray]] | None = None,
        waveforms: dict[str, Waveform] | None = None,
    ) -> None:
        """Add one participant's streams.

        ``streams`` maps kind -> (time, values) (irregular); ``regular`` maps kind ->
        (t0, period_s, values with NaN gaps); ``waveforms`` maps kind -> Waveform.
        """
        _check_pid(p.participant_id, "participant")
        d = self.path / "data" / p.participant_id
        d.mkdir(parents=True, exist_ok=True)
        for kind, (t, v) in (streams or {}).items():
            spec = STREAMS[kind]
            np.savez(d / f"{kind}.npz", time=np.asarray(t, np.float64), **{spec.field: np.asarray(v, np.float32)})
        for kind, (t0, period, v) in (regular or {}).items():
            spec = STREAMS[kind]
            np.savez(d / f"{kind}.npz", t0=np.float64(t0), period_s=np.float64(period), **{spec.field: np.asarray(v, np.float32)})
        for kind, w in (waveforms or {}).items():
            np.savez(d / f"{kind}.npz", fs=np.float64(w.fs), seg_t0=w.seg_t0, seg_len=w.seg_len, **{kind: np.asarray(w.values, np.float32)})
        self.participants.append(p)

    def close(self) -> Path:
        cols = ["participant_id", "utc_offset_s", *LABEL_COLUMNS]
        extra: list[str] = []
        for p in self.participants:
            for k in p.ehr:
                if k not in extra:
                    extra.append(k)
        with open(self.path / "participants.csv", "w", newline="", encoding="utf-8") as fh:
            wr = csv.DictWriter(fh, fieldnames=cols + extra, extrasaction="ignore")
            wr.writeheader()
            for p in self.participants:
                wr.writerow(p.to_row())
        self.manifest["participants"] = len(self.participants)
        (self.path / "cohort.json").write_text(json.dumps(self.manifest, indent=2, sort_keys=True) + "\n")
        return self.path
