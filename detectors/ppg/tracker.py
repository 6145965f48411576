"""Heart-rate tracking across windows: a hidden Markov model over frequency bins.

The hidden state is the heart rate on the spectral grid. Between two windows
it moves as a Gaussian random walk (standard deviation ``sigma_bpm`` per 2 s,
scaled with the square root of the step), which is the physiological prior:
heart rate changes by a few bpm per second at most. The evidence of a window
is its motion-suppressed PPG spectrum, normalised to a peak of one and mixed
with a uniform floor (``floor``) so that one window whose peak is an artefact
cannot veto the true rate. Filtering is the forward algorithm; smoothing adds
the backward pass.

Three modes, chosen by ``lag``:

* ``lag=0``: causal (forward filter only).
* ``lag=L > 0``: fixed-lag block smoothing. Windows are released in blocks of
  ``L`` once ``2 L`` are pending, each block smoothed with the ``L`` windows
  that follow it. Release points depend only on the window index, so the
  output is the same for any chunking of the input. Latency: ``L`` to ``2 L``
  windows.
* ``lag=None``: full forward-backward smoothing over the segment (offline).
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

__all__ = ["HRTracker"]


@lru_cache(maxsize=32)
def _transition(freq_bpm: tuple[float, ...], sd_bpm: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Gaussian random walk, cached and read-only.

    Returns the row-stochastic matrix ``A`` (from, to), its transpose, and the
    factors of ``A = diag(inv_rowsum) @ K``: the symmetric kernel ``K`` and
    ``inv_rowsum``. The factored form lets the forward and the backward
    recursions share one product with ``K`` (see :meth:`HRTracker.smooth_many`).
    """
    f = np.asarray(freq_bpm)
    d = (f[:, None] - f[None, :]) / sd_bpm
    k = np.exp(-0.5 * d * d)
    inv = 1.0 / k.sum(axis=1)
    a = k * inv[:, None]
    at = np.ascontiguousarray(a.T)
    for x in (a, at, k, inv):
        x.flags.writeable = False
    return a, at, k, inv


