"""AES-256-GCM sealing of single records, and the template plaintext format.

Why per record: a fresh 12-byte random nonce per template means two sealings of the same embedding never look
alike, and the associated data (user, template, model, modality, finger) binds each ciphertext to its row, so a
record copied onto another user or another model fails to open instead of silently matching.

A sealed blob is ``nonce (12) || ciphertext || tag (16)``. The plaintext of a template is ``b"BLT1"``, the
dimension as u16 little endian, then ``dim`` float32 little-endian values; it is validated when opened. A byte
template (schema 4: a variable-length template of a matcher, e.g. the small-sensor placements of issue 18) is
``b"BLB1"``, its length as u32 little endian, then the bytes (at most ``MAX_BLOB``).
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct

import numpy as np
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from device.errors import KeyError_, StoreError

KEY_SIZE = 32
NONCE_SIZE = 12
TAG_SIZE = 16
_TEMPLATE_MAGIC = b"BLT1"
_BLOB_MAGIC = b"BLB1"
MAX_BLOB = 64 * 1024  # the longest byte template the store keeps (small-sensor placements: <= 16 KB)
_KCV_LABEL = b"biolock-store key check v1"
_KEY_ID_LABEL = b"biolock-store key id v1"
MAX_DIM = 4096


class SealError(StoreError):
    """A sealed record does not open: wrong key, tampered bytes or a record moved to another row."""


def check_key(key: bytes) -> bytes:
    """Return ``key`` if it is a 32-byte AES-256 key, else raise KeyError_ (never echoes the key)."""
    if not isinstance(key, (bytes, bytearray)) or len(key) != KEY_SIZE:
        size = len(key) if isinstance(key, (bytes, bytearray)) else type(key).__name__
        raise KeyError_(f"a store key must be {KEY_SIZE} bytes, got {size}")
    return bytes(key)


def associated_data(*fields: str | bytes | int) -> bytes:
    """Unambiguous encoding of the fields a record is bound to (each length-prefixed, so no two lists collide)."""
    parts = [b"biolock-ad/1"]
    for value in fields:
        raw = value if isinstance(value, bytes) else str(value).encode("utf-8")
        parts.append(len(raw).to_bytes(4, "little"))
        parts.append(raw)
    return b"".join(parts)


def seal(key: bytes, plaintext: bytes, aad: bytes) -> bytes:
    """Encrypt and authenticate ``plaintext`` bound to ``aad`` with a fresh random nonce."""
    return seal_with(AESGCM(check_key(key)), plaintext, aad)


def seal_with(aead: AESGCM, plaintext: bytes, aad: bytes) -> bytes:
    """:func:`seal` with a prepared cipher (see :func:`cipher`)."""
    nonce = os.urandom(NONCE_SIZE)
    return nonce + aead.encrypt(nonce, plaintext, aad)


def open_sealed(key: bytes, blob: bytes, aad: bytes) -> bytes:
    """Decrypt a blob from :func:`seal`; raise SealError if anything about it is wrong."""
    return open_with(AESGCM(check_key(key)), blob, aad)


def cipher(key: bytes) -> AESGCM:
    """An AES-256-GCM object for many :func:`open_with` calls (building one per record costs more than opening)."""
    return AESGCM(check_key(key))


def open_with(aead: AESGCM, blob: bytes, aad: bytes) -> bytes:
    """:func:`open_sealed` with a prepared cipher."""
    if not isinstance(blob, (bytes, bytearray)) or len(blob) < NONCE_SIZE + TAG_SIZE:
        raise SealError("sealed record is truncated")
    try:
        return aead.decrypt(bytes(blob[:NONCE_SIZE]), bytes(blob[NONCE_SIZE:]), aad)
    except InvalidTag:
        raise SealError("sealed record does not authenticate (wrong key, tampered, or moved to another row)") from None


def encode_embedding(vector: np.ndarray) -> bytes:
    """Serialize one embedding for sealing; rejects empty, non-1-D and non-finite vectors."""
    arr = np.asarray(vector)
    if arr.ndim != 1 or not 0 < arr.shape[0] <= MAX_DIM:
        raise StoreError(f"an embedding must be a 1-D vector of 1..{MAX_DIM} values, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number) or np.iscomplexobj(arr):
        raise StoreError(f"an embedding must be real numbers, got dtype {arr.dtype}")
    arr = arr.astype("<f4")
    if not np.all(np.isfinite(arr)):
        raise StoreError("an embedding contains NaN or infinite values; refusing to store it")
    if not np.any(arr):
        raise StoreError("an embedding is all zeros; refusing to store it")
    return _TEMPLATE_MAGIC + struct.pack("<H", arr.shape[0]) + arr.tobytes()


def decode_embedding(plaintext: bytes) -> np.ndarray:
    """Inverse of :func:`encode_embedding`, validating magic, length and values."""
    if len(plaintext) < 6 or plaintext[:4] != _TEMPLATE_MAGIC:
        raise StoreError("template record has an unknown format")
    (dim,) = struct.unpack("<H", plaintext[4:6])
    if len(plaintext) != 6 + 4 * dim or dim == 0:
        raise StoreError("template record has an inconsistent length")
    arr = np.frombuffer(plaintext, dtype="<f4", offset=6).astype(np.float32)
    if not np.all(np.isfinite(arr)):
        raise StoreError("template record holds non-finite values")
    return arr


def encode_blob(data: bytes) -> bytes:
    """Serialize one byte template for sealing; rejects empty and oversized ones."""
    if not isinstance(data, (bytes, bytearray, memoryview)):
        raise StoreError(f"a byte template must be bytes, got {type(data).__name__}")
    raw = bytes(data)
    if not 0 < len(raw) <= MAX_BLOB:
        raise StoreError(f"a byte template must hold 1..{MAX_BLOB} bytes, got {len(raw)}")
    return _BLOB_MAGIC + struct.pack("<I", len(raw)) + raw


def decode_blob(plaintext: bytes) -> bytes:
    """Inverse of :func:`encode_blob`, validating magic and length."""
    if len(plaintext) < 8 or plaintext[:4] != _BLOB_MAGIC:
        raise StoreError("byte template record has an unknown format")
    (size,) = struct.unpack("<I", plaintext[4:8])
    if len(plaintext) != 8 + size or not 0 < size <= MAX_BLOB:
        raise StoreError("byte template record has an inconsistent length")
    return bytes(plaintext[8:])


def key_check_value(key: bytes) -> bytes:
    """A 16-byte value that identifies a key without revealing it (HMAC-SHA256 of a fixed label)."""
    return hmac.new(check_key(key), _KCV_LABEL, hashlib.sha256).digest()[:16]


def key_id(key: bytes) -> str:
    """A short public name for a key (8 hex digits), for messages and ``biolock keys`` output."""
    return hmac.new(check_key(key), _KEY_ID_LABEL, hashlib.sha256).hexdigest()[:8]


def same_key_check(expected: bytes, key: bytes) -> bool:
    """Constant-time comparison of a stored key check value with the one of ``key``."""
    return hmac.compare_digest(bytes(expected), key_check_value(key))
