"""Online detector with river: online personal baselines and a global learner fed late labels.

Per participant, river's exponentially weighted mean and variance
(``river.stats.EWMean`` / ``EWVar``) follow each base feature on days the
baseline guard accepts, giving an online personal z-score beside the
pipeline's rolling-median one. A global ``river.linear_model.LogisticRegression``
(behind a ``StandardScaler``) scores each day from both sets of z-scores and
learns from a day only once its label is revealed, ``label_delay_days`` later
(a symptom onset is only known after it happens; a healthy day is only known
once the following weeks stayed healthy). Until the learner has seen
``min_positive`` positive days it scores with a fixed prior: a logistic of the
mean resting-HR z-score.

Rows must arrive in date order across participants (``needs_date_order``) so
no participant's score uses another participant's future; the replay driver
does this, and so does a worker (calendar time).
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from detectors.base import Detector, Score, reasons_from_row
from detectors.evaluation import EXCLUDE, ILLNESS
from detectors.pipeline import BASE_FEATURES, DayRow

__all__ = ["OnlineDetector"]

_HR = [BASE_FEATURES.index(f) for f in ("rhr_ns_bpm", "rhr_rest_bpm", "rhr_sleep_bpm")]


@dataclass
class OnlineState:
    means: list = field(default_factory=list)
    vars: list = field(default_factory=list)
    n: int = 0


def _sigmoid(x: float) -> float:
    return 1.0 / (1.0 + math.exp(-x))


class OnlineDetector(Detector):
    """River online detector (global learner, delayed labels)."""

    name = "online"
    needs_date_order = True

    def __init__(self, label_delay_days: int = 28, fading: float = 0.1, min_positive: int = 30,
                 thresholds: tuple[float, float] = (0.6, 0.85), warmup_days: int = 7, seed: int = 0,
                 max_pending: int = 500_000):
        from river import linear_model, optim, preprocessing

        self.label_delay_days = label_delay_days
        self.fading = fading
        self.min_positive = min_positive
        self.thresholds = thresholds
        self.warmup_days = warmup_days
        self.model = preprocessing.StandardScaler() | linear_model.LogisticRegression(optimizer=optim.SGD(0.02), l2=1e-4)
        # (reveal_day, participant, day, x) awaiting their label; bounded so a worker that never
        # receives labels cannot grow without limit (the oldest unlabelled days are dropped)
        self._queue: deque = deque(maxlen=max_pending)
        self._labels: dict[str, int | None] = {}
        self.n_learned = 0
        self.n_pos = 0

    def set_labels(self, reference_days: dict[str, int | None], unlabelled_healthy: bool = False) -> None:
        """Reference days (onset or diagnosis) used to label days once revealed.

        A participant without a reference day teaches "healthy" only when the
        cohort says unlabelled participants are healthy; otherwise it teaches nothing.
        """
        self._labels = dict(reference_days)
        self._unlabelled_healthy = unlabelled_healthy

    def new_state(self, participant_id: str) -> OnlineState:
        from river import stats

        return OnlineState([stats.EWMean(self.fading) for _ in BASE_FEATURES], [stats.EWVar(self.fading) for _ in BASE_FEATURES])

    def _x(self, st: OnlineState, row: DayRow) -> dict[str, float]:
        x: dict[str, float] = {}
        for i, f in enumerate(BASE_FEATURES):
            v = row.values.get(f, np.nan)
            z_rb = row.z[i]
            x[f"{f}_z"] = float(z_rb) if np.isfinite(z_rb) else 0.0
            if st.n >= self.warmup_days and np.isfinite(v):
                sd = math.sqrt(max(st.vars[i].get(), 1e-6))
                x[f"{f}_ewz"] = float(np.clip((v - st.means[i].get()) / sd, -8, 8))
            else:
                x[f"{f}_ewz"] = 0.0
        x["hr_capture"] = float(row.values.get("hr_capture", 0.0))
        return x

    def score_one(self, st: OnlineState, row: DayRow) -> Score:
        x = self._x(st, row)
        if self.n_pos >= self.min_positive:
            p = float(self.model.predict_proba_one(x).get(True, 0.0))
        else:
            hz = [row.z[i] for i in _HR if np.isfinite(row.z[i])]
            p = _sigmoid(2.0 * (float(np.mean(hz)) - 2.0)) if hz else float("nan")
        # online personal baseline: learn the day unless the guard flagged it
        if not row.guarded:
            for i, f in enumerate(BASE_FEATURES):
                v = row.values.get(f, np.nan)
                if np.isfinite(v):
                    st.means[i].update(v)
                    st.vars[i].update(v)
            st.n += 1
        self._queue.append((row.day + self.label_delay_days, row.participant_id, row.day, x))
        return Score(p, None, reasons_from_row(row) if np.isfinite(p) and p >= self.thresholds[0] else [])

    def end_of_day(self, day: int) -> None:
        """Learn from every queued day whose label is revealed by ``day``."""
        while self._queue and self._queue[0][0] <= day:
            _, pid, d, x = self._queue.popleft()
            ref = self._labels.get(pid)
            if ref is None:
                if not getattr(self, "_unlabelled_healthy", False):
                    continue
                y = False
            else:
                rel = d - ref
                if ILLNESS[0] <= rel <= ILLNESS[1]:
                    y = True
                elif rel < EXCLUDE[0] or rel > EXCLUDE[1]:
                    y = False
                else:
                    continue
            self.model.learn_one(x, y)
            self.n_learned += 1
            self.n_pos += int(y)

    def describe(self) -> dict:
        return {"detector": self.name, "thresholds": list(self.thresholds), "label_delay_days": self.label_delay_days,
                "learner": "river StandardScaler | LogisticRegression(SGD 0.02, l2 1e-4)",
                "personal_baseline": f"river EWMean/EWVar fading {self.fading}", "min_positive": self.min_positive}
