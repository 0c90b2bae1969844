"""Quality: per minutia (how much to trust it) and per image (will this capture match?), with a reason.

Why these inputs: failures to match come from too little finger (small foreground), unreadable ridges (incoherent
orientation: smudges, dry or wet skin, scars) and too few minutiae to pair. They are the features NFIQ 2 leans on
most (orientation certainty, foreground area, minutiae count and quality), reduced to what the extractor already
computed, so the score costs nothing. ``score`` is in [0, 1]; ``reason`` names the weakest factor when the score is
below ``ACCEPT``, for the enrolment and quality-gate messages.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from device.fingerprint import params

ACCEPT = 0.35  # below this a capture is likely to fail to match: ask for another
AREA_GOOD_PX = 25000  # px at 500 dpi: about 1 cm x 1 cm of ridges; smaller captures lose matches
MINUTIAE_GOOD = 24  # summed minutia quality of half this saturates the factor
COHERENCE_FLOOR, COHERENCE_SPAN = 0.3, 0.4  # mean coherence 0.3 -> 0, 0.7 -> 1 (FVC: 5th pct. 0.43, median 0.69)


@dataclass(frozen=True)
class ImageQuality:
    score: float  # [0, 1], higher is better
    reason: str | None  # None when score >= ACCEPT, else "small_area", "unclear_ridges" or "few_minutiae"
    area_px: int  # foreground pixels at the working resolution
    coherence: float  # mean orientation coherence over the foreground
    minutiae: int
    kept_share: float = 1.0  # share of the skeleton's minutia candidates that survived cleaning (low: noisy ridges)


def minutia_quality(coherence: np.ndarray, border_dist: np.ndarray, period: float) -> np.ndarray:
    """Per-minutia quality in [0, 1]: orientation coherence there, lowered near the foreground edge."""
    edge = np.clip(border_dist / (3.0 * params.BORDER_DIST * period), 0.0, 1.0)
    return np.clip(coherence, 0.0, 1.0) * (0.5 + 0.5 * edge)


def image_quality(area_px: int, coherence: float, minutiae: int, minutia_q: np.ndarray,
                  candidates: int = 0) -> ImageQuality:
    """Mean orientation coherence, the best single predictor of a capture's genuine scores on the FVC sets
    (Spearman 0.33 with its mean genuine MCC score over 480 images; area and minutiae count predict nothing there
    once a capture is big enough), gated by enough area and enough minutiae."""
    factors = {
        "unclear_ridges": float(np.clip((coherence - COHERENCE_FLOOR) / COHERENCE_SPAN, 0.0, 1.0)),
        "small_area": min(1.0, area_px / AREA_GOOD_PX),
        "few_minutiae": min(1.0, float(np.sum(minutia_q)) / (0.5 * MINUTIAE_GOOD)),
    }
    score = float(np.prod(list(factors.values())))
    reason = None if score >= ACCEPT else min(factors, key=factors.get)
    kept = minutiae / candidates if candidates else 1.0
    return ImageQuality(score, reason, int(area_px), float(coherence), int(minutiae), float(kept))
