"""Wire formats of prodromal messages: a JSON codec (interoperable) and a compact binary codec.

Both carry a schema version and decode to :class:`detectors.records.SampleChunk`. The first byte
tells them apart (``{`` for JSON, ``P`` for binary), so an input topic accepts either.

JSON sample chunk (derived streams; ``time`` one entry per sample)::

    {"schema": "prodromal.samples", "v": 1, "participant": "P0001", "kind": "hr",
     "time": [1600000000.0, 1600000060.0], "values": [61.0, 62.5], "time_received": 1600000100.2}

JSON waveform chunk (``time`` = time of the first sample, ``values`` = channels x samples)::

    {"schema": "prodromal.waveform", "v": 1, "participant": "P0001", "kind": "ppg",
     "time": 1600000000.0, "fs": 64.0, "values": [[...]], "time_received": 1600000100.2}

Binary chunk (all little-endian)::

    offset size  field
    0      4     magic b"PRDM"
    4      1     schema version (1)
    5      1     flags: bit 0 = payload zlib-compressed, bit 1 = waveform
    6      1     dtype code of values: 1 float32, 2 float64, 3 int16, 4 int32
    7      1     len(kind) (bytes, ASCII)
    8      1     len(participant) (bytes, ASCII)
    9      3     reserved (zero)
    12     8     time_received (float64 UTC s; NaN = unknown)
    20     8     time (float64: first sample time; for derived streams = time[0])
    28     8     fs (float64 Hz; 0 for derived streams)
    36     4     channels (uint32; 1 for derived streams)
    40     4     n samples (uint32)
    44     ..    kind, participant, then payload: derived = time float64[n] + values[n];
                 waveform = values[channels, n] (row-major); zlib-compressed when flagged

Decoding is strict: size limits first (before decompressing or parsing), then structure, types,
and times (finite, not negative, not beyond ``now + max_skew_s``). Every failure is a
:class:`CodecError` whose message says what is wrong and where; nothing else ever escapes.
"""

from __future__ import annotations

import json
import math
import struct
import time as _time
import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np

from detectors.records import STREAMS, WAVEFORMS, SampleChunk

__all__ = [
    "CodecError",
    "Decoder",
    "SCHEMA_VERSION",
    "encode_chunk",
    "decode_chunk",
    "encode_record",
    "decode_record",
    "MAGIC",
]

SCHEMA_VERSION = 1
MAGIC = b"PRDM"
_HEAD = struct.Struct("<4sBBBBB3xdddII")
_DTYPES = {1: np.dtype("<f4"), 2: np.dtype("<f8"), 3: np.dtype("<i2"), 4: np.dtype("<i4")}
_DTYPE_CODE = {v: k for k, v in _DTYPES.items()}
_FLAG_ZLIB, _FLAG_WAVE = 1, 2
MAX_PARTICIPANT_ID = 64
_NUM = (int, float)


class CodecError(ValueError):
    """A message cannot be decoded; the message says what is wrong and where."""


def _check_pid(pid: Any) -> str:
    if not isinstance(pid, str) or not pid:
        raise CodecError("field 'participant': must be a non-empty string")
    if len(pid) > MAX_PARTICIPANT_ID or not all(c.isascii() and (c.isalnum() or c in "-_.") for c in pid):
        raise CodecError(
            f"field 'participant': must be 1-{MAX_PARTICIPANT_ID} ASCII letters, digits, '-', '_' or '.'"
        )
    return pid


def _check_kind(kind: Any, waveform: bool) -> str:
    valid = WAVEFORMS if waveform else STREAMS
    if not isinstance(kind, str) or kind not in valid:
        shown = kind[:20] if isinstance(kind, str) else type(kind).__name__
        raise CodecError(f"field 'kind': {shown!r} is not a {'waveform' if waveform else 'sample'} kind; valid: {', '.join(valid)}")
    return kind


