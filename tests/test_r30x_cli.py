"""`biolock sensor info|capture|test` against the emulated R307 through the real driver."""

import json

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from device.cli import main
from device.sensors.r30x_emulator import R30xEmulator


@pytest.fixture
def emu():
    with R30xEmulator("r307") as emulator:
        yield emulator


def finger():
    rng = np.random.default_rng(3)
    yy, xx = np.mgrid[0:288, 0:256]
    return np.clip(128 + 100 * np.sin((xx + 0.3 * yy) / 4.0) + rng.normal(0, 5, (288, 256)), 0, 255).astype(np.uint8)


def test_sensor_info_reports_the_module_parameters(emu):
    result = CliRunner().invoke(main, ["sensor", "info", "--type", "r30x", "--port", emu.port, "--json"])
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info["baud"] == 57600 and info["packet_size"] == 128 and info["image"] == "256x288"


def test_sensor_capture_writes_the_uploaded_image(emu, tmp_path):
    image = finger()
    emu.present(image)
    out = tmp_path / "cap.png"
    result = CliRunner().invoke(main, ["sensor", "capture", "--type", "r30x", "--port", emu.port, "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert np.array_equal(cv2.imread(str(out), cv2.IMREAD_GRAYSCALE), (image >> 4) * 17)


def test_sensor_test_captures_and_rates_quality(emu):
    emu.present(finger())
    emu.present(finger())
    result = CliRunner().invoke(main, ["sensor", "test", "--type", "r30x", "--port", emu.port, "--count", "2",
                                       "--timeout", "5"])
    assert result.exit_code == 0, result.output
    assert result.output.count("capture ") == 2 and "quality" in result.output and "passed" in result.output


def test_sensor_test_probes_the_baud_rate(emu):
    result = CliRunner().invoke(main, ["sensor", "test", "--type", "r30x", "--port", emu.port, "--baud", "115200",
                                       "--probe-baud", "--count", "0"])
    assert "answers at 57600 baud" in result.output and "set sensor.baud = 57600" in result.output
    assert result.exit_code == 3  # then opening at the configured (wrong) rate fails: a sensor error


def test_sensor_errors_are_one_line_with_the_sensor_exit_code(tmp_path):
    result = CliRunner().invoke(main, ["sensor", "info", "--type", "r30x", "--port", str(tmp_path / "nope")])
    assert result.exit_code == 3 and "cannot open the fingerprint sensor" in result.output
    assert "Traceback" not in result.output
    result = CliRunner().invoke(main, ["sensor", "info", "--type", "r30x", "--baud", "1"])
    assert result.exit_code == 2 and "sensor.baud" in result.output


def test_no_finger_is_a_clear_error(emu):
    result = CliRunner().invoke(main, ["sensor", "capture", "--type", "r30x", "--port", emu.port, "--out", "x.png",
                                       "--timeout", "0.2"])
    assert result.exit_code == 3 and "no finger" in result.output


def test_sensor_configure_changes_baud_and_packet_size(emu):
    result = CliRunner().invoke(main, ["sensor", "configure", "--type", "r30x", "--port", emu.port,
                                       "--set-baud", "115200", "--set-packet-size", "256"])
    assert result.exit_code == 0, result.output
    assert emu.baud == 115200 and emu.packet_size == 256
    assert "module answers at 115200 baud, packet size 256" in result.output


def test_sensor_test_and_configure_print_json(emu):
    emu.present(finger())
    result = CliRunner().invoke(main, ["sensor", "test", "--type", "r30x", "--port", emu.port, "--count", "1",
                                       "--timeout", "5", "--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["passed"] and len(report["captures"]) == 1
    assert (report["captures"][0]["width"], report["captures"][0]["height"]) == (256, 288)
    result = CliRunner().invoke(main, ["sensor", "configure", "--type", "r30x", "--port", emu.port,
                                       "--set-packet-size", "64", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {"baud": 57600, "packet_size": 64, "set_baud": None, "set_packet_size": 64}
