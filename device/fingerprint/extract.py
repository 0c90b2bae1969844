"""``extract_minutiae``: a grey fingerprint capture to ``Minutiae``, one stage per module.

    checks -> scale to ~500 dpi -> normalize -> orientation -> segment -> frequency -> enhance -> binarize/thin
           -> detect + clean minutiae -> quality

Fail closed: a capture that is blank, saturated, shows no finger or gives too few minutiae raises
``FingerprintError`` (with a ``reason``) instead of returning a template that could match by accident.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from device.errors import ConfigError
from device.fingerprint import params
from device.fingerprint.enhance import gabor_enhance
from device.fingerprint.errors import FingerprintError
from device.fingerprint.frequency import ridge_period
from device.fingerprint.minutia import Minutiae
from device.fingerprint.minutiae import clustered, detect, directions, facing_breaks
from device.fingerprint.orientation import OrientationField, orientation_field
from device.fingerprint.quality import ImageQuality, image_quality, minutia_quality
from device.fingerprint.segment import block_foreground, pixel_mask
from device.fingerprint.skeleton import binarize, thin


def check_capture(grey: np.ndarray) -> np.ndarray:
    """The capture as a 2-D uint8 array, or a FingerprintError for what no extractor can use."""
    img = np.asarray(grey)
    if img.ndim != 2 or img.dtype != np.uint8 or min(img.shape) < 64:
        raise FingerprintError("bad_image", f"a fingerprint must be a 2-D uint8 grey image of at least 64x64 "
                                            f"pixels, got {img.dtype} {img.shape}")
    if float(cv2.meanStdDev(img)[1][0, 0]) < params.BLANK_STD:
        raise FingerprintError("blank", "the capture is blank: place a finger on the sensor")
    extreme = cv2.countNonZero(cv2.inRange(img, 1, 254))
    if 1.0 - extreme / img.size > params.SATURATED_SHARE:
        raise FingerprintError("saturated", "the capture is saturated: clean the sensor or press more lightly")
    return img


def bandpass(img: np.ndarray) -> np.ndarray:
    """float32, ridges bright, local mean removed (contrast kept: segmentation needs it)."""
    f = 255.0 - img.astype(np.float32)
    return f - _smooth(f)


def normalize(f: np.ndarray) -> np.ndarray:
    """Local contrast equalised, so faint and strong ridges binarize alike."""
    sd = np.sqrt(_smooth(f * f))
    return f / (sd + 4.0)


def _smooth(f: np.ndarray) -> np.ndarray:
    """Local mean over about two ridge periods, computed on the block grid (fast) and interpolated back."""
    h, w = f.shape
    b = params.BLOCK
    small = cv2.resize(f, (w // b, h // b), interpolation=cv2.INTER_AREA)
    small = cv2.GaussianBlur(small, (0, 0), 1.5 * params.DEFAULT_PERIOD / b)
    return cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR)


def _box(mask: np.ndarray, margin: int) -> tuple[slice, slice]:
    """The foreground's bounding box plus ``margin``: every later stage works on this crop only."""
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return (slice(max(rows[0] - margin, 0), min(rows[-1] + 1 + margin, mask.shape[0])),
            slice(max(cols[0] - margin, 0), min(cols[-1] + 1 + margin, mask.shape[1])))


@dataclass(frozen=True)
class Prepared:
    """The stages every fingerprint matcher shares, up to segmentation, on the block-padded ~500 dpi image."""

    norm: np.ndarray  # normalized image, padded to whole blocks
    field: OrientationField
    mask: np.ndarray  # foreground, False outside the capture's own (h, w)
    shape: tuple[int, int]  # the scaled capture's (h, w) before padding
    scale: float  # working pixels per capture pixel


