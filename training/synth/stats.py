"""Image statistics used to compare synthetic and real sets: ridge period, foreground area, grey levels.

Pure numpy/OpenCV functions of one uint8 image; the calibration averages them over a set.
"""

from __future__ import annotations

import cv2
import numpy as np


def local_std(image: np.ndarray, sigma: float = 8.0) -> np.ndarray:
    """Standard deviation of grey levels in a Gaussian window around each pixel."""
    f = image.astype(np.float32)
    mean = cv2.GaussianBlur(f, (0, 0), sigma)
    sq = cv2.GaussianBlur(f * f, (0, 0), sigma)
    return np.sqrt(np.maximum(sq - mean * mean, 0.0))


def fingerprint_foreground(image: np.ndarray) -> np.ndarray:
    """Boolean mask of the ridge area: where the local contrast is a good part of the image's strongest."""
    s = local_std(image)
    return s > max(6.0, 0.35 * float(np.percentile(s, 95)))


def ridge_period(image: np.ndarray, block: int = 64) -> float:
    """Median ridge period in px over foreground blocks (spectral centroid around the 2-D peak, periods 4-20 px).

    Blocks overlap by half; the centroid of the spectrum within one bin of its peak gives sub-bin resolution.
    """
    fg = fingerprint_foreground(image)
    f = image.astype(np.float32)
    yy, xx = np.mgrid[-block // 2:block // 2, -block // 2:block // 2]
    radius = np.hypot(yy, xx)
    window = np.outer(np.hanning(block), np.hanning(block)).astype(np.float32)
    lo, hi = block / 20.0, block / 4.0  # frequency band in cycles per block
    band = (radius >= lo) & (radius <= hi)
    periods = []
    step = block // 2
    for y in range(0, image.shape[0] - block + 1, step):
        for x in range(0, image.shape[1] - block + 1, step):
            if fg[y:y + block, x:x + block].mean() < 0.9:
                continue
            patch = f[y:y + block, x:x + block]
            spec = np.abs(np.fft.fftshift(np.fft.fft2((patch - patch.mean()) * window)))
            spec[~band] = 0
            k = np.unravel_index(int(np.argmax(spec)), spec.shape)
            near = band & (np.abs(radius - radius[k]) <= 1.0)
            weights = spec[near] ** 2
            r = float((radius[near] * weights).sum() / max(weights.sum(), 1e-9))
            if r > 0:
                periods.append(block / r)
    return float(np.median(periods)) if periods else float("nan")


def fingerprint_stats(image: np.ndarray) -> dict[str, float]:
    """Ridge period (px), foreground share of the image, grey mean and standard deviation."""
    return {
        "ridge_period": ridge_period(image),
        "foreground": float(fingerprint_foreground(image).mean()),
        "grey_mean": float(image.mean()),
        "grey_std": float(image.std()),
    }


def vein_stats(image: np.ndarray, pattern: np.ndarray | None = None) -> dict[str, float]:
    """Finger (foreground) share by Otsu, vessel-pixel share of the Miura pattern, grey mean and std."""
    _, otsu = cv2.threshold(image, 0, 1, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    out = {"foreground": float(otsu.mean()), "grey_mean": float(image.mean()), "grey_std": float(image.std())}
    if pattern is not None:
        out["vessel_fraction"] = float(pattern.mean())
    return out


def mean_stats(rows: list[dict[str, float]]) -> dict[str, float]:
    """Mean of each statistic over a set (NaNs ignored)."""
    keys = rows[0].keys() if rows else []
    return {k: float(np.nanmean([r[k] for r in rows])) for k in keys}
