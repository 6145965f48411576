"""Buffers and counters of the streaming operator (:mod:`detectors.ppg.stream`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

__all__ = ["Segment", "StreamStats"]


@dataclass
class StreamStats:
    chunks: int = 0
    dropped_overlap: int = 0
    segments: dict = field(default_factory=lambda: {"ppg": 0, "acc": 0})
    hr_windows: int = 0
    hr_no_acc: int = 0
    hr_gated: int = 0
    beat_blocks: int = 0


class Segment:
    """A contiguous run of samples of one kind with a sliding buffer."""

    def __init__(self, t0: float, fs: float, channels: int):
        self.t0 = t0
        self.fs = fs
        self.channels = channels
        self.buf = np.zeros((channels, 0))
        self.base = 0  # segment index of buf[:, 0]
        self.n = 0  # samples received

    @property
    def end_t(self) -> float:
        return self.t0 + self.n / self.fs

    def append(self, v: np.ndarray) -> None:
        self.buf = np.concatenate([self.buf, v], axis=1) if self.buf.size else v.copy()
        self.n += v.shape[1]

    def get(self, i0: int, i1: int) -> np.ndarray:
        return self.buf[:, i0 - self.base : i1 - self.base]

    def trim(self, keep_from: int) -> None:
        k = min(max(0, keep_from - self.base), self.buf.shape[1])
        if k:
            self.buf = self.buf[:, k:]
            self.base += k
