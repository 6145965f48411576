"""Shared test helpers: a small deterministic minute-level generator, tiny cohorts, the data path.

The generator is deliberately simple (so tests can state exact answers): per
minute one HR sample (5 s into the minute) and one steps sample (at the minute
start). Nights (23:00-06:59 local) are still with HR = ``rhr`` (+ optional
noise); waking hours have 20-minute walking bouts with HR rising with steps.
"""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import numpy as np
import pytest

DAY = 86400
#: 2024-01-01 as a day number since 1970-01-01
START_DAY = 19723
START_DATE = dt.date(2024, 1, 1)


def day_number(d: dt.date) -> int:
    return (d - dt.date(1970, 1, 1)).days


def minute_streams(
    days: int,
    seed: int = 0,
    rhr: float = 60.0,
    noise_bpm: float = 1.0,
    start_day: int = START_DAY,
    elevation: dict[int, float] | None = None,
    gap_days: tuple[int, ...] = (),
    utc_offset_s: int = 0,
    steps_scale: dict[int, float] | None = None,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Minute HR and steps for ``days`` local days starting at ``start_day``.

    ``elevation`` maps a day index (0-based) to bpm added to that day's HR (night
    and day). ``gap_days`` have no samples at all. Deterministic by ``seed``.
    """
    rng = np.random.default_rng(seed)
    elevation = elevation or {}
    steps_scale = steps_scale or {}
    n = days * 1440
    minute = np.arange(n)
    dayi = minute // 1440
    mod = minute % 1440
    night = (mod < 7 * 60) | (mod >= 23 * 60)
    # daytime walking bouts: minutes 10-29 of most waking hours (bouts longer than the
    # sleep detector's 15-minute gap closing, so the main sleep window is 23:00-07:00)
    hour_walks = rng.random(days * 24) < 0.8
    walk = (~night) & (mod % 60 >= 10) & (mod % 60 < 30) & hour_walks[minute // 60]
    steps = np.where(walk, rng.integers(20, 120, n), 0).astype(float)
    scale = np.array([steps_scale.get(int(d), 1.0) for d in range(days)])[dayi]
    steps = np.round(steps * scale)
    elev = np.array([elevation.get(int(d), 0.0) for d in range(days)])[dayi]
    hr = np.where(night, rhr, rhr + 12.0) + 0.25 * steps + elev + rng.normal(0.0, noise_bpm, n)
    hr = np.round(hr, 1)
    keep = ~np.isin(dayi, np.asarray(gap_days, dtype=int))
    t_min = (start_day * 1440 + minute) * 60.0 - utc_offset_s
    return {
        "hr": (t_min[keep] + 5.0, hr[keep]),
        "steps": (t_min[keep], steps[keep]),
    }


def blocks_of(streams: dict[str, tuple[np.ndarray, np.ndarray]], edges: np.ndarray) -> list[list[tuple]]:
    """Cut streams into blocks at the given time edges (each block holds every kind)."""
    out = []
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        blk = []
        for kind, (t, v) in streams.items():
            i, j = np.searchsorted(t, [a, b])
            if j > i:
                blk.append((kind, t[i:j], v[i:j]))
        if blk:
            out.append(blk)
    return out


def make_cohort(
    path: Path,
    participants: int = 12,
    days: int = 60,
    seed: int = 0,
    infected_every: int = 2,
    unlabelled_healthy: bool = True,
    elevation_bpm: float = 7.0,
) -> Path:
    """A tiny labelled cohort: every ``infected_every``-th participant has an infection.

    Infected participants: resting HR + ``elevation_bpm`` from onset-3 to onset+5,
    fewer steps from onset to onset+5; onset on day 40 + (i % 6). Healthy ones
    have no labels; the manifest says ``unlabelled_healthy`` so they count as healthy.
    """
    from streams.cohort import CohortWriter, Participant

    w = CohortWriter(path, name=path.name, source="tests.conftest",
                     notes={"unlabelled_healthy": unlabelled_healthy})
    for i in range(participants):
        pid = f"T{i:03d}"
        infected = i % infected_every == 0
        onset_i = 40 + (i % 6)
        elev, sscale = {}, {}
        if infected:
            for k in range(-3, 6):
                elev[onset_i + k] = elevation_bpm
            for k in range(0, 6):
                sscale[onset_i + k] = 0.4
        rhr = 55.0 + (i % 7) * 2.0
        s = minute_streams(days, seed=seed * 1000 + i, rhr=rhr, elevation=elev, steps_scale=sscale,
                           gap_days=(25,) if i % 5 == 1 else ())
        onset = START_DATE + dt.timedelta(days=onset_i) if infected else None
        ehr = {"age": 25 + 5 * i, "sex": "F" if i % 2 else "M"}
        w.add_participant(Participant(pid, 0, onset, None, ehr), streams=s)
    w.close()
    return path


@pytest.fixture(scope="session")
def small_cohort(tmp_path_factory) -> Path:
    """12 participants x 60 days, 6 infected (labelled), healthy unlabelled but declared healthy."""
    return make_cohort(tmp_path_factory.mktemp("cohorts") / "tiny")


@pytest.fixture(scope="session")
def lgbm_artifact(tmp_path_factory, small_cohort) -> Path:
    """A LightGBM artifact trained on ``small_cohort`` (3-fold grouped CV)."""
    from streams.train import train

    out = tmp_path_factory.mktemp("models") / "lgbm"
    train(small_cohort, "lightgbm", out, folds=3, seed=0, threads=1)
    return out


@pytest.fixture(scope="session")
def forest_artifact(tmp_path_factory, small_cohort) -> Path:
    from streams.train import train

    out = tmp_path_factory.mktemp("models") / "forest"
    train(small_cohort, "forest", out, folds=3, seed=0, threads=1)
    return out


def data_root() -> Path:
    env = os.environ.get("PRODROMAL_DATA")
    return Path(env) if env else (Path(__file__).parents[1] / ".." / "shared" / "data").resolve()


@pytest.fixture
def data_dir() -> Path:
    root = data_root()
    if not root.is_dir():
        pytest.skip(f"shared data folder {root} is absent (set PRODROMAL_DATA to run data tests)")
    return root


@pytest.fixture(scope="session")
def gen():
    """The helpers above, as a fixture (tests/ is not a package, so tests do not import conftest)."""
    import types

    return types.SimpleNamespace(
        minute_streams=minute_streams, blocks_of=blocks_of, make_cohort=make_cohort,
        START_DAY=START_DAY, START_DATE=START_DATE, DAY=DAY, day_number=day_number,
    )
