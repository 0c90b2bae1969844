"""The ``partial`` backend: partial-print matcher for small sensors (R503 and smaller), behind the minutiae
backend interface, so ``biolock eval --decision partial`` and the device can use it like any other.

extract: grey capture -> enhanced ridge image (``device.fingerprint.partial``) -> ORB keypoints -> template bytes.
compare: template bytes -> keypoints (decoded once per template, cached) -> matches consistent with one rigid
motion (``device.fingerprint.partial_match``). A capture that shows too little finger or too few ridge corners is
a ``MinutiaeError`` with a reason the user can act on; a damaged template a ``PartialTemplateError`` (score 0).
"""

from __future__ import annotations

import functools

import numpy as np

from device.fingerprint.partial_match import (
    DESC_BYTES,
    MIN_KEYPOINTS,
    VERSION,
    Keypoints,
    decode,
    encode,
    keypoints,
    match_count,
)
from device.minutiae.base import MinutiaeError

KIND = "partial"
SCORE_VERSION = 2  # bump when a change moves the scores (cards fitted on old scores must be refitted); 2: voting
TEMPLATE_ID = f"biolock-partial-orb{DESC_BYTES * 8}/t{VERSION}s{SCORE_VERSION}"
CACHE = 4096  # decoded templates kept in memory (about 9 KB each)


class PartialMatcher:
    """ORB keypoints on the enhanced ridge image, rigid-motion verification; ``dpi``: the sensor's resolution."""

    kind = KIND
    template_id = TEMPLATE_ID

    def __init__(self, dpi: int = 500) -> None:
        self.dpi = int(dpi)
        self._decode = functools.lru_cache(maxsize=CACHE)(decode)

    def keypoints(self, grey: np.ndarray) -> Keypoints:
        """Keypoints of one capture; MinutiaeError (with what to do) when it cannot be matched."""
        from device.fingerprint.errors import FingerprintError
        from device.fingerprint.partial import ridge_image

        try:
            kp = keypoints(ridge_image(grey, self.dpi))
        except FingerprintError as exc:
            raise MinutiaeError(str(exc)) from None
        if len(kp) < MIN_KEYPOINTS:
            raise MinutiaeError(f"only {len(kp)} ridge features in the touch (a smudge or a blur): clean the sensor "
                                "and press the finger flat")
        return kp

    def extract(self, grey: np.ndarray) -> bytes:
        return encode(self.keypoints(grey))

    def compare(self, a: bytes, b: bytes) -> float:
        return float(match_count(self._decode(bytes(a)), self._decode(bytes(b))))


def missing() -> str | None:
    """Why this backend cannot run here, or None (numpy and OpenCV only)."""
    return None


def open_backend() -> PartialMatcher:
    return PartialMatcher()