@dataclass(frozen=True)
class Decoder:
    """Strict decoder with limits.

    Parameters
    ----------
    max_bytes : int
        Largest accepted message (compressed size), checked before anything else.
    max_samples : int
        Largest number of values (channels x samples) in one chunk; bounds decompression too.
    max_skew_s : float
        Event times later than ``now + max_skew_s`` are refused (a device clock in the future).
    """

    max_bytes: int = 8 * 1024 * 1024
    max_samples: int = 2_000_000
    max_skew_s: float = 300.0

    def decode(self, data: bytes, now: float | None = None) -> SampleChunk:
        """Decode one sample or waveform chunk (JSON or binary)."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise CodecError(f"message: expected bytes, got {type(data).__name__}")
        data = bytes(data)
        if len(data) > self.max_bytes:
            raise CodecError(f"message: {len(data)} bytes exceeds the limit of {self.max_bytes}")
        if not data:
            raise CodecError("message: empty")
        now = _time.time() if now is None else now
        if data[:4] == MAGIC:
            chunk = self._decode_binary(data)
        elif data[:1] in (b"{", b"[", b" ", b"\n", b"\t", b"\r"):
            chunk = self._decode_json(data)
        else:
            raise CodecError("message: neither JSON (starts with '{') nor binary (magic 'PRDM')")
        self._check_times(chunk, now)
        return chunk

    # -- binary ---------------------------------------------------------------------------------
    def _decode_binary(self, data: bytes) -> SampleChunk:
        if len(data) < _HEAD.size:
            raise CodecError(f"binary message: truncated header ({len(data)} of {_HEAD.size} bytes)")
        magic, ver, flags, dcode, klen, plen, t_recv, t0, fs, chans, n = _HEAD.unpack_from(data)
        if ver != SCHEMA_VERSION:
            raise CodecError(f"binary message: schema version {ver} not supported (this reads {SCHEMA_VERSION})")
        if flags & ~(_FLAG_ZLIB | _FLAG_WAVE):
            raise CodecError(f"binary message: unknown flags 0x{flags:02x}")
        if dcode not in _DTYPES:
            raise CodecError(f"binary message: unknown dtype code {dcode}")
        waveform = bool(flags & _FLAG_WAVE)
        pos = _HEAD.size
        if len(data) < pos + klen + plen:
            raise CodecError("binary message: truncated in kind/participant")
        try:
            kind = data[pos : pos + klen].decode("ascii")
            pid = data[pos + klen : pos + klen + plen].decode("ascii")
        except UnicodeDecodeError:
            raise CodecError("binary message: kind/participant not ASCII") from None
        kind = _check_kind(kind, waveform)
        pid = _check_pid(pid)
        where = f"participant {pid} kind {kind}"
        if chans < 1 or (not waveform and chans != 1):
            raise CodecError(f"{where}: binary message: {chans} channels")
        if chans * n > self.max_samples:
            raise CodecError(f"{where}: {chans} x {n} values exceed the limit of {self.max_samples}")
        dt = _DTYPES[dcode]
        need = chans * n * dt.itemsize + (0 if waveform else 8 * n)
        payload = data[pos + klen + plen :]
        if flags & _FLAG_ZLIB:
            d = zlib.decompressobj()
            try:
                out = d.decompress(payload, need + 1)  # + 1 detects a payload longer than declared
            except zlib.error as e:
                raise CodecError(f"{where}: corrupt zlib payload: {e}") from None
            if not d.eof or d.unconsumed_tail or d.unused_data:
                raise CodecError(f"{where}: zlib payload does not match the declared size of {need} bytes")
            payload = out
        if len(payload) != need:
            state = "truncated" if len(payload) < need else "has trailing bytes"
            raise CodecError(f"{where}: payload {state}: {len(payload)} bytes, expected {need}")
        if waveform:
            values = np.frombuffer(payload, dtype=dt).reshape(chans, n).astype(np.float64)
            times = np.array([t0], dtype=np.float64)
            chunk = SampleChunk(pid, kind, times, values, fs=float(fs), time_received=None if math.isnan(t_recv) else t_recv)
            self._check_waveform(chunk, where)
            return chunk
        times = np.frombuffer(payload, dtype="<f8", count=n).astype(np.float64)
        values = np.frombuffer(payload, dtype=dt, offset=8 * n).astype(np.float64)
        if n and times[0] != t0 and not (math.isnan(t0) and math.isnan(times[0])):
            raise CodecError(f"{where}: header time {t0} differs from the first sample time")
        return SampleChunk(pid, kind, times, values, time_received=None if math.isnan(t_recv) else t_recv)

    # -- JSON -----------------------------------------------------------------------------------
    def _decode_json(self, data: bytes) -> SampleChunk:
        obj = _loads(data)
        if not isinstance(obj, dict):
            raise CodecError("JSON message: top level must be an object")
        schema = obj.get("schema")
        if schema not in ("prodromal.samples", "prodromal.waveform"):
            raise CodecError(f"JSON message: field 'schema': expected 'prodromal.samples' or 'prodromal.waveform', got {_short(schema)}")
        _check_version(obj)
        waveform = schema == "prodromal.waveform"
        kind = _check_kind(obj.get("kind"), waveform)
        pid = _check_pid(obj.get("participant"))
        where = f"participant {pid} kind {kind}"
        t_recv = obj.get("time_received")
        if t_recv is not None and (type(t_recv) not in _NUM):
            raise CodecError(f"{where}: field 'time_received': must be a number or null")
        t_recv = None if t_recv is None else float(t_recv)
        if t_recv is not None and not (math.isfinite(t_recv) and t_recv >= 0):
            raise CodecError(f"{where}: field 'time_received': must be finite and >= 0")
        if waveform:
            t0 = obj.get("time")
            if type(t0) not in _NUM:
                raise CodecError(f"{where}: field 'time': must be a number (time of the first sample)")
            fs = obj.get("fs")
            if type(fs) not in _NUM:
                raise CodecError(f"{where}: field 'fs': must be a number (Hz)")
            rows = obj.get("values")
            if not isinstance(rows, list) or not rows or not all(isinstance(r, list) for r in rows):
                raise CodecError(f"{where}: field 'values': must be a non-empty list of channel lists")
            if len({len(r) for r in rows}) != 1:
                raise CodecError(f"{where}: field 'values': channels differ in length")
            if len(rows) * len(rows[0]) > self.max_samples:
                raise CodecError(f"{where}: {len(rows)} x {len(rows[0])} values exceed the limit of {self.max_samples}")
            values = np.array([_numbers(r, where, "values") for r in rows], dtype=np.float64).reshape(len(rows), -1)
            chunk = SampleChunk(pid, kind, np.array([float(t0)]), values, fs=float(fs), time_received=t_recv)
            self._check_waveform(chunk, where)
            return chunk
        t, v = obj.get("time"), obj.get("values")
        if not isinstance(t, list) or not isinstance(v, list):
            raise CodecError(f"{where}: fields 'time' and 'values': must be lists")
        if len(t) != len(v):
            raise CodecError(f"{where}: fields 'time' ({len(t)}) and 'values' ({len(v)}) differ in length")
        if len(v) > self.max_samples:
            raise CodecError(f"{where}: {len(v)} values exceed the limit of {self.max_samples}")
        return SampleChunk(pid, kind, _numbers(t, where, "time"), _numbers(v, where, "values"), time_received=t_recv)

    # -- shared checks --------------------------------------------------------------------------
    def _check_waveform(self, chunk: SampleChunk, where: str) -> None:
        chans, fmin, fmax = WAVEFORMS[chunk.kind]
        if not (math.isfinite(chunk.fs) and fmin <= chunk.fs <= fmax):
            raise CodecError(f"{where}: field 'fs': {chunk.fs} Hz outside {fmin}-{fmax} Hz")
        if chans is not None and chunk.values.shape[0] != chans:
            raise CodecError(f"{where}: field 'values': expected {chans} channels, got {chunk.values.shape[0]}")

    def _check_times(self, chunk: SampleChunk, now: float) -> None:
        where = f"participant {chunk.participant_id} kind {chunk.kind}"
        t = chunk.time
        if t.size == 0:
            return
        if not np.all(np.isfinite(t)):
            i = int(np.argmin(np.isfinite(t)))
            raise CodecError(f"{where}: field 'time': sample {i} is not finite")
        if float(t.min()) < 0:
            raise CodecError(f"{where}: field 'time': negative event time (sample {int(np.argmin(t))})")
        last = float(t.max())
        if chunk.fs:
            last = float(t[0]) + (chunk.values.shape[-1] - 1) / chunk.fs
        if last > now + self.max_skew_s:
            raise CodecError(
                f"{where}: field 'time': {last - now:.0f} s in the future (clock skew limit {self.max_skew_s:.0f} s)"
            )


def _loads(data: bytes) -> Any:
    def _no_const(name: str) -> Any:
        raise CodecError(f"JSON message: {name} is not allowed (use null for a missing value)")

    try:
        return json.loads(data.decode("utf-8", errors="strict"), parse_constant=_no_const)
    except UnicodeDecodeError as e:
        raise CodecError(f"JSON message: not UTF-8 at byte {e.start}") from None
    except json.JSONDecodeError as e:
        raise CodecError(f"JSON message: invalid JSON at line {e.lineno} column {e.colno}: {e.msg}") from None
    except RecursionError:
        raise CodecError("JSON message: nested too deeply") from None


def _short(x: Any) -> str:
    return repr(x[:40]) if isinstance(x, str) else type(x).__name__


def _check_version(obj: dict) -> None:
    v = obj.get("v")
    if type(v) is not int:
        raise CodecError("JSON message: field 'v' (schema version): must be an integer")
    if v != SCHEMA_VERSION:
        raise CodecError(f"JSON message: schema version {v} not supported (this reads {SCHEMA_VERSION})")


def _numbers(seq: list, where: str, name: str) -> np.ndarray:
    """A list of JSON numbers (null = NaN for values) as float64; booleans and strings refused."""
    out = np.empty(len(seq), dtype=np.float64)
    for i, x in enumerate(seq):
        tx = type(x)
        if tx is float or tx is int:
            try:
                out[i] = x
            except OverflowError:
                raise CodecError(f"{where}: field '{name}': entry {i} is out of range") from None
        elif x is None and name == "values":
            out[i] = np.nan
        else:
            raise CodecError(f"{where}: field '{name}': entry {i} is {tx.__name__}, expected a number")
    return out


_DEFAULT = Decoder()


def decode_chunk(data: bytes, now: float | None = None, decoder: Decoder | None = None) -> SampleChunk:
    """Decode a sample or waveform chunk with default limits (see :class:`Decoder`)."""
    return (decoder or _DEFAULT).decode(data, now)


def encode_chunk(
    chunk: SampleChunk,
    codec: str = "binary",
    compress: bool = False,
    dtype: str | np.dtype = "float32",
) -> bytes:
    """Encode a chunk.

    Parameters
    ----------
    chunk : SampleChunk
        Derived samples (``time`` per sample) or a waveform (``time`` = first sample, ``fs`` set).
    codec : {"binary", "json"}
    compress : bool
        zlib-compress the binary payload (worth it for waveforms).
    dtype : {"float32", "float64", "int16", "int32"}
        Binary value type. Values stored as float32 in a cohort round-trip exactly as float32.

    Examples
    --------
    >>> import numpy as np
    >>> c = SampleChunk("P1", "hr", np.array([0.0, 60.0]), np.array([61.0, 62.0]), time_received=100.0)
    >>> decode_chunk(encode_chunk(c), now=200.0).values.tolist()
    [61.0, 62.0]
    """
    waveform = chunk.kind in WAVEFORMS
    t = np.asarray(chunk.time, dtype=np.float64).ravel()
    v = np.asarray(chunk.values)
    t_recv = chunk.time_received
    if codec == "json":
        obj: dict[str, Any] = {
            "schema": "prodromal.waveform" if waveform else "prodromal.samples",
            "v": SCHEMA_VERSION,
            "participant": chunk.participant_id,
            "kind": chunk.kind,
        }
        if waveform:
            obj["time"] = float(t[0])
            obj["fs"] = float(chunk.fs)
            obj["values"] = np.asarray(v, dtype=np.float64).reshape(v.shape[0] if v.ndim == 2 else 1, -1).tolist()
        else:
            obj["time"] = t.tolist()
            obj["values"] = [None if not math.isfinite(x) else x for x in np.asarray(v, np.float64).ravel().tolist()]
        obj["time_received"] = t_recv
        return json.dumps(obj, separators=(",", ":"), allow_nan=False).encode()
    if codec != "binary":
        raise ValueError(f"unknown codec {codec!r}; valid: binary, json")
    dt = np.dtype(dtype).newbyteorder("<")
    if dt not in _DTYPE_CODE:
        raise ValueError(f"unsupported dtype {dtype!r}; valid: float32, float64, int16, int32")
    kind, pid = chunk.kind.encode("ascii"), chunk.participant_id.encode("ascii")
    if waveform:
        vals = np.ascontiguousarray(np.atleast_2d(v), dtype=dt)
        chans, n = vals.shape
        payload = vals.tobytes()
        t0, fs = float(t[0]), float(chunk.fs)
    else:
        vals = np.ascontiguousarray(v.ravel(), dtype=dt)
        chans, n = 1, vals.size
        payload = t.astype("<f8").tobytes() + vals.tobytes()
        t0, fs = (float(t[0]) if n else 0.0), 0.0
    flags = (_FLAG_WAVE if waveform else 0) | (_FLAG_ZLIB if compress else 0)
    if compress:
        payload = zlib.compress(payload, 1)
    head = _HEAD.pack(
        MAGIC, SCHEMA_VERSION, flags, _DTYPE_CODE[dt], len(kind), len(pid),
        math.nan if t_recv is None else float(t_recv), t0, fs, chans, n,
    )  # fmt: skip
    return head + kind + pid + payload


def encode_record(schema: str, payload: dict[str, Any]) -> bytes:
    """Encode a JSON record (scores, alerts, daily features, dead letters, EHR context).

    ``schema`` and ``v`` are added; non-finite floats become null.
    """
    obj = {"schema": schema, "v": SCHEMA_VERSION}
    for k, x in payload.items():
        if isinstance(x, (float, np.floating)):
            x = float(x) if math.isfinite(x) else None
        elif isinstance(x, np.integer):
            x = int(x)
        obj[k] = x
    return json.dumps(obj, separators=(",", ":"), allow_nan=False, default=str).encode()


def decode_record(data: bytes, schema: str | None = None, max_bytes: int = 1024 * 1024) -> dict[str, Any]:
    """Decode a JSON record, checking its schema name and version."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise CodecError(f"record: expected bytes, got {type(data).__name__}")
    if len(data) > max_bytes:
        raise CodecError(f"record: {len(data)} bytes exceeds the limit of {max_bytes}")
    obj = _loads(bytes(data))
    if not isinstance(obj, dict):
        raise CodecError("record: top level must be an object")
    if schema is not None and obj.get("schema") != schema:
        raise CodecError(f"record: field 'schema': expected {schema!r}, got {_short(obj.get('schema'))}")
    _check_version(obj)
    return obj
