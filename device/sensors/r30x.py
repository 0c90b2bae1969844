"""Driver for ZhianTec/GROW UART fingerprint modules (R307, AS608, R503) over pyserial.

Why our own: the Python drivers in the wild either hang forever when the module goes silent or never check
the checksum. Here every read is bounded by a deadline, every packet's sum is verified, garbage on the line is
skipped up to the next valid header, and after any error the line is drained so the next command starts clean.

Flow of a capture: poll GenImg (0x01) until a finger is on (timeout and cancellation between polls), then
UpImage (0x0A): one ack, then data packets of the module's packet size with no acks in between, the last one
marked PID 08; the bytes are 4-bit pixels, first pixel in the high nibble. Example::

    with R30xSensor("/dev/ttyS0", module="r307") as sensor:
        frame = sensor.capture(timeout_s=10)
"""

from __future__ import annotations

import logging
import struct
import threading
import time
from collections.abc import Callable
from typing import Any

from device.sensors import r30x_packets as rp
from device.sensors.base import (
    CaptureCancelledError,
    CaptureFailedError,
    ChecksumError,
    Frame,
    ImageUploadError,
    NoFingerError,
    Sensor,
    SensorProtocolError,
    SensorTimeoutError,
    SensorUnavailableError,
    WrongPasswordError,
)

log = logging.getLogger(__name__)

READ_SLICE_S = 0.05  # the longest single blocking read; deadlines and cancellation are checked between reads

# R503 LED ring: (control, speed, colour, count). Control 1 breathing, 2 flashing, 3 on, 4 off;
# colour 1 red, 2 blue, 3 purple (the colours every R503 revision has).
LED_PATTERNS = {
    "idle": (4, 0, 2, 0),
    "busy": (1, 80, 2, 0),
    "accepted": (3, 0, 2, 0),
    "rejected": (2, 40, 1, 3),
    "retry": (2, 40, 3, 2),
    "error": (3, 0, 1, 0),
}


