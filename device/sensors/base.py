"""The one small interface every sensor backend implements, and the typed errors they raise.

Why one interface: the daemon, the CLI and the demo only ever see ``Sensor.capture() -> Frame``; whether the
image came from a UART fingerprint module, a NIR camera or a folder of files is the backend's business. Every
failure is a ``SensorError`` subclass, so the daemon can tell "no finger yet" (keep waiting), "this attempt
failed" (reject it, keep running) and "the sensor is gone" (re-open it with backoff) apart without parsing text.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from types import TracebackType

import numpy as np

from device.errors import SensorError

__all__ = [
    "BadFrameError",
    "CaptureCancelledError",
    "CaptureFailedError",
    "ChecksumError",
    "Frame",
    "ImageUploadError",
    "NoFingerError",
    "ReplayExhaustedError",
    "Sensor",
    "SensorError",
    "SensorProtocolError",
    "SensorTimeoutError",
    "SensorUnavailableError",
    "WrongPasswordError",
]


class NoFingerError(SensorError):
    """No finger was presented before the capture timeout (normal while idle)."""


class CaptureCancelledError(NoFingerError):
    """The wait for a finger was cancelled (the daemon is stopping)."""


class SensorTimeoutError(SensorError):
    """The sensor did not answer within the read timeout (silent, unplugged, or wrong baud rate)."""


class ChecksumError(SensorError):
    """A packet arrived with a checksum that does not match its contents (line noise)."""


class SensorProtocolError(SensorError):
    """The sensor answered something well-formed but unexpected (wrong packet type, error code)."""


class WrongPasswordError(SensorProtocolError):
    """The module refused the configured password (VfyPwd answered 0x13)."""


class CaptureFailedError(SensorProtocolError):
    """The module saw a finger but could not take a usable image (GenImg answered 0x03)."""


class ImageUploadError(SensorProtocolError):
    """The image upload stopped early or delivered the wrong number of bytes (e.g. finger lifted, cable)."""


class BadFrameError(SensorError):
    """A camera frame is unusable: black (no illumination), or no finger in any frame of the burst."""


class SensorUnavailableError(SensorError):
    """The sensor cannot be opened or disappeared (unplugged, wrong device path, camera gone)."""


class ReplayExhaustedError(SensorUnavailableError):
    """A replay sensor has presented every image it was given."""


@dataclass(frozen=True)
class Frame:
    """One captured image: uint8 grey (H, W), the sensor's resolution, and which sensor produced it."""

    image: np.ndarray
    dpi: int
    sensor_id: str

    def __post_init__(self) -> None:
        if not isinstance(self.image, np.ndarray) or self.image.dtype != np.uint8 or self.image.ndim != 2:
            raise TypeError("Frame.image must be a uint8 (H, W) array")


class Sensor:
    """A capture device. Use as a context manager; ``capture`` is the only call the pipeline needs.

    ``capture`` waits at most ``timeout_s`` for a finger (raising ``NoFingerError``) and returns early with
    ``CaptureCancelledError`` when ``cancel`` is set. Once a finger has been seen the capture finishes (an
    attempt in progress is never cut in half by a stop request).
    """

    sensor_id: str = "sensor"
    dpi: int = 500

    def open(self) -> None:  # pragma: no cover - trivial default
        """Connect to the device (idempotent)."""

    def close(self) -> None:  # pragma: no cover - trivial default
        """Release the device (idempotent, never raises)."""

    def capture(self, timeout_s: float, cancel: threading.Event | None = None) -> Frame:
        raise NotImplementedError

    def wait_until_clear(self, timeout_s: float, cancel: threading.Event | None = None) -> bool:
        """Wait until the finger is lifted, so one touch is one attempt. True when clear (default: at once)."""
        return True

    def feedback(self, kind: str) -> None:
        """Show the user a result where the hardware can ("busy", "accepted", "rejected", "retry", "idle")."""

    def info(self) -> dict[str, object]:
        """What the sensor reports about itself (for ``biolock sensor info``)."""
        return {"sensor_id": self.sensor_id, "dpi": self.dpi}

    def __enter__(self) -> Sensor:
        self.open()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
