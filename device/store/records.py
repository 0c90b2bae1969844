"""Reading and writing sealed template rows: the one place that knows how a row's associated data is built.

Why here: enrolment, gallery loading, ``check``, rotation and import all touch sealed rows; building the
associated data (store format, user uid, template uid, model id, modality, finger) in one function keeps them
in agreement, so a row moved to another user, model or finger fails to open everywhere alike.
"""

from __future__ import annotations

import functools
import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from typing import NamedTuple

import numpy as np
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from device.errors import StoreError
from device.store.crypto import (
    SealError,
    associated_data,
    cipher,
    decode_blob,
    decode_embedding,
    encode_blob,
    encode_embedding,
    open_sealed,
    open_with,
    seal_with,
)
from device.store.db import STORE_FORMAT
from device.store.integrity import name_ok

MAX_NAME = 64


def check_name(kind: str, value: str, limit: int = MAX_NAME) -> str:
    """Validate a user, finger, modality or model name: printable, trimmed, not empty, not too long."""
    if not isinstance(value, str) or not value or value != value.strip() or len(value) > limit \
            or not value.isprintable():
        raise StoreError(f"invalid {kind} {value!r}: use 1..{limit} printable characters without leading or "
                         "trailing spaces")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise StoreError(f"invalid {kind} {value!r}: not valid UTF-8") from None
    return value


@functools.lru_cache(maxsize=8192)
def _enrolment_ad(user_uid: str, model_id: str, modality: str, finger: str) -> bytes:
    return associated_data(STORE_FORMAT, "template", user_uid, model_id, modality, finger)


def template_aad(user_uid: str, template_uid: str, model_id: str, modality: str, finger: str) -> bytes:
    """The associated data a template is sealed with: ``associated_data(format, "template", user uid, model id,
    modality, finger, template uid)``, built from a cached per-enrolment prefix (loading a gallery is mostly this).
    """
    raw = template_uid.encode("utf-8")
    return _enrolment_ad(user_uid, model_id, modality, finger) + len(raw).to_bytes(4, "little") + raw


