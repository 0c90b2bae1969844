"""Image dimensions from file headers (before any decoding), and silencing what C decoders print.

Why: the decoder allocates what the header asks for, so a tiny crafted file can claim 20000x20000 16-bit pixels
and take gigabytes (issue 17 item 7); reading width and height from the header first lets ``imageio`` refuse it
for the cost of a few bytes. libpng and libjpeg write warnings straight to file descriptor 2, around our own
one-line error: :func:`quiet_stderr` captures them so the error can quote them instead.
"""

from __future__ import annotations

import contextlib
import os
import struct
import tempfile
import threading
from collections.abc import Iterator

_SOF = {0xC0, 0xC1, 0xC2, 0xC3, 0xC5, 0xC6, 0xC7, 0xC9, 0xCA, 0xCB, 0xCD, 0xCE, 0xCF}
_STDERR_LOCK = threading.Lock()


def dimensions(data: bytes, fmt: str) -> tuple[int, int] | None:
    """(width, height) from the header of ``fmt`` data, or None when the header cannot be read."""
    try:
        return _READERS[fmt](data)
    except (struct.error, IndexError, ValueError, KeyError):
        return None


def _png(data: bytes) -> tuple[int, int] | None:
    if data[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", data[16:24])


def _jpeg(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 4 <= len(data):
        if data[i] != 0xFF:
            return None
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker in (0x01, *range(0xD0, 0xDA)):  # markers without a length
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2:i + 4])
        if marker in _SOF:
            height, width = struct.unpack(">HH", data[i + 5:i + 9])
            return width, height
        i += 2 + length
    return None


def _bmp(data: bytes) -> tuple[int, int]:
    (header,) = struct.unpack("<I", data[14:18])
    if header == 12:
        width, height = struct.unpack("<HH", data[18:22])
        return width, height
    width, height = struct.unpack("<ii", data[18:26])
    return abs(width), abs(height)


def _netpbm(data: bytes) -> tuple[int, int] | None:
    tokens: list[int] = []
    i = 2
    while len(tokens) < 2 and i < min(len(data), 4096):
        c = data[i:i + 1]
        if c == b"#":
            end = data.find(b"\n", i)
            i = len(data) if end < 0 else end + 1
        elif c.isspace():
            i += 1
        else:
            j = i
            while j < len(data) and data[j:j + 1].isdigit():
                j += 1
            if j == i:
                return None
            tokens.append(int(data[i:j]))
            i = j
    return (tokens[0], tokens[1]) if len(tokens) == 2 else None


def _tiff(data: bytes) -> tuple[int, int] | None:
    end = "<" if data[:2] == b"II" else ">"
    (offset,) = struct.unpack(end + "I", data[4:8])
    (count,) = struct.unpack(end + "H", data[offset:offset + 2])
    found: dict[int, int] = {}
    for k in range(min(count, 512)):
        entry = data[offset + 2 + 12 * k:offset + 14 + 12 * k]
        tag, kind = struct.unpack(end + "HH", entry[:4])
        if tag in (256, 257):
            found[tag] = struct.unpack(end + ("H" if kind == 3 else "I"), entry[8:10 if kind == 3 else 12])[0]
    return (found[256], found[257]) if len(found) == 2 else None


def _webp(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        return 1 + int.from_bytes(data[24:27], "little"), 1 + int.from_bytes(data[27:30], "little")
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return width & 0x3FFF, height & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return 1 + (bits & 0x3FFF), 1 + ((bits >> 14) & 0x3FFF)
    return None


_READERS = {"png": _png, "jpeg": _jpeg, "bmp": _bmp, "pgm": _netpbm, "ppm": _netpbm, "tiff": _tiff, "webp": _webp}


@contextlib.contextmanager
def quiet_stderr() -> Iterator[list[str]]:
    """Capture what C code writes to fd 2 inside the block; the list gets its first non-empty line afterwards."""
    said: list[str] = []
    with _STDERR_LOCK, tempfile.TemporaryFile() as sink:
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 at all (daemonized without stderr): nothing to silence
            yield said
            return
        try:
            os.dup2(sink.fileno(), 2)
            yield said
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            text = sink.read(4096).decode("utf-8", "replace")
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            if lines:
                said.append(lines[0][:200])
