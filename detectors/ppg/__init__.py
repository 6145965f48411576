"""Raw PPG and accelerometry: heart rate under motion, beats and HRV, respiration, quality, activity.

Pure numpy/scipy. The public entry points:

* :func:`estimate_hr`, :func:`estimate_hr_detailed`, :func:`estimate_hr_many` - heart rate per window under motion.
* :func:`detect_beats`, :func:`hrv_epochs` - beats, inter-beat intervals, RMSSD/SDNN at rest.
* :func:`estimate_resp` - respiratory rate from PPG (RIIV/RIAV/RIFV fused).
* :func:`window_sqi` - template-correlation signal quality per window.
* :func:`enmo_epochs`, :func:`detect_nonwear`, :func:`rest_windows`, :func:`count_steps` - accelerometry.
* :class:`RawStreamOperator` (in :mod:`detectors.ppg.stream`) - the streaming operator.
"""

from detectors.ppg.hr import HRResult, estimate_hr, estimate_hr_detailed, estimate_hr_many

__all__ = ["HRResult", "estimate_hr", "estimate_hr_detailed", "estimate_hr_many"]
