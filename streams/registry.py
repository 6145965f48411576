"""Build a detector by name (loading its model artifact when it needs one)."""

from __future__ import annotations

from pathlib import Path

from detectors.base import DETECTORS, Detector
from detectors.pipeline import PipelineParams

__all__ = ["make_detector", "DETECTORS"]


def make_detector(name: str, model: str | Path | None = None, params: PipelineParams | None = None) -> Detector:
    """Return the detector called ``name``; ``model`` is the artifact folder for trained ones.

    Raises ValueError for an unknown name (listing the valid ones) or a missing model.
    """
    if name == "nightsignal":
        from detectors.nightsignal import NightSignal

        return NightSignal()
    if name == "cusum":
        from detectors.cusum import CuSum

        return CuSum()
    if name == "online":
        from detectors.online import OnlineDetector

        return OnlineDetector()
    if name in ("forest", "lightgbm"):
        if model is None:
            raise ValueError(f"detector {name!r} needs --model (an artifact from `prodromal train --model {name}`)")
        from streams.artifacts import load_artifact

        return load_artifact(model, expect_kind=name, params=params)
    if name in ("early", "late"):
        if model is None:
            raise ValueError(f"detector {name!r} needs --model (an artifact from `prodromal train --model {name}`)")
        try:
            from streams.fusion_artifacts import load_fusion_artifact
        except ImportError:
            raise ValueError(f"detector {name!r} is not available in this build") from None
        return load_fusion_artifact(model, expect_kind=name, params=params)
    raise ValueError(f"unknown detector {name!r}; valid: {', '.join(DETECTORS)}")
