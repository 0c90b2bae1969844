"""Key rotation and the key-file side of opening a store, designed so a crash at any point loses nothing.

Order of a rotation: (1) the next key is written atomically to ``store.key.new``; (2) one ``BEGIN IMMEDIATE``
transaction re-seals every template with the next key and stores the next key's check value; (3)
``store.key.new`` atomically replaces ``store.key``. The database commit is the single point of decision: before
it every record opens with the old key (and ``store.key`` holds it), after it every record opens with the new
key (and either ``store.key`` or ``store.key.new`` holds it). :func:`resolve_file_key` finishes or discards a
pending rotation on the next open by comparing each file's key with the store's key check value.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable
from pathlib import Path

from device.errors import KeyError_, StoreError
from device.store import db, integrity, keys
from device.store.crypto import check_key, cipher, key_check_value, key_id, same_key_check, seal_with
from device.store.db import bump_generation, set_meta, transaction
from device.store.records import rows


def _discard(path: Path) -> None:
    path.unlink(missing_ok=True)


def finish_pending(state_dir: Path) -> None:
    """Make ``store.key.new`` the key file (atomic rename, then a directory fsync)."""
    os.replace(state_dir / keys.PENDING_KEY_FILE, state_dir / keys.KEY_FILE)
    keys.fsync_dir(state_dir)


def resolve_file_key(state_dir: Path, expected_kcv: bytes | None, passphrase: str | None) -> bytes:
    """The key for the store from ``store.key`` / ``store.key.new``, completing or undoing a pending rotation."""
    key_path, pending = state_dir / keys.KEY_FILE, state_dir / keys.PENDING_KEY_FILE
    for leftover in state_dir.glob(".store.key*.tmp"):  # a crash inside write_atomic; never the live key
        _discard(leftover)
    if expected_kcv is None:  # a new store: whatever store.key holds (created if absent)
        if not key_path.exists():
            return keys.init_key(state_dir, passphrase)
        return keys.load_key(state_dir, passphrase)
    current: bytes | None = None
    problem: KeyError_ | None = None
    try:
        current = keys.load_key(state_dir, passphrase)
    except KeyError_ as exc:
        problem = exc
    if current is not None and same_key_check(expected_kcv, current):
        if pending.exists():
            _discard(pending)  # rotation stopped before its commit: the old key is still the key
        return current
    if pending.exists():
        new = keys.read_key_file(pending, passphrase)  # raises naming store.key.new if its passphrase differs
        if same_key_check(expected_kcv, new):
            finish_pending(state_dir)  # rotation committed but the key file was not yet replaced
            return new
    if problem is not None:
        raise problem
    raise KeyError_(f"{key_path} (key id {key_id(current)}) is not the key of this store; restore the store's "
                    "own key file (a wrong key is never used to overwrite anything)")


def rotate(conn: sqlite3.Connection, state_dir: Path, old_key: bytes, new_key: bytes, manage_file: bool,
           passphrase: str | None, now: float) -> int:
    """Re-seal every template with ``new_key`` in one transaction; returns the number of templates."""
    new_key = check_key(new_key)
    if same_key_check(key_check_value(old_key), new_key):
        raise KeyError_("the new key is the current key; nothing to rotate")
    pending = state_dir / keys.PENDING_KEY_FILE
    if manage_file:
        keys.write_atomic(pending, keys.key_file_content(new_key, passphrase))
    count = 0
    try:
        old_aead, new_aead = cipher(old_key), cipher(new_key)
        with transaction(conn):
            if not same_key_check(db.get_meta(conn, "key_check") or b"", old_key):
                raise KeyError_("the store key changed while rotating (another process); try again")
            for row in list(rows(conn)):
                plain = row.plaintext(old_aead)  # SealError aborts the whole rotation: nothing changes
                conn.execute("UPDATE templates SET sealed = ? WHERE id = ?",
                             (seal_with(new_aead, plain, row.aad), row.template_id))
                count += 1
            set_meta(conn, "key_check", key_check_value(new_key))
            integrity.reseal(conn, new_key)  # user names and the generation, now under the new key
            integrity.bump(conn, new_key)
            bump_generation(conn)
            conn.execute("INSERT INTO audit (time, event, user, decision, detail) VALUES (?, 'keys.rotate', NULL,"
                         " 'ok', ?)", (now, f"{count} templates re-sealed, new key id {key_id(new_key)}"))
    except BaseException:
        if manage_file:
            _discard(pending)  # not committed: the old key stays the key
        raise
    if manage_file:
        finish_pending(state_dir)
    return count


def settle_key(conn: sqlite3.Connection, state_dir: Path, path: Path, key: bytes | None,
               passphrase: str | None, clock: Callable[[], float]) -> bytes:
    """The key for an opened database: checked against its key check value, or recorded for a new store."""
    kcv = db.get_meta(conn, "key_check")
    if kcv is not None and db.get_meta(conn, "format") not in (db.STORE_FORMAT, db.STORE_FORMAT.encode()):
        raise StoreError(f"{path} is not a {db.STORE_FORMAT} store")
    if kcv is None and conn.execute("SELECT count(*) FROM templates").fetchone()[0]:
        raise StoreError(f"the store {path} has templates but no key check value (damaged)")
    if key is None:
        key = resolve_file_key(state_dir, kcv, passphrase)
    elif kcv is not None and not same_key_check(kcv, key):
        raise KeyError_(f"wrong key for the store {path} (key id {key_id(key)}); nothing was changed")
    if kcv is None:
        with db.transaction(conn):
            db.set_meta(conn, "format", db.STORE_FORMAT)
            db.set_meta(conn, "key_check", key_check_value(key))
            db.set_meta(conn, "created", clock())
    return key