class R30xSensor(Sensor):
    """A fingerprint module on a serial port (any pyserial URL or device path)."""

    def __init__(
        self,
        port: str,
        module: str = "r307",
        *,
        baud: int = 57600,
        address: int = rp.DEFAULT_ADDRESS,
        password: int = 0,
        timeout_s: float = 2.0,
        poll_interval_s: float = 0.05,
        clock: Callable[[], float] = time.monotonic,
        serial_factory: Callable[..., Any] | None = None,
    ) -> None:
        if module not in rp.MODULES:
            raise ValueError(f"unknown module {module!r}")
        self.port = port
        self.spec = rp.MODULES[module]
        self.baud = baud
        self.address = address
        self.password = password
        self.timeout_s = timeout_s
        self.poll_interval_s = poll_interval_s
        self.clock = clock
        self.dpi = self.spec.dpi
        self.sensor_id = f"{module}@{port}"
        self.params: rp.SysParams | None = None
        self.garbage_bytes = 0  # bytes skipped while resynchronising (for diagnostics)
        self._serial_factory = serial_factory
        self._ser: Any = None
        self._rx = bytearray()

    # -- connection ----------------------------------------------------------------------------------------
    def open(self) -> None:
        if self._ser is not None:
            return
        import serial  # pyserial: imported here so the CLI stays light

        factory = self._serial_factory or serial.serial_for_url
        try:
            self._ser = factory(self.port, baudrate=self.baud, timeout=READ_SLICE_S, write_timeout=self.timeout_s)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise SensorUnavailableError(
                f"cannot open the fingerprint sensor at {self.port}: {exc} (check sensor.port, the cable, and that "
                "the user may open the device: group dialout)"
            ) from exc
        from device.sensors.portlock import lock_port

        busy = lock_port(self._ser, self.port)  # exclusive: a second process would corrupt both sides' packets
        if busy is not None:
            self.close()
            raise SensorUnavailableError(
                f"the fingerprint sensor {busy}: a running `biolock run` lends it to `biolock enroll` on request; "
                "stop any other program using the port"
            )
        self._rx.clear()
        try:
            self._ser.reset_input_buffer()
            self.verify_password(self.password)
            self.params = self.read_sys_params()
        except SensorTimeoutError as exc:
            self.close()
            raise SensorTimeoutError(
                f"no answer from the {self.spec.name} on {self.port} at {self.baud} baud ({exc}): check power, "
                "TX/RX wiring and sensor.baud (factory setting 57600; `biolock sensor test --probe-baud` finds it)"
            ) from exc
        except BaseException:
            self.close()
            raise
        p = self.params
        log.info("opened %s: %d baud, %d-byte packets, security level %d, %d templates", self.sensor_id, p.baud,
                 p.packet_size, p.security_level, p.library_size)
        log.debug("%s parameters: %s", self.sensor_id, p)

    def close(self) -> None:
        ser, self._ser = self._ser, None
        if ser is not None:
            try:
                ser.close()
            except Exception:  # closing a vanished device must never raise
                pass

    # -- packet I/O --------------------------------------------------------------------------------------
    def _require_open(self) -> Any:
        if self._ser is None:
            raise SensorUnavailableError(f"the fingerprint sensor at {self.port} is not open")
        return self._ser

    def _write(self, data: bytes) -> None:
        import serial

        ser = self._require_open()
        try:
            ser.write(data)
        except serial.SerialTimeoutException as exc:
            raise SensorTimeoutError(f"writing to {self.port} timed out") from exc
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise SensorUnavailableError(f"the fingerprint sensor at {self.port} disappeared: {exc}") from exc

    def _read_some(self) -> bytes:
        import serial

        ser = self._require_open()
        try:
            return ser.read(max(1, ser.in_waiting))
        except (serial.SerialException, OSError) as exc:
            self.close()
            raise SensorUnavailableError(f"the fingerprint sensor at {self.port} disappeared: {exc}") from exc

    def _read_packet(self, timeout_s: float) -> rp.Packet:
        """The next valid packet, skipping garbage; raises SensorTimeoutError / ChecksumError, never blocks longer."""
        deadline = self.clock() + timeout_s
        while True:
            try:
                packet, used = rp.extract_packet(self._rx)
            except rp.PacketChecksumError as exc:
                del self._rx[: exc.consumed]
                raise ChecksumError(f"{self.sensor_id}: {exc}") from None
            if used:
                # garbage before a packet is consumed in the same call as the packet: count it either way
                self.garbage_bytes += used - (0 if packet is None else len(packet.payload) + rp.OVERHEAD)
                del self._rx[:used]
            if packet is not None:
                if packet.address != self.address:
                    raise SensorProtocolError(f"{self.sensor_id}: packet from address 0x{packet.address:08X}")
                return packet
            if self.clock() >= deadline:
                raise SensorTimeoutError(f"no complete packet within {timeout_s:.2f} s")
            self._rx += self._read_some()

    def _drain(self, quiet_s: float = 0.1, max_s: float = 2.0) -> None:
        """Discard input until the line is quiet for ``quiet_s`` (after an error: start the next command clean)."""
        self._rx.clear()
        if self._ser is None:
            return
        end = self.clock() + max_s
        last = self.clock()
        while self.clock() < end and self.clock() - last < quiet_s:
            try:
                if self._read_some():
                    last = self.clock()
            except SensorUnavailableError:
                return

    def _transact(self, instruction: int, params: bytes = b"") -> rp.Packet:
        """Send one command and return its ack (confirmation code in ``.code``)."""
        self._require_open()
        if self._rx:
            self.garbage_bytes += len(self._rx)
            self._rx.clear()  # leftovers from an earlier answer can never be this command's answer
        self._write(rp.command(instruction, params, self.address))
        deadline = self.clock() + self.timeout_s
        try:
            while True:
                packet = self._read_packet(max(0.0, deadline - self.clock()))
                if packet.pid in (rp.PID_DATA, rp.PID_END):
                    # the late tail of an upload we already gave up on: never an answer to this command
                    self.garbage_bytes += len(packet.payload) + rp.OVERHEAD
                    continue
                if packet.pid != rp.PID_ACK or not packet.payload:
                    raise SensorProtocolError(f"{self.sensor_id}: expected an ack, got packet type 0x{packet.pid:02X}")
                return packet
        except (SensorTimeoutError, ChecksumError, SensorProtocolError):
            self._drain()
            raise

    # -- commands ----------------------------------------------------------------------------------------
    def verify_password(self, password: int) -> None:
        code = self._transact(rp.VFY_PWD, struct.pack(">I", password)).code
        if code == rp.ERR_WRONG_PASSWORD:
            raise WrongPasswordError(f"{self.sensor_id} refused the password: set sensor.password to the module's")
        if code != rp.OK:
            raise SensorProtocolError(f"{self.sensor_id}: password check failed: {rp.describe(code)}")

    def read_sys_params(self) -> rp.SysParams:
        packet = self._transact(rp.READ_SYS_PARA)
        if packet.code != rp.OK:
            raise SensorProtocolError(f"{self.sensor_id}: ReadSysPara failed: {rp.describe(packet.code)}")
        try:
            return rp.SysParams.parse(packet.payload[1:])
        except ValueError as exc:
            raise SensorProtocolError(f"{self.sensor_id}: {exc}") from None

    def set_sys_param(self, param: int, value: int) -> None:
        code = self._transact(rp.SET_SYS_PARA, bytes([param, value])).code
        if code != rp.OK:
            raise SensorProtocolError(f"{self.sensor_id}: SetSysPara({param}, {value}) failed: {rp.describe(code)}")

    def set_baud(self, baud: int) -> None:
        """Change the module's baud rate (a multiple of 9600 up to 115200) and follow it on our side."""
        if baud % 9600 or not 1 <= baud // 9600 <= 12:
            raise ValueError("baud must be N * 9600 with N in 1..12")
        self.set_sys_param(rp.PARAM_BAUD, baud // 9600)
        time.sleep(0.01)  # the module switches after its reply has left the UART
        self._require_open().baudrate = baud
        self.baud = baud
        self.params = self.read_sys_params()

    def set_packet_size(self, size: int) -> None:
        if size not in rp.PACKET_SIZES:
            raise ValueError(f"packet size must be one of {rp.PACKET_SIZES}")
        self.set_sys_param(rp.PARAM_PACKET_SIZE, rp.PACKET_SIZES.index(size))
        self.params = self.read_sys_params()

    def led(self, control: int, speed: int, colour: int, count: int) -> None:
        """R503 AuraLedConfig (0x35). Other modules have no LED ring: SensorProtocolError."""
        if not self.spec.aura_led:
            raise SensorProtocolError(f"the {self.spec.name} has no LED ring")
        code = self._transact(rp.AURA_LED_CONFIG, bytes([control, speed, colour, count])).code
        if code != rp.OK:
            raise SensorProtocolError(f"{self.sensor_id}: LED control failed: {rp.describe(code)}")

    def gen_img(self) -> int:
        """One GenImg: the confirmation code (0 finger imaged, 2 no finger, 3 capture failed)."""
        return self._transact(rp.GEN_IMG).code

    def upload_image(self) -> bytes:
        """UpImage: the raw image bytes, checking every data packet's sum and the total length."""
        code = self._transact(rp.UP_IMAGE).code
        if code != rp.OK:
            raise ImageUploadError(f"{self.sensor_id}: the module cannot upload the image: {rp.describe(code)}")
        expected = self.spec.width * self.spec.height // 2
        limit = self.spec.width * self.spec.height  # 8-bit uploads at most
        data = bytearray()
        from device.progress import Progress

        # a live bar on a terminal (an R307 upload at 57600 baud takes about 7 s); nothing in logs
        bar = Progress(expected, f"{self.sensor_id}: image upload", "B", lines=False)
        try:
            while True:
                try:
                    packet = self._read_packet(self.timeout_s)
                except SensorTimeoutError:
                    raise ImageUploadError(
                        f"{self.sensor_id}: image upload stopped after {len(data)} of {expected} bytes "
                        "(finger lifted, loose cable or power dip): try again"
                    ) from None
                if packet.pid not in (rp.PID_DATA, rp.PID_END):
                    raise SensorProtocolError(f"{self.sensor_id}: packet type 0x{packet.pid:02X} inside an upload")
                data += packet.payload
                bar.update(len(packet.payload))
                if len(data) > limit:
                    raise ImageUploadError(f"{self.sensor_id}: upload exceeds {limit} bytes")
                if packet.pid == rp.PID_END:
                    break
        except (ChecksumError, SensorProtocolError):
            self._drain()
            raise
        finally:
            bar.close()
        if len(data) not in (expected, limit):
            raise ImageUploadError(
                f"{self.sensor_id}: uploaded {len(data)} bytes, expected {expected} for a "
                f"{self.spec.width}x{self.spec.height} image: try again"
            )
        return bytes(data)

    # -- Sensor interface ----------------------------------------------------------------------------------
    def _wait(self, cancel: threading.Event | None) -> None:
        if cancel is not None:
            cancel.wait(self.poll_interval_s)
        else:
            time.sleep(self.poll_interval_s)

    def capture(self, timeout_s: float, cancel: threading.Event | None = None) -> Frame:
        deadline = self.clock() + timeout_s
        while True:
            if cancel is not None and cancel.is_set():
                raise CaptureCancelledError("capture cancelled")
            code = self.gen_img()
            if code == rp.OK:
                break
            if code == rp.ERR_CAPTURE:
                raise CaptureFailedError(f"{self.sensor_id}: could not image the finger: press flat and hold still")
            if code != rp.ERR_NO_FINGER:
                raise SensorProtocolError(f"{self.sensor_id}: GenImg: {rp.describe(code)}")
            if self.clock() >= deadline:
                raise NoFingerError(f"no finger on {self.sensor_id} within {timeout_s:.1f} s")
            self._wait(cancel)
        data = self.upload_image()  # a finger is down: finish the attempt even if a stop was requested
        image = rp.decode_image(data, self.spec.width, self.spec.height)
        return Frame(image, self.dpi, self.sensor_id)

    def wait_until_clear(self, timeout_s: float, cancel: threading.Event | None = None) -> bool:
        deadline = self.clock() + timeout_s
        while self.gen_img() != rp.ERR_NO_FINGER:
            if self.clock() >= deadline or (cancel is not None and cancel.is_set()):
                return False
            self._wait(cancel)
        return True

    def feedback(self, kind: str) -> None:
        if not self.spec.aura_led or kind not in LED_PATTERNS or self._ser is None:
            return
        try:
            self.led(*LED_PATTERNS[kind])
        except (SensorTimeoutError, ChecksumError, SensorProtocolError) as exc:
            log.warning("LED feedback %r failed: %s", kind, exc)  # cosmetic: never fails an attempt

    def info(self) -> dict[str, object]:
        params = self.params or self.read_sys_params()
        return {
            "sensor_id": self.sensor_id,
            "module": self.spec.name,
            "image": f"{self.spec.width}x{self.spec.height}",
            "dpi": self.dpi,
            "baud": params.baud,
            "packet_size": params.packet_size,
            "library_size": params.library_size,
            "security_level": params.security_level,
            "address": f"0x{params.address:08X}",
        }


def probe_baud(port: str, module: str = "r307", password: int = 0, timeout_s: float = 0.3) -> int | None:
    """Try every baud rate the module supports (57600 first); the one it answers at, or None."""
    rates = [57600] + [n * 9600 for n in range(12, 0, -1) if n * 9600 != 57600]
    for baud in rates:
        sensor = R30xSensor(port, module, baud=baud, password=password, timeout_s=timeout_s)
        try:
            sensor.open()
        except WrongPasswordError:
            return baud  # it answered: the rate is right, the password is not
        except (SensorTimeoutError, ChecksumError, SensorProtocolError):
            continue
        finally:
            sensor.close()
        return baud
    return None
