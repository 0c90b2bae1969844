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

import numpy as np

from device.fingerprint.enhance import gabor_enhance
from device.fingerprint.errors import FingerprintError
from device.fingerprint.extract import prepare
from device.fingerprint.frequency import ridge_period

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
    prep = prepare(grey, dpi, resample_tolerance=0.01)  # the extractor's stages; resample unless within 1 %
    (h0, w0), norm, field, scale = prep.shape, prep.norm, prep.field, prep.scale
    mask = prep.mask[:h0, :w0]
    area = int(mask.sum())
    if area < MIN_FOREGROUND_PX or area < MIN_FOREGROUND_SHARE * h0 * w0:
        raise FingerprintError("no_finger", f"the touch covers only {100 * area / (h0 * w0):.0f} % of the sensor: "
                                            "place the finger flat over the whole sensor")
    period = ridge_period(norm[:h0, :w0], mask)
    enhanced = gabor_enhance(norm, field.theta, period)[:h0, :w0]
    spread = float(np.percentile(np.abs(enhanced[mask]), 95)) or 1.0
    out = np.where(mask, 128.0 + 127.0 * np.clip(enhanced / spread, -1.0, 1.0), 128.0)
    return RidgeImage(out.astype(np.uint8), mask, float(period), float(scale))
