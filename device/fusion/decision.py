"""``fuse_decision``: one accept/reject from several matchers' raw scores and a fusion card. Pure, fail closed.

Rules, in order:
1. A score for a matcher the card does not know is a configuration error (``FusionCardError``).
2. A non-finite score (NaN/inf: a broken matcher) rejects, fallback or not.
3. A missing modality (``None`` or absent) rejects unless ``fallback`` is on. With fallback, every *present*
   matcher must pass its own single-matcher threshold from the card (an AND over what is there, so a fallback
   decision is never looser than the strictest present matcher alone); a card without single-matcher thresholds
   cannot fall back and rejects. The decision is marked ``fallback_used`` and its ``audit_note`` says which
   modality was missing, so the audit log records it.
4. Otherwise each score is normalized, fused by the card's rule (and weights), and accepted when the fused score
   is >= the card's threshold for the security level.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

from device.fusion.card import FusionCard, FusionCardError
from device.fusion.rules import combine
from device.matching.decision import SECURITY_KEYS


@dataclass(frozen=True)
class FusionDecision:
    accepted: bool
    score: float  # fused normalized score (NaN when none was computed)
    threshold: float
    security: str
    reason: str
    used: tuple[str, ...] = ()
    missing: tuple[str, ...] = ()
    fallback_used: bool = False
    normalized: Mapping[str, float] = field(default_factory=dict)

    @property
    def audit_note(self) -> str | None:
        """Text for the audit record when the decision was not a full fusion (None for a normal one)."""
        if self.fallback_used:
            return f"fusion fallback: {', '.join(self.missing)} missing; decided on {', '.join(self.used)} alone"
        if self.missing:
            return f"fusion rejected: {', '.join(self.missing)} missing and fallback is off"
        return None


def _security_key(security: str) -> str:
    key = SECURITY_KEYS.get(security)
    if key is None:
        raise FusionCardError(f"security level {security!r} is not one of {', '.join(SECURITY_KEYS)}")
    return key


def fuse_decision(scores: Mapping[str, float | None], card: FusionCard, security: str,
                  fallback: bool) -> FusionDecision:
    """Decide from raw per-matcher scores (``None`` = modality not captured). See the module docstring."""
    key = _security_key(security)
    unknown = sorted(set(scores) - set(card.matcher_names))
    if unknown:
        raise FusionCardError(
            f"scores for [{', '.join(unknown)}] but the fusion card fuses [{', '.join(card.matcher_names)}]"
        )
    present = {n: scores.get(n) for n in card.matcher_names if scores.get(n) is not None}
    missing = tuple(n for n in card.matcher_names if n not in present)
    threshold = float(card.thresholds[key])
    broken = sorted(n for n, v in present.items() if not math.isfinite(float(v)))
    if broken:
        return FusionDecision(False, math.nan, threshold, security,
                              f"non-finite score from {', '.join(broken)}: rejected", tuple(present), missing)
    normalized = {m.name: float(m.normalizer(float(present[m.name]))) for m in card.matchers if m.name in present}
    if missing and not present:
        return FusionDecision(False, math.nan, threshold, security, "no modality captured", (), missing)
    if missing and not fallback:
        return FusionDecision(False, math.nan, threshold, security,
                              f"{', '.join(missing)} missing: fusion needs every modality (fallback is off)",
                              tuple(present), missing, False, normalized)
    if missing:
        specs = [m for m in card.matchers if m.name in present]
        if any(m.thresholds is None for m in specs):
            return FusionDecision(False, math.nan, threshold, security,
                                  "fallback impossible: the fusion card has no single-matcher thresholds",
                                  tuple(present), missing, True, normalized)
        margins = {m.name: normalized[m.name] - float(m.thresholds[key]) for m in specs}
        weakest = min(margins, key=margins.get)
        spec = next(m for m in specs if m.name == weakest)
        ok = all(v >= 0 for v in margins.values())
        verdict = "accepted" if ok else "rejected"
        return FusionDecision(ok, normalized[weakest], float(spec.thresholds[key]), security,
                              f"fallback on {', '.join(present)} ({', '.join(missing)} missing): {verdict}",
                              tuple(present), missing, True, normalized)
    row = np.array([[normalized[n] for n in card.matcher_names]])
    fused = float(combine(row, card.rule, card.weight_vector())[0])
    ok = math.isfinite(fused) and fused >= threshold
    return FusionDecision(ok, fused, threshold, security,
                          f"fused {card.rule} {'>=' if ok else '<'} threshold: {'accepted' if ok else 'rejected'}",
                          card.matcher_names, (), False, normalized)
