"""A participant's feature pipeline: samples -> minute epochs -> daily features -> baseline deviations.

:class:`FeaturePipeline` is the one implementation of the feature path; the
in-process replay and the Kafka workers both drive it. It is a plain object
(picklable) so a worker can keep it in a keyed table.

Each closed day yields a :class:`DayRow`: the raw daily features, their
baseline (median, robust SD), deviation and z-score, the per-hour resting-HR
statistics (for CuSum) and the model feature vector (for random forest /
LightGBM / river): for each of :data:`BASE_FEATURES` the z-score of the day and
of the two days before, their mean, and the day's deviation in native units,
plus data capture. Only days ``<= d`` enter the row of day ``d``.
"""

from __future__ import annotations

import datetime as dt
from collections import deque
from dataclasses import dataclass, field

import numpy as np

from detectors import FEATURE_PIPELINE_VERSION
from detectors.baseline import RobustBaseline
from detectors.daily import DAILY_FEATURES, DailyFeatureBuilder, DayFeatures
from detectors.epochs import EpochAccumulator, Epochs
from detectors.records import STREAMS

__all__ = [
    "BASE_FEATURES",
    "MODEL_FEATURES",
    "DayRow",
    "FeaturePipeline",
    "PipelineParams",
    "day_to_date",
    "FEATURE_COLUMNS",
]

BASE_FEATURES = (
    "rhr_ns_bpm", "rhr_rest_bpm", "rhr_sleep_bpm", "hr_mean_bpm",
    "hrv_rmssd_ms", "resp_rpm", "temp_c", "steps", "active_min", "sleep_min",
)  # fmt: skip
_LAGS = 2
MODEL_FEATURES = tuple(
    [f"{f}_{s}" for f in BASE_FEATURES for s in ("z", "z_lag1", "z_lag2", "z_mean3", "dev")]
    + ["hr_capture", "night_capture"]
)

#: Output columns of a day (tables, InfluxDB ``daily`` fields): raw features, then per base
#: feature its baseline median, robust SD, deviation and z-score.
FEATURE_COLUMNS = tuple(
    list(DAILY_FEATURES) + [f"{f}_{s}" for f in BASE_FEATURES for s in ("base", "spread", "dev", "z")]
)


def day_to_date(day: int) -> dt.date:
    return dt.date(1970, 1, 1) + dt.timedelta(days=int(day))


@dataclass(frozen=True)
class PipelineParams:
    """Feature-pipeline parameters; recorded in every model artifact and run."""

    lateness_s: float = 900.0
    baseline_window_days: int = 28
    baseline_min_days: int = 7
    guard_bpm: float = 4.0
    rebaseline_days: int = 14

    def as_dict(self) -> dict:
        return {"version": FEATURE_PIPELINE_VERSION, **self.__dict__}


@dataclass
class DayRow:
    participant_id: str
    day: int
    day_start: float
    values: dict[str, float]
    base: np.ndarray
    spread: np.ndarray
    dev: np.ndarray
    z: np.ndarray
    rest_hourly: np.ndarray
    x: np.ndarray
    guarded: bool = False

    @property
    def date(self) -> dt.date:
        return day_to_date(self.day)

    def feature_vector(self) -> np.ndarray:
        """Values in :data:`FEATURE_COLUMNS` order (NaN where missing)."""
        raw = np.array([self.values.get(f, np.nan) for f in DAILY_FEATURES], dtype=float)
        terms = np.column_stack([self.base, self.spread, self.dev, self.z]).ravel()
        return np.concatenate([raw, terms])

    def feature_dict(self) -> dict[str, float]:
        """Flat dict of raw features and their baseline terms (for tables and InfluxDB)."""
        return dict(zip(FEATURE_COLUMNS, self.feature_vector().tolist(), strict=True))


@dataclass
class FeaturePipeline:
    """Per-participant feature operator.

    Examples
    --------
    >>> fp = FeaturePipeline("P1")
    >>> t = np.arange(0, 3 * 86400, 60.0)
    >>> rows = fp.update("hr", t, np.full(t.size, 60.0)) + fp.flush()
    >>> [r.values["rhr_ns_bpm"] for r in rows]
    [60.0, 60.0, 60.0]
    """

    participant_id: str
    utc_offset_s: int = 0
    params: PipelineParams = field(default_factory=PipelineParams)

    def __post_init__(self) -> None:
        p = self.params
        self.epochs = EpochAccumulator(lateness_s=p.lateness_s)
        self.daily = DailyFeatureBuilder(utc_offset_s=self.utc_offset_s)
        self.baseline = RobustBaseline(
            BASE_FEATURES, p.baseline_window_days, p.baseline_min_days, p.guard_bpm, p.rebaseline_days
        )
        self._zhist: deque[np.ndarray] = deque(maxlen=_LAGS)

    def update(self, kind: str, time: np.ndarray, values: np.ndarray) -> list[DayRow]:
        """Feed samples of one stream kind; return the days this closes."""
        if kind not in STREAMS:
            raise ValueError(f"participant {self.participant_id}: unknown stream kind {kind!r}; valid: {', '.join(STREAMS)}")
        return self._rows(self.epochs.update(kind, time, values))

    def update_many(self, items) -> list[DayRow]:
        """Feed samples of several kinds ((kind, time, values) triples) as one block."""
        items = list(items)
        for kind, _, _ in items:
            if kind not in STREAMS:
                raise ValueError(f"participant {self.participant_id}: unknown stream kind {kind!r}; valid: {', '.join(STREAMS)}")
        return self._rows(self.epochs.update_many(items))

    def update_epochs(self, epochs: Epochs) -> list[DayRow]:
        return self._rows(epochs)

    def advance(self, until: float) -> list[DayRow]:
        """Close everything up to event time ``until`` (a participant's data stopped arriving)."""
        return self._rows(self.epochs.advance(until))

    def flush(self) -> list[DayRow]:
        """End of recording: close all open minutes and the last partial day."""
        rows = self._rows(self.epochs.flush())
        return rows + [self._row(d) for d in self.daily.flush()]

    def _rows(self, ep: Epochs) -> list[DayRow]:
        if len(ep) == 0:
            return []
        return [self._row(d) for d in self.daily.update(ep)]

    def _row(self, d: DayFeatures) -> DayRow:
        x = np.array([d.values.get(f, np.nan) for f in BASE_FEATURES], dtype=float)
        med, sd, dev, z = self.baseline.deviation(x)
        guarded = self.baseline.is_guarded(dev)
        self.baseline.learn_one(d.values, guarded=guarded)
        lags = list(self._zhist)[::-1]  # most recent first
        z1 = lags[0] if len(lags) > 0 else np.full_like(z, np.nan)
        z2 = lags[1] if len(lags) > 1 else np.full_like(z, np.nan)
        stack = np.vstack([z, z1, z2])
        with np.errstate(all="ignore"):
            cnt = np.isfinite(stack).sum(axis=0)
            zmean = np.where(cnt > 0, np.nansum(stack, axis=0) / np.maximum(cnt, 1), np.nan)
        self._zhist.append(z)
        xv = np.column_stack([z, z1, z2, zmean, dev]).ravel()
        xv = np.concatenate([xv, [d.values["hr_capture"], d.values["night_capture"]]])
        return DayRow(
            self.participant_id, d.day, d.day_start, d.values, med, sd, dev, z, d.rest_hourly, xv, guarded
        )


assert len(MODEL_FEATURES) == len(BASE_FEATURES) * 5 + 2
assert set(BASE_FEATURES) <= set(DAILY_FEATURES)
