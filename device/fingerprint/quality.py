"""Quality: per minutia (how much to trust it) and per image (will this capture match?), with a reason.

Why these inputs: failures to match come from too little finger (small foreground), unreadable ridges (incoherent
orientation: smudges, dry or wet skin, scars) and too few minutiae to pair. They are the features NFIQ 2 leans on
most (orientation certainty, foreground area, minutiae count and quality), reduced to what the extractor already
computed, so the score costs nothing (< 0.2 ms). ``score`` is in [0, 1]; ``reason`` names the
weakest factor when the score is below ``ACCEPT``; ``advice`` turns a reason into what the person should do.

What it predicts (docs/fingerprint.md, "Quality"; ``python -m training.fp_quality_bench``): dropping the genuine
pairs whose worse capture scores lowest lowers the FNMR at the shipped card's threshold on the six FVC DB_B sets
and on the PolyU partial prints. The gates on the device (``VERIFY_MIN``, ``ENROL_MIN``) are in this module too.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from device.fingerprint import params

AREA_GOOD_PX = 25000  # px at 500 dpi: about 1 cm x 1 cm of ridges; smaller captures lose matches
MINUTIAE_GOOD = 20.0  # summed minutia quality (~30 clear minutiae) that saturates the factor; FVC median 24
# 10th percentile of the foreground's coherence: 0.1 -> 0, 0.5 -> 1 (FVC: 5th pct. of images 0.27, median 0.49).
# The low tail, not the mean: a smudged or wet patch fails a match even when the rest of the print is clear.
COHERENCE_FLOOR, COHERENCE_SPAN = 0.1, 0.4

# Quality gates on the device (issue 15), chosen from synthetic R307 captures (the demo's generator: of 400, none
# below VERIFY_MIN and 1 below ENROL_MIN) and the FVC error-vs-reject measurement (docs/fingerprint.md, "Quality"):
VERIFY_MIN = 0.20  # verify/identify: refuses 13 of 480 FVC images (2.7 %); FNMR at `balanced` 26.1 -> 25.3 %
ENROL_MIN = 0.35  # enrolment: stricter, enrolled captures take part in every later comparison (37 of 480 refused)
ACCEPT = ENROL_MIN  # at or above this a capture is good for anything: no reason is given

REASONS = ("small_area", "unclear_ridges", "few_minutiae")
ADVICE = {  # what a person at the sensor can do about each weakest factor
    "small_area": "too little finger area: press more firmly, flat and centred",
    "unclear_ridges": "smudged or unclear ridges (finger too dry or too wet?): clean the sensor, moisten a dry "
                      "fingertip or dry a wet one",
    "few_minutiae": "too few features: place the centre of the finger on the sensor",
}


@dataclass(frozen=True)
class ImageQuality:
    score: float  # [0, 1], higher is better
    reason: str | None  # None when score >= ACCEPT, else one of REASONS
    area_px: int  # foreground pixels at the working resolution
    coherence: float  # mean orientation coherence over the foreground
    minutiae: int
    kept_share: float = 1.0  # share of the skeleton's minutia candidates that survived cleaning (low: noisy ridges)
    coherence_low: float = 1.0  # 10th percentile of the foreground's coherence
    weakest: str = "small_area"  # the factor with the lowest value (what to fix first), whatever the score

    @property
    def advice(self) -> str:
        """What to do about the weakest factor, in words for the person at the sensor."""
        return ADVICE[self.weakest]


def minutia_quality(coherence: np.ndarray, border_dist: np.ndarray, period: float) -> np.ndarray:
    """Per-minutia quality in [0, 1]: orientation coherence there, lowered near the foreground edge."""
    edge = np.clip(border_dist / (3.0 * params.BORDER_DIST * period), 0.0, 1.0)
    return np.clip(coherence, 0.0, 1.0) * (0.5 + 0.5 * edge)


def image_quality(area_px: int, coherence: np.ndarray, minutiae: int, minutia_q: np.ndarray,
                  candidates: int = 0) -> ImageQuality:
    """The product of three factors in [0, 1]: the low tail of orientation coherence, foreground area and summed
    minutia quality.

    ``coherence``: the foreground's pixel coherences. ``candidates``: minutia candidates before cleaning (only
    reported, as ``kept_share``: it did not predict failures once the border's candidates are left out). The low
    tail predicts better than the mean on both the FVC sets and the PolyU partial prints; the minutiae factor
    matters on the partial prints.
    """
    coh = np.asarray(coherence, dtype=np.float32).reshape(-1)
    mean = float(coh.mean()) if coh.size else 0.0
    low = mean
    if coh.size > 1:
        sample = coh[::4] if coh.size >= 400 else coh  # every 4th foreground pixel: the same percentile, 4x cheaper
        k = int(0.1 * (sample.size - 1))
        low = float(np.partition(sample, k)[k])
    kept = minutiae / candidates if candidates else 1.0
    factors = {
        "small_area": min(1.0, area_px / AREA_GOOD_PX),
        "unclear_ridges": float(np.clip((low - COHERENCE_FLOOR) / COHERENCE_SPAN, 0.0, 1.0)),
        "few_minutiae": min(1.0, float(np.sum(minutia_q)) / MINUTIAE_GOOD),
    }
    score = float(np.prod(list(factors.values())))
    weakest = min(factors, key=factors.get)
    reason = None if score >= ACCEPT else weakest
    return ImageQuality(score, reason, int(area_px), mean, int(minutiae), float(kept), low, weakest)
