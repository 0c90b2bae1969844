"""Spectral helpers shared by the extractors: dominant ridge/vessel frequency, spectral flatness, block grids.

Frequencies are in cycles per pixel (0 .. 0.5). The dominant frequency is the peak of the radially averaged
power spectrum inside a plausible band, after removing the mean and windowing (Hann) so the image border does
not put a false peak at low frequencies.
"""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np


@lru_cache(maxsize=32)
def radial_frequency_grid(shape: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Radius (cycles/pixel) and angle (radians, image axes: 0 = along x) of every FFT bin, unshifted layout.

    Cached per shape; the arrays are read-only.
    """
    h, w = shape
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.fftfreq(w)[None, :]
    radius = np.sqrt(fx * fx + fy * fy)
    angle = np.ascontiguousarray(np.broadcast_to(np.arctan2(-fy, fx), (h, w)))
    radius.setflags(write=False)
    angle.setflags(write=False)
    return radius, angle


def power_spectrum(image: np.ndarray) -> np.ndarray:
    """Power spectrum of the mean-removed, Hann-windowed image (unshifted)."""
    h, w = image.shape
    window = np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    centred = ((image - image.mean()) * window).astype(np.float32)
    spec = cv2.dft(centred, flags=cv2.DFT_COMPLEX_OUTPUT)
    return (spec[:, :, 0].astype(np.float64) ** 2 + spec[:, :, 1].astype(np.float64) ** 2)


def dominant_frequency(image: np.ndarray, band: tuple[float, float] = (0.02, 0.35)) -> float:
    """The frequency (cycles/pixel) where the radially averaged power peaks inside ``band``.

    A smoothed 1-D profile (bins of 1/min(h, w)) is used so a single noisy bin cannot win. Returns the lower band
    edge when the band holds no energy (the caller has validated the image before, so this is rare).
    """
    power = power_spectrum(image)
    radius, _ = radial_frequency_grid(tuple(image.shape))
    step = 1.0 / min(image.shape)
    edges = np.arange(band[0], band[1] + step, step)
    if edges.size < 3:
        return float(band[0])
    idx = np.digitize(radius.ravel(), edges) - 1
    valid = (idx >= 0) & (idx < edges.size - 1)
    sums = np.bincount(idx[valid], weights=power.ravel()[valid], minlength=edges.size - 1)
    counts = np.bincount(idx[valid], minlength=edges.size - 1)
    profile = sums / np.maximum(counts, 1)
    profile = np.convolve(profile, np.ones(3) / 3.0, mode="same")
    if not np.isfinite(profile).all() or profile.max() <= 0:
        return float(band[0])
    k = int(np.argmax(profile))
    return float(0.5 * (edges[k] + edges[k + 1]))


def spectral_flatness(image: np.ndarray) -> float:
    """Geometric / arithmetic mean of the power spectrum (DC excluded), in (0, 1].

    White noise gives about 0.56 (the periodogram is exponentially distributed); fingerprints and veins, whose
    energy sits in a narrow or low band, give far less. Used to reject noise that is "not a finger".
    """
    power = power_spectrum(image).ravel()[1:]
    power = power[power > 0]
    if power.size == 0:
        return 1.0
    return float(np.exp(np.mean(np.log(power))) / np.mean(power))


def block_slices(shape: tuple[int, int], grid: tuple[int, int]) -> list[tuple[slice, slice]]:
    """Row-major slices cutting ``shape`` into a ``grid`` (rows, cols) of near-equal blocks."""
    rows = np.linspace(0, shape[0], grid[0] + 1).astype(int)
    cols = np.linspace(0, shape[1], grid[1] + 1).astype(int)
    return [
        (slice(rows[i], rows[i + 1]), slice(cols[j], cols[j + 1])) for i in range(grid[0]) for j in range(grid[1])
    ]


def block_means(values: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """Mean of ``values`` (..., H, W) over each block of ``grid``: shape (..., rows*cols), row-major."""
    h, w = values.shape[-2:]
    rows = np.linspace(0, h, grid[0] + 1).astype(int)
    cols = np.linspace(0, w, grid[1] + 1).astype(int)
    sums = np.add.reduceat(np.add.reduceat(values, rows[:-1], axis=-2), cols[:-1], axis=-1)
    area = np.outer(np.diff(rows), np.diff(cols)).astype(np.float64)
    return (sums / area).reshape(values.shape[:-2] + (grid[0] * grid[1],))
