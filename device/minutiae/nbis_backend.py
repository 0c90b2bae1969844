"""NIST NBIS (mindtct + bozorth3) through nbis-py: ISO/IEC 19794-2:2005 templates, bozorth3 scores.

Why NBIS: on our synthetic R307 prints its impostor scores stay low where the embedding's do not (docs/minutiae.md),
and it is the reference the project measures itself against. Extraction takes ~40 ms per R307 capture on this
machine, a comparison 1-100 ms (slow only for genuine pairs with many paired minutiae). nbis-py ships x86_64
wheels; where it does not install, the device runs the embedding alone (``matching.minutiae = "auto"``).
"""

from __future__ import annotations

import functools
from importlib import metadata

import cv2
import numpy as np

from device.minutiae.base import MinutiaeError

KIND = "nbis"


def missing() -> str | None:
    """Why this backend cannot run here, or None."""
    try:
        import nbis  # noqa: F401
    except Exception as exc:  # noqa: BLE001 - a broken native wheel raises OSError, not ImportError
        return f"nbis-py is not installed ({type(exc).__name__}: {exc}); install it with pip install '.[minutiae]'"
    return None


class NbisMatcher:
    """One NBIS extractor (creating it loads native code once) plus a cache of parsed templates."""

    kind = KIND

    def __init__(self) -> None:
        import nbis

        self._nbis = nbis
        self._extractor = nbis.new_nbis_extractor(nbis.NbisExtractorSettings(
            min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=False, ppi=None))
        self.template_id = f"nbis-py@{metadata.version('nbis-py')}/iso19794-2"
        self._load = functools.lru_cache(maxsize=4096)(self._load_uncached)

    def extract(self, grey: np.ndarray) -> bytes:
        img = np.asarray(grey)
        if img.dtype != np.uint8 or img.ndim != 2 or min(img.shape) < 32:
            raise MinutiaeError(f"minutiae need a 2-D uint8 grey image, got {img.dtype} {img.shape}")
        ok, png = cv2.imencode(".png", img)
        if not ok:
            raise MinutiaeError("could not encode the capture for the minutiae extractor")
        try:
            found = self._extractor.extract_minutiae(png.tobytes())
        except Exception as exc:  # noqa: BLE001 - the native layer's errors become one typed error
            raise MinutiaeError(f"minutiae extraction failed: {type(exc).__name__} {exc}".strip()) from None
        if not found.get():
            raise MinutiaeError("no minutiae found: press the finger flat on the sensor")
        return bytes(found.to_iso_19794_2_2005())

    def _load_uncached(self, template: bytes):
        try:
            return self._extractor.load_iso_19794_2_2005(template)
        except Exception as exc:  # noqa: BLE001
            raise MinutiaeError(f"damaged minutiae template: {type(exc).__name__} {exc}".strip()) from None

    def compare(self, a: bytes, b: bytes) -> float:
        return float(self._load(bytes(a)).compare(self._load(bytes(b))))


def open_backend() -> NbisMatcher:
    return NbisMatcher()
