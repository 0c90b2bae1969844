"""The R30x / AS608 / R503 UART packet layer: build, parse, checksum, and the 4-bit image format. Pure functions.

Wire format (all integers big-endian)::

    EF 01 | address u32 | PID u8 | LEN u16 (= len(payload) + 2) | payload | SUM u16

``SUM = (PID + LEN_hi + LEN_lo + sum(payload)) & 0xFFFF``. PID 01 command, 02 data, 07 ack, 08 last data packet.
Example: GenImg is ``EF01 FFFFFFFF 01 0003 01 0005``.

Why a separate module: framing is where the known drivers go wrong (one never checks the sum, one hangs on
silence), so it is kept small, free of I/O and tested with hex vectors fed one byte at a time. ``extract_packet``
bounds every length the remote side claims before waiting for it, and skips garbage until the next header.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

HEADER = b"\xef\x01"
DEFAULT_ADDRESS = 0xFFFFFFFF

PID_COMMAND = 0x01
PID_DATA = 0x02
PID_ACK = 0x07
PID_END = 0x08
VALID_PIDS = frozenset({PID_COMMAND, PID_DATA, PID_ACK, PID_END})

# instruction codes
GEN_IMG = 0x01
UP_IMAGE = 0x0A
SET_SYS_PARA = 0x0E
READ_SYS_PARA = 0x0F
VFY_PWD = 0x13
AURA_LED_CONFIG = 0x35

# SetSysPara parameter numbers
PARAM_BAUD = 4  # value N: baud = N * 9600, N in 1..12
PARAM_SECURITY = 5  # 1..5
PARAM_PACKET_SIZE = 6  # 0: 32, 1: 64, 2: 128, 3: 256 bytes

PACKET_SIZES = (32, 64, 128, 256)
MAX_PAYLOAD = 256 + 64  # largest data packet (256) plus slack; anything above is garbage, not a packet
OVERHEAD = 2 + 4 + 1 + 2 + 2  # header, address, pid, len, sum

# confirmation codes (first payload byte of an ack)
OK = 0x00
ERR_PACKET = 0x01
ERR_NO_FINGER = 0x02
ERR_CAPTURE = 0x03
ERR_RECEIVE_DATA = 0x0E
ERR_UPLOAD = 0x0F
ERR_WRONG_PASSWORD = 0x13
ERR_NO_IMAGE = 0x15
ERR_BAD_REGISTER = 0x1A
ERR_VERIFY_PASSWORD_FIRST = 0x21

CONFIRMATION = {
    OK: "ok",
    ERR_PACKET: "error receiving the command packet",
    ERR_NO_FINGER: "no finger on the sensor",
    ERR_CAPTURE: "failed to capture the image",
    0x06: "image too messy to use",
    0x07: "too few features in the image",
    ERR_RECEIVE_DATA: "error receiving the following data packets",
    ERR_UPLOAD: "cannot upload the image",
    ERR_WRONG_PASSWORD: "wrong password",
    ERR_NO_IMAGE: "no valid image in the buffer",
    0x18: "error writing flash",
    ERR_BAD_REGISTER: "invalid register number",
    ERR_VERIFY_PASSWORD_FIRST: "the password must be verified first",
}


@dataclass(frozen=True)
class ModuleSpec:
    """What differs between the supported modules: image size, resolution, template capacity, LED ring."""

    name: str
    width: int
    height: int
    dpi: int
    library_size: int
    aura_led: bool


MODULES = {
    "r307": ModuleSpec("r307", 256, 288, 500, 1000, False),
    "as608": ModuleSpec("as608", 256, 288, 500, 300, False),
    "r503": ModuleSpec("r503", 192, 192, 508, 200, True),
}


def describe(code: int) -> str:
    """A user-readable text for a confirmation code."""
    return CONFIRMATION.get(code, f"unknown confirmation code 0x{code:02X}")


@dataclass(frozen=True)
class Packet:
    pid: int
    payload: bytes
    address: int = DEFAULT_ADDRESS

    @property
    def code(self) -> int:
        """The confirmation code of an ack (its first payload byte)."""
        if self.pid != PID_ACK or not self.payload:
            raise ValueError("not an ack packet")
        return self.payload[0]


class PacketChecksumError(ValueError):
    """A complete packet whose checksum does not match (``consumed`` bytes belong to it)."""

    def __init__(self, expected: int, got: int, consumed: int) -> None:
        super().__init__(f"packet checksum mismatch: computed 0x{expected:04X}, received 0x{got:04X}")
        self.expected, self.got, self.consumed = expected, got, consumed


def checksum(pid: int, payload: bytes) -> int:
    length = len(payload) + 2
    return (pid + (length >> 8) + (length & 0xFF) + sum(payload)) & 0xFFFF


def build_packet(pid: int, payload: bytes, address: int = DEFAULT_ADDRESS) -> bytes:
    """Encode one packet. Raises ValueError for a PID or payload the protocol cannot carry."""
    if pid not in VALID_PIDS:
        raise ValueError(f"invalid packet id 0x{pid:02X}")
    if len(payload) > MAX_PAYLOAD:
        raise ValueError(f"payload of {len(payload)} bytes exceeds {MAX_PAYLOAD}")
    return (
        HEADER
        + struct.pack(">IBH", address, pid, len(payload) + 2)
        + bytes(payload)
        + struct.pack(">H", checksum(pid, payload))
    )


def command(instruction: int, params: bytes = b"", address: int = DEFAULT_ADDRESS) -> bytes:
    return build_packet(PID_COMMAND, bytes([instruction]) + params, address)


def ack(code: int, data: bytes = b"", address: int = DEFAULT_ADDRESS) -> bytes:
    return build_packet(PID_ACK, bytes([code]) + data, address)


def extract_packet(buf: bytes | bytearray) -> tuple[Packet | None, int]:
    """Find the first packet in ``buf``. Returns ``(packet, consumed)``.

    ``packet is None`` means more bytes are needed; ``consumed`` then counts leading garbage that can be
    dropped. A header followed by an impossible PID or length is garbage too (resynchronisation: skip one
    byte and look for the next header). A complete packet with a wrong sum raises ``PacketChecksumError``
    carrying how many bytes to drop.
    """
    start = bytes(buf).find(HEADER)
    if start < 0:
        # keep a trailing 0xEF: it may be the first half of the next header
        keep = 1 if buf[-1:] == HEADER[:1] else 0
        return None, len(buf) - keep
    while start >= 0:
        head = buf[start : start + 9]
        if len(head) < 9:
            return None, start
        address, pid, length = struct.unpack(">IBH", bytes(head[2:9]))
        if pid in VALID_PIDS and 2 <= length <= MAX_PAYLOAD + 2:
            end = start + 9 + length
            if len(buf) < end:
                return None, start
            payload = bytes(buf[start + 9 : end - 2])
            (got,) = struct.unpack(">H", bytes(buf[end - 2 : end]))
            expected = checksum(pid, payload)
            if got != expected:
                raise PacketChecksumError(expected, got, end)
            return Packet(pid, payload, address), end
        start = bytes(buf).find(HEADER, start + 1)
    keep = 1 if buf[-1:] == HEADER[:1] else 0
    return None, len(buf) - keep


def unpack_4bit(data: bytes, width: int, height: int) -> np.ndarray:
    """Two pixels per byte, first pixel in the high nibble; nibble n becomes grey n * 17 (0..255)."""
    if len(data) * 2 != width * height:
        raise ValueError(f"{len(data)} bytes cannot hold a {width}x{height} 4-bit image ({width * height // 2})")
    raw = np.frombuffer(data, dtype=np.uint8)
    pixels = np.empty(raw.size * 2, dtype=np.uint8)
    pixels[0::2] = raw >> 4
    pixels[1::2] = raw & 0x0F
    return (pixels * 17).reshape(height, width)


def pack_4bit(image: np.ndarray) -> bytes:
    """The module's upload format for a uint8 grey image: top 4 bits of each pixel, two per byte."""
    flat = np.ascontiguousarray(image, dtype=np.uint8).reshape(-1)
    if flat.size % 2:
        raise ValueError("a 4-bit image needs an even number of pixels")
    nibbles = flat >> 4
    return ((nibbles[0::2] << 4) | nibbles[1::2]).astype(np.uint8).tobytes()


