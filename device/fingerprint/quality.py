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
AREA_GOOD_PX = 40000  # at 500 dpi, about 1 cm x 1.6 cm of ridges: a full enrolment capture
MINUTIAE_GOOD = 30


@dataclass(frozen=True)
class ImageQuality:
    score: float  # [0, 1], higher is better
    reason: str | None  # None when score >= ACCEPT, else "small_area", "unclear_ridges" or "few_minutiae"
    area_px: int  # foreground pixels at the working resolution
    coherence: float  # mean orientation coherence over the foreground
    minutiae: int


def minutia_quality(coherence: np.ndarray, border_dist: np.ndarray, period: float) -> np.ndarray:
    """Per-minutia quality in [0, 1]: orientation coherence there, lowered near the foreground edge."""
    edge = np.clip(border_dist / (3.0 * params.BORDER_DIST * period), 0.0, 1.0)
    return np.clip(coherence, 0.0, 1.0) * (0.5 + 0.5 * edge)


def image_quality(area_px: int, coherence: float, minutiae: int, minutia_q: np.ndarray) -> ImageQuality:
    """Combine the factors geometrically, so one bad factor pulls the score down."""
    factors = {
        "small_area": min(1.0, area_px / AREA_GOOD_PX),
        "unclear_ridges": float(np.clip((coherence - 0.2) / 0.5, 0.0, 1.0)),
        "few_minutiae": min(1.0, float(np.sum(minutia_q)) / (0.6 * MINUTIAE_GOOD)),
    }
    score = float(np.prod([max(v, 1e-3) for v in factors.values()]) ** (1.0 / len(factors)))
    reason = None if score >= ACCEPT else min(factors, key=factors.get)
    return ImageQuality(score, reason, int(area_px), float(coherence), int(minutiae))
