"""A training-free vein line map: where the grey level has a valley across its darkest direction (Hessian).

Why this and not Miura's maximum curvature: Miura scores curvature along four fixed directions with run-length
bookkeeping per profile (0.5-1 s per image in Python here); the largest eigenvalue of the Hessian is the same
"how curved is the valley across the vessel" measure in every direction at once, in a few OpenCV filters (well
under a millisecond at 64 x 192). Two scales (sigma 2 and 4 px at 64 rows) cover thin and thick vessels; scale
normalization (sigma squared) lets both count; the square root compresses the strongest vessels so that matching
is not decided by one dark trunk.

Measured on FV-USM (docs/vein.md): 2.24 % EER alone, against 4.67 % (3.13 % with our parameters) for Miura
maximum curvature on the same 7,380 genuine / 120,786 impostor pairs.
"""

from __future__ import annotations

import cv2
import numpy as np

WORK_SIZE = (64, 192)  # (height, width) the region is filtered at, finger axis horizontal
MAP_SIZE = (32, 96)  # (height, width) of the stored and compared map: half the work size
SIGMAS = (2.0, 4.0)  # Gaussian scales in work pixels


def valley_strength(image: np.ndarray, sigma: float) -> np.ndarray:
    """sigma^2 times the positive part of the Hessian's largest eigenvalue (dark lines of width ~2 sigma)."""
    blurred = cv2.GaussianBlur(image, (0, 0), sigma)
    dxx = cv2.Sobel(blurred, cv2.CV_32F, 2, 0, ksize=3)
    dyy = cv2.Sobel(blurred, cv2.CV_32F, 0, 2, ksize=3)
    dxy = cv2.Sobel(blurred, cv2.CV_32F, 1, 1, ksize=3)
    half_diff = (dxx - dyy) * 0.5
    largest = (dxx + dyy) * 0.5 + np.sqrt(half_diff * half_diff + dxy * dxy)
    return np.maximum(largest, 0.0) * (sigma * sigma)


def vein_map(roi: np.ndarray, size: tuple[int, int] = MAP_SIZE, sigmas: tuple[float, ...] = SIGMAS) -> np.ndarray:
    """The line map (float32, ``size``, >= 0) of a finger region with its axis horizontal (``region.Region.roi``).

    Filtered at ``WORK_SIZE``, then averaged down to ``size``: the map is smooth at that scale, and a quarter of
    the pixels makes every comparison four times cheaper for the same accuracy on FV-USM (2.21 % vs 2.22 % EER).
    """
    img = np.asarray(roi)
    if img.ndim != 2 or min(img.shape) < 8:
        raise ValueError(f"a finger region must be a 2-D image of at least 8x8 pixels, got shape {img.shape}")
    work = cv2.resize(img.astype(np.float32), (WORK_SIZE[1], WORK_SIZE[0]), interpolation=cv2.INTER_AREA)
    out = np.zeros(WORK_SIZE, np.float32)
    for sigma in sigmas:
        out += valley_strength(work, sigma)
    np.sqrt(out, out=out)
    return cv2.resize(out, (size[1], size[0]), interpolation=cv2.INTER_AREA)
