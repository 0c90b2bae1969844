"""A sensor that presents stored images in order: a folder, a manifest.csv, or arrays in memory.

Why: demos, tests and "what would the daemon decide on these files" runs need the full daemon path without
hardware. A folder is read in natural sort order (``2.png`` before ``10.png``); a manifest is read in row order
with paths ``<manifest dir>/<dataset>/<relpath>`` (the loader format). Each ``capture`` returns the next image;
when all have been shown it raises ``ReplayExhaustedError`` (or starts again with ``loop=True``). An unreadable
file fails that one attempt (``BadFrameError`` naming it) and the next capture moves on. Example::

    with ReplaySensor(Path("captures/")) as sensor:
        frame = sensor.capture(timeout_s=1)
"""

from __future__ import annotations

import csv
import re
import threading
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from device.errors import BiolockError
from device.sensors.base import (
    BadFrameError,
    CaptureCancelledError,
    Frame,
    ReplayExhaustedError,
    Sensor,
    SensorUnavailableError,
)

IMAGE_SUFFIXES = {".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".pgm", ".ppm", ".webp"}


def _natural_key(path: Path) -> list[object]:
    return [int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", str(path))]


def list_images(source: Path) -> list[Path]:
    """The images a folder or manifest names, in presentation order."""
    if source.is_dir():
        return sorted((p for p in source.rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES), key=_natural_key)
    if source.is_file() and source.suffix.lower() == ".csv":
        with open(source, newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            if not reader.fieldnames or not {"dataset", "relpath"} <= set(reader.fieldnames):
                raise SensorUnavailableError(f"{source}: a replay manifest needs the columns dataset and relpath")
            return [source.parent / row["dataset"] / row["relpath"] for row in reader]
    if source.is_file() and source.suffix.lower() in IMAGE_SUFFIXES:
        return [source]
    raise SensorUnavailableError(f"replay source {source} is not a folder, a manifest.csv or an image")


def read_grey(path: Path) -> np.ndarray:
    """uint8 grey image from a file (device.imageio when present, OpenCV otherwise)."""
    try:
        from device.imageio import read_image
    except ImportError:  # pragma: no cover - before the foundation's imageio landed
        import cv2

        data = np.fromfile(str(path), dtype=np.uint8) if path.is_file() else np.empty(0, np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE) if data.size else None
        if image is None:
            raise BadFrameError(f"cannot read image {path}") from None
        return image
    try:
        return read_image(path)
    except BiolockError as exc:
        raise BadFrameError(f"replay: {exc}") from exc


class ReplaySensor(Sensor):
    def __init__(
        self,
        source: Path | Sequence[np.ndarray],
        *,
        loop: bool = False,
        dpi: int = 500,
        sensor_id: str | None = None,
    ) -> None:
        self._source = source
        self.loop = loop
        self.dpi = dpi
        self._items: list[Path | np.ndarray] = []
        self._next = 0
        self.opened = False
        self.sensor_id = sensor_id or (f"replay:{source}" if isinstance(source, Path) else "replay:memory")

    def open(self) -> None:
        if self.opened:
            return
        if isinstance(self._source, Path):
            if not self._source.exists():
                raise SensorUnavailableError(f"replay source {self._source} does not exist")
            self._items = list(list_images(self._source))
        else:
            self._items = [np.asarray(image) for image in self._source]
        if not self._items:
            raise SensorUnavailableError(f"replay source {self.sensor_id} holds no images")
        self.opened = True

    def close(self) -> None:
        self.opened = False

    @property
    def remaining(self) -> int:
        return len(self._items) - self._next

    def capture(self, timeout_s: float, cancel: threading.Event | None = None) -> Frame:
        if not self.opened:
            raise SensorUnavailableError(f"{self.sensor_id} is not open")
        if cancel is not None and cancel.is_set():
            raise CaptureCancelledError("capture cancelled")
        if self._next >= len(self._items):
            if not self.loop:
                raise ReplayExhaustedError(f"{self.sensor_id}: all {len(self._items)} images presented")
            self._next = 0
        item = self._items[self._next]
        self._next += 1
        image = read_grey(item) if isinstance(item, Path) else item
        if image.dtype != np.uint8 or image.ndim != 2:
            raise BadFrameError(f"{self.sensor_id}: image {self._next} is not uint8 grey (H, W)")
        return Frame(image, self.dpi, self.sensor_id)

    def info(self) -> dict[str, object]:
        return {"sensor_id": self.sensor_id, "images": len(self._items), "remaining": self.remaining, "loop": self.loop}
