"""Reading and writing sealed template rows: the one place that knows how a row's associated data is built.

Why here: enrolment, gallery loading, ``check``, rotation and import all touch sealed rows; building the
associated data (store format, user uid, template uid, model id, modality, finger) in one function keeps them
in agreement, so a row moved to another user, model or finger fails to open everywhere alike.
"""

from __future__ import annotations

import secrets
import sqlite3
from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from device.errors import StoreError
from device.store.crypto import (
    SealError,
    associated_data,
    cipher,
    decode_embedding,
    encode_embedding,
    open_sealed,
    open_with,
    seal_with,
)
from device.store.db import STORE_FORMAT

MAX_NAME = 64


def check_name(kind: str, value: str, limit: int = MAX_NAME) -> str:
    """Validate a user, finger, modality or model name: printable, trimmed, not empty, not too long."""
    if not isinstance(value, str) or not value or value != value.strip() or len(value) > limit \
            or not value.isprintable():
        raise StoreError(f"invalid {kind} {value!r}: use 1..{limit} printable characters without leading or "
                         "trailing spaces")
    return value


def template_aad(user_uid: str, template_uid: str, model_id: str, modality: str, finger: str) -> bytes:
    """The associated data a template is sealed with."""
    return associated_data(STORE_FORMAT, "template", user_uid, template_uid, model_id, modality, finger)


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


def new_uid() -> str:
    return secrets.token_hex(16)


def insert_enrolment(conn: sqlite3.Connection, key: bytes, user_id: int, user_uid: str, finger: str,
                     modality: str, model_id: str, plaintexts: list[bytes], dim: int, now: float) -> None:
    """Insert one enrolment and its sealed templates (inside the caller's transaction)."""
    cur = conn.execute(
        "INSERT INTO enrolments (user_id, finger, modality, model_id, dim, count, created) VALUES (?,?,?,?,?,?,?)",
        (user_id, finger, modality, model_id, dim, len(plaintexts), now))
    enrolment_id = cur.lastrowid
    aead = cipher(key)
    for plain in plaintexts:
        uid = new_uid()
        blob = seal_with(aead, plain, template_aad(user_uid, uid, model_id, modality, finger))
        conn.execute("INSERT INTO templates (uid, enrolment_id, sealed) VALUES (?, ?, ?)", (uid, enrolment_id, blob))


@dataclass(frozen=True)
class Row:
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


_SELECT = ("SELECT t.id, t.uid, CAST(t.sealed AS BLOB), u.name, u.uid, e.finger, e.modality, e.model_id, e.dim, e.id "
           "FROM templates t JOIN enrolments e ON t.enrolment_id = e.id JOIN users u ON e.user_id = u.id")


def rows(conn: sqlite3.Connection, where: str = "", params: tuple = ()) -> Iterator[Row]:
    """Template rows, ordered by user name, finger and insertion, optionally filtered by a WHERE clause."""
    sql = f"{_SELECT} {'WHERE ' + where if where else ''} ORDER BY u.name, e.finger, t.id"
    for r in conn.execute(sql, params):
        yield Row(int(r[0]), r[1], bytes(r[2]), r[3], r[4], r[5], r[6], r[7], int(r[8]), int(r[9]))


def open_matrix(key: bytes, found: list[Row], dim: int) -> np.ndarray:
    """Open many rows into one (n, dim) float32 matrix: one cipher object, one vectorized finiteness check."""
    out = np.empty((len(found), dim), np.float32)
    aead = cipher(key)
    expected = 6 + 4 * dim
    for i, row in enumerate(found):
        try:
            plain = open_with(aead, row.sealed, row.aad)
        except SealError as exc:
            raise SealError(f"template {row.template_id} of user {row.user!r}: {exc}; run `biolock store check`") \
                from None
        if row.dim != dim or len(plain) != expected or plain[:4] != b"BLT1":
            raise StoreError(f"template {row.template_id} of user {row.user!r} has an unexpected format or size")
        out[i] = np.frombuffer(plain, dtype="<f4", offset=6)
    if out.size and not np.isfinite(out).all():
        bad = found[int(np.nonzero(~np.isfinite(out).all(axis=1))[0][0])]
        raise StoreError(f"template {bad.template_id} of user {bad.user!r} holds non-finite values")
    return out
