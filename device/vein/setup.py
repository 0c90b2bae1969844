"""Vein mode's second matcher from the configuration: the vein model fused with the line matcher.

``matching.minutiae`` = ``auto`` (the default) fuses when a line card fitted for the configured vein model is
found (``matching.minutiae_card``, default ``<model card>_lines.json`` beside the model card, which the shipped
``models/vein_lines.json`` is); ``off`` lets the model decide alone. A card that is there but cannot be used
(fitted on another model or template version) stops the start unless ``matching.minutiae_fallback = true``: the
configured decision is the fused one, and silently deciding on something weaker is not failing closed.
"""

from __future__ import annotations

import logging
from pathlib import Path

from device.config import Config
from device.errors import BiolockError
from device.minutiae.base import MinutiaeError
from device.minutiae.check import MinutiaeCheck, load_minutiae_check
from device.vein.backend import KIND

log = logging.getLogger("biolock.vein")
NAMES = ("vein", "vein-lines")  # the card's matcher names: the vein model's cosine, the line score
STORE_MODALITY = "vein-lines"  # the store's modality name for line templates


def default_card_path(model_card: Path) -> Path:
    return Path(model_card).with_name(f"{Path(model_card).stem}_lines.json")


def load_vein_check(card_path: Path, model_id: str) -> MinutiaeCheck:
    """The line matcher and its fusion card (fitted on this model and this template version)."""
    return load_minutiae_check(KIND, card_path, model_id, NAMES, STORE_MODALITY, builder="vein-card")


def resolve_vein(config: Config, model_card: Path, model_id: str) -> tuple[MinutiaeCheck | None, str | None]:
    """(the check, None) or (None, why the vein model decides alone)."""
    mode = config.matching.minutiae
    if mode == "off":
        return None, "matching.minutiae = off"
    if mode != "auto":
        raise MinutiaeError(f"matching.minutiae = {mode!r} names a fingerprint backend; vein mode takes auto or off")
    card_path = Path(config.matching.minutiae_card or default_card_path(model_card))
    if not card_path.is_file():
        return None, f"no vein line card at {card_path}"
    try:
        return load_vein_check(card_path, model_id), None
    except BiolockError as exc:
        if config.matching.minutiae_fallback:
            log.warning("FALLBACK: the vein line decision (%s) cannot be built (%s); deciding on the vein model "
                        "alone because matching.minutiae_fallback = true", card_path, exc)
            return None, f"fallback to the vein model alone: {exc}"
        raise MinutiaeError(f"the configured vein decision fuses the line matcher ({card_path}) but it cannot be "
                            f"built: {exc}. Fix: rebuild it with biolock train vein-card, or set matching.minutiae "
                            "= \"off\" (the vein model alone)") from exc
