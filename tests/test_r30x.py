"""The real R30x driver (pyserial on a tty) against the byte-exact emulator on a pty: commands and every fault."""

import threading
import time

import numpy as np
import pytest
import serial

from device.sensors import r30x_packets as rp
from device.sensors.base import (
    CaptureCancelledError,
    CaptureFailedError,
    ChecksumError,
    ImageUploadError,
    NoFingerError,
    SensorProtocolError,
    SensorTimeoutError,
    SensorUnavailableError,
    WrongPasswordError,
)
from device.sensors.r30x import LED_PATTERNS, R30xSensor, probe_baud
from device.sensors.r30x_emulator import R30xEmulator, fit_image

FAST = 1.0  # read timeout for fault tests: a silent module costs this much, never more


def finger(seed: int, shape=(288, 256)) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, shape, dtype=np.uint8)


def as_uploaded(image: np.ndarray) -> np.ndarray:
    return (image >> 4) * 17


@pytest.fixture
def emu(tmp_path):
    with R30xEmulator("r307", link=tmp_path / "ttyR307") as emulator:
        yield emulator


@pytest.fixture
def sensor(emu):
    with R30xSensor(emu.port, timeout_s=FAST, poll_interval_s=0.01) as s:
        yield s


def test_open_verifies_password_and_reads_parameters(emu, sensor):
    assert list(emu.commands)[:2] == [rp.VFY_PWD, rp.READ_SYS_PARA]
    info = sensor.info()
    assert info["baud"] == 57600 and info["packet_size"] == 128 and info["image"] == "256x288"


def test_capture_returns_the_presented_print_as_the_module_uploads_it(emu, sensor):
    image = finger(1)
    emu.present(image)
    frame = sensor.capture(timeout_s=2)
    assert frame.image.shape == (288, 256) and frame.dpi == 500
    assert np.array_equal(frame.image, as_uploaded(image))
    assert frame.sensor_id == f"r307@{emu.port}"
    assert emu.uploads == 1
    assert sensor.wait_until_clear(timeout_s=1)


@pytest.mark.parametrize("module,shape", [("as608", (288, 256)), ("r503", (192, 192))])
def test_other_modules_upload_their_own_size(tmp_path, module, shape):
    with R30xEmulator(module) as emu, R30xSensor(emu.port, module, timeout_s=FAST) as sensor:
        image = finger(2, shape)
        emu.present(image)
        assert np.array_equal(sensor.capture(2).image, as_uploaded(image))


@pytest.mark.parametrize("size", [32, 64, 256])
def test_packet_size_can_be_changed_and_uploads_follow_it(emu, sensor, size):
    sensor.set_packet_size(size)
    assert emu.packet_size == size and sensor.params.packet_size == size
    image = finger(3)
    emu.present(image)
    assert np.array_equal(sensor.capture(2).image, as_uploaded(image))


def test_baud_rate_change_is_followed_by_both_sides(emu, sensor):
    sensor.set_baud(115200)
    assert emu.baud == 115200 and sensor.params.baud == 115200
    emu.present(finger(4))
    assert sensor.capture(2).image.shape == (288, 256)


def test_commands_delivered_one_byte_at_a_time(tmp_path):
    with R30xEmulator("r307", byte_delay_s=0.0005) as emu, R30xSensor(emu.port, timeout_s=2) as sensor:
        assert sensor.info()["library_size"] == 1000
        emu.present(finger(5))
        assert sensor.gen_img() == rp.OK


class OneByteReads:
    """A pyserial port whose reads return at most one byte: the driver must assemble every packet itself."""

    def __init__(self, *args, **kwargs):
        self._port = serial.serial_for_url(*args, **kwargs)
        self.reads = 0

    in_waiting = 0

    def read(self, n):
        self.reads += 1
        return self._port.read(1)

    def __getattr__(self, name):
        return getattr(self._port, name)


def test_full_upload_read_one_byte_at_a_time(emu):
    ports = []

    def factory(*args, **kwargs):
        ports.append(OneByteReads(*args, **kwargs))
        return ports[0]

    image = finger(6)
    emu.present(image)
    with R30xSensor(emu.port, timeout_s=5, serial_factory=factory) as sensor:  # 40,032 reads: generous on a busy CPU
        assert np.array_equal(sensor.capture(5).image, as_uploaded(image))
    assert ports[0].reads > 36864


def test_no_finger_polls_until_timeout_and_never_hangs(emu, sensor):
    start = time.monotonic()
    with pytest.raises(NoFingerError, match="no finger"):
        sensor.capture(timeout_s=0.2)
    assert emu.commands.count(rp.GEN_IMG) >= 2
    assert time.monotonic() - start < 5  # a generous bound on "does not hang", not a performance claim


def test_no_finger_answer_then_finger(emu, sensor):
    emu.inject("no_finger", 3)
    emu.present(finger(7))
    assert sensor.capture(timeout_s=2).image.shape == (288, 256)
    assert emu.commands.count(rp.GEN_IMG) == 4


def test_cancellation_stops_the_wait_for_a_finger(sensor):
    cancel = threading.Event()
    threading.Timer(0.1, cancel.set).start()
    with pytest.raises(CaptureCancelledError):
        sensor.capture(timeout_s=30, cancel=cancel)


def test_capture_failure_code_is_a_typed_error(emu, sensor):
    emu.inject("capture_fail")
    emu.present(finger(8))
    with pytest.raises(CaptureFailedError, match="press flat"):
        sensor.capture(2)
    assert np.array_equal(sensor.capture(2).image, as_uploaded(finger(8)))


