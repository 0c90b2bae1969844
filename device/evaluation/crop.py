"""``biolock eval --crop WxH``: cut one real-sensor-sized window from each impression, inside the finger.

Why: small capacitive modules (R503: 192x192, phone sensors: 160x160 and less) see a patch of the finger, and
minutiae matchers collapse there; full prints cut to such windows are the benchmark anyone can rerun.

Why the window is seeded by the image's own bytes: every matcher (any decision, any run, any machine) then sees
exactly the same window of exactly the same impression, with no shared state between runs. The window is drawn
uniformly among the placements whose share of finger foreground (``device.fingerprint.segment``'s mask) is at
least ``MIN_FOREGROUND``; when none reaches it, among those with the most foreground. A window larger than the
image is an error (there is nothing to cut).

Two placements (``--crop-placement``): ``uniform`` (the default and the issue's yardstick: any place inside the
finger, so two windows of one finger may hardly overlap, as when a user touches a small sensor with any part of
the finger) and ``centred`` (an easier, documented alternative: the window centred on the finger's foreground
centroid, moved by a seeded jitter drawn uniformly within +-``CENTRED_JITTER`` px on each axis, then kept inside
the image; as a user pressing the pad centre onto a small sensor does). Report which one a number comes from.
"""

from __future__ import annotations

import re
import zlib
from collections.abc import Sequence
from typing import Any

import cv2
import numpy as np

from device.errors import ConfigError

MIN_FOREGROUND = 0.9  # share of the window that must be finger (when the impression has such a place)
DEFAULT_SEED = 18
PLACEMENTS = ("uniform", "centred")
CENTRED_JITTER = 32  # px at 500 dpi (+-1.6 mm per axis): how far a pad-centre press lands from the centre


def parse_crop(text: str) -> tuple[int, int]:
    """``"160x160"`` -> (width, height); ConfigError for anything else."""
    m = re.fullmatch(r"\s*(\d{2,4})\s*[xX]\s*(\d{2,4})\s*", text or "")
    if not m:
        raise ConfigError(f"--crop wants WIDTHxHEIGHT in pixels, e.g. 160x160; got {text!r}")
    w, h = int(m.group(1)), int(m.group(2))
    if min(w, h) < 64:
        raise ConfigError(f"--crop {w}x{h} is too small: windows start at 64x64")
    return w, h


def foreground_mask(grey: np.ndarray) -> np.ndarray:
    """Boolean finger mask of a uint8 grey image at its own pixels (the extractor's segmentation)."""
    from device.fingerprint import params
    from device.fingerprint.extract import bandpass, normalize
    from device.fingerprint.orientation import orientation_field
    from device.fingerprint.segment import block_foreground, pixel_mask

    b = params.BLOCK
    h0, w0 = grey.shape
    img = cv2.copyMakeBorder(grey, 0, -h0 % b, 0, -w0 % b, cv2.BORDER_REPLICATE)
    raw = bandpass(img)
    field = orientation_field(normalize(raw))
    energy = cv2.resize(raw * raw, (img.shape[1] // b, img.shape[0] // b), interpolation=cv2.INTER_AREA)
    mask = pixel_mask(block_foreground(energy, field.block_coherence), img.shape)
    return mask[:h0, :w0]


def choose_window(grey: np.ndarray, size: tuple[int, int], seed: int = DEFAULT_SEED,
                  placement: str = "uniform") -> tuple[int, int]:
    """Top-left (x, y) of the window for this image: same bytes, seed and placement, same window."""
    w, h = size
    ih, iw = grey.shape
    if w > iw or h > ih:
        raise ConfigError(f"--crop {w}x{h} is larger than a {iw}x{ih} image: choose a smaller window")
    if placement not in PLACEMENTS:
        raise ConfigError(f"--crop-placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
    mask = foreground_mask(grey).astype(np.float64)
    digest = zlib.crc32(np.ascontiguousarray(grey).tobytes()) ^ (seed * 0x9E3779B1 & 0xFFFFFFFF)
    if placement == "centred":
        ys, xs = np.nonzero(mask)
        cx, cy = (xs.mean(), ys.mean()) if xs.size else (iw / 2, ih / 2)
        jx, jy = np.random.default_rng(digest).integers(-CENTRED_JITTER, CENTRED_JITTER + 1, 2)
        x = int(np.clip(round(cx - w / 2) + jx, 0, iw - w))
        y = int(np.clip(round(cy - h / 2) + jy, 0, ih - h))
        return x, y
    integral = cv2.integral(mask)  # (ih+1, iw+1)
    share = (integral[h:, w:] - integral[:-h, w:] - integral[h:, :-w] + integral[:-h, :-w]) / float(w * h)
    best = float(share.max())
    good = share >= min(MIN_FOREGROUND, best - 1e-9)
    ys, xs = np.nonzero(good)
    k = int(np.random.default_rng(digest).integers(len(xs)))
    return int(xs[k]), int(ys[k])


def crop_image(grey: np.ndarray, size: tuple[int, int], seed: int = DEFAULT_SEED,
               placement: str = "uniform") -> np.ndarray:
    """The window of ``grey`` (2-D uint8) that ``choose_window`` picks."""
    x, y = choose_window(grey, size, seed, placement)
    return np.ascontiguousarray(grey[y:y + size[1], x:x + size[0]])


class CroppedDecision:
    """Any decision, fed one window per impression instead of the whole image (names say the window)."""

    def __init__(self, inner: Any, size: tuple[int, int], seed: int = DEFAULT_SEED,
                 placement: str = "uniform") -> None:
        if placement not in PLACEMENTS:
            raise ConfigError(f"--crop-placement must be one of {', '.join(PLACEMENTS)}, got {placement!r}")
        self.inner, self.size, self.seed, self.placement = inner, size, seed, placement
        self.name = f"{inner.name}@{size[0]}x{size[1]}" + ("" if placement == "uniform" else f"-{placement}")
        self.modality = inner.modality
        self.matcher_id = inner.matcher_id
        self.thresholds = inner.thresholds
        self.card_path = inner.card_path
        self.cheap = getattr(inner, "cheap", False) or inner.name == "embedding"

    def extract(self, image: np.ndarray) -> Any:
        from device.imageio import to_grey_u8

        return self.inner.extract(crop_image(to_grey_u8(np.asarray(image)), self.size, self.seed,
                                             self.placement))

    def compare(self, templates: Sequence[Any], pairs: np.ndarray) -> np.ndarray:
        return self.inner.compare(templates, pairs)

    def close(self) -> None:
        self.inner.close()