def encode_all(embeddings: Sequence[np.ndarray]) -> tuple[list[bytes], int]:
    """Serialize embeddings for sealing; all must have one dimension."""
    if isinstance(embeddings, np.ndarray) and embeddings.ndim == 2:
        embeddings = list(embeddings)
    plain = [encode_embedding(vector) for vector in embeddings]
    if not plain:
        raise StoreError("enrolment needs at least one embedding")
    dims = {(len(p) - 6) // 4 for p in plain}
    if len(dims) != 1:
        raise StoreError(f"enrolment embeddings have different sizes {sorted(dims)}")
    return plain, dims.pop()


VECTOR, BYTES = "vector", "bytes"  # enrolments.kind (schema 4)


def encode_blobs(blobs: Sequence[bytes]) -> list[bytes]:
    """Serialize byte templates for sealing (at least one)."""
    plain = [encode_blob(b) for b in blobs]
    if not plain:
        raise StoreError("enrolment needs at least one template")
    return plain


def new_uid() -> str:
    return secrets.token_hex(16)


def insert_enrolment(conn: sqlite3.Connection, key: bytes, user_id: int, user_uid: str, finger: str,
                     modality: str, model_id: str, plaintexts: list[bytes], dim: int, now: float,
                     kind: str = VECTOR) -> None:
    """Insert one enrolment and its sealed templates (inside the caller's transaction); ``kind`` ``bytes``: byte
    templates (``dim`` 0)."""
    cur = conn.execute(
        "INSERT INTO enrolments (user_id, finger, modality, model_id, dim, count, created, kind) "
        "VALUES (?,?,?,?,?,?,?,?)", (user_id, finger, modality, model_id, dim, len(plaintexts), now, kind))
    enrolment_id = cur.lastrowid
    aead = cipher(key)
    for plain in plaintexts:
        uid = new_uid()
        blob = seal_with(aead, plain, template_aad(user_uid, uid, model_id, modality, finger))
        conn.execute("INSERT INTO templates (uid, enrolment_id, sealed) VALUES (?, ?, ?)", (uid, enrolment_id, blob))


class Row(NamedTuple):
    """One template row with what its associated data needs (never logged: ``sealed`` is ciphertext only)."""

    template_id: int
    template_uid: str
    sealed: bytes
    user: str
    user_uid: str
    finger: str
    modality: str
    model_id: str
    dim: int
    enrolment_id: int
    name_mac: bytes | None
    kind: str = VECTOR  # enrolments.kind: "vector" (embeddings) or "bytes" (byte templates)

    @property
    def aad(self) -> bytes:
        return template_aad(self.user_uid, self.template_uid, self.model_id, self.modality, self.finger)

    def plaintext(self, key: bytes | AESGCM) -> bytes:
        """The opened record; ``key`` may be a prepared :func:`cipher` when opening many rows."""
        if isinstance(key, AESGCM):
            return open_with(key, self.sealed, self.aad)
        return open_sealed(key, self.sealed, self.aad)

    def embedding(self, key: bytes | AESGCM) -> np.ndarray:
        vector = decode_embedding(self.plaintext(key))
        if vector.shape[0] != self.dim:
            raise StoreError(f"template {self.template_id} has {vector.shape[0]} values, expected {self.dim}")
        return vector

    def blob(self, key: bytes | AESGCM) -> bytes:
        """The byte template of a ``bytes`` enrolment's row."""
        if self.kind != BYTES:
            raise StoreError(f"template {self.template_id} is a vector, not a byte template")
        return decode_blob(self.plaintext(key))

    def decoded(self, key: bytes | AESGCM) -> np.ndarray | bytes:
        """The embedding or the byte template, as the row's enrolment kind says."""
        if self.kind == BYTES:
            return self.blob(key)
        if self.kind != VECTOR:
            raise StoreError(f"template {self.template_id} belongs to an enrolment of unknown kind {self.kind!r}")
        return self.embedding(key)


_SELECT = ("SELECT t.id, t.uid, CAST(t.sealed AS BLOB), u.name, u.uid, e.finger, e.modality, e.model_id, e.dim, e.id, "
           "u.name_mac, e.kind "
           "FROM templates t JOIN enrolments e ON t.enrolment_id = e.id JOIN users u ON e.user_id = u.id")


def rows(conn: sqlite3.Connection, where: str = "", params: tuple = ()) -> Iterator[Row]:
    """Template rows in enrolment order (then insertion order), optionally filtered by a WHERE clause."""
    sql = f"{_SELECT} {'WHERE ' + where if where else ''} ORDER BY e.id, t.id"
    return map(Row._make, conn.execute(sql, params))


def _check_names(key: bytes, found: list[Row]) -> None:
    """Every user named in ``found`` must carry the name enrolled (name MAC), else SealError: no decision."""
    named: set[tuple[str, str]] = set()
    for row in found:
        if (row.user_uid, row.user) not in named:
            if not name_ok(key, row.user_uid, row.user, row.name_mac):
                raise SealError(f"user {row.user!r}: the name does not authenticate (changed without the key); "
                                "run `biolock store check`")
            named.add((row.user_uid, row.user))


def open_blobs(key: bytes, found: list[Row]) -> list[bytes]:
    """Open the rows of ``bytes`` enrolments; SealError / StoreError (never a partial list) when one fails."""
    _check_names(key, found)
    aead = cipher(key)
    out = []
    for row in found:
        if row.kind != BYTES:
            raise StoreError(f"template {row.template_id} of user {row.user!r} is a vector, not a byte template")
        try:
            out.append(row.blob(aead))
        except SealError as exc:
            raise SealError(f"template {row.template_id} of user {row.user!r}: {exc}; run `biolock store check`") \
                from None
        except StoreError as exc:
            raise StoreError(f"template {row.template_id} of user {row.user!r}: {exc}") from None
    return out


def open_matrix(key: bytes, found: list[Row], dim: int) -> np.ndarray:
    """Open many rows into one (n, dim) float32 matrix: one cipher object, vectorized format and value checks."""
    aead = cipher(key)
    expected = 6 + 4 * dim
    plains = []
    _check_names(key, found)  # the name shown and unlocked for must be the one enrolled
    for row in found:
        try:
            plain = open_with(aead, row.sealed, row.aad)
        except SealError as exc:
            raise SealError(f"template {row.template_id} of user {row.user!r}: {exc}; run `biolock store check`") \
                from None
        if len(plain) != expected or row.dim != dim or row.kind != VECTOR:
            raise StoreError(f"template {row.template_id} of user {row.user!r} has an unexpected size")
        plains.append(plain)
    if not plains:
        return np.zeros((0, dim), np.float32)
    raw = np.frombuffer(b"".join(plains), dtype=np.uint8).reshape(len(plains), expected)
    header = np.frombuffer(b"BLT1" + dim.to_bytes(2, "little"), dtype=np.uint8)
    out = raw[:, 6:].copy().view("<f4").astype(np.float32, copy=False)
    bad = ~(raw[:, :6] == header).all(axis=1) | ~np.isfinite(out).all(axis=1)
    if bad.any():
        row = found[int(np.nonzero(bad)[0][0])]
        raise StoreError(f"template {row.template_id} of user {row.user!r} has an unknown format or non-finite values")
    return out
