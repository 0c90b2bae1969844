"""Orientation field: local ridge direction and how coherent it is, from averaged squared gradients.

Why doubled angles: a ridge direction is an axis (theta and theta + pi are the same), so gradients are averaged as
the vector (gx^2 - gy^2, 2 gx gy), whose angle is twice the gradient's; opposite gradients across a ridge then add
up instead of cancelling (Kass and Witkin 1987; Bazen and Gerez 2002). Averaging happens on a block grid (cheap) and
the smoothed field is interpolated back to pixels.

Angles here are image angles: radians from the x axis towards +y (down), ridge direction modulo pi.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from device.fingerprint import params


@dataclass(frozen=True)
class OrientationField:
    """Block-grid and pixel fields of one image (its size a multiple of ``block``)."""

    theta: np.ndarray  # (H, W) float32 ridge direction, radians mod pi, image angles
    coherence: np.ndarray  # (H, W) float32 in [0, 1]
    block_coherence: np.ndarray  # (H/block, W/block) float32
    block_energy: np.ndarray  # (H/block, W/block) float32: mean squared gradient
    block: int


def gradients(img: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Derivative-of-Gaussian gradients (float32)."""
    smooth = cv2.GaussianBlur(img, (0, 0), params.GRAD_SIGMA)
    return cv2.Sobel(smooth, cv2.CV_32F, 1, 0, ksize=3), cv2.Sobel(smooth, cv2.CV_32F, 0, 1, ksize=3)


def orientation_field(img: np.ndarray, block: int | None = None, sigma_blocks: float | None = None,
                      weight: np.ndarray | None = None) -> OrientationField:
    """Orientation and coherence of ``img`` (float32, rows and cols multiples of ``block``).

    ``weight`` (pixel map, e.g. the foreground mask) keeps background noise out of the averages near the edge.
    """
    block = block or params.BLOCK
    sigma_blocks = sigma_blocks or params.ORIENT_SIGMA
    h, w = img.shape
    gx, gy = gradients(img)
    gxx, gyy, gxy = gx * gx, gy * gy, gx * gy
    if weight is not None:
        gxx, gyy, gxy = gxx * weight, gyy * weight, gxy * weight
    size = (w // block, h // block)
    bxx, byy, bxy = (cv2.resize(g, size, interpolation=cv2.INTER_AREA) for g in (gxx, gyy, gxy))
    c2, s2, energy = bxx - byy, 2.0 * bxy, bxx + byy
    c2s, s2s, es = (cv2.GaussianBlur(a, (0, 0), sigma_blocks) for a in (c2, s2, energy))
    coh = (np.hypot(c2s, s2s) / np.maximum(es, 1e-6)).astype(np.float32)
    norm = np.maximum(np.hypot(c2s, s2s), 1e-9)
    c2p = cv2.resize(c2s / norm, (w, h), interpolation=cv2.INTER_LINEAR)
    s2p = cv2.resize(s2s / norm, (w, h), interpolation=cv2.INTER_LINEAR)
    grad_dir = 0.5 * cv2.phase(c2p, s2p)  # [0, pi); cv2.phase is a fast atan2 (about 0.3 degree error)
    theta = np.mod(grad_dir + np.float32(np.pi / 2), np.float32(np.pi))
    coh_px = cv2.resize(coh, (w, h), interpolation=cv2.INTER_LINEAR)
    return OrientationField(theta, coh_px, coh, energy.astype(np.float32), block)
