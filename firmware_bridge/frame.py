"""The frame layout and its authentication, host side (see PROTOCOL.md).

``version u8 | type u8 | counter u64 BE | length u16 BE | payload (length <= 64) | tag 16 bytes``, where the
tag is HMAC-SHA256(key, everything before it) truncated to 128 bits; on the wire the frame is COBS-encoded and
followed by 0x00. Checks run cheapest and least trusting first: size, COBS, version, length, tag, direction,
type; the counter check is the caller's (it needs state). Each failure is its own error class.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass

from firmware_bridge import cobs
from firmware_bridge.errors import (
    AuthError,
    LengthError,
    OversizeError,
    UnknownTypeError,
    VersionError,
)
from firmware_bridge.firmware import lockproto as P

VERSION = P.VERSION
HEADER_LEN = P.HEADER_LEN
TAG_LEN = P.TAG_LEN
MAX_PAYLOAD = P.MAX_PAYLOAD
MAX_FRAME = P.MAX_FRAME
MAX_ENCODED = P.MAX_ENCODED
KEY_LEN = P.KEY_LEN
COUNTER_MAX = P.COUNTER_MAX


@dataclass(frozen=True)
class Frame:
    """An authenticated frame (its tag was checked when it was built by :func:`unpack`)."""

    type: int
    counter: int
    payload: bytes
    tag: bytes

    @property
    def from_lock(self) -> bool:
        return bool(self.type & P.FROM_LOCK)


def tag_of(key: bytes, body: bytes) -> bytes:
    return hmac.new(key, body, hashlib.sha256).digest()[:TAG_LEN]


def pack(key: bytes, msg_type: int, counter: int, payload: bytes = b"") -> bytes:
    """Raw frame (header + payload + tag), before COBS."""
    if len(key) != KEY_LEN:
        raise ValueError("key must be 32 bytes")
    if not 0 <= msg_type <= 0xFF or not 0 <= counter <= COUNTER_MAX or len(payload) > MAX_PAYLOAD:
        raise ValueError("type, counter or payload length out of range")
    body = bytes([VERSION, msg_type]) + counter.to_bytes(8, "big") + len(payload).to_bytes(2, "big") + payload
    return body + tag_of(key, body)


def encode(key: bytes, msg_type: int, counter: int, payload: bytes = b"") -> bytes:
    """Wire bytes for one frame: COBS(raw) + 0x00."""
    return cobs.encode(pack(key, msg_type, counter, payload)) + b"\x00"


def unpack(raw: bytes, key: bytes, *, expect_from_lock: bool) -> Frame:
    """Check a raw frame (COBS already removed) and return it; raises a FrameError subclass or AuthError."""
    if len(raw) > MAX_FRAME:
        raise OversizeError(f"frame of {len(raw)} bytes exceeds the maximum of {MAX_FRAME}")
    if len(raw) < HEADER_LEN + TAG_LEN:
        raise LengthError(f"frame of {len(raw)} bytes is shorter than header and tag ({HEADER_LEN + TAG_LEN})")
    if raw[0] != VERSION:
        raise VersionError(f"protocol version {raw[0]} is not supported (this side speaks {VERSION})")
    length = int.from_bytes(raw[10:12], "big")
    if length > MAX_PAYLOAD:
        raise LengthError(f"payload length {length} exceeds the maximum of {MAX_PAYLOAD}")
    if len(raw) != HEADER_LEN + length + TAG_LEN:
        raise LengthError(f"length field says {length} payload bytes but the frame holds {len(raw) - 28}")
    end = HEADER_LEN + length
    body, tag = raw[:end], raw[end:]
    if not hmac.compare_digest(tag_of(key, body), tag):
        raise AuthError("frame tag does not verify (wrong key, corruption or forgery)")
    msg_type = raw[1]
    known = P.LOCK_TYPES if expect_from_lock else P.HOST_TYPES
    if msg_type not in known:
        side = "the lock" if expect_from_lock else "the host"
        raise UnknownTypeError(f"message type 0x{msg_type:02x} is not one {side} sends")
    return Frame(msg_type, int.from_bytes(raw[2:10], "big"), bytes(raw[HEADER_LEN:end]), bytes(tag))


class FrameReader:
    """Splits a byte stream at 0x00 into COBS-decoded raw frames, never buffering more than one maximum frame.

    ``feed`` returns a list whose items are raw frames (bytes) or FrameError instances for what was dropped,
    so the caller can count rejections without exceptions interrupting the stream.
    """

    def __init__(self, max_encoded: int = MAX_ENCODED) -> None:
        self.max_encoded = max_encoded
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes | Exception]:
        out: list[bytes | Exception] = []
        start = 0
        while start < len(data):
            zero = data.find(b"\x00", start)
            chunk = data[start:] if zero < 0 else data[start:zero]
            if not self._discarding:
                if len(self._buf) + len(chunk) > self.max_encoded:
                    self._discarding = True
                    self._buf = bytearray()
                else:
                    self._buf += chunk
            if zero < 0:
                break
            if self._discarding:
                out.append(OversizeError(f"more than {self.max_encoded} bytes before a delimiter; dropped"))
            elif self._buf:
                try:
                    out.append(cobs.decode(bytes(self._buf)))
                except Exception as exc:  # CobsError
                    out.append(exc)
            self._buf = bytearray()
            self._discarding = False
            start = zero + 1
        return out

    @property
    def pending(self) -> int:
        return len(self._buf)
