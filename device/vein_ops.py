"""Finger-vein (NIR transillumination) stages: axis orientation, finger edges, rotation, ROI, CLAHE.

Two kinds of input reach this module: ready ROI crops (FV-USM style, the finger fills the image) and raw camera
frames (a bright finger on a dark background, roughly horizontal). :func:`find_finger` tells them apart by
looking for the finger's upper and lower edges column by column (the idea of Lee's mask: a dark-to-bright step
above the finger and a bright-to-dark step below it). Where most columns show no background, the image is a
crop and the ROI is the whole image; otherwise the midline through the edge midpoints gives the finger's tilt,
the frame is rotated to make the axis horizontal and the ROI is cut inside the edges.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from device import params


@dataclass(frozen=True)
class FingerRegion:
    """Where the finger is in an image (coordinates of that image)."""

    upper: np.ndarray  # float per column: y of the upper finger edge (0 where the finger reaches the border)
    lower: np.ndarray  # float per column: y of the lower finger edge (h - 1 where it reaches the border)
    present: np.ndarray  # bool per column: the finger covers this column
    is_crop: bool  # no edges found: the image is already a finger ROI (area < 1: some columns are background)
    angle_deg: float  # tilt of the finger axis; rotating by this angle makes it horizontal
    area: float  # fraction of the image covered by the finger


def orient_horizontal(grey: np.ndarray) -> np.ndarray:
    """Make the finger axis horizontal: portrait images (FV-USM ROIs are 100 wide x 300 high) turn 90 degrees.

    The turn is counter-clockwise, so the top of a portrait image ends up on the left; keep datasets consistent.
    """
    h, w = grey.shape
    if h > w:
        return cv2.rotate(grey, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return grey


def working_copy(grey: np.ndarray, height: int = params.VEIN_WORK_HEIGHT) -> tuple[np.ndarray, float]:
    """A smoothed float copy at ``height`` rows (never upscaled) and the scale factor work/original."""
    h, w = grey.shape
    scale = min(1.0, height / h)
    small = grey
    if scale < 1.0:
        small = cv2.resize(grey, (max(1, round(w * scale)), max(1, round(h * scale))), interpolation=cv2.INTER_AREA)
    work = cv2.GaussianBlur(small.astype(np.float32), (0, 0), 2.0)
    return work, scale


def _edge_steps(work: np.ndarray, reach: int) -> np.ndarray:
    """Grey-level step going down: ``work[y + reach] - work[y - reach]`` (0 where it does not fit)."""
    steps = np.zeros_like(work)
    if work.shape[0] > 2 * reach:
        steps[reach:-reach] = work[2 * reach :] - work[: -2 * reach]
    return steps


def _line_slope(xs: np.ndarray, ys: np.ndarray) -> tuple[float, float]:
    """Least-squares slope and intercept (closed form: polyfit is ten times slower for two parameters)."""
    xm, ym = float(xs.mean()), float(ys.mean())
    dx = xs - xm
    denom = float((dx * dx).sum())
    slope = float((dx * (ys - ym)).sum()) / denom if denom > 0 else 0.0
    return slope, ym - slope * xm


def _fit_midline(xs: np.ndarray, mids: np.ndarray) -> float:
    """Slope of a line through the edge midpoints, refitted once without outliers (robust enough for edges)."""
    if xs.size < 4:
        return 0.0
    slope, icpt = _line_slope(xs, mids)
    residual = np.abs(mids - (slope * xs + icpt))
    keep = residual <= max(2.0 * float(np.median(residual)), 1.0)
    if keep.sum() >= 4:
        slope, _ = _line_slope(xs[keep], mids[keep])
    return slope


def _quantile(values: np.ndarray, q: float) -> float:
    """The ``q`` quantile (0..1) by partial sort, without ``np.percentile``'s overhead."""
    flat = values.ravel()
    k = min(flat.size - 1, max(0, int(q * (flat.size - 1))))
    return float(np.partition(flat, k)[k])


