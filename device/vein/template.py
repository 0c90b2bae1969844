"""The vein line template: a line map quantized to 4 bits, versioned, small enough for the store's byte packing.

Layout (bytes): ``b"VL"``, format version, map height, map width, then the map's values quantized to 0..15
(``round(15 * value / p99)``, clipped), two per byte, high nibble first. A 32 x 96 map is 1,541 bytes, under the
2,047 bytes ``device.minutiae.base.pack_template`` keeps in one store vector, so vein templates travel and are
sealed exactly like minutiae templates. Correlation does not care about a map's scale, so scaling each map by its
own 99th percentile loses nothing but the quantization step (FV-USM EER unchanged, docs/vein.md).
"""

from __future__ import annotations

import numpy as np

from device.errors import ImageError

MAGIC = b"VL"
VERSION = 1
LEVELS = 15
HEADER = 5


class TemplateError(ImageError):
    """Bytes that are not a vein line template of this format."""


def encode(vein_map: np.ndarray) -> bytes:
    """The template of a line map (2-D, values >= 0)."""
    m = np.asarray(vein_map, dtype=np.float32)
    if m.ndim != 2 or not (0 < m.shape[0] < 256 and 0 < m.shape[1] < 256):
        raise TemplateError(f"a line map must be 2-D and under 256 x 256, got shape {m.shape}")
    top = float(np.percentile(m, 99)) if m.size else 0.0
    scaled = np.zeros(m.shape, np.uint8) if top <= 0 or not np.isfinite(top) else np.clip(
        np.rint(np.nan_to_num(m, nan=0.0) * (LEVELS / top)), 0, LEVELS).astype(np.uint8)
    flat = scaled.ravel()
    if flat.size % 2:
        flat = np.append(flat, np.uint8(0))
    packed = (flat[0::2] << 4) | flat[1::2]
    return MAGIC + bytes([VERSION, m.shape[0], m.shape[1]]) + packed.tobytes()


def decode(template: bytes) -> np.ndarray:
    """The quantized map (float32) of a template from :func:`encode`; TemplateError for anything else."""
    raw = bytes(template)
    if len(raw) < HEADER or raw[:2] != MAGIC:
        raise TemplateError("not a vein line template")
    if raw[2] != VERSION:
        raise TemplateError(f"vein line template version {raw[2]}, this device reads version {VERSION}: re-enrol")
    h, w = raw[3], raw[4]
    if h == 0 or w == 0 or len(raw) != HEADER + (h * w + 1) // 2:
        raise TemplateError("vein line template has the wrong length for its map size")
    packed = np.frombuffer(raw, np.uint8, offset=HEADER)
    flat = np.empty(packed.size * 2, np.uint8)
    flat[0::2], flat[1::2] = packed >> 4, packed & 0x0F
    return flat[:h * w].reshape(h, w).astype(np.float32)