@pytest.mark.parametrize("fault", ["bad_checksum", "bad_checksum_data"])
def test_bad_checksum_is_detected_and_the_next_capture_works(emu, sensor, fault):
    emu.present(finger(9))
    emu.inject(fault)
    with pytest.raises(ChecksumError, match="checksum"):
        sensor.capture(2)
    assert np.array_equal(sensor.capture(2).image, as_uploaded(finger(9)))


def test_garbage_on_the_line_is_skipped(emu, sensor):
    emu.present(finger(10))
    emu.inject("garbage", 2)
    assert np.array_equal(sensor.capture(2).image, as_uploaded(finger(10)))
    assert sensor.garbage_bytes > 0


@pytest.mark.parametrize("fault", ["silence", "half_packet"])
def test_silence_and_half_a_packet_time_out_then_recover(emu, sensor, fault):
    emu.inject(fault)
    with pytest.raises(SensorTimeoutError):
        sensor.read_sys_params()
    assert sensor.read_sys_params().baud == 57600


def test_late_data_packets_from_an_abandoned_upload_are_skipped(emu, sensor):
    stray = rp.build_packet(rp.PID_DATA, bytes(128)) + rp.build_packet(rp.PID_END, bytes(64))
    emu._write(stray)  # the rest of an upload that arrived after the driver gave up on it
    before = sensor.garbage_bytes
    assert sensor.read_sys_params().baud == 57600
    assert sensor.garbage_bytes - before == len(stray)


def test_truncated_upload_is_rejected_with_the_byte_count(emu, sensor):
    emu.present(finger(11))
    emu.inject("truncated_upload")
    with pytest.raises(ImageUploadError, match="expected 36864"):
        sensor.capture(2)
    assert sensor.read_sys_params().packet_size == 128  # the line is clean again


def test_finger_lifted_mid_upload_times_out_with_a_reason(emu, sensor):
    emu.present(finger(12))
    emu.inject("finger_lifted")
    with pytest.raises(ImageUploadError, match="stopped after 18432 of 36864"):
        sensor.capture(2)
    assert emu.pending() == 0
    with pytest.raises(NoFingerError):
        sensor.capture(0.1)


def test_wrong_password_is_refused(tmp_path):
    with R30xEmulator("r307", password=0x1234) as emu:
        with pytest.raises(WrongPasswordError, match="password"):
            R30xSensor(emu.port, password=0x9999, timeout_s=FAST).open()
        with R30xSensor(emu.port, password=0x1234, timeout_s=FAST) as sensor:
            assert sensor.info()["baud"] == 57600


def test_module_refuses_commands_before_the_password(tmp_path):
    with R30xEmulator("r307", password=7) as emu:
        sensor = R30xSensor(emu.port, password=7, timeout_s=FAST)
        sensor.open()
        emu._verified = False  # the module was power-cycled behind our back
        with pytest.raises(SensorProtocolError, match="verified first"):
            sensor.read_sys_params()
        sensor.close()


def test_wrong_baud_is_a_timeout_that_names_the_baud_rate_and_probe_finds_the_right_one(emu):
    with pytest.raises(SensorTimeoutError, match="115200 baud"):
        R30xSensor(emu.port, baud=115200, timeout_s=FAST).open()
    assert probe_baud(emu.port, timeout_s=0.2) == 57600


def test_missing_port_is_unavailable(tmp_path):
    with pytest.raises(SensorUnavailableError, match="cannot open"):
        R30xSensor(str(tmp_path / "ttyNothing")).open()


def test_unplugged_sensor_is_unavailable_and_comes_back_after_replug(emu, sensor):
    emu.unplug()
    with pytest.raises(SensorUnavailableError, match="disappeared"):
        sensor.read_sys_params()
    emu.replug()
    sensor.close()
    sensor.open()
    emu.present(finger(13))
    assert np.array_equal(sensor.capture(2).image, as_uploaded(finger(13)))


def test_r503_led_ring_shows_feedback_and_r307_has_none(emu, sensor):
    sensor.feedback("accepted")  # R307: no LED ring, nothing sent
    assert rp.AURA_LED_CONFIG not in emu.commands
    with pytest.raises(SensorProtocolError, match="no LED"):
        sensor.led(1, 1, 1, 1)
    with R30xEmulator("r503") as emu503, R30xSensor(emu503.port, "r503", timeout_s=FAST) as r503:
        r503.feedback("busy")
        r503.feedback("rejected")
        assert list(emu503.leds) == [LED_PATTERNS["busy"], LED_PATTERNS["rejected"]]


def test_emulator_fits_other_sizes_and_rejects_unknown_faults():
    assert fit_image(np.zeros((300, 300), np.uint8), 256, 288).shape == (288, 256)
    with pytest.raises(ValueError):
        R30xEmulator("r307").inject("meteor")


@pytest.mark.slow
def test_throttled_upload_at_real_baud_rate(tmp_path):
    """An R503 at 115200 baud, throttled like the real UART (about 1.6 s); no timing asserted."""
    with R30xEmulator("r503", baud=115200, throttle=True) as emu:
        with R30xSensor(emu.port, "r503", baud=115200, timeout_s=5) as sensor:
            image = finger(14, (192, 192))
            emu.present(image)
            assert np.array_equal(sensor.capture(10).image, as_uploaded(image))
