"""prodromal.detectors: pure decisions (features, baselines, detectors, alert policy, metrics).

Nothing here does I/O or imports :mod:`streams`.
"""

FEATURE_PIPELINE_VERSION = "1"
