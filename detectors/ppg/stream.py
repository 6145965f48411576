"""Streaming operator: raw PPG/ACC chunks in, derived-sample chunks out.

:class:`RawStreamOperator` is one participant's state. Feed it waveform
chunks of any length with :meth:`RawStreamOperator.update`; it returns a list
of ``(kind, time, values)`` tuples (``kind`` in :data:`detectors.records.STREAMS`)
that :meth:`detectors.epochs.EpochAccumulator.update` consumes:

========  ==================================================================
``hr``    heart rate (bpm) per 8 s window (time = window centre) from the
          motion-robust tracker, only where its confidence >= ``min_confidence``
``ibi``   screened inter-beat intervals (ms; time = the beat ending them)
          from beats of good template correlation and low timing noise
``resp``  respiratory rate (breaths/min) per ``block_s`` block (time = centre)
``enmo``  ENMO (milli-g) per second (time = start of the second)
``steps`` steps per 10 s (time = start of the 10 s)
========  ==================================================================

Determinism: all work happens in units fixed by sample index within a
contiguous segment (HR windows, beat blocks, ACC blocks, seconds), each
computed from its own samples (plus a margin) and, for HR, a tracker that
releases windows at index-determined points. So any chunking of the same
samples gives the same output, bit for bit.

Segments: a chunk whose ``t0`` is not where the previous chunk of the same kind
ended (within half a sample), or whose rate or channel count changed, closes
the segment: pending windows are finished, partial blocks of at least 10 s are
processed, and state restarts. A chunk that starts before the end of what was
already received (redelivery) has its overlapping part dropped.

Latency (event time): HR windows are released ``lag_s`` to ``2 lag_s`` after
they end (68 s at most with the defaults), beats/respiration and steps after
their block plus margin (64 s), ENMO at once. Feed the output to an
:class:`~detectors.epochs.EpochAccumulator` whose ``lateness_s`` exceeds that
plus the chunk length (its default, 120 s, does for chunks up to ~50 s).

PPG/ACC alignment: an HR window uses the ACC only if the ACC has the same rate
and its samples line up with the PPG's (within 1 % of a sample). A window waits
for the ACC until the PPG is ``acc_wait_s`` ahead of it; then it is computed
without motion suppression (a device with no ACC gets HR after that delay).
Arrival skew larger than ``acc_wait_s`` (PPG ahead) or ``acc_buffer_s`` (ACC
ahead) can therefore change results.
"""

from __future__ import annotations

import numpy as np

from detectors.ppg.accel import enmo, moving_seconds, step_times
from detectors.ppg.beats import clean_ibi, detect_beats
from detectors.ppg.buffers import Segment as _Seg
from detectors.ppg.buffers import StreamStats
from detectors.ppg.hr import posterior_to_bpm, window_evidence
from detectors.ppg.resp import resp_rate
from detectors.ppg.spectra import decimate, make_grid
from detectors.ppg.tracker import HRTracker
from detectors.records import WAVEFORMS

__all__ = ["RawStreamOperator", "RawOperator", "StreamStats"]

Out = list[tuple[str, np.ndarray, np.ndarray]]


