"""A byte-exact emulator of an R307 / AS608 / R503 fingerprint module, serving one end of a pseudo-terminal.

Why: the real driver (``r30x.py``) must be tested as it runs on the board -- pyserial on a tty, real bytes,
real timeouts -- without the hardware. The emulator speaks the module's packet protocol (``r30x_packets``),
answers with the module's confirmation codes, uploads images as data packets of the configured size (no
per-packet acks), can throttle to the real baud rate (an R307 upload at 57600 baud takes about 6.5 s), and
injects the faults seen in the field, one reply at a time:

``no_finger``, ``capture_fail``, ``bad_checksum`` (next reply), ``bad_checksum_data`` (one upload packet),
``truncated_upload`` (the upload ends early with a last-packet marker), ``finger_lifted`` (the upload stops half
way and never finishes), ``half_packet`` (half of the next reply, then nothing), ``silence`` (no reply),
``garbage`` (noise before the next reply). A wrong password is a constructor argument; a wrong baud rate is
detected from the tty's own settings (the driver's pyserial sets them) and answered with silence, as a module
that cannot decode the line would. ``unplug()`` / ``replug()`` make the port vanish and come back under the
same symlink.

Usage::

    with R30xEmulator("r307", link=tmp / "ttyR307") as emu:
        emu.present(image)
        sensor = R30xSensor(emu.port)
"""

from __future__ import annotations

import collections
import logging
import os
import select
import struct
import termios
import threading
import time
import tty
from pathlib import Path

import numpy as np

from device.sensors import r30x_packets as rp

log = logging.getLogger(__name__)

FAULTS = (
    "no_finger",
    "capture_fail",
    "bad_checksum",
    "bad_checksum_data",
    "truncated_upload",
    "finger_lifted",
    "half_packet",
    "silence",
    "garbage",
)

HISTORY = 1024

_BAUD_CONSTANTS = {
    getattr(termios, f"B{rate}"): rate
    for rate in (9600, 19200, 38400, 57600, 115200, 230400)
    if hasattr(termios, f"B{rate}")
}


def fit_image(image: np.ndarray, width: int, height: int, background: int = 255) -> np.ndarray:
    """Centre-crop or pad a grey image to the sensor's array size (what the sensor would see of a print)."""
    if image.ndim != 2:
        raise ValueError("the emulator takes grey (H, W) images")
    out = np.full((height, width), background, dtype=np.uint8)
    h, w = min(height, image.shape[0]), min(width, image.shape[1])
    sy, sx = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
    dy, dx = (height - h) // 2, (width - w) // 2
    out[dy : dy + h, dx : dx + w] = image[sy : sy + h, sx : sx + w]
    return out


