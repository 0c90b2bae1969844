"""A minutiae matcher beside the embedding network, fused at score level (fingerprints only).

Why: the shipped embedding separates fingers on average (EER ~5 % on synthetic R307 prints) but its impostor
tail is long, so at FMR 1/10,000 most genuine touches score under the threshold. Minutiae comparison scores have
the opposite shape (impostors pile up near zero), and the sum of the two normalized scores keeps the network's
speed for the common case while the minutiae decide the tail. See docs/minutiae.md for the measurements.

``open_matcher(kind)`` gives a backend behind the small ``MinutiaeMatcher`` interface; templates travel through
the encrypted template store as fixed-size vectors (``pack_template`` / ``unpack_template``); ``MinutiaeCheck``
holds a backend and its fusion card and turns (cosine, minutiae) pairs into one decision score.
"""

from __future__ import annotations

from device.minutiae.base import (
    MINUTIAE_MODALITY,
    TEMPLATE_BYTES,
    MinutiaeError,
    MinutiaeMatcher,
    available,
    open_matcher,
    pack_template,
    unpack_template,
)
from device.minutiae.check import MinutiaeCheck, load_minutiae_check

__all__ = [
    "MINUTIAE_MODALITY", "TEMPLATE_BYTES", "MinutiaeCheck", "MinutiaeError", "MinutiaeMatcher", "available",
    "load_minutiae_check", "open_matcher", "pack_template", "unpack_template",
]
