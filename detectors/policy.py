"""Alert policy: levels, consecutive-night rules, an alert budget.

Scores become levels here when a detector does not set levels itself: yellow
when the score reaches ``thresholds[0]`` and red at ``thresholds[1]``, held
for ``consecutive`` nights in a row (the current night included). The alert
budget caps how many alert days one participant may get in any 30-day span:
past the budget, yellow days are suppressed and only red ones still alert, so
a noisy participant cannot flood a coordinator's queue.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

import numpy as np

from detectors.base import LEVEL_NAMES, Score

__all__ = ["AlertPolicy", "PolicyState", "Decision"]


@dataclass
class PolicyState:
    run: deque = field(default_factory=lambda: deque(maxlen=8))  # recent raw levels
    last_day: int | None = None
    alert_days: deque = field(default_factory=deque)  # days with an alert (last 30 days)


@dataclass
class Decision:
    day: int
    score: float
    level: int  # after policy
    raw_level: int
    suppressed: bool = False

    @property
    def level_name(self) -> str:
        return LEVEL_NAMES[self.level]


@dataclass
class AlertPolicy:
    thresholds: tuple[float, float] = (np.inf, np.inf)
    consecutive: int = 1
    budget_per_30d: int | None = None

    def new_state(self) -> PolicyState:
        # the run must hold `consecutive` nights, else a long rule could never be met
        return PolicyState(run=deque(maxlen=max(8, self.consecutive)))

    def decide(self, st: PolicyState, day: int, s: Score) -> Decision:
        if st.last_day is not None and day != st.last_day + 1:
            st.run.clear()  # a gap breaks a consecutive-night run
        st.last_day = day
        if s.level is not None:
            raw = int(s.level)
        elif not np.isfinite(s.score):
            raw = 0
        else:
            raw = 2 if s.score >= self.thresholds[1] else 1 if s.score >= self.thresholds[0] else 0
        st.run.append(raw)
        level = raw
        if s.level is None and self.consecutive > 1:
            recent = list(st.run)[-self.consecutive :]
            level = min(recent) if len(recent) == self.consecutive else 0
        while st.alert_days and st.alert_days[0] <= day - 30:
            st.alert_days.popleft()
        suppressed = False
        if level == 1 and self.budget_per_30d is not None and len(st.alert_days) >= self.budget_per_30d:
            level, suppressed = 0, True
        if level > 0:
            st.alert_days.append(day)
        return Decision(day, float(s.score), level, raw, suppressed)

    def describe(self) -> dict:
        return {"thresholds": [float(x) for x in self.thresholds], "consecutive": self.consecutive,
                "budget_per_30d": self.budget_per_30d}
