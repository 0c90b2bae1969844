"""The minutiae backend interface, the registry of backends, and how a template is packed for the store.

Why a registry with imports inside each backend (Frigate's pattern): a backend's native library may not exist on
every board, and a board without it must still run the embedding alone; ``available(kind)`` says why not.

Store packing: the template store seals fixed-size float vectors, one model id per size. A minutiae template is
a variable-length byte string (ISO/IEC 19794-2:2005 for NBIS, 200-500 bytes on R307 captures), so it is stored
as ``[length, byte_0, ..., byte_n, 0, ...]`` in ``TEMPLATE_BYTES + 1`` float32 values: exact (every byte value
is a small integer), versioned by the backend's ``template_id`` and sealed like any embedding.
"""

from __future__ import annotations

import importlib
from typing import Protocol, runtime_checkable

import numpy as np

from device.errors import BiolockError

MINUTIAE_MODALITY = "fingerprint-minutiae"  # the store's modality name for minutiae templates
TEMPLATE_BYTES = 2047  # the longest template the store keeps (a 2,048-value vector)
BACKENDS = {"biolock": "device.minutiae.biolock_backend", "nbis": "device.minutiae.nbis_backend",
            "vein-lines": "device.vein.backend",  # vein: the line matcher (device.vein), same interface
            "partial": "device.minutiae.partial_backend",  # small sensors: keypoints on the ridge image
            "biolock-learnedseg": "device.minutiae.learnedseg_backend"}  # biolock + learned segmentation


class MinutiaeError(BiolockError):
    """A minutiae backend is missing, or a capture or template could not be processed."""


@runtime_checkable
class MinutiaeMatcher(Protocol):
    """Extract a template from a grey capture and compare two templates (higher = more alike)."""

    kind: str
    template_id: str  # names backend, version and template format; stored with every template

    def extract(self, grey: np.ndarray) -> bytes:
        """The template of one uint8 grey capture; ``MinutiaeError`` with a reason if there is none."""
        ...

    def compare(self, a: bytes, b: bytes) -> float:
        """The similarity of two templates from ``extract`` (>= 0)."""
        ...


def available(kind: str) -> str | None:
    """None when backend ``kind`` can be used here, else the reason it cannot."""
    module = BACKENDS.get(kind)
    if module is None:
        return f"unknown minutiae backend {kind!r} (known: {', '.join(sorted(BACKENDS))})"
    try:
        return importlib.import_module(module).missing()
    except ImportError as exc:  # pragma: no cover - our own modules import cleanly
        return str(exc)


def open_matcher(kind: str) -> MinutiaeMatcher:
    """A ready backend; ``MinutiaeError`` naming what to install when it cannot run here."""
    problem = available(kind)
    if problem:
        raise MinutiaeError(f"minutiae backend {kind!r} cannot run here: {problem}")
    return importlib.import_module(BACKENDS[kind]).open_backend()


def pack_template(template: bytes) -> np.ndarray:
    """A template as the store's fixed-size vector (length first, then the bytes, zero padded)."""
    raw = bytes(template)
    if not raw:
        raise MinutiaeError("an empty minutiae template cannot be stored")
    if len(raw) > TEMPLATE_BYTES:
        raise MinutiaeError(f"minutiae template of {len(raw)} bytes is over the {TEMPLATE_BYTES}-byte limit "
                            "(a very noisy capture): place the finger again")
    out = np.zeros(TEMPLATE_BYTES + 1, dtype=np.float32)
    out[0] = len(raw)
    out[1:1 + len(raw)] = np.frombuffer(raw, dtype=np.uint8)
    return out


def unpack_template(vector: np.ndarray) -> bytes:
    """The bytes ``pack_template`` stored; ``MinutiaeError`` if the vector is not one of its outputs."""
    v = np.asarray(vector, dtype=np.float32).reshape(-1)
    if v.shape[0] != TEMPLATE_BYTES + 1:
        raise MinutiaeError(f"a packed minutiae template has {TEMPLATE_BYTES + 1} values, got {v.shape[0]}")
    n = float(v[0])
    if not n.is_integer() or not 1 <= n <= TEMPLATE_BYTES:
        raise MinutiaeError(f"packed minutiae template claims {n} bytes")
    body = v[1:1 + int(n)]
    if np.any(body != np.round(body)) or np.any(body < 0) or np.any(body > 255) or np.any(v[1 + int(n):]):
        raise MinutiaeError("packed minutiae template holds values that are not bytes")
    return body.astype(np.uint8).tobytes()
