"""The replay sensor: folders in natural order, manifests in row order, loop, exhaustion, unreadable files."""

import cv2
import numpy as np
import pytest

from device.config import SensorConfig
from device.errors import ConfigError
from device.sensors import build_sensor
from device.sensors.base import BadFrameError, CaptureCancelledError, ReplayExhaustedError, SensorUnavailableError
from device.sensors.replay import ReplaySensor


def write(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    img = np.full((20, 30), value, np.uint8)
    img[5:10, 5:10] = 255 - value
    assert cv2.imwrite(str(path), img)


def test_folder_in_natural_order_then_exhausted(tmp_path):
    for n in (10, 2, 1):
        write(tmp_path / f"{n}.png", n)
    with ReplaySensor(tmp_path) as sensor:
        values = [int(sensor.capture(1).image[0, 0]) for _ in range(3)]
        with pytest.raises(ReplayExhaustedError):
            sensor.capture(1)
    assert values == [1, 2, 10]


def test_manifest_rows_in_order_and_loop(tmp_path):
    write(tmp_path / "setA" / "p1" / "b.png", 50)
    write(tmp_path / "setA" / "p1" / "a.png", 60)
    rows = "dataset,relpath,identity,impression\nsetA,p1/b.png,p1,1\nsetA,p1/a.png,p1,2\n"
    (tmp_path / "manifest.csv").write_text(rows)
    sensor = ReplaySensor(tmp_path / "manifest.csv", loop=True)
    sensor.open()
    assert [int(sensor.capture(1).image[0, 0]) for _ in range(3)] == [50, 60, 50]


def test_unreadable_file_fails_one_attempt_and_moves_on(tmp_path):
    (tmp_path / "1.png").write_bytes(b"")
    write(tmp_path / "2.png", 9)
    with ReplaySensor(tmp_path) as sensor:
        with pytest.raises(BadFrameError):
            sensor.capture(1)
        assert int(sensor.capture(1).image[0, 0]) == 9


def test_memory_images_cancel_and_bad_sources(tmp_path):
    sensor = ReplaySensor([np.zeros((4, 4), np.uint8)])
    sensor.open()
    event = __import__("threading").Event()
    event.set()
    with pytest.raises(CaptureCancelledError):
        sensor.capture(1, cancel=event)
    with pytest.raises(SensorUnavailableError, match="does not exist"):
        ReplaySensor(tmp_path / "missing").open()
    (tmp_path / "empty").mkdir()
    with pytest.raises(SensorUnavailableError, match="no images"):
        ReplaySensor(tmp_path / "empty").open()
    (tmp_path / "bad.csv").write_text("a,b\n1,2\n")
    with pytest.raises(SensorUnavailableError, match="columns"):
        ReplaySensor(tmp_path / "bad.csv").open()


def test_build_sensor_picks_the_backend(tmp_path):
    write(tmp_path / "x.png", 3)
    sensor = build_sensor(SensorConfig(type="replay", path=tmp_path))
    assert isinstance(sensor, ReplaySensor)
    with pytest.raises(ConfigError, match="sensor.path"):
        build_sensor(SensorConfig(type="replay"))
    assert type(build_sensor(SensorConfig(type="r30x", port="/dev/null"))).__name__ == "R30xSensor"
    assert type(build_sensor(SensorConfig(type="camera", source="0"))).__name__ == "CameraSensor"
