"""biolock's own minutiae backend (``device.fingerprint``): our extractor, MCC cylinders, LSS-R consolidation.

Why it is the default: it needs only numpy and OpenCV (so it runs on a Raspberry Pi or Jetson, where nbis-py has
no wheel), and on the real FVC sets it makes fewer errors than NBIS (docs/fingerprint.md, "Comparison").
"""

from __future__ import annotations

from device.fingerprint.matcher import KIND, BiolockMatcher

__all__ = ["KIND", "BiolockMatcher", "missing", "open_backend"]


def missing() -> str | None:
    """Why this backend cannot run here, or None (it needs nothing beyond the device's own dependencies)."""
    return None


def open_backend() -> BiolockMatcher:
    return BiolockMatcher()
