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
        return (f"nbis (nbis-py / nbis-python) does not load ({type(exc).__name__}: {exc}); install it with pip "
                "install '.[minutiae]' (nbis-python's aarch64 wheels need glibc >= 2.38: docs/boards.md)")
    return None


class NbisMatcher:
    """One NBIS extractor (creating it loads native code once) plus a cache of parsed templates."""

    kind = KIND

    def __init__(self) -> None:
        import nbis

        self._nbis = nbis
        self._extractor = nbis.new_nbis_extractor(nbis.NbisExtractorSettings(
            min_quality=0.0, get_center=False, check_fingerprint=False, compute_nfiq2=False, ppi=None))
        self.distribution, version = installed_distribution()
        # nbis-py writes ISO/IEC 19794-2:2005, nbis-python 2011: a template is only comparable within one format,
        # so the id names both (nbis-py's id keeps its original spelling: cards fitted on it stay valid).
        self._fmt = "2005" if hasattr(nbis.Minutiae, "to_iso_19794_2_2005") else "2011"
        suffix = "" if self.distribution == "nbis-py" else f":{self._fmt}"
        self.template_id = f"{self.distribution}@{version}/iso19794-2{suffix}"
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
        return bytes(getattr(found, f"to_iso_19794_2_{self._fmt}")())

    def _load_uncached(self, template: bytes):
        try:
            return getattr(self._extractor, f"load_iso_19794_2_{self._fmt}")(template)
        except Exception as exc:  # noqa: BLE001
            raise MinutiaeError(f"damaged minutiae template: {type(exc).__name__} {exc}".strip()) from None

    def compare(self, a: bytes, b: bytes) -> float:
        return float(self._load(bytes(a)).compare(self._load(bytes(b))))


def installed_distribution() -> tuple[str, str]:
    """(distribution, version) providing ``import nbis``: nbis-py (x86_64) or nbis-python (aarch64 wheels)."""
    for dist in ("nbis-py", "nbis-python"):
        try:
            return dist, metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return "nbis", "unknown"


def open_backend() -> NbisMatcher:
    return NbisMatcher()
