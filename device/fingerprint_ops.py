"""Fingerprint stages: orientation field, foreground segmentation, crop, contrast normalization.

Each stage is a small pure function on numpy arrays so that ``device.preprocess`` can read like a table of
contents, the synthetic generator's tests can check ridge flow with :func:`orientation_field`, and quality can
reuse the segmentation's statistics instead of computing them twice.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from device import params


@dataclass(frozen=True)
class OrientationField:
    """Per-block ridge orientation and how clearly it is defined.

    ``angles``: ridge direction in radians in [0, pi) (0 = horizontal ridges, measured counter-clockwise with
    the image's y axis pointing down, i.e. as seen on screen). ``coherence``: 0 (isotropic, no direction) to 1
    (perfectly parallel ridges). ``energy``: mean squared gradient of the block (how much texture it has).
    ``drift``: length of the block's mean gradient over its RMS gradient: near 0 where ridges alternate dark and
    light, near 1 on a slope or a single edge (which is just as "coherent" but holds no ridges).
    """

    angles: np.ndarray
    coherence: np.ndarray
    energy: np.ndarray
    block: int
    drift: np.ndarray | None = None


def percentile(values: np.ndarray, q: float) -> float:
    """``np.percentile`` (linear interpolation) by partial sort: same value, without its Python overhead."""
    flat = np.asarray(values).ravel()
    if flat.size == 0:
        raise ValueError("percentile of an empty array")
    pos = q / 100.0 * (flat.size - 1)
    lo = int(np.floor(pos))
    hi = min(lo + 1, flat.size - 1)
    part = np.partition(flat, [lo, hi]) if hi != lo else np.partition(flat, lo)
    a, b = float(part[lo]), float(part[hi])
    return a + (b - a) * (pos - lo)


def block_mean(values: np.ndarray, block: int) -> np.ndarray:
    """Mean of each full ``block`` x ``block`` tile (partial tiles at the right/bottom edge are dropped)."""
    bh, bw = values.shape[0] // block, values.shape[1] // block
    if bh == 0 or bw == 0:
        return np.zeros((bh, bw), np.float32)
    tiles = np.ascontiguousarray(values[: bh * block, : bw * block], dtype=np.float32)
    return cv2.resize(tiles, (bw, bh), interpolation=cv2.INTER_AREA)  # exact tile means for integer factors


def orientation_field(image: np.ndarray, block: int = params.FP_BLOCK) -> OrientationField:
    """Gradient-based (structure tensor) ridge orientation and coherence per block.

    Why the structure tensor: doubling the gradient angle makes opposite gradients on the two flanks of a
    ridge add up instead of cancelling, and the tensor's eigenvalue spread is a standard coherence measure
    (Kass & Witkin; Bazen & Gerez).
    """
    img = np.asarray(image, dtype=np.float32)
    if img.ndim != 2:
        raise ValueError(f"orientation_field expects a 2-D image, got shape {img.shape}")
    if min(img.shape) < 3:
        empty = np.zeros((img.shape[0] // block, img.shape[1] // block), np.float32)
        return OrientationField(empty, empty.copy(), empty.copy(), block, empty.copy())
    gx = cv2.Sobel(img, cv2.CV_32F, 1, 0, ksize=3)
    gy = cv2.Sobel(img, cv2.CV_32F, 0, 1, ksize=3)
    gxx = block_mean(gx * gx, block)
    gyy = block_mean(gy * gy, block)
    gxy = block_mean(gx * gy, block)
    diff = gxx - gyy
    total = gxx + gyy
    coherence = np.sqrt(diff * diff + 4.0 * gxy * gxy) / np.maximum(total, 1e-6)
    gradient_angle = 0.5 * np.arctan2(2.0 * gxy, diff)  # dominant gradient direction (image coordinates)
    # ridges run perpendicular to the gradient; negate to express the angle counter-clockwise on screen
    angles = np.mod(-(gradient_angle + np.pi / 2.0), np.pi).astype(np.float32)
    mean_gx, mean_gy = block_mean(gx, block), block_mean(gy, block)
    drift = np.sqrt(mean_gx * mean_gx + mean_gy * mean_gy) / np.sqrt(np.maximum(total, 1e-6))
    return OrientationField(
        angles, np.clip(coherence, 0.0, 1.0).astype(np.float32), total.astype(np.float32), block,
        np.clip(drift, 0.0, 1.0).astype(np.float32),
    )


def shrink_for_work(image: np.ndarray, max_side: int = params.FP_WORK_SIDE) -> np.ndarray:
    """Downscale (never upscale) so the longer side is at most ``max_side``; segmentation needs no more."""
    h, w = image.shape
    scale = max_side / max(h, w)
    if scale >= 1.0:
        return image
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA)


@dataclass(frozen=True)
class Segmentation:
    """Foreground (finger) mask and the per-block statistics quality needs."""

    mask: np.ndarray  # bool, image size: True on the finger
    block_mask: np.ndarray  # bool, block grid
    block_std: np.ndarray  # grey-level std per block
    field: OrientationField


def _largest_component(mask: np.ndarray) -> np.ndarray:
    count, labels, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=4)
    if count <= 1:
        return np.zeros_like(mask, dtype=bool)
    best = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    return labels == best


def _fill_holes(mask: np.ndarray) -> np.ndarray:
    """Fill background regions that do not touch the border (pores, a smudge inside the finger)."""
    inverse = (~mask).astype(np.uint8)
    count, labels = cv2.connectedComponents(inverse, connectivity=4)
    is_hole = np.ones(count, bool)
    is_hole[0] = False  # label 0 is the mask itself
    is_hole[np.concatenate([labels[0], labels[-1], labels[:, 0], labels[:, -1]])] = False  # touches the border
    return mask | is_hole[labels]


def segment(image: np.ndarray, block: int = params.FP_BLOCK) -> Segmentation:
    """Foreground blocks: enough grey-level variance (relative and absolute) and a defined ridge orientation.

    The block mask is cleaned with a morphological close/open, reduced to its largest connected component and
    has its holes filled, then scaled back to pixels.
    """
    img = np.asarray(image, dtype=np.float32)
    field = orientation_field(img, block)
    mean = block_mean(img, block)
    block_std = np.sqrt(np.maximum(block_mean(img * img, block) - mean * mean, 0.0))
    if block_std.size == 0:
        empty = np.zeros(img.shape, bool)
        return Segmentation(empty, np.zeros(block_std.shape, bool), block_std, field)
    reference = percentile(block_std, 90.0)
    threshold = max(params.FP_VARIANCE_FRACTION * reference, params.FP_MIN_BLOCK_STD)
    blocks = (block_std > threshold) & (field.coherence > params.FP_MIN_COHERENCE)
    kernel = np.ones((3, 3), np.uint8)
    cleaned = cv2.morphologyEx(blocks.astype(np.uint8), cv2.MORPH_CLOSE, kernel)
    cleaned = cv2.morphologyEx(cleaned, cv2.MORPH_OPEN, kernel).astype(bool)
    cleaned = _fill_holes(_largest_component(cleaned))
    mask = np.zeros(img.shape, bool)
    bh, bw = cleaned.shape
    mask[: bh * block, : bw * block] = np.repeat(np.repeat(cleaned, block, axis=0), block, axis=1)
    return Segmentation(mask, cleaned, block_std, field)


def bounding_box(mask: np.ndarray, margin: float = params.FP_CROP_MARGIN) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) of the mask's True pixels plus a margin; the whole image if the mask is empty."""
    h, w = mask.shape
    rows = np.flatnonzero(mask.any(axis=1))
    cols = np.flatnonzero(mask.any(axis=0))
    if rows.size == 0 or cols.size == 0:
        return 0, h, 0, w
    pad = round(margin * max(h, w))
    return max(0, rows[0] - pad), min(h, rows[-1] + 1 + pad), max(0, cols[0] - pad), min(w, cols[-1] + 1 + pad)


def normalize_contrast(image: np.ndarray, mask: np.ndarray, sigma: float) -> np.ndarray:
    """Local mean/variance normalization inside the finger, mapped to [0, 1]; background set to neutral grey.

    Why local: pressure and moisture make one part of a print dark and another faint; dividing by the local
    standard deviation (over about two ridge periods) evens ridge contrast across the finger.
    """
    img = np.asarray(image, dtype=np.float32)
    k = max(3, int(2 * sigma) | 1)  # box filters: O(1) per pixel, unlike a wide Gaussian
    mean = cv2.blur(img, (k, k))
    centred = img - mean
    var = cv2.blur(centred * centred, (k, k))
    floor = max(percentile(var[mask], 50.0) * 0.05 if mask.any() else 1.0, 1.0)
    normalized = centred / np.sqrt(var + floor)
    out = normalized * (0.5 / params.FP_NORM_CLIP) + 0.5
    out = np.clip(out, 0.0, 1.0)
    out[~mask] = params.FP_BACKGROUND
    return out.astype(np.float32)


def fit_into(image: np.ndarray, size: tuple[int, int], fill: float) -> np.ndarray:
    """Resize keeping the aspect ratio so the image fits ``size`` (h, w), centred and padded with ``fill``."""
    th, tw = size
    h, w = image.shape
    out = np.full((th, tw), fill, np.float32)
    if h == 0 or w == 0:
        return out
    scale = min(th / h, tw / w)
    nh, nw = max(1, min(th, round(h * scale))), max(1, min(tw, round(w * scale)))
    interp = cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR
    resized = cv2.resize(image.astype(np.float32), (nw, nh), interpolation=interp)
    top, left = (th - nh) // 2, (tw - nw) // 2
    out[top : top + nh, left : left + nw] = resized
    return out


def ridge_period(image: np.ndarray, mask: np.ndarray) -> float:
    """Dominant ridge period (px) of the finger: the peak of the radially summed power spectrum.

    Why the spectrum: ridges are a narrow-band texture, so the whole finger's power piles up on one ring whose
    radius is the ridge frequency; that is cheap (one FFT of the working image) and needs no orientation field.
    The contrast-normalized finger is windowed (Hann) so the mask edge and the image border add no ring.
    Returns the middle of the search range when the finger has no ridge energy at all.
    """
    img = np.asarray(image, np.float32)
    lo_f, hi_f = 1.0 / params.FP2_MAX_FREQUENCY_PERIOD, 1.0 / params.FP2_MIN_FREQUENCY_PERIOD
    if img.ndim != 2 or min(img.shape) < 8 or not mask.any():
        return 2.0 / (lo_f + hi_f)
    centred = normalize_contrast(img, mask, params.FP_NORM_SIGMA) - params.FP_BACKGROUND
    h, w = centred.shape
    windowed = centred * np.outer(np.hanning(h), np.hanning(w)).astype(np.float32)
    power = np.abs(np.fft.rfft2(windowed)) ** 2
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    radius = np.sqrt(fx * fx + fy * fy)
    edges = np.linspace(lo_f, hi_f, 121)
    ring = np.digitize(radius.ravel(), edges)
    sums = np.bincount(ring, weights=power.ravel(), minlength=edges.size + 1)[1 : edges.size]
    if not np.isfinite(sums).all() or sums.max() <= 0:
        return 2.0 / (lo_f + hi_f)
    k = int(np.argmax(sums))
    shift = 0.0
    if 0 < k < sums.size - 1:  # parabolic interpolation between rings
        a, b, c = sums[k - 1], sums[k], sums[k + 1]
        denom = a - 2 * b + c
        shift = 0.5 * (a - c) / denom if denom < 0 else 0.0
    step = edges[1] - edges[0]
    return float(1.0 / (edges[0] + (k + 0.5 + shift) * step))


def rescale(image: np.ndarray, scale: float) -> np.ndarray:
    """Resize by ``scale`` (area averaging when shrinking, so ridges do not alias)."""
    h, w = image.shape
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return cv2.resize(image, size, interpolation=cv2.INTER_AREA if scale < 1.0 else cv2.INTER_LINEAR)


def centroid(mask: np.ndarray) -> tuple[float, float]:
    """(row, col) centre of the mask's True pixels; the image centre if there are none."""
    rows, cols = np.nonzero(mask)
    if rows.size == 0:
        return (mask.shape[0] - 1) / 2.0, (mask.shape[1] - 1) / 2.0
    return float(rows.mean()), float(cols.mean())


def crop_centred(image: np.ndarray, centre: tuple[float, float], size: tuple[int, int], fill: float) -> np.ndarray:
    """The ``size`` (h, w) window of ``image`` centred on ``centre``; parts outside the image are ``fill``."""
    th, tw = size
    h, w = image.shape
    top, left = round(centre[0] - th / 2.0), round(centre[1] - tw / 2.0)
    out = np.full((th, tw), fill, np.float32)
    y0, x0 = max(0, top), max(0, left)
    y1, x1 = min(h, top + th), min(w, left + tw)
    if y1 > y0 and x1 > x0:
        out[y0 - top : y1 - top, x0 - left : x1 - left] = image[y0:y1, x0:x1]
    return out
