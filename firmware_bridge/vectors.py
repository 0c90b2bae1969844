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

# name, type, counter, payload
FRAMES: list[tuple[str, int, int, bytes]] = [
    ("hello", M.HELLO, 1, b""),
    ("heartbeat", M.HEARTBEAT, 2, b""),
    ("challenge_req", M.CHALLENGE_REQ, 3, b""),
    ("challenge", M.CHALLENGE, 1, (3).to_bytes(8, "big") + NONCE + (5000).to_bytes(2, "big")),
    ("unlock", M.UNLOCK, 4, M.unlock_payload(NONCE, 3000, "alice")),
    ("ack_unlock", M.ACK, 2, (4).to_bytes(8, "big") + (3000).to_bytes(4, "big")),
    ("nack_bad_nonce", M.NACK, 3, (4).to_bytes(8, "big") + bytes([2]) + (0).to_bytes(8, "big")),
    ("deny", M.DENY, 5, M.deny_payload("unknown finger")),
    ("status_req", M.STATUS_REQ, 6, b""),
    ("status", M.STATUS, 4, (6).to_bytes(8, "big") + bytes([0x19, 1, 0, 0]) + (1250).to_bytes(4, "big")
     + (0).to_bytes(4, "big") + (1).to_bytes(4, "big")),
    ("hello_ack", M.HELLO_ACK, 5, (1).to_bytes(8, "big") + bytes([1, 0, 0, 64]) + (60000).to_bytes(4, "big")),
    ("pair", M.PAIR, 1, VECTOR_KEY),
    ("pair_ack", M.PAIR_ACK, 1, (1).to_bytes(8, "big") + bytes([1, 0, 0])),
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
    return "\n".join(lines)


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
