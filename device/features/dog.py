"""Difference of Gaussians at several scales: a cheap Laplacian-of-Gaussian approximation with adaptive sigma.

DoG(sigma) = G(sigma) - G(k * sigma) with k = 1.6 approximates sigma^2 * LoG (Marr & Hildreth). A LoG answers
most strongly to a sinusoid of period P when sigma is about P / (pi * sqrt(2)) = 0.225 P; with the DoG's
effective sigma about 1.26 sigma that puts the middle of the ladder at ``period_fraction`` = 0.18 of the measured
period. "Adaptive" measures the image's own ridge/vessel period; otherwise ``sigma`` is the middle scale.
Dark lines (veins, ridges in a fingerprint's grey convention) give positive responses (G(sigma) - G(k sigma) < 0
on a dark line, so the sign is flipped: positive = dark line centre).

Features per block and scale: mean positive response, mean negative response, response std (3 values).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from device.features.spectrum import block_means, dominant_frequency
from device.features.validation import validate_image


@dataclass(frozen=True)
class DogParams:
    size: tuple[int, int] | None = (96, 96)
    scales: int = 4
    sigma: float = 1.5  # middle-of-ladder sigma (pixels) when adaptive is off
    sigma_ratio: float = 1.6  # k in G(sigma) - G(k sigma)
    scale_step: float = 2**0.5  # ratio between successive scales
    period_fraction: float = 0.18
    adaptive: bool = True
    band: tuple[float, float] = (0.03, 0.35)
    grid: tuple[int, int] = (4, 4)


def dog_sigmas(params: DogParams, period: float | None) -> tuple[float, ...]:
    """The sigma of each scale, at least 0.5 px."""
    centre = params.period_fraction * period if (params.adaptive and period) else params.sigma
    offset = (params.scales - 1) / 2.0
    return tuple(float(max(centre * params.scale_step ** (k - offset), 0.5)) for k in range(params.scales))


def dog_responses(image: np.ndarray, params: DogParams = DogParams()) -> np.ndarray:
    """Stack (scales, H, W) of sign-flipped DoG responses of the standardized image (dark lines positive)."""
    arr = validate_image(image)
    if params.size is not None and arr.shape != tuple(params.size):
        arr = cv2.resize(arr, (params.size[1], params.size[0]), interpolation=cv2.INTER_AREA)
    arr = ((arr - arr.mean()) / max(float(arr.std()), 1e-6)).astype(np.float32)
    period = 1.0 / dominant_frequency(arr, params.band) if params.adaptive else None
    out = []
    for sigma in dog_sigmas(params, period):
        narrow = cv2.GaussianBlur(arr, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
        wide = cv2.GaussianBlur(arr, (0, 0), sigma * params.sigma_ratio, borderType=cv2.BORDER_REFLECT)
        out.append(wide - narrow)
    return np.stack(out)


def extract_dog(image: np.ndarray, params: DogParams = DogParams()) -> np.ndarray:
    """Feature vector (float32, scales*blocks*3) of one finger image; raises ``FeatureRejection`` on bad input."""
    resp = dog_responses(image, params)
    pos = block_means(np.maximum(resp, 0.0), params.grid)
    neg = block_means(np.maximum(-resp, 0.0), params.grid)
    mean = block_means(resp, params.grid)
    sq = block_means(resp * resp, params.grid)
    std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    out = np.stack([pos, neg, std], axis=-1).astype(np.float32).ravel()
    return np.nan_to_num(out, nan=0.0, posinf=0.0, neginf=0.0)
