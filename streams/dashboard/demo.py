"""A small simulated replay to look at: simulate a cohort, replay it, return the run folder.

Used by ``prodromal dashboard --demo``, by the report and dashboard tests, and in the docs, so the
views can be seen from a fresh clone with no data and no servers.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["demo_run"]


def demo_run(out: str | Path, participants: int = 8, days: int = 75, seed: int = 11, detector: str = "nightsignal",
             infected_fraction: float = 0.6) -> Path:
    """Simulate ``participants`` x ``days`` (with EHR age/sex), replay with ``detector``; return the run folder.

    Writes ``out/cohort`` and ``out/run``; the same arguments give the same files.
    """
    from streams.registry import make_detector  # noqa: PLC0415 - heavy imports only when used
    from streams.replay import replay  # noqa: PLC0415
    from streams.simulate import simulate_cohort  # noqa: PLC0415

    out = Path(out)
    cohort = simulate_cohort(out / "cohort", participants=participants, days=days, seed=seed,
                             infected_fraction=infected_fraction, name="demo")
    run = out / "run"
    replay(cohort, make_detector(detector, None), run, n_boot=50)
    return run
