"""Windowed band-limited spectra of PPG and accelerometer signals.

Every spectral estimate in :mod:`detectors.ppg` works on the same grid: the
signal is decimated by an integer factor ``q`` (block mean of ``q`` samples,
blocks aligned with the window step so a window never straddles a block), cut
into windows of ``window_s`` advanced by ``step_s``, mean-removed and Fourier
transformed with zero padding to a grid of about 3 bpm (estimates are refined
between bins by the posterior mean). Only the bins of the heart-rate band are kept.

Block means are a crude anti-alias filter, but the band of interest
(0.5-4 Hz) sits far below the decimated Nyquist rate (>= 5 Hz) and the
mean's first null is at the decimated rate itself, where the aliases of the
band come from. The pay-off is speed: one pass over the raw samples.

Each window is processed only from its own samples, which is what makes the
streaming operator give the same result for any chunking.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import fft as sp_fft

__all__ = ["SpectralGrid", "make_grid", "decimate", "frames", "band_spectrum", "band_spectrum_many", "band_power"]

#: Lowest decimated rate: keeps 4 Hz (240 bpm) below Nyquist with margin.
MIN_DECIMATED_HZ = 10.0
#: Rows per call that BLAS gemv kernels process without a leftover group (see :func:`decimate`).
_GEMV_GROUP = 16


@dataclass(frozen=True)
class SpectralGrid:
    """Sampling geometry shared by batch and streaming code.

    Attributes
    ----------
    fs : float
        Raw sampling rate (Hz).
    q : int
        Decimation factor; ``fs / q`` is the analysis rate.
    win : int
        Window length in decimated samples.
    step : int
        Window advance in decimated samples.
    nfft : int
        FFT length (zero padded).
    bins : ndarray of int
        FFT bin indexes of the heart-rate band.
    freq_bpm : ndarray
        Frequencies of those bins (beats per minute).
    """

    fs: float
    q: int
    win: int
    step: int
    nfft: int
    bins: np.ndarray
    freq_bpm: np.ndarray

    @property
    def fs_dec(self) -> float:
        return self.fs / self.q

    @property
    def step_raw(self) -> int:
        return self.step * self.q

    @property
    def win_raw(self) -> int:
        return self.win * self.q


@lru_cache(maxsize=64)
def make_grid(
    fs: float,
    window_s: float = 8.0,
    step_s: float = 2.0,
    lo_bpm: float = 40.0,
    hi_bpm: float = 230.0,
    resolution_bpm: float = 3.0,
) -> SpectralGrid:
    """Choose decimation and FFT length for a sampling rate and windowing.

    ``window_s * fs`` and ``step_s * fs`` must be whole numbers of samples and
    the window a whole number of steps (the SP Cup convention: 8 s, 2 s).
    Cached: the returned grid (and its arrays) is shared, do not modify it.
    """
    if not np.isfinite(fs) or fs < 2 * hi_bpm / 60.0 * 1.2:
        raise ValueError(f"fs={fs} Hz is too low for heart rates up to {hi_bpm} bpm")
    step_raw = step_s * fs
    win_raw = window_s * fs
    if abs(step_raw - round(step_raw)) > 1e-6 or abs(win_raw - round(win_raw)) > 1e-6:
        raise ValueError(f"window_s={window_s} and step_s={step_s} must be whole samples at fs={fs} Hz")
    step_raw, win_raw = int(round(step_raw)), int(round(win_raw))
    if step_raw < 1 or win_raw < step_raw or win_raw % step_raw:
        raise ValueError(f"window_s={window_s} must be a positive whole multiple of step_s={step_s}")
    # largest divisor of the raw step that keeps the analysis rate >= MIN_DECIMATED_HZ
    q = 1
    for d in range(1, step_raw + 1):
        if step_raw % d == 0 and fs / d >= MIN_DECIMATED_HZ:
            q = d
    fd = fs / q
    nfft = max(int(np.ceil(fd * 60.0 / resolution_bpm)), win_raw // q)
    freq = np.fft.rfftfreq(nfft, 1.0 / fd) * 60.0
    bins = np.flatnonzero((freq >= lo_bpm) & (freq <= hi_bpm))
    fb = freq[bins]
    bins.flags.writeable = False
    fb.flags.writeable = False
    return SpectralGrid(float(fs), q, win_raw // q, step_raw // q, nfft, bins, fb)


def decimate(x: np.ndarray, q: int) -> np.ndarray:
    """Block mean of ``q`` samples along the last axis (trailing remainder dropped).

    One matrix-vector product over (blocks, q): several times faster than
    strided adds, and each block's mean depends only on its own samples.
    BLAS gemv kernels handle rows in groups (4 on Haswell) and round the
    leftover rows differently, so the last ``rows % 16`` are recomputed in a
    call of 16 rows: a block's mean is then the same bits whether it is
    decimated with the whole recording or with one window (the streaming
    operator decimates per window).
    """
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1] // q * q
    if q == 1:
        return x[..., :n].copy()
    blocks = np.ascontiguousarray(x[..., :n]).reshape(-1, q)
    v = np.full(q, 1.0 / q)
    rows = blocks.shape[0]
    tail = rows % _GEMV_GROUP
    if rows < _GEMV_GROUP:
        pad = np.zeros((_GEMV_GROUP, q))
        pad[:rows] = blocks
        out = (pad @ v)[:rows]
    else:
        out = blocks @ v
        if tail:
            out[rows - tail :] = (blocks[rows - _GEMV_GROUP :] @ v)[_GEMV_GROUP - tail :]
    return out.reshape(*x.shape[:-1], n // q)


def frames(x: np.ndarray, win: int, step: int) -> np.ndarray:
    """Strided view (..., n_windows, win) of windows advanced by ``step``."""
    n = x.shape[-1]
    if n < win:
        return np.zeros((*x.shape[:-1], 0, win))
    return sliding_window_view(x, win, axis=-1)[..., ::step, :]


def band_spectrum(fr: np.ndarray, grid: SpectralGrid) -> np.ndarray:
    """Complex spectrum of mean-removed windows in the heart-rate band.

    Parameters
    ----------
    fr : ndarray (..., n_windows, win)
        Windows of decimated samples.

    Returns
    -------
    ndarray (..., n_windows, n_bins), complex64
    """
    # float32 halves the FFT time; spectra are normalised before use, so single
    # precision is ample.
    buf = np.zeros((*fr.shape[:-1], grid.nfft), dtype=np.float32)
    np.subtract(fr, fr.mean(axis=-1, keepdims=True), out=buf[..., : fr.shape[-1]], casting="same_kind")
    return sp_fft.rfft(buf, axis=-1)[..., grid.bins[0] : grid.bins[-1] + 1]


@lru_cache(maxsize=16)
def _trend_basis(win: int) -> np.ndarray:
    """Orthonormal basis (win, 3) of constant, linear and quadratic trends."""
    t = np.linspace(-1.0, 1.0, win)
    q, _ = np.linalg.qr(np.stack([np.ones(win), t, t * t], axis=1))
    q.flags.writeable = False
    return q


@lru_cache(maxsize=16)
def _band_dft(win: int, nfft: int, lo: int, hi: int) -> np.ndarray:
    """Detrend-then-DFT matrix (win, 2 (hi - lo + 1)), float32, read-only, cached.

    Column pairs are the real and imaginary parts of bins ``lo..hi`` of the
    zero-padded ``nfft``-point DFT (``rfft`` sign convention), applied after the
    projection that removes a window's quadratic trend: one product per window
    does both, and only the band's bins are computed.
    """
    Q = _trend_basis(win)
    n = np.arange(win)
    ang = 2.0 * np.pi * np.outer(n, np.arange(lo, hi + 1)) / nfft
    F = np.empty((win, 2 * (hi - lo + 1)))
    F[:, 0::2] = np.cos(ang)
    F[:, 1::2] = -np.sin(ang)
    M = (F - Q @ (Q.T @ F)).astype(np.float32)
    M.flags.writeable = False
    return M


def band_spectrum_many(parts: list[np.ndarray], usable: list[np.ndarray], grid: SpectralGrid) -> np.ndarray:
    """Band spectra (channels, m, n_bins) complex64 of several (channels_i, m, win) window sets.

    Each window's quadratic trend (mean, drift, curvature) is removed - baseline
    wander far larger than the pulse would otherwise leak into the lowest bins -
    and its zero-padded DFT taken at the band's bins only. Windows flagged
    unusable (``usable[i]``, (channels_i, m)) are zero.

    Detrending and the DFT are one float32 matrix product per window (the band
    holds about a quarter of the FFT's bins, and the product reads each window
    once), with no zero-padded buffer. Each window's first sample is subtracted
    in float64 first (a constant the detrend removes anyway) so a large ADC
    offset does not cost float32 precision. Every window is computed from its
    own samples only, with the same arithmetic for any number of windows.
    """
    m, win = parts[0].shape[1], parts[0].shape[2]
    C = sum(p.shape[0] for p in parts)
    buf = np.empty((C, m, win), dtype=np.float32)
    c = 0
    for p, ok in zip(parts, usable, strict=True):
        k = p.shape[0]
        x = p if ok.all() else np.where(ok[..., None], p, 0.0)
        np.subtract(x, x[..., :1], out=buf[c : c + k], casting="same_kind")
        c += k
    M = _band_dft(win, grid.nfft, int(grid.bins[0]), int(grid.bins[-1]))
    rows = buf.reshape(C * m, win)
    if C * m == 1:
        # numpy sends a single row to BLAS gemv, whose rounding differs from gemm's;
        # a zero second row keeps one window's spectrum bit-identical to the same
        # window computed in a batch (the streaming operator relies on it)
        rows = np.concatenate([rows, np.zeros_like(rows)])
    return (rows @ M)[: C * m].view(np.complex64).reshape(C, m, M.shape[1] // 2)


def band_power(fr: np.ndarray, grid: SpectralGrid) -> np.ndarray:
    """Power spectrum (float64) of mean-removed windows in the heart-rate band."""
    X = band_spectrum(fr, grid)
    return (X.real * X.real + X.imag * X.imag).astype(np.float64)
