"""Heart rate from wrist PPG under motion, with the accelerometer as a noise reference.

Method (per window of ``window_s`` advanced by ``step_s``; SP Cup convention 8 s / 2 s):

1. Decimate PPG and ACC to about 12 Hz by block means, mean-remove each window
   and take its zero-padded spectrum in the 40-230 bpm band
   (:mod:`detectors.ppg.spectra`).
2. Motion suppression by least-squares noise cancellation in the frequency
   domain: per window and PPG channel, the complex mix (gain and phase per axis)
   of the three accelerometer spectra that best explains the PPG spectrum is
   removed (a per-window Wiener solution of the adaptive noise canceller with
   the ACC as reference, e.g. Ram et al. 2012, Schaeck et al. 2017). The arm's
   movement frequencies and harmonics are in the ACC; the cardiac peak is not,
   so it survives. The residual power spectra of the channels are normalised to
   a peak of one and averaged (multi-channel fusion as in JOSS, Zhang 2015).
3. Tracking: a hidden Markov model over the frequency bins with a Gaussian
   random-walk prior on heart rate (:class:`detectors.ppg.tracker.HRTracker`),
   forward-backward smoothed offline, fixed-lag smoothed when streaming. This
   replaces TROIKA's hand-made peak-selection rules with a probabilistic prior.
4. The estimate is the posterior mode, refined by the posterior mean within
   +-2 bins; the confidence is the posterior mass within +-5 bpm of it.

Windows whose PPG is missing (NaN), flat or clipped on every channel get no
evidence (the tracker coasts) and are reported as NaN with confidence 0.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from detectors.ppg.spectra import SpectralGrid, band_spectrum_many, decimate, frames, make_grid
from detectors.ppg.tracker import HRTracker
from detectors.records import WAVEFORMS

__all__ = ["HRResult", "estimate_hr", "estimate_hr_detailed", "estimate_hr_many", "check_waveforms", "usable_windows", "window_evidence", "posterior_to_bpm", "METHODS"]

#: Tracking modes of :func:`estimate_hr_detailed`.
METHODS = ("smooth", "online", "causal")
#: Fraction of repeated consecutive (decimated) values above which a window is clipped or flat.
MAX_REPEAT_FRACTION = 0.2
#: ACC band RMS (g) at which ``motion`` is 0.5.
MOTION_REF_G = 0.05
# index grids of the cofactors of a 3x3 matrix: cof[i, j] = G[i1, j1] G[i2, j2] - G[i1, j2] G[i2, j1]
# with i1, i2 = (i + 1) % 3, (i + 2) % 3 and the same for j (rows of cof are cross products of rows)
_I1 = np.array([[1, 2, 0]]).T
_I2 = np.array([[2, 0, 1]]).T


@dataclass
class HRResult:
    """Per-window heart rate.

    Attributes
    ----------
    start_s : ndarray
        Window start, seconds from the first sample.
    hr_bpm : ndarray
        Estimate per window (NaN where no PPG channel was usable).
    confidence : ndarray
        Posterior probability that the true rate is within +-5 bpm (0-1).
    ppg_ok : ndarray of bool
        Whether at least one PPG channel was usable in the window.
    motion : ndarray
        Accelerometer band power share (0 = still, towards 1 = strong periodic motion).
    """

    start_s: np.ndarray
    hr_bpm: np.ndarray
    confidence: np.ndarray
    ppg_ok: np.ndarray
    motion: np.ndarray

    def __len__(self) -> int:
        return int(self.hr_bpm.size)


def check_waveforms(ppg: np.ndarray, acc: np.ndarray | None, fs: float) -> tuple[np.ndarray, np.ndarray | None]:
    """Validate shapes and rate; return float64 (channels, n) PPG and (3, n) ACC.

    Raises
    ------
    ValueError
        On a sampling rate outside the supported range, wrong dimensions, a
        wrong number of accelerometer axes, or PPG/ACC of different lengths.
    """
    _, fmin, fmax = WAVEFORMS["ppg"]
    if not np.isscalar(fs) or not np.isfinite(fs) or not (fmin <= float(fs) <= fmax):
        raise ValueError(f"fs: {fs!r} Hz is outside the supported {fmin}-{fmax} Hz")
    p = np.asarray(ppg, dtype=np.float64)
    if p.ndim == 1:
        p = p[None, :]
    if p.ndim != 2 or p.shape[0] < 1:
        raise ValueError(f"ppg: expected (n,) or (channels, n), got shape {np.shape(ppg)}")
    a = None
    if acc is not None:
        a = np.asarray(acc, dtype=np.float64)
        if a.ndim != 2 or a.shape[0] != 3:
            raise ValueError(f"acc: expected (3, n), got shape {np.shape(acc)}")
        if a.shape[1] != p.shape[1]:
            raise ValueError(f"ppg has {p.shape[1]} samples but acc has {a.shape[1]}: they must be aligned at the same fs")
    return p, a


def _usable(fr: np.ndarray) -> np.ndarray:
    """Windows (..., m) with no NaN, not flat and not clipped."""
    finite = np.isfinite(fr).all(axis=-1)
    x = np.where(finite[..., None], fr, 0.0) if not finite.all() else fr
    rep = (np.diff(x, axis=-1) == 0).mean(axis=-1)
    # clipping: many (block-mean) samples exactly at the window's extreme
    rail = np.maximum((x == x.max(axis=-1, keepdims=True)).mean(axis=-1), (x == x.min(axis=-1, keepdims=True)).mean(axis=-1))
    # a flat window repeats every value, so the repeat test also catches it
    return finite & (rep <= MAX_REPEAT_FRACTION) & (rail <= MAX_REPEAT_FRACTION)


def usable_windows(xd: np.ndarray, grid: SpectralGrid) -> np.ndarray:
    """The test of ``_usable`` for every window of a continuous decimated signal (channels, n).

    Same booleans as applying it to :func:`frames` (exact integer counts), but
    from per-step-block statistics, so each sample is read once instead of
    once per overlapping window.
    """
    C, n = xd.shape
    step, win = grid.step, grid.win
    m = (n - win) // step + 1 if n >= win else 0
    if m <= 0:
        return np.zeros((C, 0), dtype=bool)
    r = win // step
    nb = m + r - 1
    fin = np.isfinite(xd[:, : nb * step])
    finite = np.ones((C, m), dtype=bool)
    if fin.all():  # the usual case: no per-block test needed
        x = xd[:, : nb * step]
    else:
        x = np.where(fin, xd[:, : nb * step], 0.0)
        fb = fin.reshape(C, nb, step).all(axis=-1)
        for j in range(r):
            finite &= fb[:, j : j + m]
    eq = np.concatenate([np.zeros((C, 1), dtype=np.int64), np.cumsum(x[:, 1:] == x[:, :-1], axis=1)], axis=1)
    starts = np.arange(m) * step
    rep = (eq[:, starts + win - 1] - eq[:, starts]) / (win - 1)
    xb = x.reshape(C, nb, step)
    rail = np.zeros((C, m))
    for ext, pair in ((np.max, np.maximum), (np.min, np.minimum)):
        be = ext(xb, axis=-1)
        ne = (xb == be[..., None]).sum(axis=-1)
        we = be[:, 0:m].copy()
        for j in range(1, r):
            pair(we, be[:, j : j + m], out=we)
        cnt = np.zeros((C, m))
        for j in range(r):
            cnt += ne[:, j : j + m] * (be[:, j : j + m] == we)
        rail = np.maximum(rail, cnt / win)
    return finite & (rep <= MAX_REPEAT_FRACTION) & (rail <= MAX_REPEAT_FRACTION)


def _usable_split(pd: np.ndarray, ad: np.ndarray | None, grid: SpectralGrid) -> tuple[np.ndarray, np.ndarray | None]:
    """:func:`usable_windows` of PPG and ACC in one call (its cost is mostly per call)."""
    if ad is None:
        return usable_windows(pd, grid), None
    u = usable_windows(np.concatenate([pd, ad]), grid)
    return u[: pd.shape[0]], u[pd.shape[0] :]


def window_evidence(
    ppg_fr: np.ndarray,
    acc_fr: np.ndarray | None,
    grid: SpectralGrid,
    ppg_usable: np.ndarray | None = None,
    acc_usable: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Motion-suppressed spectra of decimated windows.

    Parameters
    ----------
    ppg_fr : ndarray (channels, m, win)
    acc_fr : ndarray (3, m, win) or None
    ppg_usable, acc_usable : ndarray (channels or 3, m) of bool, optional
        Precomputed usability (:func:`usable_windows`); computed from the windows if absent.

    Returns
    -------
    spec : ndarray (m, n_bins)
        Clean spectrum per window; NaN rows where no PPG channel is usable.
    ppg_ok : ndarray (m,) of bool
    motion : ndarray (m,)
        Share of ACC power in the heart-rate band relative to a 0.05 g reference.
    """
    C = ppg_fr.shape[0]
    ok = _usable(ppg_fr) if ppg_usable is None else ppg_usable  # (C, m)
    parts, oks = [ppg_fr], [ok]
    if acc_fr is not None:
        aok = (_usable(acc_fr) if acc_usable is None else acc_usable).all(axis=0)
        parts.append(acc_fr)
        oks.append(np.stack([aok, aok, aok]))
    # one spectral product for every channel: fewer, larger batches are faster
    Z = band_spectrum_many(parts, oks, grid)
    n_ok = ok.sum(axis=0)
    ppg_ok = n_ok > 0
    m = Z.shape[1]
    motion = np.zeros(m)
    Zp = Z[:C]
    if acc_fr is not None:
        Za = Z[C:]  # (3, m, n_bins) complex64
        # least-squares noise cancellation: per window, the part of each PPG
        # channel's spectrum that a complex (gain and phase) mix of the three
        # ACC axes explains is removed
        Zat = np.ascontiguousarray(Za.transpose(1, 0, 2))  # (m, 3, n_bins)
        # Gram matrix and right-hand sides in one product per window: (m, 3, 3 + C)
        R = np.concatenate([Zat, Zp.transpose(1, 0, 2)], axis=1)
        Gb = (Zat.conj() @ R.transpose(0, 2, 1)).astype(np.complex128)
        G, b = Gb[:, :, :3], Gb[:, :, 3:]
        d = np.arange(3)
        apow = G[:, d, d].real.sum(axis=1)  # band power of the three axes
        # mean square ACC in the band (g^2), from Parseval on the zero-padded DFT
        band_ms = apow * 2.0 / (grid.win * grid.nfft)
        motion = band_ms / (band_ms + MOTION_REF_G**2)
        G[:, d, d] += (1e-9 * apow + 1e-30)[:, None]
        # closed-form 3x3 solve (adjugate / determinant), vectorised over windows:
        # rows of the cofactor matrix are cross products of the other two rows
        cof = G[:, _I1, _I1.T] * G[:, _I2, _I2.T] - G[:, _I1, _I2.T] * G[:, _I2, _I1.T]
        det = (G[:, 0] * cof[:, 0]).sum(axis=1)
        h = ((cof.transpose(0, 2, 1) @ b) / det[:, None, None]).astype(np.complex64)  # (m, 3, C)
        Zp = Zp - (h.transpose(0, 2, 1) @ Zat).transpose(1, 0, 2)
    pw = Zp.real**2 + Zp.imag**2
    mx = pw.max(axis=-1, keepdims=True)
    mx[mx <= 0] = 1.0
    pw = pw / mx
    spec = pw.sum(axis=0) / np.maximum(n_ok, 1)[:, None]
    spec[~ppg_ok] = np.nan
    return spec, ppg_ok, motion


