"""The enhanced ridge image a partial-print matcher looks at: the extractor's own stages, stopped before thinning.

Why the enhanced image and not the raw capture: keypoint detectors and descriptors on raw captures respond to
sensor texture, pressure and dryness; after contextual Gabor filtering (``device.fingerprint.enhance``) two
impressions of one finger look alike wherever the ridges are clear, so local descriptors compare ridge shape.
Why not minutiae: a 6.5 x 6.5 mm window holds a handful of minutiae, too few for any minutiae matcher, while
every ridge bend, ending and fork is a place a descriptor can anchor.

Stages (shared with ``extract``): checks -> scale to 500 dpi -> bandpass -> normalize -> orientation ->
segment -> ridge period -> Gabor on the foreground -> 8-bit image (background grey 128) and the mask.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from device.fingerprint import params
from device.fingerprint.enhance import gabor_enhance
from device.fingerprint.errors import FingerprintError
from device.fingerprint.extract import bandpass, check_capture, normalize
from device.fingerprint.frequency import ridge_period
from device.fingerprint.orientation import orientation_field
from device.fingerprint.segment import block_foreground, pixel_mask

MIN_FOREGROUND_SHARE = 0.25  # a touch whose finger covers less of the window than this is "covers almost nothing"
MIN_FOREGROUND_PX = 2500  # at 500 dpi, about 6.5 mm^2 (a 50x50 patch): below it no matcher can decide


@dataclass(frozen=True)
class RidgeImage:
    """One capture at 500 dpi: ``image`` uint8 (ridges bright, background 128), ``mask`` bool, ``period`` px,
    ``scale`` (500 dpi pixels per capture pixel)."""

    image: np.ndarray
    mask: np.ndarray
    period: float
    scale: float


def ridge_image(grey: np.ndarray, dpi: int = 500) -> RidgeImage:
    """The enhanced ridge image of one capture; FingerprintError (reason ``no_finger``) when it covers too little."""
    img = check_capture(grey)
    if not 250 <= dpi <= 2000:
        raise FingerprintError("bad_image", f"unsupported sensor resolution {dpi} dpi (250-2000)")
    scale = params.WORK_DPI / dpi
    if abs(scale - 1.0) > 0.01:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    h0, w0 = img.shape
    b = params.BLOCK
    img = cv2.copyMakeBorder(img, 0, -h0 % b, 0, -w0 % b, cv2.BORDER_REPLICATE)
    raw = bandpass(img)
    norm = normalize(raw)
    field = orientation_field(norm)
    energy = cv2.resize(raw * raw, (img.shape[1] // b, img.shape[0] // b), interpolation=cv2.INTER_AREA)
    mask = pixel_mask(block_foreground(energy, field.block_coherence), img.shape)[:h0, :w0]
    area = int(mask.sum())
    if area < MIN_FOREGROUND_PX or area < MIN_FOREGROUND_SHARE * h0 * w0:
        raise FingerprintError("no_finger", f"the touch covers only {100 * area / (h0 * w0):.0f} % of the sensor: "
                                            "place the finger flat over the whole sensor")
    period = ridge_period(norm[:h0, :w0], mask)
    enhanced = gabor_enhance(norm, field.theta, period)[:h0, :w0]
    spread = float(np.percentile(np.abs(enhanced[mask]), 95)) or 1.0
    out = np.where(mask, 128.0 + 127.0 * np.clip(enhanced / spread, -1.0, 1.0), 128.0)
    return RidgeImage(out.astype(np.uint8), mask, float(period), float(scale))
