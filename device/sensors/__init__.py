"""Sensors: one backend per file behind the small ``Sensor`` interface in ``base.py``.

``build_sensor(config.sensor)`` picks the backend from ``sensor.type`` (``r30x``, ``camera``, ``replay``);
each backend imports its own dependencies (pyserial, OpenCV) only when it is built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from device.errors import ConfigError
from device.sensors.base import Frame, Sensor, SensorError

if TYPE_CHECKING:
    from device.config import SensorConfig

__all__ = ["BACKENDS", "Frame", "Sensor", "SensorError", "build_sensor"]


def _r30x(cfg: SensorConfig) -> Sensor:
    from device.sensors.r30x import R30xSensor

    return R30xSensor(
        cfg.port, cfg.module, baud=cfg.baud, address=cfg.address, password=cfg.password, timeout_s=cfg.timeout_s
    )


def _camera(cfg: SensorConfig) -> Sensor:
    from device.sensors.camera import CameraSensor

    return CameraSensor(cfg.source, exposure=cfg.exposure, burst=cfg.burst)


def _replay(cfg: SensorConfig) -> Sensor:
    from device.sensors.replay import ReplaySensor

    if cfg.path is None:
        raise ConfigError("sensor.type = 'replay' needs sensor.path (a folder or manifest.csv of images)")
    return ReplaySensor(cfg.path, loop=cfg.loop)


BACKENDS: dict[str, Callable[[SensorConfig], Sensor]] = {"r30x": _r30x, "camera": _camera, "replay": _replay}


def build_sensor(cfg: SensorConfig) -> Sensor:
    """The configured sensor, not yet opened (use it as a context manager or call ``open()``)."""
    try:
        factory = BACKENDS[cfg.type]
    except KeyError:
        raise ConfigError(f"sensor.type = {cfg.type!r}; choose one of {', '.join(BACKENDS)}") from None
    return factory(cfg)
