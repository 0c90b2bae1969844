"""Choosing the minutiae check from the configuration: ``matching.minutiae`` = auto | nbis | off.

``auto`` (the default) uses NBIS when nbis-py imports and a fusion card fitted for the configured model is found
(``matching.minutiae_card``, default ``<model card>_minutiae.json`` beside the model card, which the shipped
``models/fingerprint_minutiae.json`` is); otherwise the embedding decides alone and the log says why. Naming a
backend makes every such problem an error at start: the operator asked for it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from device.config import Config
from device.errors import BiolockError
from device.inference import Embedder
from device.minutiae.base import available
from device.minutiae.check import MinutiaeCheck, load_minutiae_check

log = logging.getLogger("biolock.minutiae")


def default_card_path(model_card: Path) -> Path:
    return Path(model_card).with_name(f"{Path(model_card).stem}_minutiae.json")


def minutiae_from_config(config: Config, embedder: Embedder) -> MinutiaeCheck | None:
    """The configured minutiae check, or None (off, not fingerprints, or ``auto`` without what it needs)."""
    mode = config.matching.minutiae
    if mode == "off" or config.device.modality != "fingerprint":
        return None
    card_path = config.matching.minutiae_card or default_card_path(embedder.card.path)
    kind = "nbis" if mode == "auto" else mode
    if mode == "auto":
        problem = available(kind) or (None if Path(card_path).is_file() else f"no minutiae card at {card_path}")
        if problem:
            log.info("minutiae off: %s", problem)
            return None
        try:
            return load_minutiae_check(kind, Path(card_path), embedder.model_id)
        except BiolockError as exc:
            log.warning("minutiae off: %s", exc)
            return None
    return load_minutiae_check(kind, Path(card_path), embedder.model_id)
