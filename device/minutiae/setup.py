"""Choosing the minutiae check from the configuration: ``matching.minutiae`` = auto | biolock | nbis | off.

``auto`` (the default) uses the backend the fusion card was fitted on (``matching.minutiae_card``, default
``<model card>_minutiae.json`` beside the model card). The shipped ``models/fingerprint_minutiae.json`` is fitted on
biolock's own matcher (``device.fingerprint``, numpy + OpenCV only) with the embedding's weight 0: the minutiae
decide alone, the embedding orders and shortlists. NBIS is optional (``minutiae = "nbis"`` with a card fitted on
it). Naming a backend makes every such problem an error at start: the operator asked for it.
"""

from __future__ import annotations

import logging
from pathlib import Path

from device.config import Config
from device.errors import BiolockError
from device.inference import Embedder
from device.minutiae.base import MinutiaeError, available
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
    from device.small_sensor import is_small_sensor

    if is_small_sensor(config):  # issue 18: R503 or minutiae = partial: the partial matcher decides alone
        return None, "small-sensor mode: the partial matcher decides alone (device.small_sensor)"
    if config.device.modality == "vein":  # issue 19: the vein line matcher, through the same fused check
        from device.vein.setup import resolve_vein

        return resolve_vein(config, model_card, model_id)
    if config.device.modality != "fingerprint":
        return None, f"minutiae serve fingerprints, not {config.device.modality}"
    card_path = Path(config.matching.minutiae_card or default_card_path(model_card))
    if mode != "auto":
        return load_minutiae_check(mode, card_path, model_id), None
    if not card_path.is_file():  # no minutiae card for this model: the embedding alone is the decision
        return None, f"no minutiae card at {card_path}"
    try:  # issue 16: the card makes the fused decision the configured one; failing to build it fails closed
        return load_minutiae_check(_backend_of(card_path), card_path, model_id), None
    except BiolockError as exc:
        if config.matching.minutiae_fallback:
            log.warning("FALLBACK: the minutiae decision (%s) cannot be built (%s); deciding on the embedding alone "
                        "at its own thresholds because matching.minutiae_fallback = true", card_path, exc)
            return None, f"fallback to the embedding alone (matching.minutiae_fallback = true): {exc}"
        raise MinutiaeError(
            f"the configured fingerprint decision fuses minutiae ({card_path}) but it cannot be built: {exc}. Fix: "
            "install the backend (pip install 'biolock[minutiae]'), or choose explicitly: matching.minutiae = "
            "\"off\" (embedding alone) or matching.minutiae_fallback = true (embedding alone when minutiae fail)"
        ) from exc


def _backend_of(card_path: Path) -> str:
    """The registered backend whose template id the card's ``minutiae`` matcher was fitted on."""
    from device.fusion import load_fusion_card
    from device.minutiae.base import BACKENDS, open_matcher

    wanted = {s.name: s.model for s in load_fusion_card(card_path).matchers}.get("minutiae")
    reasons = []
    for kind in sorted(BACKENDS):
        problem = available(kind)
        if problem is None and open_matcher(kind).template_id == wanted:
            return kind
        reasons.append(f"{kind}: {problem or 'produces other templates'}")
    raise MinutiaeError(f"the card was fitted on {wanted} and no usable backend produces it ({'; '.join(reasons)})")
