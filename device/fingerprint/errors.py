"""The typed error of the fingerprint extractor: a capture that cannot give a usable template."""

from __future__ import annotations

from device.errors import BiolockError


class FingerprintError(BiolockError):
    """A capture gave no usable minutiae. ``reason`` is a short machine-readable tag for the quality gate:
    ``"blank"``, ``"saturated"``, ``"no_finger"``, ``"too_few_minutiae"`` or ``"bad_image"``."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
