"""Quality scores with a reason a user can act on ("too dark", "too little finger area", ...).

Why a reason and not just a number: on a door, the only feedback channel is a short message or an LED; "press
the finger flat" helps, "score 0.21" does not. Scores are in [0, 1]; ``ok`` is False whenever a reason is given.
The thresholds live in ``device.params`` and are calibrated on real sets (docs/data.md).

Reasons used (the first words are stable; tests and the UI key on them):
``image too small``, ``no finger found``, ``too dark``, ``too bright``, ``overexposed``,
``too little finger area``, ``smudged or unclear ridges``, ``too little contrast``, ``finger not along the window``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from device import params


@dataclass(frozen=True)
class Quality:
    """How usable a capture is. ``reason`` is None when ``ok``."""

    score: float
    ok: bool
    reason: str | None = None


TOO_SMALL = "image too small"
NO_FINGER = "no finger found"
TOO_DARK = "too dark"
TOO_BRIGHT = "too bright"
OVEREXPOSED = "overexposed"
LITTLE_AREA = "too little finger area"
SMUDGED = "smudged or unclear ridges"
LOW_CONTRAST = "too little contrast"
ACROSS = "finger not along the window"


def percentile_u8(values: np.ndarray, q: float) -> float:
    """Percentile of uint8 data from its histogram (much faster than ``np.percentile`` for images)."""
    counts = np.bincount(values.ravel(), minlength=256)
    if counts.sum() == 0:
        return 0.0
    return float(np.searchsorted(np.cumsum(counts), q / 100.0 * counts.sum()))


def reject(reason: str, score: float = 0.0, ceiling: float = 1.0) -> Quality:
    """A failed quality; the score is kept below ``ceiling`` (the pass mark) so scores and ``ok`` agree."""
    return Quality(float(np.clip(min(score, np.nextafter(ceiling, 0.0)), 0.0, 1.0)), False, reason)


def _ramp(value: float, low: float, high: float) -> float:
    """0 at ``low``, 1 at ``high``, linear between (a soft score term)."""
    if high <= low:
        return 1.0 if value >= high else 0.0
    return float(np.clip((value - low) / (high - low), 0.0, 1.0))


def basic_checks(grey: np.ndarray, bright_reason: str, whole_frame_exposure: bool = True) -> Quality | None:
    """Rejections every modality shares: too small, blank/uniform, too dark, too bright. None if it passes.

    ``whole_frame_exposure``: judge exposure by the mean of the whole frame (fingerprints, where the finger
    covers most of it); vein frames are mostly dark background, so their exposure is judged on the ROI later.
    """
    h, w = grey.shape if grey.ndim == 2 else (0, 0)
    if grey.size == 0 or min(h, w) < params.MIN_SIDE:
        return reject(f"{TOO_SMALL} ({w}x{h} pixels; need at least {params.MIN_SIDE} on each side)")
    m, sd = cv2.meanStdDev(grey)  # one pass, several times faster than numpy's mean + std
    mean, std = float(m[0, 0]), float(sd[0, 0])
    if std < params.UNIFORM_STD:
        if mean < params.DARK_MEAN:
            return reject(f"{TOO_DARK}: the image is black; check the light / sensor")
        if mean > params.BRIGHT_MEAN:
            return reject(f"{bright_reason}: the image is white; place the finger on the sensor")
        return reject(f"{NO_FINGER}: the image is blank; place the finger on the sensor")
    if not whole_frame_exposure:
        return None
    if mean < params.DARK_MEAN:
        return reject(f"{TOO_DARK}: press more lightly or increase the light")
    if mean > params.BRIGHT_MEAN:
        return reject(f"{bright_reason}: press more firmly or reduce the light")
    return None


def fingerprint_quality(area: float, coherence: float, drift: float = 0.0) -> Quality:
    """Score from the finger's area fraction and its mean ridge-orientation coherence (ridge clarity).

    ``area``: foreground fraction of the image; ``coherence``: mean block coherence over the foreground;
    ``drift``: median block drift over the foreground (see ``OrientationField``): high for smooth blobs, slopes
    and edges, which are coherent without being ridges.
    The score is the geometric mean of two ramps, so a large smudge and a small sharp print both score low.
    """
    area_term = _ramp(area, 0.0, params.FP_GOOD_AREA)
    clarity_term = _ramp(coherence, params.FP_MIN_COHERENCE, params.FP_GOOD_COHERENCE)
    score = float(np.sqrt(area_term * clarity_term))

    def fail(reason: str) -> Quality:
        return reject(reason, score, params.FP_QUALITY_OK)

    if area <= 0.0:
        return reject(f"{NO_FINGER}: no ridges visible; place the finger on the sensor")
    if area < params.FP_MIN_AREA:
        return fail(f"{LITTLE_AREA} ({area:.0%}); press the finger flat and centred")
    if coherence < params.FP_MIN_RIDGE_COHERENCE or drift > params.FP_MAX_DRIFT:
        return fail(f"{SMUDGED}; clean the sensor and dry or moisten the finger")
    if score < params.FP_QUALITY_OK:
        return fail(f"{SMUDGED} (score {score:.2f}); press the finger flat and try again")
    return Quality(score, True, None)


def vein_quality(
    area: float,
    contrast: float,
    saturated: float,
    noise: float,
    p95: float,
    across: bool = False,
    background: float = 0.0,
) -> Quality:
    """Score from finger area, vein contrast, exposure and noise.

    ``area``: finger fraction of the frame (1.0 for ready ROI crops); ``contrast``: std of the band-passed ROI
    (vein-sized structure); ``saturated``: fraction of saturated pixels in the ROI; ``noise``: std of the
    pixel-level (high-pass) detail; noise far above the vein-scale structure means a noise image or a frame
    without a finger, small noise over no structure means a finger without visible veins; ``p95``: 95th
    percentile grey level of the ROI; ``across``: the finger lies across the frame instead of along it;
    ``background``: fraction of the ROI as dark as the background (the finger was not found where it is).
    """
    area_term = _ramp(area, 0.0, 0.5)
    contrast_term = _ramp(contrast, params.VEIN_MIN_CONTRAST * 0.5, params.VEIN_GOOD_CONTRAST)
    exposure_term = 1.0 - _ramp(saturated, 0.0, params.VEIN_MAX_SATURATED * 2)
    score = float((area_term * contrast_term * exposure_term) ** (1 / 3))

    def fail(reason: str) -> Quality:
        return reject(reason, score, params.VEIN_QUALITY_OK)

    if area <= 0.0:
        return reject(f"{NO_FINGER}: place the finger over the light")
    if across:
        return reject(f"{ACROSS}: lay the finger along the window (fingertip to one side)")
    if noise > params.VEIN_NOISE_FLOOR and noise > params.VEIN_MAX_NOISE_RATIO * contrast:
        return reject(f"{NO_FINGER}: the image is mostly noise; check the camera and the light")
    if p95 < params.VEIN_DARK_P95:
        return fail(f"{TOO_DARK}: increase the infrared light or exposure")
    if saturated > params.VEIN_MAX_SATURATED:
        return fail(f"{OVEREXPOSED}: reduce the infrared light or exposure")
    if area < params.VEIN_MIN_AREA:
        return fail(f"{LITTLE_AREA} ({area:.0%}); lay the whole finger over the window")
    if background > params.VEIN_MAX_ROI_BACKGROUND:
        return fail(f"{LITTLE_AREA}: the finger covers only part of the window; lay it along the whole window")
    if contrast < params.VEIN_MIN_CONTRAST:
        return fail(f"{LOW_CONTRAST}: veins not visible; warm the finger or adjust the light")
    if score < params.VEIN_QUALITY_OK:
        return fail(f"{LOW_CONTRAST} (score {score:.2f}); adjust the finger and the light")
    return Quality(score, True, None)
