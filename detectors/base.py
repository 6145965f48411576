"""The detector interface shared by rule, model, online and fusion detectors.

A detector turns a participant's closed :class:`~detectors.pipeline.DayRow` into
a :class:`Score`. Per-participant learned state (a rule's baseline, a CuSum
statistic) lives in a state object the detector creates, so one detector
instance serves any number of participants and the state can be kept in a
worker's keyed table. Stateless models also implement ``score_many`` to score
a batch at once (LightGBM is slow one row at a time).

Level codes: 0 = green, 1 = yellow, 2 = red. ``level`` is ``None`` when the
detector only scores and leaves levels to the alert policy's thresholds.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from detectors.pipeline import DayRow

__all__ = ["Score", "Detector", "DETECTORS", "LEVEL_NAMES"]

LEVEL_NAMES = {0: "green", 1: "yellow", 2: "red"}
DETECTORS = ("nightsignal", "cusum", "forest", "lightgbm", "online", "early", "late")


@dataclass
class Score:
    score: float
    level: int | None = None
    reasons: list[str] = field(default_factory=list)
    modalities: tuple[str, ...] = ("wearable",)


class Detector:
    """Base class. Subclasses set ``name`` and implement ``score_one``."""

    name = "base"
    #: thresholds used by the alert policy when ``level`` is None: (yellow, red)
    thresholds: tuple[float, float] = (np.inf, np.inf)
    #: True when rows must be scored in date order across participants (global online learners)
    needs_date_order = False

    def new_state(self, participant_id: str) -> Any:
        return None

    def score_one(self, state: Any, row: DayRow) -> Score:
        raise NotImplementedError

    def score_many(self, states: list[Any], rows: list[DayRow]) -> list[Score]:
        return [self.score_one(s, r) for s, r in zip(states, rows, strict=True)]

    def describe(self) -> dict:
        """Settings to record in a run (for the methods paragraph and reproducibility)."""
        return {"detector": self.name, "thresholds": list(self.thresholds)}


def reasons_from_row(row: DayRow, top: int = 3, min_abs_z: float = 1.5) -> list[str]:
    """The features that moved most against the participant's baseline, in native units."""
    from detectors.pipeline import BASE_FEATURES

    z = np.nan_to_num(row.z, nan=0.0)
    order = np.argsort(-np.abs(z))
    out = []
    for i in order[:top]:
        if abs(z[i]) < min_abs_z:
            break
        f = BASE_FEATURES[i]
        unit = f.rsplit("_", 1)[-1] if "_" in f else ""
        out.append(f"{f} {row.dev[i]:+.1f} {unit} (z {z[i]:+.1f})")
    return out