def _band_means(work: np.ndarray, upper: np.ndarray, lower: np.ndarray) -> np.ndarray:
    """Mean of each column between its upper and lower edge (inclusive), via a cumulative sum."""
    cols = np.arange(work.shape[1])
    cum = np.vstack([np.zeros((1, work.shape[1]), np.float64), np.cumsum(work, axis=0, dtype=np.float64)])
    counts = np.maximum(lower - upper + 1, 1)
    return ((cum[lower + 1, cols] - cum[upper, cols]) / counts).astype(np.float32)


def _outer_edges(work: np.ndarray, steps: np.ndarray, reach: int, lit: float) -> tuple[np.ndarray, np.ndarray]:
    """Per column, the outermost finger edge scanning from row 0 inwards: the first strong dark-to-bright step
    whose outer side is background (much darker than the inner side, which must be lit), refined to the
    strongest step within ``2 * reach`` rows. Returns (row, found) per column.

    Why the outermost and not the strongest: a dark vein just inside a dimly lit finger edge makes a stronger
    step than the edge itself; taking it would cut the finger in half.
    """
    h, w = work.shape
    cols = np.arange(w)
    outer = np.zeros_like(work)
    inner = np.zeros_like(work)
    if h > 2 * reach:
        outer[reach:-reach] = work[: h - 2 * reach]
        inner[reach:-reach] = work[2 * reach :]
    candidate = (
        (steps >= params.VEIN_MIN_EDGE_STEP) & (outer < params.VEIN_BACKGROUND_RATIO * inner) & (inner >= lit)
    )
    found = candidate.any(axis=0)
    first = np.argmax(candidate, axis=0)
    window = np.clip(first[None, :] + np.arange(2 * reach + 1)[:, None], 0, h - 1)
    best = window[np.argmax(steps[window, cols[None, :]], axis=0), cols]
    return np.where(found, best, 0), found


