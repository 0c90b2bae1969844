"""Message types and payload layouts (see PROTOCOL.md), host side: build requests, parse the lock's answers.

Every lock answer starts with ``ref``: the counter of the host frame it answers, so an answer can never be
taken for the answer to a different request. Parsers check exact sizes and raise PayloadError.

Nothing about *who* or *why* goes on the wire (protocol version 2): UNLOCK is nonce + duration, DENY is empty.
The user name and the reason stay on the host, in its audit log.
"""

from __future__ import annotations

from dataclasses import dataclass

from firmware_bridge.errors import PayloadError
from firmware_bridge.firmware import lockproto as P

HELLO, HEARTBEAT, STATUS_REQ, CHALLENGE_REQ, UNLOCK, DENY, PAIR = (
    P.HELLO, P.HEARTBEAT, P.STATUS_REQ, P.CHALLENGE_REQ, P.UNLOCK, P.DENY, P.PAIR,
)
HELLO_ACK, STATUS, CHALLENGE, ACK, NACK, PAIR_ACK = P.HELLO_ACK, P.STATUS, P.CHALLENGE, P.ACK, P.NACK, P.PAIR_ACK
NONCE_LEN = P.NONCE_LEN
KEY_LEN = P.KEY_LEN

NAMES = {
    HELLO: "HELLO", HEARTBEAT: "HEARTBEAT", STATUS_REQ: "STATUS_REQ", CHALLENGE_REQ: "CHALLENGE_REQ",
    UNLOCK: "UNLOCK", DENY: "DENY", PAIR: "PAIR", HELLO_ACK: "HELLO_ACK", STATUS: "STATUS",
    CHALLENGE: "CHALLENGE", ACK: "ACK", NACK: "NACK", PAIR_ACK: "PAIR_ACK",
}
NACK_CODES = {
    P.E_REPLAY: "replay (counter not above the highest accepted)",
    P.E_BAD_NONCE: "no valid challenge (missing, expired or already used)",
    P.E_BAD_PAYLOAD: "malformed payload",
    P.E_BAD_DURATION: "duration out of range",
    P.E_UNKNOWN_TYPE: "unknown message type",
    P.E_PAIRING_CLOSED: "already paired; hold the pair button at power-up to re-pair",
}

F_RELAY, F_DOOR_OPEN, F_TAMPER, F_DOOR_SENSOR, F_PAIRED = 1, 2, 4, 8, 16


def unlock_payload(nonce: bytes, duration_ms: int) -> bytes:
    if len(nonce) != NONCE_LEN:
        raise ValueError("nonce must be 16 bytes")
    if not 1 <= duration_ms <= 0xFFFFFFFF:
        raise ValueError("duration out of range")
    return nonce + duration_ms.to_bytes(4, "big")


def deny_payload() -> bytes:
    return b""


def _need(payload: bytes, size: int, name: str) -> None:
    if len(payload) != size:
        raise PayloadError(f"{name} payload must be {size} bytes, got {len(payload)}")


def ref_of(payload: bytes) -> int:
    if len(payload) < 8:
        raise PayloadError(f"answer payload of {len(payload)} bytes has no request reference")
    return int.from_bytes(payload[:8], "big")


@dataclass(frozen=True)
class HelloInfo:
    firmware: str
    max_payload: int
    max_duration_ms: int


@dataclass(frozen=True)
class LockStatus:
    relay_on: bool
    door_open: bool | None  # None: no door sensor
    tamper: bool
    paired: bool
    firmware: str
    relay_remaining_ms: int
    bad_frames: int
    unlocks: int


@dataclass(frozen=True)
class Challenge:
    nonce: bytes
    ttl_ms: int


@dataclass(frozen=True)
class Nack:
    code: int
    detail: int

    @property
    def meaning(self) -> str:
        return NACK_CODES.get(self.code, f"unknown error code {self.code}")


def _version(b: bytes) -> str:
    return f"{b[0]}.{b[1]}.{b[2]}"


def parse_hello_ack(payload: bytes) -> HelloInfo:
    _need(payload, 8 + 3 + 1 + 4, "HELLO_ACK")
    return HelloInfo(_version(payload[8:11]), payload[11], int.from_bytes(payload[12:16], "big"))


def parse_status(payload: bytes) -> LockStatus:
    _need(payload, 8 + 1 + 3 + 12, "STATUS")
    flags = payload[8]
    return LockStatus(
        relay_on=bool(flags & F_RELAY),
        door_open=bool(flags & F_DOOR_OPEN) if flags & F_DOOR_SENSOR else None,
        tamper=bool(flags & F_TAMPER),
        paired=bool(flags & F_PAIRED),
        firmware=_version(payload[9:12]),
        relay_remaining_ms=int.from_bytes(payload[12:16], "big"),
        bad_frames=int.from_bytes(payload[16:20], "big"),
        unlocks=int.from_bytes(payload[20:24], "big"),
    )


def parse_challenge(payload: bytes) -> Challenge:
    _need(payload, 8 + NONCE_LEN + 2, "CHALLENGE")
    return Challenge(bytes(payload[8:8 + NONCE_LEN]), int.from_bytes(payload[8 + NONCE_LEN:], "big"))


def parse_ack(payload: bytes) -> int:
    """The ACK's value (the granted duration for UNLOCK, 0 otherwise)."""
    _need(payload, 12, "ACK")
    return int.from_bytes(payload[8:12], "big")


def parse_nack(payload: bytes) -> Nack:
    _need(payload, 8 + 1 + 8, "NACK")
    return Nack(payload[8], int.from_bytes(payload[9:17], "big"))


def parse_pair_ack(payload: bytes) -> tuple[bytes, str]:
    """(the lock's X25519 public key, its firmware version)."""
    _need(payload, 8 + KEY_LEN + 3, "PAIR_ACK")
    return bytes(payload[8:8 + KEY_LEN]), _version(payload[8 + KEY_LEN:])
