"""The test vectors printed in PROTOCOL.md, and a parser for them.

``python -m firmware_bridge.vectors`` prints the block to paste; tests parse PROTOCOL.md (not this file's
output) and check that the host codec and the firmware codec both reproduce every line byte for byte, and
that stdlib ``hmac`` agrees with the firmware's own HMAC.
"""

from __future__ import annotations

import re
from pathlib import Path

from firmware_bridge import frame as F
from firmware_bridge import messages as M

PROTOCOL_MD = Path(__file__).resolve().parent / "PROTOCOL.md"
VECTOR_KEY = bytes(range(32))
NONCE = bytes(range(0xA0, 0xB0))
# RFC 7748 section 6.1 key pairs: the host plays Alice, the lock Bob
HOST_PRIVATE = bytes.fromhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a")
HOST_PUBLIC = bytes.fromhex("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a")
LOCK_PRIVATE = bytes.fromhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb")
LOCK_PUBLIC = bytes.fromhex("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f")
SHARED = bytes.fromhex("4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742")
FW = bytes([2, 0, 0])

# name, type, counter, payload
FRAMES: list[tuple[str, int, int, bytes]] = [
    ("hello", M.HELLO, 1, b""),
    ("heartbeat", M.HEARTBEAT, 2, b""),
    ("challenge_req", M.CHALLENGE_REQ, 3, b""),
    ("challenge", M.CHALLENGE, 1, (3).to_bytes(8, "big") + NONCE + (2000).to_bytes(2, "big")),
    ("unlock", M.UNLOCK, 4, M.unlock_payload(NONCE, 3000)),
    ("ack_unlock", M.ACK, 2, (4).to_bytes(8, "big") + (3000).to_bytes(4, "big")),
    ("nack_bad_nonce", M.NACK, 3, (4).to_bytes(8, "big") + bytes([2]) + (0).to_bytes(8, "big")),
    ("deny", M.DENY, 5, M.deny_payload()),
    ("status_req", M.STATUS_REQ, 6, b""),
    ("status", M.STATUS, 4, (6).to_bytes(8, "big") + bytes([0x19]) + FW + (1250).to_bytes(4, "big")
     + (0).to_bytes(4, "big") + (1).to_bytes(4, "big")),
    ("hello_ack", M.HELLO_ACK, 5, (1).to_bytes(8, "big") + FW + bytes([64]) + (60000).to_bytes(4, "big")),
    ("pair", M.PAIR, 1, HOST_PUBLIC),  # codec vector (tag with the vector key); the real tags: PAIRING below
    ("pair_ack", M.PAIR_ACK, 1, (1).to_bytes(8, "big") + LOCK_PUBLIC + FW),
    ("big_counter", M.HEARTBEAT, 0x0102030405060708, b""),
    ("max_payload", M.DENY, 7, bytes([40]) + b"\x00" * 40),
]

COBS: list[tuple[bytes, bytes]] = [
    (b"\x00", b"\x01\x01"),
    (b"\x00\x00", b"\x01\x01\x01"),
    (b"\x11\x22\x00\x33", b"\x03\x11\x22\x02\x33"),
    (b"\x11\x22\x33\x44", b"\x05\x11\x22\x33\x44"),
    (b"\x11\x00\x00\x00", b"\x02\x11\x01\x01\x01"),
    (bytes(range(1, 255)), b"\xff" + bytes(range(1, 255))),
    (bytes(range(0, 255)), b"\x01\xff" + bytes(range(1, 255))),
    (bytes(range(1, 256)), b"\xff" + bytes(range(1, 255)) + b"\x02\xff"),
]


def render() -> str:
    lines = ["```vectors", "# name | type | counter | payload | raw frame | wire (COBS + 00)"]
    for name, msg_type, counter, payload in FRAMES:
        raw = F.pack(VECTOR_KEY, msg_type, counter, payload)
        wire = F.encode(VECTOR_KEY, msg_type, counter, payload)
        lines.append(f"{name} | {msg_type:02x} | {counter} | {payload.hex() or '-'} | {raw.hex()} | {wire.hex()}")
    lines.append("```")
    lines.append("")
    lines.append("```cobs")
    lines.append("# decoded | encoded")
    for dec, enc in COBS:
        lines.append(f"{dec.hex()} | {enc.hex()}")
    lines.append("```")
    lines.append("")
    lines.append("```pairing")
    lines.append("# name | hex")
    for name, value in pairing_values().items():
        lines.append(f"{name} | {value.hex() if isinstance(value, bytes) else value}")
    lines.append("```")
    return "\n".join(lines)


def pairing_values() -> dict[str, bytes | str]:
    """One whole pairing with the RFC 7748 key pairs: keys, the derived link key, the code, and both frames as
    they go on the wire (PAIR tagged with the host's public key, PAIR_ACK with the derived key)."""
    from firmware_bridge.pairing import derive_key, pairing_code

    key = derive_key(SHARED, HOST_PUBLIC, LOCK_PUBLIC)
    return {
        "host_private": HOST_PRIVATE, "host_public": HOST_PUBLIC, "lock_private": LOCK_PRIVATE,
        "lock_public": LOCK_PUBLIC, "shared": SHARED, "key": key, "code": pairing_code(key),
        "pair_wire": F.encode(HOST_PUBLIC, M.PAIR, 1, HOST_PUBLIC),
        "pair_ack_wire": F.encode(key, M.PAIR_ACK, 1, (1).to_bytes(8, "big") + LOCK_PUBLIC + FW),
    }


def parse_pairing(text: str | None = None) -> dict[str, str]:
    """The pairing block of PROTOCOL.md as name -> hex (or the code's digits)."""
    text = PROTOCOL_MD.read_text() if text is None else text
    out = {}
    for block in re.findall(r"```pairing\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if line.strip() and not line.startswith("#"):
                name, value = (p.strip() for p in line.split("|"))
                out[name] = value
    return out


def parse(text: str | None = None) -> tuple[list[dict], list[tuple[bytes, bytes]]]:
    """The frame and COBS vectors from PROTOCOL.md."""
    text = PROTOCOL_MD.read_text() if text is None else text
    frames, cobs = [], []
    for block in re.findall(r"```vectors\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            name, typ, counter, payload, raw, wire = (p.strip() for p in line.split("|"))
            frames.append({"name": name, "type": int(typ, 16), "counter": int(counter),
                           "payload": b"" if payload == "-" else bytes.fromhex(payload),
                           "raw": bytes.fromhex(raw), "wire": bytes.fromhex(wire)})
    for block in re.findall(r"```cobs\n(.*?)```", text, re.S):
        for line in block.splitlines():
            if not line.strip() or line.startswith("#"):
                continue
            dec, enc = (p.strip() for p in line.split("|"))
            cobs.append((bytes.fromhex(dec), bytes.fromhex(enc)))
    return frames, cobs


if __name__ == "__main__":
    print(render())
