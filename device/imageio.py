"""Reading images from files and bytes into uint8 grey arrays, with errors that name the file.

Why this module: sensors, datasets and users hand us PNG, JPEG, BMP, TIFF and PGM files in 8 bits, 16 bits or
colour, sometimes with the wrong extension, sometimes cut short by a failed copy. Everything is decoded by
content (never by extension), converted to uint8 grey by :func:`to_grey_u8`, and anything unusable becomes an
``ImageError`` that says which file and why. OpenCV alone would return ``None`` or half an image silently.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from device.errors import ImageError

# magic bytes -> format name; checked in order
_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"\xff\xd8\xff", "jpeg"),
    (b"BM", "bmp"),
    (b"II*\x00", "tiff"),
    (b"MM\x00*", "tiff"),
    (b"P5", "pgm"),
    (b"P2", "pgm"),
    (b"P6", "ppm"),
    (b"P3", "ppm"),
    (b"RIFF", "webp"),
)


@dataclass(frozen=True)
class ImageInfo:
    """What a file holds, as ``biolock data info`` reports it."""

    format: str  # png, jpeg, bmp, tiff, pgm, ppm, webp
    width: int
    height: int
    channels: int
    bit_depth: int  # bits per channel as stored (1, 4, 8, 16, ...; from the header where the format has one)


def sniff_format(data: bytes) -> str | None:
    """The image format from the leading bytes, or None if it is not one we know."""
    for magic, name in _MAGIC:
        if data.startswith(magic):
            if name == "webp" and data[8:12] != b"WEBP":
                return None
            return name
    return None


def _truncation(data: bytes, fmt: str) -> str | None:
    """Why ``data`` looks cut short, or None. OpenCV decodes many truncated files into partly grey images."""
    tail = data.rstrip(b"\x00")[-1024:]  # some writers pad files with zeros
    if fmt == "png" and b"IEND" not in tail:
        return "truncated PNG (no IEND chunk at the end)"
    if fmt == "jpeg" and b"\xff\xd9" not in tail:
        return "truncated JPEG (no end-of-image marker)"
    if fmt == "bmp" and len(data) >= 6:
        (declared,) = struct.unpack_from("<I", data, 2)
        if declared > len(data):
            return f"truncated BMP ({len(data)} of {declared} bytes)"
    return None


def _decode_raw(data: bytes, name: str) -> tuple[np.ndarray, str]:
    """Decode bytes as stored (any depth / channels); ``name`` is used in error messages."""
    if len(data) == 0:
        raise ImageError(f"{name}: empty file (0 bytes)")
    fmt = sniff_format(data)
    if fmt is None:
        raise ImageError(f"{name}: not an image (unknown format; expected PNG, JPEG, BMP, TIFF or PGM)")
    cut = _truncation(data, fmt)
    if cut:
        raise ImageError(f"{name}: {cut}")
    from device.imageheader import dimensions, quiet_stderr

    size = dimensions(data, fmt)
    if size is None:
        raise ImageError(f"{name}: cannot read the image size from its {fmt} header (damaged?)")
    if size[0] <= 0 or size[1] <= 0 or size[0] * size[1] > MAX_IMAGE_PIXELS:
        raise ImageError(f"{name}: {size[0]}x{size[1]} pixels is not a usable image (at most {MAX_IMAGE_PIXELS} "
                         "pixels); refusing to decode it")
    buf = np.frombuffer(data, dtype=np.uint8)
    with quiet_stderr() as said:  # libpng/libjpeg print to fd 2; their words go into our one-line error instead
        try:
            image = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
        except cv2.error:  # pragma: no cover - OpenCV mostly returns None instead
            image = None
    if image is None or image.size == 0:
        detail = f" ({said[0]})" if said and said[0] else ""
        raise ImageError(f"{name}: corrupt or truncated {fmt} file{detail}")
    return image, fmt


def to_grey_u8(array: np.ndarray) -> np.ndarray:
    """Convert an image array (grey or colour; bool, integer or float) to uint8 grey.

    16-bit images are scaled from the smallest of 10/12/14/16 bits that holds their maximum, because sensors
    often store 10- or 12-bit data in 16-bit containers (a plain ``>> 8`` would make them black). Floats in
    [0, 1] are scaled by 255; other floats are min-max stretched. Colour is converted with OpenCV's BGR weights
    (alpha dropped). Raises ImageError only for arrays that are not images at all.
    """
    if not isinstance(array, np.ndarray):
        raise ImageError(f"expected a numpy array, got {type(array).__name__}")
    a = array
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim == 3 and a.shape[2] in (3, 4):
        a = a[:, :, :3]
    elif a.ndim != 2:
        raise ImageError(f"expected a 2-D grey or 3-channel colour image, got shape {a.shape}")
    if a.dtype == np.bool_:
        a = a.astype(np.uint8) * 255
    elif a.dtype == np.uint8:
        pass
    elif a.dtype == np.uint16 or (a.dtype.kind in "iu"):
        a = _scale_integer(a)
    elif a.dtype.kind == "f":
        a = _scale_float(a)
    else:
        raise ImageError(f"cannot convert an image of dtype {a.dtype} to grey")
    if a.ndim == 3:
        a = cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_BGR2GRAY)
    return np.ascontiguousarray(a)


def _scale_integer(a: np.ndarray) -> np.ndarray:
    if a.size == 0:
        return a.astype(np.uint8)
    a = a.astype(np.int64)
    lo = int(a.min())
    if lo < 0:  # signed data: shift to start at zero
        a = a - lo
    hi = int(a.max())
    bits = next((b for b in (8, 10, 12, 14, 16) if hi < (1 << b)), max(16, hi.bit_length()))
    return (a * 255 // ((1 << bits) - 1)).astype(np.uint8)


def _scale_float(a: np.ndarray) -> np.ndarray:
    a = np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if a.size == 0:
        return a.astype(np.uint8)
    lo, hi = float(a.min()), float(a.max())
    if lo >= 0.0 and hi <= 1.0:
        return np.round(a * 255.0).astype(np.uint8)
    if hi - lo < 1e-12:
        return np.zeros(a.shape, np.uint8)
    return np.round((a - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def decode_image(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode image bytes (by content, not extension) into a uint8 grey array."""
    image, _ = _decode_raw(data, name)
    return to_grey_u8(image)


