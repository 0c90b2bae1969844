"""Preprocessing: the ONE implementation of image -> model input, used by the device and by training alike.

Why one implementation: an embedding model only works on images prepared exactly as during training; two
copies drift. The versioned ids in ``PREPROCESSING_IDS`` go into model cards, and the device refuses a model
prepared differently. Change a stage's behaviour -> bump the id.

The pipeline reads as a table of contents (stages in ``fingerprint_ops`` / ``vein_ops``, scores in ``quality``,
constants in ``params``):

fingerprint-v2 (default): to grey -> basic checks -> shrink -> segment (block variance + coherence) -> quality
    from area and ridge coherence -> measure the ridge period -> rescale the full-resolution image so ridges are
    ``FP2_RIDGE_PERIOD`` px apart -> local contrast normalization -> a (96, 96) window centred on the finger.
fingerprint-v1 (older cards): the same up to the crop, then the whole finger squeezed into (96, 96) (about 2.5
    px per ridge: the network sees the ridge flow but hardly any minutiae, which is why v2 exists).
vein: to grey -> basic checks -> finger axis horizontal -> finger edges / crop detection -> rotate along the
    axis -> ROI inside the edges -> resize to (64, 192) -> quality from area, contrast, exposure -> flatten the
    illumination -> CLAHE.

It never raises on bad *content*: empty, uniform, tiny or noisy images come back with ``quality.ok = False``
and a reason; only arrays that are not images at all raise ImageError.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from device import fingerprint_ops as fp
from device import params
from device import vein_ops as vein
from device.errors import ImageError
from device.fingerprint_ops import OrientationField, orientation_field
from device.imageio import to_grey_u8
from device.quality import Quality, basic_checks, fingerprint_quality, percentile_u8, reject, vein_quality

FINGERPRINT_INPUT: tuple[int, int] = (96, 96)  # (height, width)
VEIN_INPUT: tuple[int, int] = (64, 192)  # (height, width), finger axis horizontal
# the id training uses now, per modality; every id a device still serves is in KNOWN_PREPROCESSING
PREPROCESSING_IDS: dict[str, str] = {"fingerprint": "fingerprint-v2", "vein": "vein-v1"}
KNOWN_PREPROCESSING: dict[str, tuple[str, ...]] = {
    "fingerprint": ("fingerprint-v1", "fingerprint-v2"),
    "vein": ("vein-v1",),
}
MODALITIES = tuple(PREPROCESSING_IDS)

__all__ = [
    "FINGERPRINT_INPUT",
    "VEIN_INPUT",
    "KNOWN_PREPROCESSING",
    "PREPROCESSING_IDS",
    "OrientationField",
    "Preprocessed",
    "Quality",
    "input_size",
    "orientation_field",
    "preprocess",
    "preprocess_fingerprint",
    "preprocess_vein",
    "to_grey_u8",
]


@dataclass(frozen=True)
class Preprocessed:
    """Model-ready image (float32, (H, W), values in [0, 1]) with its quality and the preprocessing id."""

    image: np.ndarray
    quality: Quality
    preprocessing_id: str


def input_size(modality: str) -> tuple[int, int]:
    """The default model input (height, width) of a modality."""
    return FINGERPRINT_INPUT if _check_modality(modality) == "fingerprint" else VEIN_INPUT


def _check_modality(modality: str) -> str:
    if modality not in PREPROCESSING_IDS:
        raise ImageError(f"unknown modality {modality!r}; choose one of: {', '.join(MODALITIES)}")
    return modality


def _check_size(size: tuple[int, int]) -> tuple[int, int]:
    try:
        h, w = (int(v) for v in size)
    except (TypeError, ValueError) as exc:
        raise ImageError(f"size must be (height, width), got {size!r}") from exc
    if h < 1 or w < 1:
        raise ImageError(f"size must be positive, got {size!r}")
    return h, w


def check_preprocessing_id(modality: str, preprocessing_id: str | None) -> str:
    """The id to use for ``modality``: ``preprocessing_id`` if this code knows it, else the current one."""
    known = KNOWN_PREPROCESSING[_check_modality(modality)]
    if preprocessing_id is None:
        return PREPROCESSING_IDS[modality]
    if preprocessing_id not in known:
        raise ImageError(f"preprocessing {preprocessing_id!r} is not one of {', '.join(known)} ({modality})")
    return preprocessing_id


def preprocess(image: np.ndarray, modality: str, size: tuple[int, int] | None = None,
               preprocessing_id: str | None = None) -> Preprocessed:
    """Prepare a sensor image for the ``modality``'s model; ``size`` overrides the (height, width) output.

    ``preprocessing_id`` picks an older version for a model card that was trained with it (default: current).
    """
    prep_id = check_preprocessing_id(modality, preprocessing_id)
    out_size = _check_size(size) if size is not None else input_size(modality)
    grey = to_grey_u8(np.asarray(image))
    if modality == "fingerprint":
        picture, quality = preprocess_fingerprint(grey, out_size, prep_id)
    else:
        picture, quality = preprocess_vein(grey, out_size)
    picture = np.nan_to_num(np.clip(picture, 0.0, 1.0), nan=0.0).astype(np.float32, copy=False)
    return Preprocessed(picture, quality, prep_id)


# --- fingerprint ------------------------------------------------------------------------------------------------


def preprocess_fingerprint(grey: np.ndarray, size: tuple[int, int] = FINGERPRINT_INPUT,
                           version: str = "fingerprint-v2") -> tuple[np.ndarray, Quality]:
    """Segment and score a uint8 grey fingerprint, then cut the model input the ``version`` asks for."""
    blank = np.full(size, params.FP_BACKGROUND, np.float32)
    failed = basic_checks(grey, bright_reason="too bright")
    if failed is not None:
        return _fallback(grey, size, blank), failed
    work = fp.shrink_for_work(grey)
    seg = fp.segment(work)
    quality = _fingerprint_quality(seg)
    if not seg.mask.any():
        return blank, quality
    if version == "fingerprint-v1":
        return _whole_finger(work, seg.mask, size), quality
    return _ridge_scaled_window(grey, work, seg.mask, size), quality


def _ridge_scaled_window(grey: np.ndarray, work: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """fingerprint-v2: a fixed-scale window of the finger, ridges ``FP2_RIDGE_PERIOD`` px apart.

    Why fixed scale: squeezing whole fingers of any size into 96 px (v1) leaves too few pixels per ridge for
    minutiae, and makes the scale depend on how much finger touched the sensor. Normalizing the ridge period
    also evens out sensor resolution (500 vs 569 dpi) and is robust to it being unknown.
    """
    period = fp.ridge_period(work, mask) * grey.shape[0] / work.shape[0]
    scale = params.FP2_RIDGE_PERIOD / float(np.clip(period, params.FP2_MIN_PERIOD, params.FP2_MAX_PERIOD))
    scaled = fp.rescale(grey.astype(np.float32), scale)
    scaled_mask = cv2.resize(mask.astype(np.uint8), (scaled.shape[1], scaled.shape[0]),
                             interpolation=cv2.INTER_NEAREST).astype(bool)
    normalized = fp.normalize_contrast(scaled, scaled_mask, sigma=params.FP_NORM_SIGMA)
    return fp.crop_centred(normalized, fp.centroid(scaled_mask), size, params.FP_BACKGROUND)


def _whole_finger(work: np.ndarray, mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """fingerprint-v1: crop to the finger, normalize and fit all of it into ``size``."""
    top, bottom, left, right = fp.bounding_box(mask)
    normalized = fp.normalize_contrast(work[top:bottom, left:right], mask[top:bottom, left:right],
                                       sigma=params.FP_NORM_SIGMA)
    return fp.fit_into(normalized, size, params.FP_BACKGROUND)


def _fingerprint_quality(seg: fp.Segmentation) -> Quality:
    area = float(seg.block_mask.mean()) if seg.block_mask.size else 0.0
    if not seg.block_mask.any():
        return fingerprint_quality(area, 0.0)
    coherence = float(seg.field.coherence[seg.block_mask].mean())
    drift = fp.percentile(seg.field.drift[seg.block_mask], 50.0) if seg.field.drift is not None else 0.0
    return fingerprint_quality(area, coherence, drift)


# --- vein -------------------------------------------------------------------------------------------------------


def preprocess_vein(grey: np.ndarray, size: tuple[int, int] = VEIN_INPUT) -> tuple[np.ndarray, Quality]:
    """Orient, find the finger, straighten, cut the ROI, score it and equalize it with CLAHE."""
    blank = np.zeros(size, np.float32)
    failed = basic_checks(grey, bright_reason="overexposed", whole_frame_exposure=False)
    if failed is not None:
        return _fallback(grey, size, blank), failed
    oriented = vein.orient_horizontal(grey)
    angle, region, scale = vein.locate(oriented)
    roi = vein.cut_roi(oriented, angle, region, scale)
    if roi is None or min(roi.shape) < 2:
        return blank, reject("no finger found: place the finger over the light")
    resized = cv2.resize(roi, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    contrast, noise = vein.band_contrast(resized)
    saturated = float((roi >= params.VEIN_SATURATED).mean())
    p95 = percentile_u8(roi, 95)
    quality = vein_quality(
        area=region.area,
        contrast=contrast,
        saturated=saturated,
        noise=noise,
        p95=p95,
        across=region.is_crop and region.area < params.VEIN_CROP_MIN_LIT,
        background=float((roi < params.VEIN_BACKGROUND_LEVEL * p95).mean()),
    )
    enhanced = vein.clahe(vein.flatten_illumination(resized))
    return enhanced.astype(np.float32) / 255.0, quality


# --- shared -----------------------------------------------------------------------------------------------------


def _fallback(grey: np.ndarray, size: tuple[int, int], blank: np.ndarray) -> np.ndarray:
    """A plain resize for rejected images (callers may still want to show what was captured)."""
    if grey.size == 0 or min(grey.shape) < 1:
        return blank
    return cv2.resize(grey, (size[1], size[0]), interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
