"""Accelerometry: ENMO, non-wear, rest and steps on known signals."""

from __future__ import annotations

import numpy as np
import pytest

from detectors.ppg.accel import count_steps, detect_nonwear, enmo, enmo_epochs, rest_windows
from streams.synth_raw import simulate_raw


def test_enmo_known_values():
    a = np.zeros((3, 4))
    a[2] = [1.0, 2.0, 0.5, 1.0]
    a[0, 3] = np.sqrt(3.0)  # |a| = 2 g
    np.testing.assert_allclose(enmo(a), [0.0, 1000.0, 0.0, 1000.0])


def test_enmo_epochs_average_per_minute():
    fs = 10.0
    a = np.zeros((3, int(120 * fs)))
    a[2] = 1.0
    a[2, int(60 * fs) :] = 1.1  # 100 mg in the second minute
    np.testing.assert_allclose(enmo_epochs(a, fs), [0.0, 100.0], atol=1e-9)
    a[:, :5] = np.nan
    assert np.isfinite(enmo_epochs(a, fs)).all()


def test_nonwear_and_rest():
    still = simulate_raw(seed=1, duration_s=600, fs=25.0, motion_level=0.0)
    moving = simulate_raw(seed=1, duration_s=600, fs=25.0, motion_level=0.5)
    assert detect_nonwear(still.acc, 25.0).all()
    assert not detect_nonwear(moving.acc, 25.0).any()
    assert rest_windows(still.acc, 25.0).all()
    assert not rest_windows(moving.acc, 25.0).any()


@pytest.mark.parametrize("cadence", [1.2, 1.8])
def test_step_count_within_ten_percent(cadence):
    fs = 50.0
    t = np.arange(int(120 * fs)) / fs
    a = np.zeros((3, t.size))
    a[2] = 1.0 + 0.4 * np.sin(2 * np.pi * cadence * t)  # vertical bounce, one per step
    a[0] = 0.2 * np.sin(np.pi * cadence * t)  # arm swing at half cadence
    steps = count_steps(a, fs)
    assert steps.shape == (2,)
    assert abs(steps.sum() - 120 * cadence) <= 0.1 * 120 * cadence


def test_no_steps_when_still_and_bad_shape():
    still = simulate_raw(seed=2, duration_s=120, fs=25.0)
    assert count_steps(still.acc, 25.0).sum() == 0
    with pytest.raises(ValueError, match=r"acc: expected \(3, n\)"):
        enmo_epochs(np.zeros((2, 10)), 25.0)