def decode_image(data: bytes, width: int, height: int) -> np.ndarray:
    """Decode an uploaded image of ``width x height``: 4 bits per pixel (R307/AS608/R503) or 8 bits."""
    if len(data) * 2 == width * height:
        return unpack_4bit(data, width, height)
    if len(data) == width * height:
        return np.frombuffer(data, dtype=np.uint8).reshape(height, width).copy()
    raise ValueError(
        f"uploaded {len(data)} bytes; a {width}x{height} image needs {width * height // 2} (4-bit) "
        f"or {width * height} (8-bit)"
    )


@dataclass(frozen=True)
class SysParams:
    """The 16 bytes ReadSysPara returns."""

    status: int
    system_id: int
    library_size: int
    security_level: int
    address: int
    packet_size: int  # bytes (decoded from the size code)
    baud: int  # bits per second (decoded from N)

    @classmethod
    def parse(cls, data: bytes) -> SysParams:
        if len(data) < 16:
            raise ValueError(f"ReadSysPara returned {len(data)} bytes, expected 16")
        status, system_id, lib, sec, addr, size_code, n = struct.unpack(">HHHHIHH", data[:16])
        if size_code > 3 or not 1 <= n <= 12:
            raise ValueError(f"ReadSysPara returned packet size code {size_code} / baud N {n}: out of range")
        return cls(status, system_id, lib, sec, addr, PACKET_SIZES[size_code], n * 9600)

    def encode(self) -> bytes:
        return struct.pack(
            ">HHHHIHH",
            self.status,
            self.system_id,
            self.library_size,
            self.security_level,
            self.address,
            PACKET_SIZES.index(self.packet_size),
            self.baud // 9600,
        )
