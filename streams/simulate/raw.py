"""Raw PPG and ACC for chosen simulated participants, consistent with their minute data.

For each night (00:00-02:00 local by default) when the device was worn, the
minute HR of the participant is the beat profile, the night's RMSSD and breathing
rate set the variability and respiration of :func:`streams.synth_raw.simulate_raw`.
Waveforms are big (one PPG channel + 3 ACC axes, float32: 16 bytes x fs per second,
3.7 MB per 2-hour night at 32 Hz), so they are opt-in per participant.
"""

from __future__ import annotations

import numpy as np

from streams.cohort import Waveform
from streams.simulate.physiology import SimParticipant
from streams.simulate.profile import participant_rng
from streams.simulate.schedule import MIN_PER_DAY

__all__ = ["raw_waveforms"]


def raw_waveforms(
    sp: SimParticipant,
    seed: int,
    hours: tuple[float, float] = (0.0, 2.0),
    fs: float = 32.0,
    every_nights: int = 1,
) -> dict[str, Waveform]:
    """PPG and ACC waveforms of ``sp`` for the ``hours`` window of every ``every_nights``-th night.

    Nights with any non-worn or HR-less minute in the window are skipped (the
    waveform is one contiguous segment per night).
    """
    from streams.synth_raw import simulate_raw

    if not 0.0 <= hours[0] < hours[1] <= 24.0:
        raise ValueError(f"raw hours must satisfy 0 <= start < end <= 24, got {hours}")
    if every_nights < 1:
        raise ValueError(f"every_nights must be >= 1, got {every_nights}")
    days = sp.hr.size // MIN_PER_DAY
    pick = participant_rng(seed, sp.profile.index, 3)
    seeds = pick.integers(0, 2**31 - 1, days)
    t0s: list[float] = []
    lens: list[int] = []
    ppg: list[np.ndarray] = []
    acc: list[np.ndarray] = []
    for d in range(0, days, every_nights):
        a = d * MIN_PER_DAY + int(round(hours[0] * 60))
        b = d * MIN_PER_DAY + int(round(hours[1] * 60))
        hr = sp.hr[a:b].astype(np.float64)
        if not sp.worn[a:b].all() or np.isnan(hr).mean() > 0.1:
            continue
        tm = np.arange(b - a) * 60.0 + 30.0
        ok = np.isfinite(hr)
        hr_fn = (lambda tt, x=tm[ok], y=hr[ok]: np.interp(tt, x, y))  # noqa: E731
        resp = sp.resp[a:b]
        rr = float(np.nanmean(resp)) if np.isfinite(resp).any() else sp.profile.resp_rpm
        rm = float(np.exp(np.mean(sp.log_rmssd[a:b])))
        moving = float(np.nansum(sp.steps[a:b])) > 0
        s = simulate_raw(
            seed=int(seeds[d]), duration_s=(b - a) * 60.0, fs=fs, hr_bpm=hr_fn, rmssd_ms=rm, resp_rpm=rr,
            motion_level=0.05 if moving else 0.0, noise_level=0.05, channels=1,
        )
        t0s.append(sp.t0 + a * 60.0)
        lens.append(s.ppg.shape[1])
        ppg.append(s.ppg.astype(np.float32))
        acc.append(s.acc.astype(np.float32))
    if not lens:
        return {}
    st, sl = np.asarray(t0s, dtype=np.float64), np.asarray(lens, dtype=np.int64)
    return {
        "ppg": Waveform("ppg", float(fs), st, sl, np.concatenate(ppg, axis=1)),
        "acc": Waveform("acc", float(fs), st, sl, np.concatenate(acc, axis=1)),
    }
