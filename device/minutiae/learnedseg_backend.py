"""biolock's matcher with the learned foreground segmentation (``device.fingerprint.learned_segment``).

An evaluation backend: the same extractor, template and MCC comparison as ``biolock`` except that the finger mask
comes from the small int8 segmentation network, so ``biolock eval --decision biolock-learnedseg`` and
``--decision biolock`` measure the stage with and without on the same pairs (docs/fingerprint.md, "Learned
stage"). Its template id differs from ``biolock``'s, so templates of the two are never mixed in a store.
"""

from __future__ import annotations

import numpy as np

from device.fingerprint.matcher import TEMPLATE_ID, BiolockMatcher
from device.fingerprint.minutia import Minutiae
from device.minutiae.base import MinutiaeError

KIND = "biolock-learnedseg"


class LearnedSegMatcher(BiolockMatcher):
    kind = KIND
    template_id = f"{TEMPLATE_ID}+lseg1"

    def extract_minutiae(self, grey: np.ndarray) -> Minutiae:
        from device.fingerprint.errors import FingerprintError
        from device.fingerprint.extract import extract_minutiae

        try:
            return extract_minutiae(grey, self.dpi, segmenter="learned")
        except FingerprintError as exc:
            raise MinutiaeError(str(exc)) from None


def missing() -> str | None:
    """Why this backend cannot run here (no segmentation model card, no LiteRT), or None. Cheap: loads nothing."""
    from device.errors import ModelError
    from device.fingerprint.learned_segment import card_path
    from device.inference.litert import interpreter_class

    path = card_path()
    if not path.is_file():
        return f"no segmentation model card at {path} (make one: biolock train fp-segment --out models)"
    try:
        interpreter_class()
    except ModelError as exc:
        return str(exc)
    return None


def open_backend() -> LearnedSegMatcher:
    return LearnedSegMatcher()
