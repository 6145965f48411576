"""Stream kinds, their fields, units and physiological ranges.

Every sample stream in prodromal is one of the kinds below. A stream of a
kind carries event times (``time``, UTC seconds) and one value field whose
name carries the unit. Raw waveforms (``ppg``, ``acc``) carry a sampling rate
instead of one time per sample.

The ranges are plausibility limits, not clinical limits: a value outside them
is a sensor or transfer error, counted and dropped at ingest.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["StreamSpec", "STREAMS", "WAVEFORMS", "check_values", "SampleChunk"]


@dataclass(frozen=True)
class StreamSpec:
    """One derived-sample stream kind.

    Attributes
    ----------
    kind : str
        Short name used in files and topics (``hr``, ``steps`` ...).
    field : str
        Value field name, carrying its unit (``hr_bpm``).
    lo, hi : float
        Inclusive plausibility range; samples outside are dropped and counted.
    interval_s : float or None
        For count streams (steps), the interval each sample covers.
    """

    kind: str
    field: str
    lo: float
    hi: float
    interval_s: float | None = None


STREAMS: dict[str, StreamSpec] = {
    "hr": StreamSpec("hr", "hr_bpm", 25.0, 250.0),
    "steps": StreamSpec("steps", "steps", 0.0, 400.0, interval_s=60.0),
    "ibi": StreamSpec("ibi", "ibi_ms", 240.0, 2500.0),
    "temp": StreamSpec("temp", "temp_c", 25.0, 45.0),
    "resp": StreamSpec("resp", "resp_rpm", 3.0, 60.0),
    # Activity from an accelerometer when a device gives it per epoch (ENMO, milli-g).
    "enmo": StreamSpec("enmo", "enmo_mg", 0.0, 8000.0),
}

#: Raw waveform kinds: value arrays are (channels, n) at a fixed rate ``fs``.
WAVEFORMS: dict[str, tuple[int | None, float, float]] = {
    # kind: (channels or None for any, min fs, max fs)
    "ppg": (None, 10.0, 1024.0),
    "acc": (3, 10.0, 1024.0),
}


def check_values(kind: str, values: np.ndarray) -> np.ndarray:
    """Boolean mask of samples that are finite and inside the kind's range.

    Examples
    --------
    >>> check_values("hr", np.array([60.0, 300.0, np.nan])).tolist()
    [True, False, False]
    """
    spec = STREAMS[kind]
    v = np.asarray(values, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.isfinite(v) & (v >= spec.lo) & (v <= spec.hi)


@dataclass
class SampleChunk:
    """A participant's chunk of samples of one kind, in event time.

    ``time`` is UTC seconds (float64). For derived streams ``values`` is 1-D,
    the same length as ``time``. For waveforms ``time`` holds one element, the
    time of the first sample, ``fs`` the rate and ``values`` is (channels, n).
    """

    participant_id: str
    kind: str
    time: np.ndarray
    values: np.ndarray
    fs: float | None = None
    time_received: float | None = None

    def __len__(self) -> int:
        return int(np.shape(self.values)[-1]) if np.ndim(self.values) else 0
