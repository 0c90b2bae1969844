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
    check, why = resolve(config, embedder.card.path, embedder.model_id)
    if check is None and why:
        log.debug("minutiae off: %s", why)
    elif check is not None:
        log.debug("minutiae on: %s fused with %s (%s)", check.matcher.template_id, embedder.model_id, check.card_path)
    return check


def resolve(config: Config, model_card: Path, model_id: str) -> tuple[MinutiaeCheck | None, str | None]:
    """(the check, None) or (None, why the embedding decides alone); errors when a named backend cannot run."""
    mode = config.matching.minutiae
    if mode == "off":
        return None, "matching.minutiae = off"
    if config.device.modality != "fingerprint":
        return None, f"minutiae serve fingerprints, not {config.device.modality}"
    card_path = Path(config.matching.minutiae_card or default_card_path(model_card))
    if mode != "auto":
        return load_minutiae_check(mode, card_path, model_id), None
    problem = available("nbis") or (None if card_path.is_file() else f"no minutiae card at {card_path}")
    if problem:
        return None, problem
    try:
        return load_minutiae_check("nbis", card_path, model_id), None
    except BiolockError as exc:
        return None, str(exc)
