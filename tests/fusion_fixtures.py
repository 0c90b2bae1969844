"""Small synthetic finger-like images for the fusion/feature tests (no real images in the repository)."""

from __future__ import annotations

import cv2
import numpy as np


def ridge_image(seed: int, size: int = 128, period: float = 8.0, noise: float = 0.05) -> np.ndarray:
    """A fingerprint-like uint8 image: curved sinusoidal ridges around a seed-dependent core, plus noise."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    cy, cx = rng.uniform(0.3, 0.7, 2) * size
    r = np.hypot(yy - cy, xx - cx)
    warp = 6.0 * np.sin(xx / size * rng.uniform(2, 5) + rng.uniform(0, 6)) * np.cos(yy / size * rng.uniform(2, 5))
    img = 0.5 + 0.4 * np.cos(2 * np.pi * (r + warp) / period)
    img += np.random.default_rng(seed * 7919 + 1).normal(0, noise, img.shape)
    return np.clip(img * 255, 0, 255).astype(np.uint8)


def vein_image(seed: int, shape: tuple[int, int] = (64, 192), impression: int = 0) -> np.ndarray:
    """A NIR vein-like uint8 image: bright finger with a few dark seed-dependent curved vessels."""
    rng = np.random.default_rng(seed)
    h, w = shape
    yy, xx = np.mgrid[:h, :w].astype(np.float32)
    img = 0.35 + 0.3 * np.exp(-((yy - h / 2) ** 2) / (2 * (h / 3) ** 2))
    for _ in range(4):
        y0, amp, freq, phase = rng.uniform(0.2, 0.8) * h, rng.uniform(3, 10), rng.uniform(1, 3), rng.uniform(0, 6)
        centre = y0 + amp * np.sin(xx / w * freq * np.pi + phase)
        width = rng.uniform(1.5, 3.0)
        img -= 0.12 * np.exp(-((yy - centre) ** 2) / (2 * width**2))
    shift = np.random.default_rng(seed * 31 + impression).integers(-2, 3, 2)
    img = np.roll(img, tuple(int(s) for s in shift), axis=(0, 1))
    img += np.random.default_rng(seed * 131 + impression).normal(0, 0.01, img.shape)
    img = cv2.GaussianBlur(img, (0, 0), 0.8)
    return np.clip(img * 255, 0, 255).astype(np.uint8)