class HRTracker:
    """Forward(-backward) tracker over a fixed frequency grid.

    Parameters
    ----------
    freq_bpm : ndarray
        Grid of candidate heart rates (bpm).
    step_s : float
        Time between windows (s).
    sigma_bpm : float
        Random-walk standard deviation of heart rate per 2 s.
    floor : float
        Weight of the uniform component of each window's evidence.
    lag : int or None
        0 causal, L fixed-lag blocks, None full smoothing (see module doc).
    """

    def __init__(self, freq_bpm: np.ndarray, step_s: float = 2.0, sigma_bpm: float = 4.0, floor: float = 1e-3, lag: int | None = None):
        self.freq_bpm = np.asarray(freq_bpm, dtype=np.float64)
        self.step_s = float(step_s)
        self.sigma_bpm = float(sigma_bpm)
        self.floor = float(floor)
        if lag is not None and lag < 0:
            raise ValueError(f"lag must be None or >= 0, got {lag}")
        self.lag = lag
        self._A, self._AT, self._K, self._inv = _transition(tuple(self.freq_bpm.tolist()), self.sigma_bpm * np.sqrt(self.step_s / 2.0))
        self.reset()

    def reset(self) -> None:
        """Forget the current segment (after a gap)."""
        nb = self.freq_bpm.size
        self._alpha = np.full(nb, 1.0 / nb)
        self._n = 0
        self._E: list[np.ndarray] = []
        self._alphas: list[np.ndarray] = []

    def evidence(self, spec: np.ndarray) -> np.ndarray:
        """Per-window evidence from non-negative spectra (m, n_bins); NaN rows are uninformative."""
        spec = np.asarray(spec, dtype=np.float64)
        mx = spec.max(axis=-1, keepdims=True)
        with np.errstate(invalid="ignore", divide="ignore"):
            e = spec / mx
        bad = ~np.isfinite(e).all(axis=-1) | (mx[..., 0] <= 0)
        e[bad] = 1.0
        return e + self.floor

    def _backward(self, n_out: int) -> np.ndarray:
        """Smoothed posteriors of the first ``n_out`` pending windows."""
        E = np.asarray(self._E)
        alphas = np.asarray(self._alphas)  # filtered
        m = E.shape[0]
        A = self._A
        # backward messages in place, two calls per step; only the released
        # windows' posteriors are formed
        B = np.empty_like(alphas)
        B[m - 1] = 1.0
        tmp = np.empty(self.freq_bpm.size)
        for k in range(m - 2, -1, -1):
            np.multiply(E[k + 1], B[k + 1], out=tmp)
            np.dot(A, tmp, out=B[k])
            if not k & 7:  # rescale now and then: evidence >= floor bounds the decay
                B[k] *= 1.0 / B[k].sum()
        post = alphas[:n_out] * B[:n_out]
        post /= post.sum(axis=1, keepdims=True)
        return post

    def smooth(self, evidence: np.ndarray) -> np.ndarray:
        """Forward-backward posteriors of a whole segment at once (``lag=None`` semantics)."""
        E = np.atleast_2d(np.asarray(evidence, dtype=np.float64))
        return self.smooth_many(E[None])[0]

    def smooth_many(self, evidence: np.ndarray) -> np.ndarray:
        """Forward-backward posteriors of several segments (P, m, n_bins) in one loop.

        Shorter segments are padded at the end with uninformative evidence
        (ones), which leaves their posteriors unchanged: a backward message
        through uninformative windows stays uniform. The backward recursion does
        not depend on the forward one, so both run in the same loop as one
        stacked matrix product per step; with several segments the loop also
        runs once for all of them.
        """
        E = np.ascontiguousarray(evidence, dtype=np.float64)
        P, m, nb = E.shape
        if m == 0:
            return np.zeros((P, 0, nb))
        # With A = diag(w) K (K symmetric, w = 1 / row sums), the forward message
        # alpha_k = (alpha_{k-1} @ A) * E[k] scaled as a_k = alpha_k * w obeys
        # a_k = (a_{k-1} @ K) * (w * E[k]), and gamma_j = E[j] * beta_j (run from
        # the end) obeys gamma_j = (gamma_{j+1} @ A.T) * E[j] = (gamma_{j+1} @ K) * (w * E[j]).
        # Both directions are rows of one (2 P, n_bins) state advanced by one
        # product with K per step (the backward recursion does not depend on the
        # forward one).
        K, w = self._K, self._inv
        E2 = np.concatenate([E, E[:, ::-1]], axis=0).transpose(1, 0, 2) * w  # (m, 2 P, nb)
        R = np.empty((m, 2 * P, nb))
        R[0, :P] = (self._alpha @ self._A) * E[:, 0] * w
        R[0, P:] = E[:, m - 1]
        # Rescale every 32 steps: a step scales a row's mass by at least
        # floor * min(w) * min(row sum of K) (about 5e-4) and at most about 2, so
        # 32 steps stay within 1e-106..4e9 of float64. Row views are made once:
        # at a few microseconds per step, even view creation shows.
        rows, ev = list(R), list(E2)
        for k in range(1, m):
            r = rows[k]
            np.dot(rows[k - 1], K, out=r)
            np.multiply(r, ev[k], out=r)
            if not k & 31:
                r /= r.max(axis=-1, keepdims=True)
        post = R[:, :P].transpose(1, 0, 2).copy()  # a_k = alpha_k * w
        # posterior_k = alpha_k * beta_k, beta_k = A @ gamma_{k+1} = w * (gamma_{k+1} @ K)
        post[:, :-1] *= R[-2::-1, P:].transpose(1, 0, 2) @ K
        post[:, -1] /= w
        post /= post.sum(axis=-1, keepdims=True)
        self.reset()
        return post

    def update(self, evidence: np.ndarray) -> np.ndarray:
        """Add windows' evidence (m, n_bins); return posteriors of windows released now."""
        out: list[np.ndarray] = []
        a = self._alpha
        AT = self._AT
        for e in np.atleast_2d(evidence):
            a = (AT @ a) * e
            self._n += 1
            if not self._n & 7:  # rescale now and then: evidence >= floor bounds the decay
                a *= 1.0 / a.sum()
            if self.lag == 0:
                out.append(a[None, :])
                continue
            self._E.append(e)
            self._alphas.append(a)
            if self.lag is not None and len(self._E) >= 2 * self.lag:
                out.append(self._backward(self.lag))
                del self._E[: self.lag], self._alphas[: self.lag]
        self._alpha = a
        if not out:
            return np.zeros((0, self.freq_bpm.size))
        post = np.concatenate(out, axis=0)
        post /= post.sum(axis=1, keepdims=True)
        return post

    def flush(self) -> np.ndarray:
        """Release every pending window (end of segment) and reset."""
        post = self._backward(len(self._E)) if self._E else np.zeros((0, self.freq_bpm.size))
        self.reset()
        return post

    @property
    def pending(self) -> int:
        return len(self._E)
