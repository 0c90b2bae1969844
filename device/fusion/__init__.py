"""Score-level fusion on the device: normalization, rules, the fusion card and the pure decision function.

The device pipeline's ``fusion`` mode calls ``load_fusion_card(path, expected_matchers)`` once at start (every
problem surfaces there) and ``fuse_decision(scores, card, security, fallback)`` per attempt. Numpy only.
"""

from __future__ import annotations

from device.fusion.card import (
    FORMAT,
    FusionCard,
    FusionCardError,
    MatcherSpec,
    load_fusion_card,
    parse_fusion_card,
    save_fusion_card,
)
from device.fusion.decision import FusionDecision, fuse_decision
from device.fusion.normalization import METHODS, Normalizer, fit_normalizer, hampel_location_scale
from device.fusion.rules import RULES, combine

__all__ = [
    "FORMAT", "METHODS", "RULES", "FusionCard", "FusionCardError", "FusionDecision", "MatcherSpec", "Normalizer",
    "combine", "fit_normalizer", "fuse_decision", "hampel_location_scale", "load_fusion_card", "parse_fusion_card",
    "save_fusion_card",
]