MAX_IMAGE_BYTES = 64 * 1024 * 1024  # far above any sensor or dataset image; /dev/zero stops here
MAX_IMAGE_PIXELS = 4096 * 4096  # checked from the header before decoding (a 781 KB PNG can ask for 7 GB)


def _read_bytes(path: Path) -> bytes:
    from device.saferead import read_regular

    return read_regular(path, MAX_IMAGE_BYTES, ImageError, "image file")


def read_image(path: str | Path) -> np.ndarray:
    """Read an image file into a uint8 grey array; ImageError naming the path if it cannot be used."""
    return decode_image(_read_bytes(Path(path)), str(path))


def probe_image(path: str | Path) -> ImageInfo:
    """Decode a file fully (so corrupt files are caught) and describe how it is stored."""
    return read_image_info(path)[1]


def read_image_info(path: str | Path) -> tuple[np.ndarray, ImageInfo]:
    """Read a file once: the uint8 grey image and how the file stores it."""
    data = _read_bytes(Path(path))
    image, fmt = _decode_raw(data, str(path))
    channels = 1 if image.ndim == 2 else int(image.shape[2])
    bits = _stored_bits(data, fmt) or image.dtype.itemsize * 8
    return to_grey_u8(image), ImageInfo(fmt, int(image.shape[1]), int(image.shape[0]), channels, bits)


def _stored_bits(data: bytes, fmt: str) -> int | None:
    """Bits per channel as the file stores them (PNG/BMP headers), e.g. 4 for a 16-grey-level BMP."""
    if fmt == "png" and len(data) >= 26:
        return int(data[24])
    if fmt == "bmp" and len(data) >= 30:
        (bits,) = struct.unpack_from("<H", data, 28)
        return int(bits) if bits <= 8 else int(bits) // (4 if bits == 32 else 3 if bits == 24 else 1)
    return None
