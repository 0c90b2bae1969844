"""``BiolockMatcher``: biolock's own minutiae matcher behind the ``device.minutiae`` backend interface.

extract: grey capture -> our extractor (``device.fingerprint.extract``) -> compact template bytes (``template``).
compare: template bytes -> minutiae -> MCC cylinders (``mcc``, cached per template) -> local similarity matrix ->
LSS-R consolidation (``consolidate``) -> a score in [0, 1]. Pure numpy and OpenCV, no NBIS: it runs wherever the
device runs. A template that fails validation raises ``TemplateError`` (a ``MinutiaeError``), which the fused
check turns into a score of 0: a damaged template cannot help anyone in.
"""

from __future__ import annotations

import functools

import numpy as np

from device.fingerprint import consolidate, mcc
from device.fingerprint.minutia import Minutiae
from device.fingerprint.template import VERSION, decode, encode
from device.minutiae.base import MinutiaeError

KIND = "biolock"
SCORE_VERSION = 2  # bump when a change moves the scores (cards fitted on the old scores must be refitted)
TEMPLATE_ID = f"biolock-mcc/t{VERSION}s{SCORE_VERSION}"
# cylinders of this many templates stay in memory: with what comparisons need precomputed (float32 cells, pair
# geometry) about 360 KB for 45 cylinders, so 512 of them take about what 2,048 uint8-only ones did
CACHE = 512


def compare_minutiae(a: Minutiae, b: Minutiae) -> float:
    """The score of two minutiae sets (for tools that hold minutiae rather than templates)."""
    ca, cb = mcc.cylinders(a), mcc.cylinders(b)
    return consolidate.score(ca, cb, mcc.local_similarity(ca, cb))


class BiolockMatcher:
    """Our extractor and MCC matcher; ``dpi`` is the sensor's resolution (the extractor scales to 500 dpi)."""

    kind = KIND
    template_id = TEMPLATE_ID

    def __init__(self, dpi: int = 500) -> None:
        self.dpi = int(dpi)
        self._cylinders = functools.lru_cache(maxsize=CACHE)(self._cylinders_uncached)

    def extract_minutiae(self, grey: np.ndarray) -> Minutiae:
        from device.fingerprint.errors import FingerprintError
        from device.fingerprint.extract import extract_minutiae

        try:
            return extract_minutiae(grey, self.dpi)
        except FingerprintError as exc:
            raise MinutiaeError(str(exc)) from None

    def extract(self, grey: np.ndarray) -> bytes:
        return encode(self.extract_minutiae(grey))

    @staticmethod
    def _cylinders_uncached(template: bytes) -> mcc.Cylinders:
        return mcc.cylinders(decode(template))

    def compare(self, a: bytes, b: bytes) -> float:
        ca, cb = self._cylinders(bytes(a)), self._cylinders(bytes(b))
        return consolidate.score(ca, cb, mcc.local_similarity(ca, cb))


def open_backend() -> BiolockMatcher:
    return BiolockMatcher()
