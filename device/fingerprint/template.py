"""biolock's fingerprint template: versioned, checksummed, compact bytes, validated on every load.

Why our own format rather than ISO/IEC 19794-2 alone: the store must refuse a damaged, foreign or outdated
template with a reason (fail closed: a damaged template can never help anyone in), and ISO records carry no
checksum. Layout (little-endian), 6 bytes per minutia so a 500 dpi print stays under 1 KB:

    magic b"BLM" | version u8 | dpi u16 | rows u16 | cols u16 | n u16
    n x (x u16 in 1/4 px | y u16 in 1/4 px | angle u8 in 2*pi/256 | kind<<6 | quality*63 u8)
    crc32 u32 of everything before it

At most ``MAX_MINUTIAE`` (the highest quality ones) are kept: 12 + 160 * 6 + 4 = 976 bytes. ``from_iso19794_2``
reads an ISO/IEC 19794-2:2005 record (what the NBIS backend stores) into the same ``Minutiae`` type.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

from device.fingerprint.minutia import Minutiae
from device.minutiae.base import MinutiaeError

MAGIC = b"BLM"
VERSION = 1
MAX_MINUTIAE = 160
_HEADER = struct.Struct("<3sBHHHH")
_RECORD = np.dtype([("x", "<u2"), ("y", "<u2"), ("angle", "u1"), ("kq", "u1")])
_CRC = struct.Struct("<I")
ANGLE_UNIT = np.float32(2 * np.pi / 256)  # a minutia's direction is a whole number of these (float32 product)


class TemplateError(MinutiaeError):
    """A template that is damaged, foreign, or of a version this device does not read (re-enrol)."""


def encode(m: Minutiae) -> bytes:
    """The template bytes of ``m`` (the ``MAX_MINUTIAE`` best by quality when there are more)."""
    rows, cols = (int(v) for v in m.shape)
    if not (0 < rows < 16384 and 0 < cols < 16384 and 0 < int(m.dpi) < 65536):
        raise TemplateError(f"cannot encode minutiae of a {rows}x{cols} image at {m.dpi} dpi")
    keep = np.argsort(-np.asarray(m.quality), kind="stable")[:MAX_MINUTIAE]
    keep.sort()
    rec = np.zeros(len(keep), dtype=_RECORD)
    xy = np.clip(np.round(np.asarray(m.xy, np.float64)[keep] * 4), 0, [cols * 4 - 1, rows * 4 - 1])
    rec["x"], rec["y"] = xy[:, 0], xy[:, 1]
    rec["angle"] = np.round(np.mod(np.asarray(m.angle, np.float64)[keep], 2 * np.pi) * 256 / (2 * np.pi)) % 256
    q = np.round(np.clip(np.asarray(m.quality, np.float64)[keep], 0, 1) * 63).astype(np.uint8)
    rec["kq"] = (np.minimum(np.asarray(m.kind)[keep], 2).astype(np.uint8) << 6) | q
    body = _HEADER.pack(MAGIC, VERSION, int(m.dpi), rows, cols, len(keep)) + rec.tobytes()
    return body + _CRC.pack(zlib.crc32(body))


def decode(data: bytes) -> Minutiae:
    """The minutiae of a template; ``TemplateError`` saying why when it is not a valid current one."""
    raw = bytes(data)
    if len(raw) < _HEADER.size + _CRC.size:
        raise TemplateError(f"fingerprint template of {len(raw)} bytes is too short to be one")
    magic, version, dpi, rows, cols, n = _HEADER.unpack_from(raw)
    if magic != MAGIC:
        raise TemplateError("not a biolock fingerprint template (foreign format): re-enrol this finger")
    if version != VERSION:
        raise TemplateError(f"fingerprint template version {version}, this device reads {VERSION}: re-enrol")
    if len(raw) != _HEADER.size + n * _RECORD.itemsize + _CRC.size:
        raise TemplateError(f"fingerprint template length {len(raw)} does not match its {n} minutiae (damaged)")
    (crc,) = _CRC.unpack_from(raw, len(raw) - _CRC.size)
    if crc != zlib.crc32(raw[:-_CRC.size]):
        raise TemplateError("fingerprint template checksum mismatch (damaged)")
    if not (rows and cols and dpi) or n > MAX_MINUTIAE:
        raise TemplateError(f"fingerprint template header is invalid ({rows}x{cols}, {dpi} dpi, {n} minutiae)")
    rec = np.frombuffer(raw, dtype=_RECORD, count=n, offset=_HEADER.size)
    kind = rec["kq"] >> 6
    if np.any(rec["x"] >= cols * 4) or np.any(rec["y"] >= rows * 4) or np.any(kind > 2):
        raise TemplateError("fingerprint template holds minutiae outside its image (damaged)")
    xy = np.stack([rec["x"], rec["y"]], axis=1).astype(np.float32) / 4
    angle = rec["angle"].astype(np.float32) * ANGLE_UNIT
    quality = (rec["kq"] & 63).astype(np.float32) / 63
    return Minutiae(xy, angle, kind.astype(np.uint8), quality, (rows, cols), dpi)


def from_iso19794_2(data: bytes) -> Minutiae:
    """Minutiae of an ISO/IEC 19794-2:2005 record (first finger view); ``TemplateError`` when it is not one.

    Record header 24 bytes (``FMR\\0``, `` 20\\0``, length u32, equipment, width, height, x/y resolution in
    pixels per cm, views, reserved; big-endian; nbis-py 0.1.3 leaves out views and reserved), view header 4 bytes,
    then 6 bytes a minutia: type (2 bits: 1 ending, 2 bifurcation) + x (14), reserved (2) + y (14), angle (1 unit
    = 360/256 degrees, counter-clockwise), quality (0-100).
    """
    raw = bytes(data)
    if len(raw) < 26 or raw[:8] != b"FMR\x00 20\x00":
        raise TemplateError("not an ISO/IEC 19794-2:2005 minutiae record")
    length, _, width, height, xres = struct.unpack_from(">IHHHH", raw, 8)
    end = 28 + 6 * raw[27] if len(raw) >= 28 else len(raw)
    if len(raw) == length >= end + 2 and len(raw) == end + 2 + struct.unpack_from(">H", raw, end)[0]:
        n, start = raw[27], 28  # the standard layout, then the extended data block
    elif len(raw) == 26 + 6 * raw[25] == length:
        n, start = raw[25], 26  # nbis-py 0.1.3: no views/reserved bytes, no extended data block
    else:
        raise TemplateError("damaged ISO/IEC 19794-2 record (its length does not match its minutiae)")
    if not (width and height):
        raise TemplateError("damaged ISO/IEC 19794-2 record (no image size)")
    rec = np.frombuffer(raw, dtype=">u2", count=3 * n, offset=start).reshape(n, 3)
    iso_type = rec[:, 0] >> 14
    kind = np.where(iso_type == 1, 0, np.where(iso_type == 2, 1, 2)).astype(np.uint8)
    xy = np.stack([rec[:, 0] & 0x3FFF, rec[:, 1] & 0x3FFF], axis=1).astype(np.float32)
    angle = (rec[:, 2] >> 8).astype(np.float32) * np.float32(2 * np.pi / 256)
    quality = np.clip((rec[:, 2] & 0xFF).astype(np.float32) / 100, 0, 1)
    dpi = int(round(xres * 2.54)) if xres else 500
    inside = (xy[:, 0] < width) & (xy[:, 1] < height)
    return Minutiae(xy[inside], angle[inside], kind[inside], quality[inside], (height, width), dpi)
