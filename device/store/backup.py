"""Encrypted backups: ``store export`` / ``store import``.

Why a passphrase and not the store key: a backup must survive the loss of the device (and its key file). The
file is ``BIOLOCK-BACKUP/1\\n``, one line of JSON header (format, key derivation parameters, salt, time), then
one AES-256-GCM sealed payload whose associated data is the header, so neither can be altered unnoticed. The
payload (users, enrolments, embeddings) exists in clear only in memory; templates are re-sealed with the target
store's key on import, inside one transaction.
"""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from device.errors import KeyError_, StoreError
from device.store import audit as audit_log
from device.store import integrity, keys
from device.store.crypto import SealError, associated_data, cipher, decode_embedding, open_sealed, seal
from device.store.db import bump_generation, transaction
from device.store.records import BYTES, VECTOR, check_name, encode_all, encode_blobs, insert_enrolment, new_uid, rows

MAGIC = b"BIOLOCK-BACKUP/1\n"
BACKUP_FORMAT = "biolock-backup/1"
MIN_PASSPHRASE = 8
MAX_BACKUP_BYTES = 512 * 1024 * 1024


def _derive(passphrase: str, salt: bytes, kdf: dict) -> bytes:
    try:
        return keys.derive_key(passphrase, salt, kdf)
    except KeyError_ as exc:
        raise StoreError(f"backup: {exc}") from None


