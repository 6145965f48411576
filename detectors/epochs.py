"""Per-minute epochs from derived-sample chunks, in event time.

:class:`EpochAccumulator` is the first stateful operator of a participant's
pipeline. It takes chunks of samples of any kind and length, in any chunking,
and emits closed one-minute epochs. A minute closes once the participant's
watermark (the largest event time seen, over all kinds) has passed the
minute's end by ``lateness_s``; a sample that arrives for a closed minute is
late: it is counted and dropped. A sample whose (kind, event time) was
already accepted is a duplicate (at-least-once redelivery): counted, dropped.
Feeding the same samples in any chunking gives the same epochs, bit for bit:
values are quantised to fixed point (``QUANTUM`` = 0.001 of their unit) and the
sums are integers held exactly in float64, so the order in which samples are
added cannot change a sum (sums stay far below 2**53).

Epoch columns (one row per minute, ``minute`` = UTC seconds of its start);
sums are in units of ``QUANTUM`` (squares in ``QUANTUM**2``): use :meth:`Epochs.mean`:

==================  ==========================================================
``hr_sum, hr_n``    sum and count of heart-rate samples (bpm)
``steps``           steps in the minute, x SCALE (NaN when no steps sample)
``ibi_sum, ibi_sq,  beat intervals (ms): sum, sum of squares, count; successive
ibi_n, ibi_ssd,     differences (within 2 s of each other and both accepted):
ibi_nd``            sum of squares and count
``temp_sum,temp_n`` skin temperature (deg C)
``resp_sum,resp_n`` respiratory rate (breaths/min)
``enmo_sum,enmo_n`` accelerometer activity (ENMO, milli-g)
==================  ==========================================================
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from detectors.records import STREAMS, check_values

__all__ = ["EPOCH_COLUMNS", "Epochs", "EpochAccumulator", "MINUTE", "QUANTUM", "SCALE"]

MINUTE = 60
QUANTUM = 1e-3
SCALE = 1.0 / QUANTUM  # fixed-point scale of the sums
EPOCH_COLUMNS = (
    "hr_sum", "hr_n", "steps",
    "ibi_sum", "ibi_sq", "ibi_n", "ibi_ssd", "ibi_nd",
    "temp_sum", "temp_n", "resp_sum", "resp_n", "enmo_sum", "enmo_n",
)  # fmt: skip
_COL = {c: i for i, c in enumerate(EPOCH_COLUMNS)}
_SUM_N = {"hr": ("hr_sum", "hr_n"), "temp": ("temp_sum", "temp_n"), "resp": ("resp_sum", "resp_n"), "enmo": ("enmo_sum", "enmo_n")}


@dataclass
class Epochs:
    """A block of consecutive closed minutes: ``minute`` (k,) and ``data`` (k, len(EPOCH_COLUMNS))."""

    minute: np.ndarray
    data: np.ndarray

    def col(self, name: str) -> np.ndarray:
        return self.data[:, _COL[name]]

    def mean(self, kind: str) -> np.ndarray:
        """Per-minute mean of a kind in its own unit (NaN without samples)."""
        s, n = {"ibi": ("ibi_sum", "ibi_n")}.get(kind) or _SUM_N[kind]
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.col(s) / self.col(n) * QUANTUM

    def __len__(self) -> int:
        return int(self.minute.size)


@dataclass
class EpochStats:
    accepted: int = 0
    late: int = 0
    duplicate: int = 0
    invalid: int = 0


@dataclass
class EpochAccumulator:
    """Accumulate samples into minutes; emit minutes once closed.

    Parameters
    ----------
    lateness_s : float
        How long after a minute ends (in event time) it stays open for late samples.

    Examples
    --------
    >>> acc = EpochAccumulator(lateness_s=0)
    >>> acc.update("hr", np.array([0.0, 30.0, 70.0]), np.array([60.0, 62.0, 64.0])).minute.tolist()
    [0.0]
    >>> float(acc.flush().mean("hr")[0])
    64.0
    """

    lateness_s: float = 900.0
    stats: EpochStats = field(default_factory=EpochStats)
    _start: int | None = None  # first open minute index
    _closed_any: bool = False  # whether any minute was emitted yet
    _buf: np.ndarray = field(default_factory=lambda: np.zeros((len(EPOCH_COLUMNS), 0)))  # (columns, minutes)
    _watermark: float = -np.inf
    _seen: dict = field(default_factory=dict)  # kind -> sorted accepted times in open minutes
    _last_ibi: tuple[float, float] | None = None  # (time, ibi_ms) of last accepted beat

    def __getstate__(self) -> dict:
        """Pickle only the buffer columns up to the last minute with data (workers store this per message)."""
        d = dict(self.__dict__)
        if self._start is not None:
            used = max(0, self._last_minute_with_data(0) - self._start)
            d["_buf"] = self._buf[:, :used].copy()
        return d

    @property
    def watermark(self) -> float:
        return self._watermark

    @property
    def closed_until(self) -> float:
        """UTC seconds before which every minute is closed."""
        return float(self._start * MINUTE) if self._closed_any else -np.inf

    def _ensure(self, lo: int, hi: int) -> None:
        """Make the buffer cover minute indexes [start, hi]."""
        if self._start is None:
            self._start = lo
        elif lo < self._start:  # nothing closed yet: an earlier sample of another kind extends the buffer back
            pad = self._start - lo
            nb = np.zeros((len(EPOCH_COLUMNS), pad + self._buf.shape[1]))
            nb[_COL["steps"], :pad] = np.nan
            nb[:, pad:] = self._buf
            self._buf = nb
            self._start = lo
        need = hi - self._start + 1
        have = self._buf.shape[1]
        if need > have:
            grow = max(need, 2 * have, 64)
            nb = np.zeros((len(EPOCH_COLUMNS), grow))
            nb[:, :have] = self._buf
            nb[_COL["steps"], have:] = np.nan
            self._buf = nb

    def update(self, kind: str, time: np.ndarray, values: np.ndarray) -> Epochs:
        """Add samples of one kind; return the minutes this closes (maybe none)."""
        self._add(kind, time, values)
        return self._close()

    def update_many(self, items) -> Epochs:
        """Add samples of several kinds (an iterable of (kind, time, values)), then close once.

        A replay feeds each block of recorded time this way, so no stream of the
        block is late relative to another.
        """
        for kind, time, values in items:
            self._add(kind, time, values)
        return self._close()

    def _add(self, kind: str, time: np.ndarray, values: np.ndarray) -> None:
        if kind not in STREAMS:
            raise ValueError(f"unknown stream kind {kind!r}; valid: {', '.join(STREAMS)}")
        t = np.asarray(time, dtype=np.float64).ravel()
        v = np.asarray(values, dtype=np.float64).ravel()
        if t.shape != v.shape:
            raise ValueError(f"{kind}: time has {t.size} samples, values {v.size}")
        ok = check_values(kind, v) & np.isfinite(t)
        self.stats.invalid += int(t.size - ok.sum())
        t, v = t[ok], v[ok]
        if t.size == 0:
            return
        if np.any(np.diff(t) < 0):
            o = np.argsort(t, kind="stable")
            t, v = t[o], v[o]
        # late: minute already closed
        late = t < self.closed_until
        if late.any():
            self.stats.late += int(late.sum())
            t, v = t[~late], v[~late]
        # duplicates: within the chunk and against accepted times of open minutes
        if t.size:
            keep = np.ones(t.size, dtype=bool)
            keep[1:] = t[1:] != t[:-1]
            seen = self._seen.get(kind)
            if seen is not None and seen.size and t[0] <= seen[-1]:
                keep &= ~np.isin(t, seen, assume_unique=False)
            nd = int(t.size - keep.sum())
            if nd:
                self.stats.duplicate += nd
                t, v = t[keep], v[keep]
        if t.size == 0:
            return
        seen = self._seen.get(kind)
        if seen is None or seen.size == 0:
            merged = t
        elif t[0] > seen[-1]:
            merged = np.concatenate((seen, t))
        else:
            merged = np.union1d(seen, t)
        self._seen[kind] = merged
        in_order = seen is None or seen.size == 0 or t[0] > seen[-1]
        self.stats.accepted += int(t.size)
        m = np.floor(t / MINUTE).astype(np.int64)
        self._ensure(int(m[0]), int(m[-1]))
        idx = m - self._start
        buf = self._buf
        n = buf.shape[1]
        if kind == "steps":
            col = buf[_COL["steps"]]
            add = np.bincount(idx, weights=np.rint(v * SCALE), minlength=n)[:n]
            has = np.bincount(idx, minlength=n)[:n] > 0
            col[has] = np.where(np.isnan(col[has]), 0.0, col[has]) + add[has]
        elif kind == "ibi":
            self._add_ibi(t, v, idx, in_order)
        else:
            cs, cn = _SUM_N[kind]
            buf[_COL[cs]] += np.bincount(idx, weights=np.rint(v * SCALE), minlength=n)[:n]
            buf[_COL[cn]] += np.bincount(idx, minlength=n)[:n]
        self._watermark = max(self._watermark, float(t[-1]))

    def _add_ibi(self, t: np.ndarray, v: np.ndarray, idx: np.ndarray, in_order: bool) -> None:
        buf = self._buf
        n = buf.shape[1]
        q = np.rint(v * SCALE)
        buf[_COL["ibi_sum"]] += np.bincount(idx, weights=q, minlength=n)[:n]
        buf[_COL["ibi_sq"]] += np.bincount(idx, weights=q * q, minlength=n)[:n]
        buf[_COL["ibi_n"]] += np.bincount(idx, minlength=n)[:n]
        # successive differences: consecutive accepted beats whose times are one beat apart
        if in_order and self._last_ibi is not None:
            pt, pv = self._last_ibi
            tt = np.concatenate(([pt], t))
            vv = np.concatenate(([pv], v))
            ii = np.concatenate(([-1], idx))
        else:
            tt, vv, ii = t, v, idx
        if tt.size > 1:
            gap = np.diff(tt)
            succ = np.abs(gap - vv[1:] / 1000.0) < 2.0
            d = np.diff(np.rint(vv * SCALE))
            use = succ & (ii[1:] >= 0)
            buf[_COL["ibi_ssd"]] += np.bincount(ii[1:][use], weights=d[use] ** 2, minlength=n)[:n]
            buf[_COL["ibi_nd"]] += np.bincount(ii[1:][use], minlength=n)[:n]
        if in_order:
            self._last_ibi = (float(t[-1]), float(v[-1]))

    def _close(self, until: float | None = None) -> Epochs:
        if self._start is None:
            return Epochs(np.zeros(0), np.zeros((0, len(EPOCH_COLUMNS))))
        limit = (self._watermark - self.lateness_s) if until is None else until
        n_close = int(np.floor(limit / MINUTE)) - self._start  # minutes whose end <= limit
        width = self._buf.shape[1]
        n_close = max(0, min(n_close, width))
        if until is not None:
            n_close = width if until == np.inf else n_close
        if n_close == 0:
            return Epochs(np.zeros(0), np.zeros((0, len(EPOCH_COLUMNS))))
        out = self._buf[:, :n_close]
        minutes = (self._start + np.arange(n_close)) * float(MINUTE)
        rest = width - n_close
        nb = np.zeros((len(EPOCH_COLUMNS), max(rest, 64)))
        nb[_COL["steps"]] = np.nan
        nb[:, :rest] = self._buf[:, n_close:]
        self._buf = nb
        self._start += n_close
        self._closed_any = True
        cut = self._start * MINUTE
        for k, s in self._seen.items():
            self._seen[k] = s[s >= cut]
        return Epochs(minutes, out.T)  # (minutes, columns) view of column-major memory

    def advance(self, until: float) -> Epochs:
        """Close every minute ending at or before ``until`` (an idle timer's flush)."""
        if self._start is None:
            return self._close()
        self._watermark = max(self._watermark, until + self.lateness_s)
        # the buffer may end before `until`: extend it, else only the buffered minutes close
        last = int(np.floor((self._watermark - self.lateness_s) / MINUTE)) - 1
        if last >= self._start:
            self._ensure(self._start, last)
        return self._close()

    def flush(self) -> Epochs:
        """Close every open minute (end of a recording)."""
        if self._start is None:
            return self._close()
        end = self._start + self._buf.shape[1]
        # only up to the last minute with data
        return self._close(until=float(self._last_minute_with_data(end) * MINUTE))

    def _last_minute_with_data(self, end: int) -> int:
        b = self._buf
        has = ~np.isnan(b[_COL["steps"]])
        for c in ("hr_n", "ibi_n", "temp_n", "resp_n", "enmo_n"):
            has |= b[_COL[c]] > 0
        nz = np.flatnonzero(has)
        return self._start + (int(nz[-1]) + 1 if nz.size else 0)