def prepare(grey: np.ndarray, dpi: int, resample_tolerance: float = params.RESAMPLE_TOLERANCE,
            segmenter: str | None = None) -> Prepared:
    """Checks, scale to ~500 dpi (not when within ``resample_tolerance``), bandpass, normalize, orientation, mask.

    ``segmenter``: "classic" or "learned" (``learned_segment``); default ``params.SEGMENTER``."""
    img = check_capture(grey)
    if not 250 <= dpi <= 2000:
        raise FingerprintError("bad_image", f"unsupported sensor resolution {dpi} dpi (250-2000)")
    scale = params.WORK_DPI / dpi
    if abs(scale - 1.0) <= resample_tolerance:
        scale = 1.0  # close enough: pixel constants hold, the period estimate absorbs the rest
    else:
        img = cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC)
    h0, w0 = img.shape
    b = params.BLOCK
    img = cv2.copyMakeBorder(img, 0, -h0 % b, 0, -w0 % b, cv2.BORDER_REPLICATE)
    raw = bandpass(img)
    norm = normalize(raw)
    field = orientation_field(norm)
    energy = cv2.resize(raw * raw, (img.shape[1] // b, img.shape[0] // b), interpolation=cv2.INTER_AREA)
    segmenter = segmenter or params.SEGMENTER
    if segmenter == "learned":
        from device.fingerprint.learned_segment import learned_block_mask

        blocks = learned_block_mask(img, raw, field.block_coherence)
    elif segmenter == "classic":
        blocks = block_foreground(energy, field.block_coherence)
    else:
        raise ConfigError(f"unknown fingerprint segmenter {segmenter!r} (classic or learned)")
    mask = pixel_mask(blocks, img.shape)
    mask[h0:, :] = False
    mask[:, w0:] = False
    return Prepared(norm, field, mask, (h0, w0), scale)


def extract_with_quality(grey: np.ndarray, dpi: int = 500,
                         segmenter: str | None = None) -> tuple[Minutiae, ImageQuality]:
    """Minutiae (coordinates in ``grey``'s pixels) and the capture's quality. Raises FingerprintError."""
    prep = prepare(grey, dpi, segmenter=segmenter)
    norm, field, mask, scale = prep.norm, prep.field, prep.mask, prep.scale
    area = int(mask.sum())
    if area < params.MIN_FOREGROUND_PX:
        raise FingerprintError("no_finger", "no finger found in the capture: place the finger flat on the sensor")
    period = ridge_period(norm, mask)
    box = _box(mask, int(period))
    enhanced = gabor_enhance(norm[box], field.theta[box], period)
    skel = thin(binarize(enhanced, mask[box]))
    cand = detect(skel, period)
    framed = np.pad(mask[box].astype(np.uint8), 1)  # the image edge is an edge of the foreground too
    border = cv2.distanceTransform(framed, cv2.DIST_L2, 3)[cand.yx[:, 0] + 1, cand.yx[:, 1] + 1]
    y, x = cand.yx[:, 0] + box[0].start, cand.yx[:, 1] + box[1].start
    ang = directions(cand.vec, field.theta[y, x].astype(np.float64))
    coh = field.coherence[y, x]
    keep = ~cand.spurious & (border >= params.BORDER_DIST * period) & (coh >= params.MIN_COHERENCE)
    idx = np.flatnonzero(keep)
    idx = idx[~facing_breaks(cand.yx[idx], ang[idx], cand.kind[idx], period)]  # (crop coordinates suffice)
    idx = idx[~clustered(cand.yx[idx], period)]
    q = minutia_quality(coh[idx], border[idx], period).astype(np.float32)
    quality = image_quality(area, field.coherence[mask], len(idx), q, len(cand.kind))
    if len(idx) < params.MIN_MINUTIAE:
        raise FingerprintError("too_few_minutiae", f"only {len(idx)} minutiae found: press the finger flat and "
                                                   "a little longer")
    xy = np.stack([x[idx], y[idx]], 1).astype(np.float32) / np.float32(scale)
    iso_angle = np.mod(-ang[idx], 2 * np.pi).astype(np.float32)
    iso_angle[iso_angle >= np.float32(2 * np.pi)] = 0.0  # float32 rounding of 2*pi - tiny
    m = Minutiae(xy, iso_angle, cand.kind[idx].copy(), q, (int(grey.shape[0]), int(grey.shape[1])), int(dpi))
    return m, quality


def extract_minutiae(grey: np.ndarray, dpi: int = 500, segmenter: str | None = None) -> Minutiae:
    """Minutiae of one grey capture taken at ``dpi``. Raises FingerprintError for unusable captures."""
    return extract_with_quality(grey, dpi, segmenter)[0]
