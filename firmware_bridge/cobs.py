"""Consistent Overhead Byte Stuffing: frames contain no 0x00, so 0x00 delimits them on the wire.

Own implementation (plain bytes/bytearray, no imports beyond our errors) so it also runs on MicroPython;
tests cross-check it against the ``cobs`` package on random data.
"""

from firmware_bridge.errors import CobsError


def encode(data):
    """COBS-encode ``data``; the result has no 0x00 and no trailing delimiter."""
    out = bytearray(b"\x00")
    code_at, code = 0, 1
    last = len(data) - 1
    for i, byte in enumerate(data):
        if byte == 0:
            out[code_at] = code
            code_at, code = len(out), 1
            out.append(0)
            continue
        out.append(byte)
        code += 1
        if code == 0xFF:
            out[code_at] = code
            if i == last:  # a full block at the very end needs no empty block after it
                return bytes(out)
            code_at, code = len(out), 1
            out.append(0)
    out[code_at] = code
    return bytes(out)


def decode(data):
    """Decode one COBS block (without its delimiter); raises CobsError if it is not valid COBS."""
    out = bytearray()
    i, n = 0, len(data)
    while i < n:
        code = data[i]
        end = i + code
        if code == 0:
            raise CobsError("COBS block contains a zero byte")
        if end > n:
            raise CobsError("COBS block runs past the end of the frame")
        chunk = data[i + 1:end]
        if 0 in chunk:
            raise CobsError("COBS block contains a zero byte")
        out.extend(chunk)
        i = end
        if code != 0xFF and i < n:
            out.append(0)
    return bytes(out)