def export_to(conn: sqlite3.Connection, key: bytes, path: Path, passphrase: str) -> int:
    """Write every user and template to ``path`` (0600, atomically); returns the number of templates."""
    if not isinstance(passphrase, str) or len(passphrase) < MIN_PASSPHRASE:
        raise StoreError(f"a backup passphrase needs at least {MIN_PASSPHRASE} characters")
    users: dict[str, dict] = {}
    count = 0
    conn.execute("BEGIN")  # a read snapshot (WAL): consistent even while the daemon writes, blocking no one
    try:
        for name, created in conn.execute("SELECT name, created FROM users ORDER BY name"):
            users[name] = {"name": name, "created": created, "enrolments": {}}
        enrol_meta = {eid: (finger, modality, model_id, dim, created) for eid, finger, modality, model_id, dim,
                      created in conn.execute("SELECT id, finger, modality, model_id, dim, created FROM enrolments")}
        # byte templates (schema 4) travel as their bytes with "kind": "bytes"; embeddings as before (no "kind")
        aead = cipher(key)
        for row in rows(conn):
            finger, modality, model_id, dim, created = enrol_meta[row.enrolment_id]
            entry = users.setdefault(row.user, {"name": row.user, "created": created, "enrolments": {}})
            enrolment = entry["enrolments"].setdefault(row.enrolment_id, {
                "finger": finger, "modality": modality, "model_id": model_id, "dim": dim, "created": created,
                "templates": []})
            if row.kind == BYTES:
                enrolment["kind"] = BYTES
                enrolment["templates"].append(base64.b64encode(row.blob(aead)).decode())
            else:
                enrolment["templates"].append(base64.b64encode(row.embedding(aead).astype("<f4").tobytes()).decode())
            count += 1
    finally:
        conn.execute("ROLLBACK")
    payload = {"users": [{**u, "enrolments": list(u["enrolments"].values())} for u in users.values()]}
    kdf = keys.default_kdf()
    salt = os.urandom(16)
    header = json.dumps({"format": BACKUP_FORMAT, "kdf": kdf, "salt": salt.hex(),
                         "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}).encode()
    body = seal(_derive(passphrase, salt, kdf), json.dumps(payload).encode(), associated_data(MAGIC, header))
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        keys.write_atomic(path, MAGIC + header + b"\n" + body)
    except OSError as exc:
        raise StoreError(f"cannot write backup {path}: {exc.strerror}") from None
    return count


def read_backup(path: Path, passphrase: str) -> dict:
    """Open and authenticate a backup file; returns its payload (users with embeddings in memory)."""
    from device.saferead import read_regular

    data = read_regular(path, MAX_BACKUP_BYTES, StoreError, "biolock backup")
    if not data.startswith(MAGIC) or b"\n" not in data[len(MAGIC):]:
        raise StoreError(f"{path} is not a biolock backup")
    header, body = data[len(MAGIC):].split(b"\n", 1)
    try:
        meta = json.loads(header)
        if meta.get("format") != BACKUP_FORMAT:
            raise ValueError
        salt, kdf = bytes.fromhex(meta["salt"]), meta["kdf"]
    except (ValueError, KeyError, TypeError, AttributeError):
        raise StoreError(f"{path} has a damaged backup header") from None
    try:
        plain = open_sealed(_derive(passphrase, salt, kdf), body, associated_data(MAGIC, header))
    except SealError:
        raise StoreError(f"backup {path} does not open: wrong passphrase, or the file was changed") from None
    try:
        payload = json.loads(plain)
        if not isinstance(payload.get("users"), list):
            raise ValueError
        return payload
    except (ValueError, AttributeError):
        raise StoreError(f"backup {path} holds an invalid payload") from None


def _embeddings(enrolment: dict) -> tuple[list[bytes], int]:
    if enrolment.get("kind", VECTOR) == BYTES:
        return encode_blobs([base64.b64decode(t) for t in enrolment["templates"]]), 0
    if enrolment.get("kind", VECTOR) != VECTOR:
        raise ValueError("unknown enrolment kind")
    vectors = [decode_embedding(b"BLT1" + int(enrolment["dim"]).to_bytes(2, "little") + base64.b64decode(t))
               for t in enrolment["templates"]]
    return encode_all([np.asarray(v) for v in vectors])


def import_from(conn: sqlite3.Connection, store_key: Callable[[], bytes], path: Path, passphrase: str,
                replace: bool, now: float) -> int:
    """Add the backup's users in one transaction; existing names conflict unless ``replace``.

    ``store_key`` is called inside the transaction, so the records are sealed with the key the store has then."""
    payload = read_backup(path, passphrase)
    prepared = []
    try:
        for user in payload["users"]:
            name = check_name("user name", user["name"])
            enrolments = []
            for e in user["enrolments"]:
                plain, dim = _embeddings(e)
                enrolments.append((check_name("finger", e["finger"], 32), check_name("modality", e["modality"], 32),
                                   check_name("model id", e["model_id"], 128), plain, dim, float(e["created"]),
                                   e.get("kind", VECTOR)))
            prepared.append((name, float(user["created"]), enrolments))
    except (KeyError, TypeError, ValueError) as exc:
        raise StoreError(f"backup {path} holds an invalid record ({type(exc).__name__})") from None
    count = 0
    with transaction(conn):
        key = store_key()
        taken = [name for name, _, _ in prepared
                 if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone()]
        if taken and not replace:
            raise StoreError(f"users already in the store: {', '.join(sorted(taken))}; use --replace to overwrite "
                             "them (nothing was imported)")
        for name, created, enrolments in prepared:
            conn.execute("DELETE FROM users WHERE name = ?", (name,))
            uid = new_uid()
            user_id = conn.execute("INSERT INTO users (uid, name, created) VALUES (?, ?, ?)",
                                   (uid, name, created)).lastrowid
            integrity.set_user_mac(conn, key, user_id)
            for finger, modality, model_id, plain, dim, e_created, kind in enrolments:
                other = conn.execute("SELECT dim FROM enrolments WHERE model_id = ? AND modality = ? AND (dim != ? "
                                     "OR kind != ?)", (model_id, modality, dim, kind)).fetchone()
                if other:
                    raise StoreError(f"backup {path}: {name}'s {model_id} templates have {dim} values, the store's "
                                     f"have {other[0]} (nothing was imported)")
                insert_enrolment(conn, key, user_id, uid, finger, modality, model_id, plain, dim, e_created, kind)
                count += len(plain)
        bump_generation(conn)
        integrity.bump(conn, key)
        audit_log.append(conn, now, "store.import", None, "ok", None, None,
                         f"{len(prepared)} users, {count} templates from {path.name}"[:200])
    return count