class R30xEmulator:
    """The module's behaviour on a pty. ``port`` is what the driver opens (the symlink when ``link`` is given)."""

    def __init__(
        self,
        module: str = "r307",
        *,
        address: int = rp.DEFAULT_ADDRESS,
        password: int = 0,
        packet_size: int = 128,
        baud: int = 57600,
        throttle: bool = False,
        byte_delay_s: float = 0.0,
        link: Path | str | None = None,
        seed: int = 0,
    ) -> None:
        if module not in rp.MODULES:
            raise ValueError(f"unknown module {module!r}; choose one of {', '.join(rp.MODULES)}")
        if packet_size not in rp.PACKET_SIZES:
            raise ValueError(f"packet size must be one of {rp.PACKET_SIZES}")
        self.spec = rp.MODULES[module]
        self.address = address
        self.password = password
        self.packet_size = packet_size
        self.baud = baud
        self.security_level = 3
        self.throttle = throttle
        self.byte_delay_s = byte_delay_s
        self.link = Path(link) if link is not None else None
        self._rng = np.random.default_rng(seed)
        self._fingers: collections.deque[np.ndarray] = collections.deque()
        self._buffer: np.ndarray | None = None  # the image buffer GenImg fills
        self._clear_polls = 0  # GenImg answers "no finger" this many times after a lift
        self._faults: collections.deque[str] = collections.deque()
        self._verified = password == 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._master = self._slave = -1
        self._tty_name = ""
        # recent history for tests, bounded so a long soak does not grow it without end
        self.commands: collections.deque[int] = collections.deque(maxlen=HISTORY)  # instruction codes received
        self.leds: collections.deque[tuple[int, int, int, int]] = collections.deque(maxlen=HISTORY)  # AuraLedConfig
        self.uploads = 0

    # -- lifecycle -----------------------------------------------------------------------------------------
    @property
    def port(self) -> str:
        return str(self.link) if self.link is not None else self._tty_name

    def start(self) -> R30xEmulator:
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)  # no echo, no line editing: all 256 byte values pass
        os.set_blocking(self._master, False)
        self._tty_name = os.ttyname(self._slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".new")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(self._tty_name)
            os.replace(tmp, self.link)
        self._stop.clear()
        self._thread = threading.Thread(target=self._serve, name="r30x-emulator", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None
        for fd in (self._master, self._slave):
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        self._master = self._slave = -1
        if self.link is not None:
            self.link.unlink(missing_ok=True)

    def unplug(self) -> None:
        """The module disappears: the tty closes and the port path is gone."""
        self.stop()

    def replug(self) -> None:
        """The module comes back (power-on state: password must be verified again) under the same link."""
        self._verified = self.password == 0
        self.start()

    def __enter__(self) -> R30xEmulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- the finger and faults ------------------------------------------------------------------------------
    def present(self, image: np.ndarray) -> None:
        """Queue a finger; it stays on the sensor until its image has been uploaded (or ``lift()``)."""
        with self._lock:
            self._fingers.append(fit_image(np.asarray(image, dtype=np.uint8), self.spec.width, self.spec.height))

    def lift(self) -> None:
        with self._lock:
            if self._fingers:
                self._fingers.popleft()
                self._clear_polls = 1

    def pending(self) -> int:
        with self._lock:
            return len(self._fingers)

    def inject(self, fault: str, count: int = 1) -> None:
        if fault not in FAULTS:
            raise ValueError(f"unknown fault {fault!r}; choose one of {', '.join(FAULTS)}")
        with self._lock:
            self._faults.extend([fault] * count)

    def _take_fault(self, *kinds: str) -> str | None:
        with self._lock:
            if self._faults and self._faults[0] in kinds:
                return self._faults.popleft()
        return None

    # -- serving ---------------------------------------------------------------------------------------------
    def _line_baud_ok(self) -> bool:
        try:
            speed = termios.tcgetattr(self._slave)[4]
        except termios.error:
            return True
        rate = _BAUD_CONSTANTS.get(speed)
        return rate is None or rate == self.baud  # non-standard rates cannot be read back: accept them

    def _serve(self) -> None:
        rx = bytearray()
        while not self._stop.is_set():
            try:
                ready, _, _ = select.select([self._master], [], [], 0.05)
                if not ready:
                    continue
                data = os.read(self._master, 4096)
            except (OSError, ValueError):
                time.sleep(0.05)  # nobody has the slave open yet (EIO): wait for the driver
                continue
            if not data:
                continue
            if not self._line_baud_ok():
                continue  # at the wrong baud rate the module sees framing errors, never a packet
            rx += data
            while rx:
                try:
                    packet, used = rp.extract_packet(rx)
                except rp.PacketChecksumError as exc:
                    del rx[: exc.consumed]
                    self._reply(rp.ERR_PACKET)
                    continue
                del rx[:used]
                if packet is None:
                    break
                if packet.pid == rp.PID_COMMAND and packet.address == self.address and packet.payload:
                    self._handle(packet.payload[0], packet.payload[1:])

    def _write(self, data: bytes) -> None:
        """Write to the line, honouring throttling and one-byte-at-a-time delivery; drops data when stopped."""
        step = 1 if self.byte_delay_s > 0 else 4096
        per_byte = 10.0 / self.baud if self.throttle else 0.0
        for i in range(0, len(data), step):
            chunk = data[i : i + step]
            while chunk and not self._stop.is_set():
                try:
                    _, ready, _ = select.select([], [self._master], [], 0.05)
                    if ready:
                        chunk = chunk[os.write(self._master, chunk) :]
                except OSError:
                    return
            if per_byte:
                time.sleep(per_byte * len(data[i : i + step]))
            if self.byte_delay_s:
                time.sleep(self.byte_delay_s)

    def _send(self, pid: int, payload: bytes) -> None:
        packet = rp.build_packet(pid, payload, self.address)
        fault = self._take_fault("bad_checksum", "half_packet", "garbage")
        if fault == "garbage":
            noise = self._rng.integers(0, 256, size=int(self._rng.integers(5, 60)), dtype=np.uint8).tobytes()
            self._write(noise + b"\xef\x01\xff\xff\xff\xff\x07\xff\xff")  # a fake header with an impossible length
        elif fault == "bad_checksum":
            packet = packet[:-2] + struct.pack(">H", (struct.unpack(">H", packet[-2:])[0] ^ 0x5A5A))
        elif fault == "half_packet":
            packet = packet[: len(packet) // 2]
        self._write(packet)

    def _reply(self, code: int, data: bytes = b"") -> None:
        if self._take_fault("silence"):
            return
        self._send(rp.PID_ACK, bytes([code]) + data)

    def _handle(self, instruction: int, params: bytes) -> None:
        self.commands.append(instruction)
        if not self._verified and instruction != rp.VFY_PWD:
            self._reply(rp.ERR_VERIFY_PASSWORD_FIRST)
        elif instruction == rp.VFY_PWD and len(params) == 4:
            ok = struct.unpack(">I", params)[0] == self.password
            self._verified = ok
            self._reply(rp.OK if ok else rp.ERR_WRONG_PASSWORD)
        elif instruction == rp.GEN_IMG:
            self._gen_img()
        elif instruction == rp.UP_IMAGE:
            self._up_image()
        elif instruction == rp.READ_SYS_PARA:
            params_out = rp.SysParams(
                0, 0, self.spec.library_size, self.security_level, self.address, self.packet_size, self.baud
            )
            self._reply(rp.OK, params_out.encode())
        elif instruction == rp.SET_SYS_PARA and len(params) == 2:
            self._set_sys_para(params[0], params[1])
        elif instruction == rp.AURA_LED_CONFIG and self.spec.aura_led and len(params) == 4:
            self.leds.append((params[0], params[1], params[2], params[3]))
            self._reply(rp.OK)
        else:
            self._reply(rp.ERR_PACKET)

    def _gen_img(self) -> None:
        if self._take_fault("no_finger"):
            self._reply(rp.ERR_NO_FINGER)
            return
        if self._take_fault("capture_fail"):
            self._reply(rp.ERR_CAPTURE)
            return
        with self._lock:
            if self._clear_polls > 0 or not self._fingers:
                self._clear_polls = max(0, self._clear_polls - 1)
                code = rp.ERR_NO_FINGER
            else:
                self._buffer = self._fingers[0].copy()
                code = rp.OK
        self._reply(code)

    def _up_image(self) -> None:
        if self._buffer is None:
            self._reply(rp.ERR_NO_IMAGE)
            return
        fault = self._take_fault("truncated_upload", "finger_lifted", "bad_checksum_data")
        self._reply(rp.OK)
        data = rp.pack_4bit(self._buffer)
        size = self.packet_size
        chunks = [data[i : i + size] for i in range(0, len(data), size)]
        if fault == "truncated_upload":
            chunks = chunks[: len(chunks) // 2] + [chunks[len(chunks) // 2][: size // 2]]
        elif fault == "finger_lifted":
            chunks = chunks[: len(chunks) // 2]
        bad = len(chunks) // 3 if fault == "bad_checksum_data" else -1
        if fault is None or fault == "finger_lifted":
            # the user lifts the finger once the module has its image (or too early). Recorded before the bytes
            # go out: a host that has read the whole upload must already see the lift and the upload counted
            # (updating after the last write raced with the host's next step)
            self.uploads += fault is None
            with self._lock:
                if self._fingers:
                    self._fingers.popleft()
                self._clear_polls = 1
        for i, chunk in enumerate(chunks):
            last = i == len(chunks) - 1 and fault != "finger_lifted"
            packet = rp.build_packet(rp.PID_END if last else rp.PID_DATA, chunk, self.address)
            if i == bad:
                packet = packet[:-1] + bytes([packet[-1] ^ 0xFF])
            self._write(packet)

    def _set_sys_para(self, param: int, value: int) -> None:
        if param == rp.PARAM_BAUD and 1 <= value <= 12:
            self._reply(rp.OK)
            self.baud = value * 9600  # the new rate applies after the reply
        elif param == rp.PARAM_PACKET_SIZE and value <= 3:
            self.packet_size = rp.PACKET_SIZES[value]
            self._reply(rp.OK)
        elif param == rp.PARAM_SECURITY and 1 <= value <= 5:
            self.security_level = value
            self._reply(rp.OK)
        else:
            self._reply(rp.ERR_BAD_REGISTER)
