"""Synthetic biometric data: fingerprints (SFinGe-style) and NIR finger veins, for training and calibration.

``generate_dataset`` writes PNGs and a manifest.csv the loaders read; ``training.synth.fingerprint.render_impression``
and ``training.synth.vein.render_impression`` render single images in memory. Only numpy and OpenCV are used.
Names are resolved lazily so that ``biolock --help`` (which imports the click commands) does not load OpenCV.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PROFILES", "generate_dataset", "get_profile"]


def __getattr__(name: str) -> Any:
    if name == "generate_dataset":
        from training.synth.dataset import generate_dataset

        return generate_dataset
    if name in ("PROFILES", "get_profile"):
        from training.synth import profiles

        return getattr(profiles, name)
    raise AttributeError(name)
