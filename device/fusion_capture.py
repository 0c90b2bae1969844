"""Two sensors as one for the fusion daemon: the fingerprint touch starts an attempt, then the vein camera.

Why a composite ``Sensor``: the daemon loop (device/app.py) already knows how to wait for a finger, stop, re-open
a lost sensor and never unlock on a fault; a ``PairedSensor`` keeps all of that for the *primary* (fingerprint)
sensor, which decides when an attempt starts. Once a finger is seen there, the secondary (vein) sensor gets its own
timeout (``[sensor_vein] finger_timeout_s``). Anything that goes wrong on the secondary -- no finger in time, a
bad frame, a silent or unplugged sensor -- makes that modality *missing* for this attempt (with the reason), and
the fusion decision rejects unless fallback is configured: a silent vein sensor can neither hang nor unlock.
A lost secondary is re-opened at the next attempt. At start the secondary must open, unless fallback is on.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from device.errors import ConfigError
from device.sensors.base import CaptureCancelledError, Frame, NoFingerError, Sensor, SensorError, SensorUnavailableError

if TYPE_CHECKING:
    from device.config import Config

log = logging.getLogger("biolock.daemon")


@dataclass(frozen=True)
class PairedFrame(Frame):
    """The primary frame (``image``) plus every modality's image (None = missing) and why one is missing."""

    images: Mapping[str, np.ndarray | None] = field(default_factory=dict)
    missing: Mapping[str, str] = field(default_factory=dict)


class PairedSensor(Sensor):
    """Primary sensor (trigger) then secondary sensor, each with its own timeout; see the module docstring."""

    def __init__(self, primary: Callable[[], Sensor], secondary: Callable[[], Sensor], *,
                 secondary_timeout_s: float, require_secondary: bool = True,
                 names: tuple[str, str] = ("fingerprint", "vein"),
                 on_next: Callable[[str], None] | None = None) -> None:
        self._make_primary, self._make_secondary = primary, secondary
        self.secondary_timeout_s = secondary_timeout_s
        self.require_secondary = require_secondary
        self.names = names
        self.on_next = on_next  # called with the secondary's name before its capture (a CLI prompt)
        self.primary: Sensor | None = None
        self.secondary: Sensor | None = None
        self._secondary_problem = "not opened"
        self.sensor_id = "+".join(names)

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def open(self) -> None:
        if self.primary is None:
            sensor = self._make_primary()
            sensor.open()
            self.primary = sensor
        if self.secondary is None and not self._open_secondary() and self.require_secondary:
            self.close()
            raise SensorUnavailableError(f"{self.names[1]} sensor: {self._secondary_problem}")
        self.sensor_id = "+".join(str(getattr(s, "sensor_id", n)) if s is not None else n
                                  for s, n in ((self.primary, self.names[0]), (self.secondary, self.names[1])))

    def _open_secondary(self) -> bool:
        sensor = None
        try:
            sensor = self._make_secondary()
            sensor.open()
        except SensorError as exc:
            if sensor is not None:
                _quiet_close(sensor)
            self._secondary_problem = f"cannot be opened: {exc}"
            log.warning("%s sensor unavailable: %s", self.names[1], exc)
            return False
        self.secondary = sensor
        return True

    def close(self) -> None:
        for sensor in (self.secondary, self.primary):
            if sensor is not None:
                _quiet_close(sensor)
        self.primary = self.secondary = None

    # -- capture -----------------------------------------------------------------------------------------------
    def capture(self, timeout_s: float, cancel: threading.Event | None = None) -> PairedFrame:
        if self.primary is None:
            raise SensorUnavailableError(f"{self.names[0]} sensor is not open")
        first = self.primary.capture(timeout_s, cancel)  # NoFingerError: nobody there, the daemon waits again
        second, why = self._capture_secondary(cancel)
        images = {self.names[0]: first.image, self.names[1]: second}
        missing = {} if second is not None else {self.names[1]: why}
        return PairedFrame(first.image, first.dpi, self.sensor_id, images=images, missing=missing)

    def _capture_secondary(self, cancel: threading.Event | None) -> tuple[np.ndarray | None, str]:
        name = self.names[1]
        if self.secondary is None and not self._open_secondary():
            return None, f"{name} sensor {self._secondary_problem}"
        assert self.secondary is not None
        if self.on_next is not None:
            self.on_next(name)
        self.secondary.feedback("busy")
        try:
            return self.secondary.capture(self.secondary_timeout_s, cancel).image, ""
        except CaptureCancelledError:
            return None, f"{name} capture cancelled (stopping)"
        except NoFingerError:
            return None, f"no finger at the {name} sensor within {self.secondary_timeout_s:g} s"
        except SensorUnavailableError as exc:
            log.warning("%s sensor lost: %s; re-opening at the next attempt", name, exc)
            _quiet_close(self.secondary)
            self.secondary = None
            self._secondary_problem = f"lost: {exc}"
            return None, f"{name} sensor lost: {exc}"
        except SensorError as exc:
            return None, f"{name} capture failed: {exc}"

    def wait_until_clear(self, timeout_s: float, cancel: threading.Event | None = None) -> bool:
        clear = True
        for sensor in (self.primary, self.secondary):
            if sensor is not None:
                try:
                    clear = sensor.wait_until_clear(timeout_s, cancel) and clear
                except SensorUnavailableError:
                    if sensor is self.primary:
                        raise
        return clear

    def feedback(self, kind: str) -> None:
        for sensor in (self.primary, self.secondary):
            if sensor is not None:
                try:
                    sensor.feedback(kind)
                except SensorError as exc:  # an LED that fails is no reason to lose the attempt
                    log.debug("feedback %s failed: %s", kind, exc)

    def info(self) -> dict[str, object]:
        return {"sensor_id": self.sensor_id, "primary": None if self.primary is None else self.primary.info(),
                "secondary": None if self.secondary is None else self.secondary.info()}


def _quiet_close(sensor: Sensor) -> None:
    try:
        sensor.close()
    except Exception as exc:  # closing a vanished device is not worth failing for
        log.debug("closing %s failed: %s", getattr(sensor, "sensor_id", "sensor"), exc)


def fusion_sensor_factory(config: Config,
                          on_next: Callable[[str], None] | None = None) -> Callable[[], PairedSensor]:
    """``[sensor]`` (fingerprint) then ``[sensor_vein]``; ConfigError at once when the vein section is absent."""
    from device.sensors import build_sensor

    vein = config.sensor_vein
    if vein is None:
        raise ConfigError("device.modality = 'fusion' needs a [sensor_vein] section for the vein sensor "
                          "([sensor] is the fingerprint sensor); see docs/daemon.md")
    try:  # configuration mistakes (a replay sensor without a path...) stop the start, as in single mode
        build_sensor(vein)
    except ConfigError as exc:
        raise ConfigError(f"[sensor_vein]: {exc}") from exc
    return lambda: PairedSensor(lambda: build_sensor(config.sensor), lambda: build_sensor(vein),
                                secondary_timeout_s=vein.finger_timeout_s,
                                require_secondary=not config.matching.fusion_fallback, on_next=on_next)