def posterior_to_bpm(post: np.ndarray, freq_bpm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Posterior mode refined by the local posterior mean, and the mass within +-5 bpm."""
    m, nb = post.shape
    if m == 0:
        return np.zeros(0), np.zeros(0)
    k = post.argmax(axis=1)
    idx = np.clip(k[:, None] + np.arange(-2, 3)[None, :], 0, nb - 1)
    w = np.take_along_axis(post, idx, axis=1)
    bpm = (w * freq_bpm[idx]).sum(axis=1) / w.sum(axis=1)
    near = np.abs(freq_bpm[None, :] - bpm[:, None]) <= 5.0
    conf = (post * near).sum(axis=1)
    return bpm, conf


def _windows(x: np.ndarray, grid: SpectralGrid) -> np.ndarray:
    return frames(decimate(x, grid.q), grid.win, grid.step)


def estimate_hr_detailed(
    ppg: np.ndarray,
    acc: np.ndarray | None,
    fs: float,
    window_s: float = 8.0,
    step_s: float = 2.0,
    method: str = "smooth",
    lag_s: float = 30.0,
    sigma_bpm: float = 4.0,
) -> HRResult:
    """Heart rate per window with confidences.

    Parameters
    ----------
    ppg : ndarray (channels, n) or (n,)
        Raw PPG, any units; channels are fused.
    acc : ndarray (3, n) or None
        Accelerometer aligned with ``ppg`` (g); None disables motion suppression.
    fs : float
        Sampling rate (Hz) of both.
    window_s, step_s : float
        Window k covers samples ``[k*step, k*step + window)``.
    method : {"smooth", "online", "causal"}
        ``smooth``: forward-backward over the whole recording (best, offline);
        ``online``: fixed-lag block smoothing with ``lag_s`` (what the streaming
        operator does, same numbers); ``causal``: forward filter only.
    sigma_bpm : float
        Random-walk standard deviation of heart rate per 2 s.

    Returns
    -------
    HRResult

    Examples
    --------
    >>> from streams.synth_raw import simulate_raw                      # doctest: +SKIP
    >>> sim = simulate_raw(seed=1, duration_s=120, fs=125)               # doctest: +SKIP
    >>> r = estimate_hr_detailed(sim.ppg, sim.acc, sim.fs)               # doctest: +SKIP
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    p, a = check_waveforms(ppg, acc, fs)
    grid = make_grid(float(fs), window_s, step_s)
    pd = decimate(p, grid.q)
    pf = frames(pd, grid.win, grid.step)
    m = pf.shape[1]
    if m == 0:
        z = np.zeros(0)
        return HRResult(z, z.copy(), z.copy(), np.zeros(0, bool), z.copy())
    ad = decimate(a, grid.q) if a is not None else None
    af = frames(ad, grid.win, grid.step) if ad is not None else None
    pu, au = _usable_split(pd, ad, grid)
    spec, ok, motion = window_evidence(pf, af, grid, pu, au)
    lag = {"smooth": None, "causal": 0, "online": max(1, int(round(lag_s / step_s)))}[method]
    tr = HRTracker(grid.freq_bpm, step_s=step_s, sigma_bpm=sigma_bpm, lag=lag)
    if lag is None:
        post = tr.smooth(tr.evidence(spec))
    else:
        post = tr.update(tr.evidence(spec))
        post = np.concatenate([post, tr.flush()], axis=0)
    bpm, conf = posterior_to_bpm(post, grid.freq_bpm)
    bpm[~ok] = np.nan
    conf[~ok] = 0.0
    return HRResult(np.arange(m) * float(step_s), bpm, conf, ok, motion)


def estimate_hr(ppg: np.ndarray, acc: np.ndarray | None, fs: float, window_s: float = 8.0, step_s: float = 2.0) -> np.ndarray:
    """Heart rate (bpm) per window under motion; see :func:`estimate_hr_detailed`.

    Window k covers samples ``[k*step, k*step + window)``; there are
    ``(n - window) // step + 1`` windows. NaN where the PPG was unusable.

    Examples
    --------
    >>> import numpy as np
    >>> fs = 125.0; t = np.arange(int(60 * fs)) / fs
    >>> ppg = np.sin(2 * np.pi * 1.2 * t)              # 72 bpm
    >>> acc = np.zeros((3, t.size))
    >>> hr = estimate_hr(ppg, acc, fs)
    >>> hr.shape, bool(abs(np.median(hr) - 72) < 1.5)
    ((27,), True)
    """
    return estimate_hr_detailed(ppg, acc, fs, window_s, step_s).hr_bpm


def estimate_hr_many(
    recordings: list[tuple[np.ndarray, np.ndarray | None]],
    fs: float,
    window_s: float = 8.0,
    step_s: float = 2.0,
    sigma_bpm: float = 4.0,
) -> list[HRResult]:
    """Offline heart rate of several recordings at once (a cohort replay).

    Same numbers as :func:`estimate_hr_detailed` with ``method="smooth"`` on
    each ``(ppg, acc)`` pair (to floating-point rounding), but the spectra of
    all recordings go through one FFT call and their trackers through one loop,
    which amortises the per-call overhead over the cohort. Recordings are
    grouped by PPG channel count and ACC presence; all share ``fs``.

    Examples
    --------
    >>> fs = 64.0; t = np.arange(int(40 * fs)) / fs
    >>> recs = [(np.sin(2 * np.pi * f * t), np.zeros((3, t.size))) for f in (1.0, 1.5)]
    >>> [round(float(np.median(r.hr_bpm))) for r in estimate_hr_many(recs, fs)]
    [60, 90]
    """
    grid = make_grid(float(fs), window_s, step_s)
    checked = [check_waveforms(p, a, fs) for p, a in recordings]
    out: list[HRResult | None] = [None] * len(checked)
    groups: dict[tuple[int, bool], list[int]] = {}
    for i, (p, a) in enumerate(checked):
        groups.setdefault((p.shape[0], a is not None), []).append(i)
    tr = HRTracker(grid.freq_bpm, step_s=step_s, sigma_bpm=sigma_bpm)
    nb = grid.freq_bpm.size
    for idx in groups.values():
        # spectra per recording (concatenating the overlapping frames would copy
        # every sample four times); the trackers and read-outs run once for all
        res = []
        for i in idx:
            p, a = checked[i]
            pd = decimate(p, grid.q)
            ad = decimate(a, grid.q) if a is not None else None
            pu, au = _usable_split(pd, ad, grid)
            af = frames(ad, grid.win, grid.step) if ad is not None else None
            res.append(window_evidence(frames(pd, grid.win, grid.step), af, grid, pu, au))
        ms = [r[0].shape[0] for r in res]
        mmax = max(ms)
        E = np.ones((len(idx), mmax, nb))
        for j, m in enumerate(ms):
            E[j, :m] = tr.evidence(res[j][0]) if m else 0.0
        post = tr.smooth_many(E) if mmax else E
        bpm_all, conf_all = posterior_to_bpm(post.reshape(-1, nb), grid.freq_bpm)
        for j, i in enumerate(idx):
            m = ms[j]
            bpm = bpm_all[j * mmax : j * mmax + m]
            conf = conf_all[j * mmax : j * mmax + m]
            o = res[j][1]
            bpm[~o] = np.nan
            conf[~o] = 0.0
            out[i] = HRResult(np.arange(m) * float(step_s), bpm, conf, o, res[j][2])
    return out  # type: ignore[return-value]
