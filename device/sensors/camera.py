"""NIR finger-vein camera through OpenCV ``VideoCapture``: V4L2 index or device path, GStreamer pipeline, video file.

Why a burst: a finger is placed over a transilluminated slot, and the first frames after it lands are blurred.
``capture`` reads frames until ``burst`` of them show a finger (or the finger leaves again), and returns the
sharpest (variance of the Laplacian). Frames from files and most USB cameras come as 3-channel BGR: they are
converted to grey here. A camera that only delivers black frames (NIR LEDs off, lens cap, exposure far too short)
is a ``BadFrameError`` with that hint; a camera that delivers no frame at all is gone (``SensorUnavailableError``,
the daemon re-opens it). Example::

    with CameraSensor("/dev/video0", exposure=120, burst=5) as cam:
        frame = cam.capture(timeout_s=10)
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from device.sensors.base import (
    BadFrameError,
    CaptureCancelledError,
    Frame,
    NoFingerError,
    ReplayExhaustedError,
    Sensor,
    SensorUnavailableError,
)

log = logging.getLogger(__name__)

# Frame classification (grey levels 0..255). A finger over the NIR light is a mid-grey band with contrast;
# no finger is either the bare light (near white) or an unlit slot (near black).
BLACK_MAX_MEAN = 8.0
FINGER_MEAN = (25.0, 225.0)
FINGER_MIN_STD = 8.0


def parse_source(source: str) -> tuple[str, str | int]:
    """What kind of camera source a config string names: (kind, argument for VideoCapture)."""
    source = source.strip()
    if source.isdigit():
        return "v4l2-index", int(source)
    if source.startswith("/dev/"):
        return "v4l2-path", source
    if "!" in source:
        return "gstreamer", source
    return "file", source


def to_grey(frame: np.ndarray) -> np.ndarray:
    """uint8 grey from what VideoCapture returns (BGR, BGRA, grey, or 16-bit grey from some NIR cameras)."""
    import cv2

    if frame.ndim == 3 and frame.shape[2] == 1:
        frame = frame[:, :, 0]
    if frame.ndim == 3:
        code = cv2.COLOR_BGRA2GRAY if frame.shape[2] == 4 else cv2.COLOR_BGR2GRAY
        frame = cv2.cvtColor(frame, code)
    if frame.dtype == np.uint16:
        frame = (frame >> 8).astype(np.uint8)
    return np.ascontiguousarray(frame, dtype=np.uint8)


def is_black(grey: np.ndarray) -> bool:
    return float(grey.mean()) <= BLACK_MAX_MEAN


def finger_present(grey: np.ndarray) -> bool:
    mean = float(grey.mean())
    return FINGER_MEAN[0] <= mean <= FINGER_MEAN[1] and float(grey.std()) >= FINGER_MIN_STD


def sharpness(grey: np.ndarray) -> float:
    """Variance of the Laplacian: higher is sharper."""
    import cv2

    return float(cv2.Laplacian(grey, cv2.CV_64F).var())


class CameraSensor(Sensor):
    def __init__(
        self,
        source: str,
        *,
        exposure: float | None = None,
        burst: int = 5,
        dpi: int = 0,
        clock: Callable[[], float] = time.monotonic,
        capture_factory: Callable[..., Any] | None = None,
    ) -> None:
        self.source = source
        self.kind, self._arg = parse_source(source)
        self.exposure = exposure
        self.burst = max(1, burst)
        self.dpi = dpi  # a camera has no fixed dpi; 0 = unknown
        self.clock = clock
        self.sensor_id = f"camera:{source}"
        self._factory = capture_factory
        self._cap: Any = None
        self._frozen: Any = None  # issue 19: the previous capture, to catch a camera that repeats one picture

    def open(self) -> None:
        if self._cap is not None:
            return
        import cv2

        if self.kind == "file" and not Path(self.source).is_file():
            raise SensorUnavailableError(f"camera source {self.source!r} is neither a device, a pipeline nor a file")
        api = {"v4l2-index": cv2.CAP_V4L2, "v4l2-path": cv2.CAP_V4L2, "gstreamer": cv2.CAP_GSTREAMER}.get(
            self.kind, cv2.CAP_ANY
        )
        factory = self._factory or cv2.VideoCapture
        cap = factory(self._arg, api)
        if not cap.isOpened():
            cap.release()
            hint = {
                "gstreamer": "this OpenCV may lack GStreamer (on Jetson use JetPack's OpenCV)",
                "file": "the file is not a video OpenCV can decode",
            }.get(self.kind, "check the device exists, is a capture device and is not used by another program")
            raise SensorUnavailableError(f"cannot open camera {self.source!r}: {hint}")
        self._cap = cap
        if self.exposure is not None and self.kind != "file":
            self._fix_exposure(cv2)

    def _fix_exposure(self, cv2: Any) -> None:
        """Manual exposure where the driver allows it: auto exposure fights the constant NIR light."""
        self._cap.set(cv2.CAP_PROP_AUTO_EXPOSURE, 1)  # V4L2: 1 = manual, 3 = aperture priority
        accepted = self._cap.set(cv2.CAP_PROP_EXPOSURE, float(self.exposure))
        if not accepted:
            log.warning("camera %s does not accept a fixed exposure; using its automatic exposure", self.source)

    def close(self) -> None:
        cap, self._cap = self._cap, None
        if cap is not None:
            try:
                cap.release()
            except Exception:
                pass

    def _read(self) -> np.ndarray:
        if self._cap is None:
            raise SensorUnavailableError(f"camera {self.source!r} is not open")
        ok, frame = self._cap.read()
        if not ok or frame is None or frame.size == 0:
            if self.kind == "file":
                raise ReplayExhaustedError(f"no more frames in {self.source}")
            self.close()
            raise SensorUnavailableError(f"camera {self.source!r} returned no frame (unplugged or stalled)")
        return to_grey(frame)

    def capture(self, timeout_s: float, cancel: threading.Event | None = None) -> Frame:
        deadline = self.clock() + timeout_s
        candidates: list[np.ndarray] = []
        frames = black = 0
        while len(candidates) < self.burst:
            if cancel is not None and cancel.is_set() and not candidates:
                raise CaptureCancelledError("capture cancelled")
            try:
                grey = self._read()
            except ReplayExhaustedError:
                if candidates or (frames and black == frames):
                    break
                raise
            frames += 1
            if is_black(grey):
                black += 1
                if black >= self.burst and not candidates:
                    break  # a whole burst of black frames: the light is off, waiting longer will not help
            elif finger_present(grey):
                candidates.append(grey)
            elif candidates:
                break  # the finger left: use what the burst got
            if self.clock() >= deadline:
                break
        if not candidates:
            if frames and black == frames:
                raise BadFrameError(
                    f"camera {self.source!r} delivers only black frames: check the NIR illumination and the exposure"
                )
            raise NoFingerError(f"no finger in front of camera {self.source!r} within {timeout_s:.1f} s")
        best = max(candidates, key=sharpness)
        self._check_frozen(best)
        return Frame(best, self.dpi, self.sensor_id)

    def _check_frozen(self, grey: np.ndarray) -> None:
        """A capture identical to the previous one: the camera delivers a stale buffer (``BadFrameError``, so the
        daemon reports it and keeps running; nothing is decided on it). A real finger never gives the same noise."""
        from device.vein.region import FrozenFrameCheck, RegionError

        if self._frozen is None:
            self._frozen = FrozenFrameCheck()
        try:
            self._frozen.check(grey)
        except RegionError as exc:
            raise BadFrameError(f"camera {self.source!r}: {exc}") from exc

    def info(self) -> dict[str, object]:
        out: dict[str, object] = {"sensor_id": self.sensor_id, "kind": self.kind, "burst": self.burst}
        if self._cap is not None:
            import cv2

            out["width"] = int(self._cap.get(cv2.CAP_PROP_FRAME_WIDTH))
            out["height"] = int(self._cap.get(cv2.CAP_PROP_FRAME_HEIGHT))
            out["fps"] = float(self._cap.get(cv2.CAP_PROP_FPS))
            out["exposure"] = float(self._cap.get(cv2.CAP_PROP_EXPOSURE))
        return out
