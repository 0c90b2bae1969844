"""Shipped default models and their model cards.

``fingerprint.json`` + ``fingerprint_int8.tflite`` and ``vein.json`` + ``vein_int8.tflite`` live beside this file
(written by the training export); the device finds them with no configuration.
"""

from __future__ import annotations

from pathlib import Path

MODELS_DIR = Path(__file__).resolve().parent
_CARDS = {"fingerprint": "fingerprint.json", "vein": "vein.json"}


def default_card(modality: str) -> Path:
    """The shipped model card for ``modality``; ModelError if none is shipped (pass a card explicitly then)."""
    from device.errors import ModelError

    name = _CARDS.get(modality)
    if name is None:
        raise ModelError(f"no shipped model for modality {modality!r} (known: {', '.join(_CARDS)})")
    path = MODELS_DIR / name
    if not path.is_file():
        raise ModelError(
            f"no shipped {modality} model card at {path}; set inference.model in the config "
            "(or pass --model CARD) to a model card from `biolock train export`"
        )
    return path