class RawStreamOperator:
    """One participant's raw-waveform operator (see module doc).

    Parameters
    ----------
    window_s, step_s : float
        HR windows.
    lag_s : float
        Fixed-lag smoothing of the HR tracker (latency ``lag_s`` to ``2 lag_s``).
    block_s : float
        Beat/respiration and step blocks (s of samples).
    margin_s : float
        Extra samples on each side of a block for filters and beat templates.
    acc_wait_s : float
        How long (in PPG event time) an HR window waits for its ACC.
    acc_buffer_s : float
        How far the ACC may run ahead of the PPG and still be used (its samples
        are kept that long): a replay that sends a whole ACC segment before the
        PPG segment gets the same output as interleaved chunks for segments up
        to this length.
    min_confidence : float
        HR windows below this tracker confidence are not emitted.
    max_timing_sd_ms : float
        Beats whose estimated timing noise exceeds this give no interval.

    Examples
    --------
    >>> op = RawStreamOperator()
    >>> out = op.update("ppg", 1.7e9, 64.0, np.zeros((1, 640)))
    >>> out
    []
    """

    def __init__(
        self,
        window_s: float = 8.0,
        step_s: float = 2.0,
        lag_s: float = 30.0,
        block_s: float = 60.0,
        margin_s: float = 4.0,
        acc_wait_s: float = 120.0,
        acc_buffer_s: float = 3 * 3600.0,
        min_confidence: float = 0.5,
        max_timing_sd_ms: float = 6.0,
    ):
        self.window_s = float(window_s)
        self.step_s = float(step_s)
        self.lag = max(1, int(round(lag_s / step_s)))
        self.block_s = float(block_s)
        self.margin_s = float(margin_s)
        self.acc_wait_s = float(acc_wait_s)
        self.acc_buffer_s = float(acc_buffer_s)
        self.min_confidence = float(min_confidence)
        self.max_timing_sd_ms = float(max_timing_sd_ms)
        self.stats = StreamStats()
        self._ppg: _Seg | None = None
        self._acc: _Seg | None = None
        self._grid = None
        self._tracker: HRTracker | None = None
        self._next_win = 0  # next HR window index to evaluate (ppg segment)
        self._pending_t: list[float] = []  # window times awaiting tracker release
        self._pending_ok: list[bool] = []
        self._next_block = 0  # next beat block (ppg segment)
        self._last_beat: float | None = None
        self._next_sec = 0  # next ENMO second (acc segment)
        self._next_sblock = 0  # next step block (acc segment)

    # ------------------------------------------------------------------ input
    def update(self, kind: str, t0: float, fs: float, values: np.ndarray) -> Out:
        """Add one waveform chunk; return derived-sample chunks ready now."""
        if kind not in WAVEFORMS:
            raise ValueError(f"unknown waveform kind {kind!r}; valid: {', '.join(WAVEFORMS)}")
        chans, fmin, fmax = WAVEFORMS[kind]
        if not np.isfinite(fs) or not (fmin <= fs <= fmax):
            raise ValueError(f"{kind}: fs {fs} Hz outside {fmin}-{fmax} Hz")
        if not np.isfinite(t0):
            raise ValueError(f"{kind}: t0 {t0!r} is not a finite time")
        v = np.asarray(values, dtype=np.float64)
        if v.ndim == 1:
            v = v[None, :]
        if v.ndim != 2 or (chans is not None and v.shape[0] != chans):
            raise ValueError(f"{kind}: expected ({chans or 'channels'}, n) values, got shape {np.shape(values)}")
        self.stats.chunks += 1
        out: Out = []
        seg = self._ppg if kind == "ppg" else self._acc
        fs = float(fs)
        if seg is not None and seg.fs == fs and seg.channels == v.shape[0]:
            gap = (t0 - seg.end_t) * fs
            if gap < -0.5:  # overlaps what we have: keep only the new tail
                drop = min(v.shape[1], int(round(-gap)))
                self.stats.dropped_overlap += drop
                v = v[:, drop:]
                t0 = t0 + drop / fs
                gap = (t0 - seg.end_t) * fs
            if v.shape[1] == 0:
                return out
            if abs(gap) > 0.5:
                out += self._close(kind)
                seg = None
        elif seg is not None:
            out += self._close(kind)
            seg = None
        if seg is None:
            seg = _Seg(float(t0), fs, v.shape[0])
            self.stats.segments[kind] += 1
            if kind == "ppg":
                self._ppg = seg
                self._start_ppg()
            else:
                self._acc = seg
                self._next_sec = 0
                self._next_sblock = 0
        seg.append(v)
        if kind == "ppg":
            out += self._run_hr(final=False)
            out += self._run_beats(final=False)
        else:
            out += self._run_acc(final=False)
            if self._ppg is not None:  # windows and blocks waiting for this ACC
                out += self._run_hr(final=False)
                out += self._run_beats(final=False)
        self._trim()
        return [o for o in out if o[1].size]

    def flush(self) -> Out:
        """End of data: finish every pending window and partial block."""
        out = self._close("ppg") + self._close("acc")
        return [o for o in out if o[1].size]

    # --------------------------------------------------------------- segments
    def _start_ppg(self) -> None:
        seg = self._ppg
        self._grid = make_grid(seg.fs, self.window_s, self.step_s)
        self._tracker = HRTracker(self._grid.freq_bpm, step_s=self.step_s, lag=self.lag)
        self._next_win = 0
        self._pending_t, self._pending_ok = [], []
        self._next_block = 0
        self._last_beat = None

    def _close(self, kind: str) -> Out:
        out: Out = []
        if kind == "ppg" and self._ppg is not None:
            out += self._run_hr(final=True)
            out += self._emit_hr(self._tracker.flush())
            out += self._run_beats(final=True)
            self._ppg = None
        elif kind == "acc" and self._acc is not None:
            out += self._run_hr(final=False, acc_closing=True)
            out += self._run_acc(final=True)
            self._acc = None
        return out

    def _trim(self) -> None:
        p, a = self._ppg, self._acc
        if p is not None:
            g = self._grid
            keep = min(self._next_win * g.step_raw, int((self._next_block * self.block_s - self.margin_s) * p.fs))
            p.trim(keep)
        if a is not None:
            keep = min(int(self._next_sec * a.fs), int((self._next_sblock * self.block_s - self.margin_s) * a.fs))
            # ACC for HR windows: what the PPG still needs, but never more than
            # the wait horizon behind the newest ACC (the PPG may never come)
            horizon = a.n - int(max(self.acc_buffer_s, self.acc_wait_s + self.block_s + 2 * self.margin_s) * a.fs)
            need = horizon
            if p is not None and self._grid is not None:
                t_need = p.t0 + min(self._next_win * self._grid.step_raw / p.fs, self._next_block * self.block_s - self.margin_s)
                need = max(horizon, int(np.floor((t_need - a.t0) * a.fs)) - 1)
            a.trim(min(keep, need))

    # ---------------------------------------------------------------------- HR
    def _acc_for(self, t_start: float, n_raw: int) -> tuple[str, int]:
        """('ok', index) | ('wait', 0) | ('none', 0) for the ACC of a window."""
        a, p = self._acc, self._ppg
        if a is None:
            return "wait", 0
        if a.fs != p.fs:
            return "none", 0
        j = (t_start - a.t0) * a.fs
        if abs(j - round(j)) > 0.01 or j < -0.01:
            return "none", 0
        j = int(round(j))
        if j + n_raw <= a.n:
            return ("ok", j) if j >= a.base else ("none", 0)
        return "wait", 0

    def _run_hr(self, final: bool, acc_closing: bool = False) -> Out:
        p = self._ppg
        if p is None:
            return []
        g = self._grid
        fr_p, fr_a, use_acc, times = [], [], [], []
        while True:
            k = self._next_win
            i0 = k * g.step_raw
            i1 = i0 + g.win_raw
            if i1 > p.n:
                break
            t_start = p.t0 + i0 / p.fs
            state, j = self._acc_for(t_start, g.win_raw)
            if state == "wait" and not final and not acc_closing and p.end_t < t_start + self.window_s + self.acc_wait_s:
                break
            if state == "wait" and acc_closing and t_start >= self._acc.t0:
                break  # the ACC segment is about to end; the next update decides
            fr_p.append(decimate(p.get(i0, i1), g.q))
            if state == "ok":
                fr_a.append(decimate(self._acc.get(j, j + g.win_raw), g.q))
                use_acc.append(True)
            else:
                fr_a.append(None)
                use_acc.append(False)
                self.stats.hr_no_acc += 1
            times.append(t_start + self.window_s / 2)
            self._next_win += 1
        if not fr_p:
            return []
        self.stats.hr_windows += len(fr_p)
        P = np.stack(fr_p, axis=1)  # (C, m, win)
        m = P.shape[1]
        spec = np.empty((m, g.freq_bpm.size))
        ok = np.zeros(m, dtype=bool)
        ua = np.asarray(use_acc)
        for flag in (True, False):
            sel = np.flatnonzero(ua == flag)
            if sel.size == 0:
                continue
            A = np.stack([fr_a[i] for i in sel], axis=1) if flag else None
            s, o, _ = window_evidence(P[:, sel], A, g)
            spec[sel], ok[sel] = s, o
        self._pending_t += times
        self._pending_ok += ok.tolist()
        return self._emit_hr(self._tracker.update(self._tracker.evidence(spec)))

    def _emit_hr(self, post: np.ndarray) -> Out:
        n = post.shape[0]
        if n == 0:
            return []
        t = np.asarray(self._pending_t[:n])
        ok = np.asarray(self._pending_ok[:n], dtype=bool)
        del self._pending_t[:n], self._pending_ok[:n]
        bpm, conf = posterior_to_bpm(post, self._grid.freq_bpm)
        keep = ok & (conf >= self.min_confidence)
        self.stats.hr_gated += int(n - keep.sum())
        return [("hr", t[keep], bpm[keep])]

    # ------------------------------------------------------- beats, IBI, resp
    def _acc_moving(self, t_a: float, t_b: float, final: bool) -> tuple[str, np.ndarray | None]:
        """Moving-seconds mask of the ACC over [t_a, t_b): ('ok', mask) | ('wait', None) | ('none', None)."""
        a = self._acc
        if a is None:
            return ("none", None) if final else ("wait", None)
        j0 = int(round((t_a - a.t0) * a.fs))
        j1 = j0 + int(round((t_b - t_a) * a.fs))
        if j0 < a.base:
            return "none", None
        if j1 > a.n:
            if not final:
                return "wait", None
            j1 = a.n  # end of data: seconds beyond the ACC count as moving
        return "ok", moving_seconds(a.get(j0, j1), a.fs)

    def _run_beats(self, final: bool) -> Out:
        p = self._ppg
        out: Out = []
        B = int(round(self.block_s * p.fs))
        M = int(round(self.margin_s * p.fs))
        while True:
            b = self._next_block
            i0, i1 = b * B, (b + 1) * B
            if i1 + M > p.n:
                if not final or p.n - i0 < 10 * p.fs:
                    break
                i1 = p.n
            lo, hi = max(0, i0 - M), min(p.n, i1 + M)
            t_x = p.t0 + lo / p.fs
            state, moving = self._acc_moving(t_x, p.t0 + hi / p.fs, final)
            if state == "wait":
                if p.end_t < p.t0 + hi / p.fs + self.acc_wait_s:
                    break
                state, moving = "none", None
            x = p.get(lo, hi)
            out += self._beat_block(x, p.fs, t_x, p.t0 + i0 / p.fs, p.t0 + i1 / p.fs, moving)
            self._next_block += 1
            self.stats.beat_blocks += 1
            if i1 == p.n:
                break
        return out

    def _beat_block(self, x: np.ndarray, fs: float, t_x: float, t_lo: float, t_hi: float, moving: np.ndarray | None) -> Out:
        beats = detect_beats(x, fs)
        if len(beats) < 3:
            return []
        tb, ibi, valid = clean_ibi(beats, moving=moving)
        tb_abs = tb + t_x
        tsd = beats.timing_sd_ms
        good = valid & (tsd[1:] <= self.max_timing_sd_ms) & (tsd[:-1] <= self.max_timing_sd_ms)
        inside = (tb_abs >= t_lo) & (tb_abs < t_hi)
        keep = good & inside
        out: Out = [("ibi", tb_abs[keep], ibi[keep])]
        rpm, _ = resp_rate(beats, t_lo - t_x, t_hi - t_lo, moving=moving)
        if np.isfinite(rpm):
            out.append(("resp", np.array([(t_lo + t_hi) / 2]), np.array([rpm])))
        return out

    # --------------------------------------------------------------- ACC only
    def _run_acc(self, final: bool) -> Out:
        a = self._acc
        out: Out = []
        fs = a.fs
        # ENMO per whole second
        s1 = int(a.n // fs)
        if s1 > self._next_sec:
            secs = np.arange(self._next_sec, s1)
            i0 = (secs * fs).astype(np.int64)
            i1 = ((secs + 1) * fs).astype(np.int64)
            e = enmo(a.get(int(i0[0]), int(i1[-1])))
            r0 = i0 - i0[0]
            # reduceat sums each second on its own: the same bits for any chunking
            n = np.add.reduceat(np.isfinite(e).astype(np.int64), r0)
            val = np.add.reduceat(np.nan_to_num(e), r0) / np.maximum(n, 1)
            ok = n >= 0.5 * fs
            out.append(("enmo", a.t0 + secs[ok].astype(np.float64), val[ok]))
            self._next_sec = s1
        # steps per 10 s, from blocks with margins
        B = int(round(self.block_s * fs))
        M = int(round(self.margin_s * fs))
        sub = 10.0
        while True:
            b = self._next_sblock
            i0, i1 = b * B, (b + 1) * B
            if i1 + M > a.n:
                if not final or a.n - i0 < 10 * fs:
                    break
                i1 = a.n
            lo, hi = max(0, i0 - M), min(a.n, i1 + M)
            st = step_times(a.get(lo, hi), fs) + lo / fs
            nsub = int(np.floor((i1 - i0) / fs / sub))
            edges = i0 / fs + np.arange(nsub + 1) * sub
            cnt = np.histogram(st, bins=edges)[0].astype(np.float64) if nsub else np.zeros(0)
            out.append(("steps", a.t0 + edges[:-1], cnt))
            self._next_sblock += 1
            if i1 == a.n:
                break
        return out


#: Short name used by the replay driver.
RawOperator = RawStreamOperator
