"""On-the-fly augmentation of *preprocessed* crops (float32 (H, W) in [0, 1]), numpy + OpenCV only.

Why after preprocessing: the device sees preprocessed crops, so augmentation imitates what still varies
between two preprocessed impressions of one finger -- a little rotation and shift the crop did not remove,
elastic skin distortion (pressure), contrast/gamma changes (moisture, exposure), and partial contact (part of
the crop missing, filled with the background). Every transform is applied with its own probability and draws
from the ``numpy.random.Generator`` passed in, so a seeded run is reproducible.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np


@dataclass(frozen=True)
class AugmentParams:
    """Magnitudes and probabilities; ``strength`` 0 disables everything."""

    rotation_deg: float = 10.0
    shift_frac: float = 0.06
    scale_frac: float = 0.05
    elastic_alpha: float = 2.5  # peak displacement in pixels
    elastic_sigma: float = 8.0  # smoothness of the displacement field in pixels
    contrast: float = 0.25  # gain in [1 - c, 1 + c]
    gamma: float = 0.3  # gamma in [1 - g, 1 + g]
    noise: float = 0.03
    partial_prob: float = 0.3
    partial_max_frac: float = 0.3  # at most this share of the width or height is cut away
    p_geometric: float = 0.9
    p_elastic: float = 0.5
    p_photometric: float = 0.8
    strength: float = 1.0


def background_value(image: np.ndarray) -> float:
    """The fill for uncovered pixels: the median of the border, which preprocessing leaves as background."""
    border = np.concatenate([image[0], image[-1], image[:, 0], image[:, -1]])
    return float(np.median(border))


def affine(image: np.ndarray, angle_deg: float, dx: float, dy: float, scale: float, fill: float) -> np.ndarray:
    """Rotate about the centre, scale and shift (pixels), filling uncovered pixels with ``fill``."""
    h, w = image.shape
    m = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle_deg, scale)
    m[:, 2] += (dx, dy)
    return cv2.warpAffine(
        image, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=float(fill)
    )


def elastic(image: np.ndarray, alpha: float, sigma: float, rng: np.random.Generator, fill: float) -> np.ndarray:
    """Smooth random displacement (Simard et al.): Gaussian-blurred noise scaled to a peak of ``alpha`` pixels."""
    h, w = image.shape
    fields = []
    for _ in range(2):
        f = cv2.GaussianBlur(rng.uniform(-1, 1, (h, w)).astype(np.float32), (0, 0), sigma)
        peak = float(np.abs(f).max()) or 1.0
        fields.append(f * (alpha / peak))
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    return cv2.remap(
        image, xx + fields[0], yy + fields[1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=float(fill)
    )


def photometric(image: np.ndarray, gain: float, gamma: float, noise: float, rng: np.random.Generator) -> np.ndarray:
    """Contrast about the mean, gamma, additive Gaussian noise; result clipped to [0, 1]."""
    mean = float(image.mean())
    out = np.clip((image - mean) * gain + mean, 0.0, 1.0)
    out = np.power(out, gamma, dtype=np.float32)
    if noise > 0:
        out = out + rng.normal(0.0, noise, out.shape).astype(np.float32)
    return np.clip(out, 0.0, 1.0)


def partial(image: np.ndarray, max_frac: float, rng: np.random.Generator, fill: float) -> np.ndarray:
    """Partial contact: one side of the crop (a random edge band up to ``max_frac``) replaced by background."""
    h, w = image.shape
    out = image.copy()
    side = int(rng.integers(4))
    frac = float(rng.uniform(0.05, max_frac))
    if side == 0:
        out[: int(h * frac)] = fill
    elif side == 1:
        out[h - int(h * frac) :] = fill
    elif side == 2:
        out[:, : int(w * frac)] = fill
    else:
        out[:, w - int(w * frac) :] = fill
    return out


def augment(image: np.ndarray, rng: np.random.Generator, p: AugmentParams = AugmentParams()) -> np.ndarray:
    """One random augmentation of a preprocessed crop; same shape, float32 in [0, 1]."""
    img = np.asarray(image, dtype=np.float32)
    s = p.strength
    if s <= 0:
        return img.copy()
    fill = background_value(img)
    h, w = img.shape
    if rng.random() < p.p_geometric:
        img = affine(
            img,
            rng.uniform(-1, 1) * p.rotation_deg * s,
            rng.uniform(-1, 1) * p.shift_frac * s * w,
            rng.uniform(-1, 1) * p.shift_frac * s * h,
            1.0 + rng.uniform(-1, 1) * p.scale_frac * s,
            fill,
        )
    if rng.random() < p.p_elastic and p.elastic_alpha > 0:
        img = elastic(img, p.elastic_alpha * s, p.elastic_sigma, rng, fill)
    if rng.random() < p.partial_prob * s:
        img = partial(img, p.partial_max_frac, rng, fill)
    if rng.random() < p.p_photometric:
        img = photometric(
            img,
            1.0 + rng.uniform(-1, 1) * p.contrast * s,
            1.0 + rng.uniform(-1, 1) * p.gamma * s,
            abs(rng.normal(0, p.noise * s)),
            rng,
        )
    return np.clip(img, 0.0, 1.0).astype(np.float32, copy=False)


def augment_batch(images: np.ndarray, rng: np.random.Generator, p: AugmentParams = AugmentParams()) -> np.ndarray:
    """Augment every image of an (N, H, W) batch independently."""
    return np.stack([augment(im, rng, p) for im in images]).astype(np.float32, copy=False)
