"""The finger region of a whole NIR transmitted-light frame: find the finger, straighten it, normalize its width.

Why a new step and not ``vein_ops.locate``: on frames from a real capture box the edge scan there often takes the
sensor housing (dark grey with bright reflections) or the bright housing post for finger, so the model sees
housing instead of veins (issue 19). Here the finger is found as one long bright band with two long smooth edges:

1. frame checks with a reason a user can act on (black, white, saturated; frozen frames are caught by
   :class:`FrozenFrameCheck`, which needs the previous frame);
2. on a small smoothed copy, the lit part (Otsu) minus dark valleys along the frame (the gap between the finger
   and a lit housing panel), opened with a wide *horizontal* kernel (the vertical housing post and the speckle
   reflections of the housing are narrow along the finger): no long lit band is "no finger", two similar bands
   apart are "two fingers";
3. the finger's upper and lower edges are the best-scoring smooth paths across the frame (dynamic programming
   over columns) of "dark on one side, lit on the other" weighted by the lit side's brightness: the finger is the
   brightest thing in the frame, a lit housing panel is dimmer, reflections are short. Both edges are searched in
   both orders (upper then lower, lower then upper) at least ``MIN_WIDTH`` apart and the better pair kept;
4. a line through the edge midpoints gives the axis tilt; robust quadratics through each edge, in the frame
   turned by that tilt, follow a bent finger; an edge lying on the frame border in many columns is "finger at the
   frame edge";
5. the region is resampled from the full-resolution frame with one remap: every output column runs from the
   upper to the lower edge (inset by a margin), so finger width is normalized and the axis is straight.

A ready ROI crop (FV-USM style, no background around the finger) is recognized and passed through turned to a
horizontal axis. About 3-4 ms for a 320x240 frame on one x86 core (the path search is the main cost).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np

from device.errors import ImageError
from device.imageio import to_grey_u8
from device.vein.edges import EDGE_REACH, MIN_WIDTH
from device.vein.edges import edges as _edges

WORK_WIDTH = 160  # frames are analysed at this width
ROI_SIZE = (96, 288)  # (height, width) of the normalized region, finger axis horizontal
ROI_INSET = 0.1  # fraction of the finger width left out inside each edge (edges are bright rims, not veins)
END_TRIM = 0.03  # fraction of the finger length left out at each end
MIN_LENGTH = 0.5  # a finger covers at least this fraction of the frame width
MAX_TILT_DEG = 35.0
EDGE_TOUCH = 0.4  # more columns than this with an edge on the frame border: the finger is partly outside
BLACK_P99 = 40  # 99th percentile below this: the light is off or the lens covered
WHITE_P5 = 215  # 5th percentile above this: nothing in front of the camera and the light in the lens
SATURATED = 250
MAX_SATURATED = 0.35  # saturated fraction of the finger region above this: overexposed
FROZEN_DIFF = 0.25  # mean absolute grey difference to the previous frame below this: the camera delivers no new frames
CORE_AREA = 0.06  # the bright core of a finger covers at least this fraction of the frame
TWO_FINGER_AREA = 0.5  # a second core at least this fraction of the first ...
TWO_FINGER_GAP = 0.3  # ... whose centre is this fraction of the frame height away is a second finger
TWO_FINGER_LIGHT = 0.8  # ... and about as bright
VALLEY_REACH = 3  # work pixels either side of a dark line
VALLEY_DEPTH = 12.0  # grey levels a dark line lies under both sides
VALLEY_RATIO = 0.85  # ... and under this fraction of the darker side
CROP_ASPECT = 2.0  # a ready crop is at least this many times longer than wide
CROP_LIT_ROWS = 0.9  # rows with lit pixels in more than this fraction: no background above/below, a ready crop


class RegionError(ImageError):
    """No usable finger region in a frame; ``reason`` is one stable word group a UI can key on."""

    def __init__(self, reason: str, hint: str) -> None:
        super().__init__(f"{reason}: {hint}")
        self.reason = reason


NO_FINGER = "no finger found"
TWO_FINGERS = "two fingers"
AT_EDGE = "finger at the frame edge"
BLACK = "black frame"
WHITE = "white frame"
FROZEN = "frozen frame"
SATURATED_REASON = "overexposed"
REASONS = (NO_FINGER, TWO_FINGERS, AT_EDGE, BLACK, WHITE, FROZEN, SATURATED_REASON)


@dataclass(frozen=True)
class Region:
    """A normalized finger region: ``roi`` (uint8, ``ROI_SIZE``, axis horizontal) and where it came from."""

    roi: np.ndarray
    angle_deg: float  # tilt of the finger axis in the frame (0 for crops)
    upper: np.ndarray  # (N, 2) x, y points of the upper edge in frame coordinates (for drawing)
    lower: np.ndarray  # (N, 2) x, y points of the lower edge
    width_px: float  # median finger width in frame pixels
    is_crop: bool


def check_frame(grey: np.ndarray) -> None:
    """Frame-level reasons before any search: black, white (RegionError), or not an image (ImageError)."""
    if grey.ndim != 2 or min(grey.shape) < 16:
        raise ImageError(f"a vein frame must be a grey image of at least 16x16 pixels, got shape {grey.shape}")
    hist = np.cumsum(np.bincount(grey[::2, ::2].ravel(), minlength=256))
    p99 = int(np.searchsorted(hist, 0.99 * hist[-1]))
    p5 = int(np.searchsorted(hist, 0.05 * hist[-1]))
    if p99 < BLACK_P99:
        raise RegionError(BLACK, "turn the infrared light on and uncover the camera")
    if p5 > WHITE_P5:
        raise RegionError(WHITE, "the light shines into the camera: place a finger over it or lower the exposure")


class FrozenFrameCheck:
    """Remembers the last frame of a camera; the same picture twice means the camera stopped delivering frames."""

    def __init__(self) -> None:
        self._last: np.ndarray | None = None

    def check(self, grey: np.ndarray) -> None:
        small = cv2.resize(grey, (64, 48), interpolation=cv2.INTER_AREA).astype(np.float32)
        last, self._last = self._last, small
        if last is not None and float(np.abs(small - last).mean()) < FROZEN_DIFF:
            raise RegionError(FROZEN, "the camera repeats the same picture: check its cable or restart it")


def _robust_poly(xs: np.ndarray, ys: np.ndarray, degree: int) -> np.ndarray:
    """Polynomial coefficients fitted twice, the second time without points far from the first fit."""
    coef = np.polyfit(xs, ys, degree)
    resid = np.abs(ys - np.polyval(coef, xs))
    keep = resid <= max(2.5 * float(np.median(resid)), 1.5)
    if keep.sum() > degree + 3:
        coef = np.polyfit(xs[keep], ys[keep], degree)
    return coef


def _valleys(work: np.ndarray) -> np.ndarray:
    """Dark lines running along the frame: the gap between the finger and a lit housing panel or a reflection."""
    k = VALLEY_REACH
    img = work.astype(np.float32)
    out = np.zeros(img.shape, bool)
    above, below, mid = img[: -2 * k], img[2 * k :], img[k:-k]
    out[k:-k] = (above + below - 2 * mid > 2 * VALLEY_DEPTH) & (mid < VALLEY_RATIO * np.minimum(above, below))
    # a gap that fades for a few columns still separates: close it along the row
    return cv2.dilate(out.astype(np.uint8), np.ones((1, 2 * VALLEY_REACH + 1), np.uint8)) > 0


def _core(work: np.ndarray) -> np.ndarray:
    """The finger component of the lit mask (RegionError for none or two).

    Lit = over Otsu's threshold, minus dark valleys (so a lit housing panel beside the finger is a component of its
    own), opened with a wide horizontal kernel (the housing post and speckle reflections are narrow along the
    finger). The finger is the long component with the most light (area times mean grey level squared).
    """
    h, w = work.shape
    level, _ = cv2.threshold(work, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    lit = ((work > level) & ~_valleys(work)).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (max(3, w // 6), 3))
    opened = cv2.morphologyEx(lit, cv2.MORPH_OPEN, kernel)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=4)
    means = np.bincount(labels.ravel(), weights=work.ravel().astype(np.float64), minlength=count)
    areas = stats[:, cv2.CC_STAT_AREA]
    light = means / np.maximum(areas, 1)
    weight = areas * light**2
    ranked = [k for k in np.argsort(-weight) if k > 0
              and stats[k, cv2.CC_STAT_WIDTH] >= MIN_LENGTH * w and areas[k] >= CORE_AREA * h * w]
    if not ranked:
        raise RegionError(NO_FINGER, "place one finger along the window over the light")
    if len(ranked) > 1 and _apart(labels == ranked[0], labels == ranked[1], h, light[ranked[0]], light[ranked[1]]):
        raise RegionError(TWO_FINGERS, "place only one finger over the light")
    return labels == ranked[0]


def _apart(a: np.ndarray, b: np.ndarray, h: int, light_a: float, light_b: float) -> bool:
    """Two bands of similar size and light with a gap between them are two fingers (one finger is one band)."""
    if b.sum() < TWO_FINGER_AREA * a.sum() or light_b < TWO_FINGER_LIGHT * light_a:
        return False
    ya, yb = np.nonzero(a)[0].mean(), np.nonzero(b)[0].mean()
    return abs(ya - yb) > TWO_FINGER_GAP * h


def _edges_fit(up: np.ndarray, lo: np.ndarray, shape: tuple[int, int], angle: float,
               degree: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """Robust polynomial (upper, lower) edge coefficients in the frame rotated by ``angle``, the columns they hold
    for, and the fraction of columns where an edge lies on the frame border."""
    h, w = shape
    xs = np.arange(w, dtype=np.float64)
    touch = float(((up <= EDGE_REACH) | (lo >= h - 1 - EDGE_REACH)).mean())
    rot = _rotation(shape, angle)
    out = []
    for ys in (up, lo):
        rx = rot[0, 0] * xs + rot[0, 1] * ys + rot[0, 2]
        ry = rot[1, 0] * xs + rot[1, 1] * ys + rot[1, 2]
        out.append((rx, ry))
    lo_x = max(out[0][0].min(), out[1][0].min(), 0.0)
    hi_x = min(out[0][0].max(), out[1][0].max(), w - 1.0)
    cols = np.arange(math.ceil(lo_x), math.floor(hi_x) + 1, dtype=np.float64)
    if cols.size < 8:
        raise RegionError(NO_FINGER, "place one finger along the window over the light")
    return _robust_poly(*out[0], degree), _robust_poly(*out[1], degree), cols, touch


def _rotation(shape: tuple[int, int], angle_deg: float) -> np.ndarray:
    h, w = shape
    return cv2.getRotationMatrix2D((w / 2.0, h / 2.0), angle_deg, 1.0)


def find_region(image: np.ndarray, size: tuple[int, int] = ROI_SIZE) -> Region:
    """The normalized finger region of a whole frame or a ready crop; RegionError says why there is none."""
    grey = to_grey_u8(np.asarray(image))
    check_frame(grey)
    if grey.shape[0] > grey.shape[1]:  # portrait crops (FV-USM) turn so the axis is horizontal
        grey = cv2.rotate(grey, cv2.ROTATE_90_COUNTERCLOCKWISE)
    h, w = grey.shape
    scale = min(1.0, WORK_WIDTH / w)
    work = cv2.resize(grey, (max(16, round(w * scale)), max(16, round(h * scale))), interpolation=cv2.INTER_AREA)
    work = cv2.GaussianBlur(work, (0, 0), 1.5)
    if _is_crop(work):
        roi = cv2.resize(grey, (size[1], size[0]), interpolation=cv2.INTER_AREA)
        return Region(roi, 0.0, np.array([[0, 0], [w - 1, 0]], float), np.array([[0, h - 1], [w - 1, h - 1]], float),
                      float(h), True)
    _core(work)  # no finger, two fingers
    up, lo = _edges(work)
    upc, loc, _, _ = _edges_fit(up, lo, work.shape, 0.0, 1)
    xs = np.arange(work.shape[1], dtype=np.float64)
    slope = float(np.polyval(upc, xs[-1]) + np.polyval(loc, xs[-1]) - np.polyval(upc, 0.0) - np.polyval(loc, 0.0))
    angle = math.degrees(math.atan(slope / 2.0 / max(xs[-1], 1.0)))
    if abs(angle) > MAX_TILT_DEG:
        raise RegionError(NO_FINGER, "the finger lies across the window: place it along the window")
    upc, loc, cols, touch = _edges_fit(up, lo, work.shape, angle, 2)
    if touch > EDGE_TOUCH:
        raise RegionError(AT_EDGE, "move the finger to the middle of the window")
    return _resample(grey, scale, angle, upc, loc, cols, size, work.shape)


def _is_crop(work: np.ndarray) -> bool:
    """A ready crop: elongated like a finger (a camera frame is 4:3 or 16:9, an ROI crop about 3:1) and lit in
    almost every row (no unlit background above or below). The shape matters: a frame whose housing is lit by
    light leaking past a finger pressed to one side is lit in every row too."""
    if work.shape[1] < CROP_ASPECT * work.shape[0]:
        return False
    level, _ = cv2.threshold(work, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    rows_lit = (work > 0.5 * level).mean(axis=1) > 0.5
    return bool(rows_lit.mean() > CROP_LIT_ROWS and float(np.median(work)) > 0.5 * level)


def _resample(grey: np.ndarray, scale: float, angle: float, upc: np.ndarray, loc: np.ndarray, cols: np.ndarray,
              size: tuple[int, int], work_shape: tuple[int, int]) -> Region:
    """Sample the ROI (straightened, width-normalized) from the full-resolution frame with one remap."""
    out_h, out_w = size
    x0, x1 = float(cols.min()), float(cols.max())
    trim = END_TRIM * (x1 - x0)
    xs = np.linspace(x0 + trim, x1 - trim, out_w)
    top, bottom = np.polyval(upc, xs), np.polyval(loc, xs)
    width = bottom - top
    if float(np.median(width)) < MIN_WIDTH * work_shape[0]:
        raise RegionError(NO_FINGER, "place one finger along the window over the light")
    inset = ROI_INSET * width
    frac = np.linspace(0.0, 1.0, out_h)[:, None]
    ys = (top + inset)[None, :] + frac * (width - 2 * inset)[None, :]
    xs_grid = np.broadcast_to(xs[None, :], ys.shape)
    inverse = cv2.invertAffineTransform(_rotation(work_shape, angle))  # straightened work -> work
    wx = inverse[0, 0] * xs_grid + inverse[0, 1] * ys + inverse[0, 2]
    wy = inverse[1, 0] * xs_grid + inverse[1, 1] * ys + inverse[1, 2]
    map_x = ((wx + 0.5) / scale - 0.5).astype(np.float32)
    map_y = ((wy + 0.5) / scale - 0.5).astype(np.float32)
    roi = cv2.remap(grey, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if float((roi >= SATURATED).mean()) > MAX_SATURATED:
        raise RegionError(SATURATED_REASON, "reduce the infrared light or the exposure")
    edges = []
    for poly in (upc, loc):
        ey = np.polyval(poly, xs)
        fx = inverse[0, 0] * xs + inverse[0, 1] * ey + inverse[0, 2]
        fy = inverse[1, 0] * xs + inverse[1, 1] * ey + inverse[1, 2]
        edges.append(np.stack([(fx + 0.5) / scale - 0.5, (fy + 0.5) / scale - 0.5], axis=1))
    return Region(roi, angle, edges[0], edges[1], float(np.median(width)) / scale, False)