def find_finger(work: np.ndarray) -> FingerRegion:
    """Upper/lower finger edges per column, whether the image is a crop, the axis tilt and the finger area."""
    h, w = work.shape
    reach = max(2, h // 40)
    steps = _edge_steps(work, reach)
    lit = params.VEIN_LIT_FRACTION * _quantile(work[::2, ::2], 0.95)  # the finger side of an edge must be lit
    half = h // 2
    up_y, up_found = _outer_edges(work[:half], steps[:half], reach, lit)
    lo_y, lo_found = _outer_edges(work[half:][::-1], -steps[half:][::-1], reach, lit)
    lo_y = h - 1 - lo_y
    edges_seen = up_found | lo_found
    if edges_seen.mean() < params.VEIN_MIN_EDGE_COLUMNS:  # no background around the finger: a ready ROI crop
        # in a crop every column is finger; dark columns mean a finger lying across the frame, not along it
        column_level = work.mean(axis=0)
        lit_columns = column_level >= params.VEIN_CROP_DARK_COLUMN * float(column_level.max())
        full_up, full_lo = np.zeros(w, np.float32), np.full(w, h - 1, np.float32)
        return FingerRegion(full_up, full_lo, np.ones(w, bool), True, 0.0, float(lit_columns.mean()))
    upper = np.where(up_found, up_y, 0).astype(np.float32)
    lower = np.where(lo_found, lo_y, h - 1).astype(np.float32)
    # columns without edges hold finger if they are about as bright (the finger may fill the frame there);
    # past the fingertip they are background
    band = _band_means(work, upper.astype(np.int64), lower.astype(np.int64))
    finger_level = float(np.median(band[edges_seen]))
    present = edges_seen | (band >= params.VEIN_BACKGROUND_RATIO * finger_level)
    width = lower - upper
    if present.any():  # the rounded fingertip is narrower than the finger: leave it out of the ROI
        present &= width >= params.VEIN_TIP_WIDTH * float(np.median(width[present]))
    both = up_found & lo_found & present
    cols = np.arange(w)
    slope = _fit_midline(cols[both].astype(np.float64), ((upper + lower) / 2.0)[both].astype(np.float64))
    angle = math.degrees(math.atan(slope))
    area = float(((lower - upper + 1) * present).sum() / (h * w))
    return FingerRegion(upper, lower, present, False, angle, area)


def rotate(grey: np.ndarray, angle_deg: float) -> np.ndarray:
    """Rotate about the centre by ``angle_deg`` (OpenCV convention: positive is counter-clockwise on screen).

    The corners that rotate in repeat the border pixels, so they look like background and not like a new edge.
    """
    h, w = grey.shape
    matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle_deg, 1.0)
    return cv2.warpAffine(grey, matrix, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def roi_box(region: FingerRegion, shape: tuple[int, int]) -> tuple[int, int, int, int] | None:
    """(top, bottom, left, right) of the ROI inside the edges of a horizontal finger; None if there is none."""
    h, w = shape
    if region.is_crop:
        return 0, h, 0, w
    cols = np.flatnonzero(region.present)
    if cols.size == 0:
        return None
    top = float(np.median(region.upper[cols]))
    bottom = float(np.median(region.lower[cols]))
    width = bottom - top
    if width <= 2:
        return None
    inset = params.VEIN_ROI_MARGIN * width
    length = cols[-1] - cols[0] + 1
    trim = params.VEIN_END_MARGIN * length
    box = (round(top + inset), round(bottom - inset) + 1, round(cols[0] + trim), round(cols[-1] - trim) + 1)
    if box[1] - box[0] < 2 or box[3] - box[2] < 2:
        return None
    return box


def locate(grey: np.ndarray) -> tuple[float, FingerRegion, float]:
    """Find the finger and the rotation that makes its axis horizontal, without rotating the full image.

    The angle is searched on the small working copy (rotating it is cheap). Returns (angle in degrees, the
    region as seen after that rotation in work coordinates, work/original scale).
    """
    work, scale = working_copy(grey)
    region = find_finger(work)
    if region.is_crop or abs(region.angle_deg) < 0.5 or abs(region.angle_deg) > params.VEIN_MAX_TILT_DEG:
        return 0.0, region, scale
    angle, best = region.angle_deg, region
    for _ in range(2):  # a second pass corrects what the fingertip and the frame border bias in the first fit
        again = find_finger(rotate(work, angle))
        if again.is_crop:  # rotation hid the background (finger fills the frame): keep the unrotated answer
            return 0.0, region, scale
        best = again
        if abs(again.angle_deg) < 0.5:
            break
        angle += again.angle_deg
    return angle, best, scale


def straighten(grey: np.ndarray) -> tuple[np.ndarray, FingerRegion, float]:
    """:func:`locate`, then rotate the whole image: (straightened image, region, scale) for inspection/tests."""
    angle, region, scale = locate(grey)
    return (rotate(grey, angle) if angle else grey), region, scale


def _full_box(region: FingerRegion, shape: tuple[int, int], scale: float) -> tuple[int, int, int, int] | None:
    """The ROI box in full-resolution coordinates, or None."""
    work_shape = (max(1, round(shape[0] * scale)), max(1, round(shape[1] * scale)))
    box = roi_box(region, work_shape)
    if box is None:
        return None
    top, bottom, left, right = (round(v / scale) for v in box)
    return max(0, top), min(shape[0], bottom), max(0, left), min(shape[1], right)


def crop_roi(grey: np.ndarray, region: FingerRegion, scale: float) -> np.ndarray | None:
    """Cut the ROI from an already straightened image (work coordinates scaled back); None if unusable."""
    if region.is_crop:
        return grey
    box = _full_box(region, grey.shape, scale)
    if box is None:
        return None
    top, bottom, left, right = box
    roi = grey[top:bottom, left:right]
    return roi if roi.size else None


def cut_roi(grey: np.ndarray, angle: float, region: FingerRegion, scale: float) -> np.ndarray | None:
    """The ROI of the frame rotated by ``angle``, computed directly: one warp of the ROI's pixels only.

    The pixels of ``crop_roi(rotate(grey, angle), ...)`` (same sampling positions up to OpenCV's 1/32-pixel
    grid, so a few grey levels apart at sharp edges), without rotating the background of a 640x480 frame first.
    """
    if region.is_crop or not angle:
        return crop_roi(grey, region, scale)
    box = _full_box(region, grey.shape, scale)
    if box is None or box[1] <= box[0] or box[3] <= box[2]:
        return None
    top, bottom, left, right = box
    h, w = grey.shape
    matrix = cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle, 1.0)
    matrix[0, 2] -= left
    matrix[1, 2] -= top
    return cv2.warpAffine(
        grey, matrix, (right - left, bottom - top), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )


def wide_blur(img: np.ndarray, sigma: float) -> np.ndarray:
    """A wide Gaussian blur, computed at a quarter of the size and scaled back (the result is smooth anyway).

    Why: a sigma-8 kernel is 49 taps; at a quarter size it is 13, about ten times less work on a Pi.
    """
    h, w = img.shape
    if sigma < 4.0 or min(h, w) < 16:
        return cv2.GaussianBlur(img, (0, 0), sigma, borderType=cv2.BORDER_REFLECT)
    small = cv2.resize(img, (max(1, w // 4), max(1, h // 4)), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), sigma / 4.0, borderType=cv2.BORDER_REFLECT)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def flatten_illumination(image: np.ndarray) -> np.ndarray:
    """Remove the slow brightness changes of transillumination (thick vs thin parts of the finger, LED falloff)
    by subtracting a wide Gaussian blur, then map +-``VEIN_STRETCH_STD`` standard deviations to 0..255 (uint8).

    Why: the veins are a few grey levels deep on a background that varies by a hundred; without flattening,
    CLAHE spends its contrast on the illumination instead of the veins.
    """
    img = image.astype(np.float32)
    sigma = params.VEIN_FLATTEN_SIGMA * img.shape[0]
    detail = img - wide_blur(img, sigma)
    spread = float(detail.std())
    if spread < 1e-3:
        return np.full(img.shape, 128, np.uint8)
    gain = 128.0 / (params.VEIN_STRETCH_STD * spread)
    return np.clip(128.0 + detail * gain, 0, 255).astype(np.uint8)


def clahe(image_u8: np.ndarray) -> np.ndarray:
    """Contrast-limited adaptive histogram equalization: brings out veins without blowing up flat areas."""
    op = cv2.createCLAHE(clipLimit=params.VEIN_CLAHE_CLIP, tileGridSize=params.VEIN_CLAHE_TILES[::-1])
    return op.apply(image_u8)


@lru_cache(maxsize=8)
def _plane_basis(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    yy, xx = np.mgrid[0:h, 0:w]
    x, y = xx.ravel() / max(w - 1, 1) - 0.5, yy.ravel() / max(h - 1, 1) - 0.5
    design = np.stack([np.ones(h * w), x, y, x * x, x * y, y * y], axis=1).astype(np.float32)
    return design, np.linalg.pinv(design).astype(np.float32)


def _detrend(img: np.ndarray) -> np.ndarray:
    """Subtract the best-fitting quadratic surface: illumination ramps and the bright middle of a round finger
    are not vein contrast."""
    design, pinv = _plane_basis(*img.shape)
    return img - (design @ (pinv @ img.ravel())).reshape(img.shape)


def band_contrast(image: np.ndarray) -> tuple[float, float]:
    """(vein-scale contrast, pixel noise) of an ROI at model size: std of a band-pass and of a high-pass."""
    img = _detrend(image.astype(np.float32))
    fine = cv2.GaussianBlur(img, (0, 0), 1.5)
    coarse = wide_blur(img, 8.0)
    # measured away from the border, where blurring a brightness ramp would invent contrast
    m = max(0, min(8, min(img.shape) // 4))
    inner = (slice(m, img.shape[0] - m), slice(m, img.shape[1] - m))
    return float((fine - coarse)[inner].std()), float((img - fine)[inner].std())
