"""Store integrity that does not depend on SQLite being honest: user names bound to the key, and a generation.

Why (issue 17 item 4): template records were sealed to a user's *uid*, but the name shown and unlocked for sits
in ``users.name``, outside any seal, so three SQL UPDATEs swapping names let bob's finger open as alice; and
restoring an older ``store.db`` brought deleted users back and erased lockouts.

- Each user row carries ``name_mac = HMAC(key, uid, name)``: a name changed without the key no longer
  authenticates, the gallery refuses to load (fail closed) and ``store check`` names the user.
- The store has a generation: ``meta.seq`` counts every change of users, templates, keys and lockouts, and
  ``meta.seq_mac = HMAC(key, seq)`` keeps anyone without the key from raising it. After each commit the
  generation is also written to ``store.gen`` beside the database. On open, a database older than ``store.gen``
  is refused as rolled back (an intended restore is accepted with ``biolock store accept-restore``).
  ``store.gen`` is written only after the commit, so a crash leaves it behind the database, never ahead (the
  next open catches it up): kill -9 at any point loses nothing and raises no false alarm.

Limits: someone who can read the key (a raw ``store.key`` on the same SD card) can forge all of this; someone
who can restore *both* files from an older copy defeats the rollback check (only a hardware counter, e.g. a TPM
NV index, would not be). See docs/store.md, "Integrity".
"""

from __future__ import annotations

import fcntl
import hashlib
import hmac
import json
import os
import sqlite3
from pathlib import Path

from device.errors import StoreError
from device.store import db, keys
from device.store.crypto import associated_data, check_key

GEN_FILE = "store.gen"
GEN_FORMAT = "biolock-gen/1"
_NAME_LABEL = "biolock-store user name v1"
_SEQ_LABEL = "biolock-store generation v1"
MAC_SIZE = 16


def name_mac(key: bytes, uid: str, name: str) -> bytes:
    """The MAC binding a user's display name to their uid under the store key."""
    return hmac.new(check_key(key), associated_data(_NAME_LABEL, uid, name), hashlib.sha256).digest()[:MAC_SIZE]


def name_ok(key: bytes, uid: str, name: str, mac: bytes | None) -> bool:
    return mac is not None and hmac.compare_digest(bytes(mac), name_mac(key, uid, name))


def _seq_mac(key: bytes, seq: int) -> bytes:
    return hmac.new(check_key(key), associated_data(_SEQ_LABEL, seq), hashlib.sha256).digest()[:MAC_SIZE]


def set_user_mac(conn: sqlite3.Connection, key: bytes, user_id: int) -> None:
    uid, name = conn.execute("SELECT uid, name FROM users WHERE id = ?", (user_id,)).fetchone()
    conn.execute("UPDATE users SET name_mac = ? WHERE id = ?", (name_mac(key, uid, name), user_id))


def reseal(conn: sqlite3.Connection, key: bytes) -> None:
    """MAC every user name and the generation under ``key`` (inside the caller's transaction: rotation, upgrade)."""
    for user_id, uid, name in conn.execute("SELECT id, uid, name FROM users").fetchall():
        conn.execute("UPDATE users SET name_mac = ? WHERE id = ?", (name_mac(key, uid, name), user_id))
    seq = stored_seq(conn)
    db.set_meta(conn, "seq_mac", _seq_mac(key, seq or 0))


def stored_seq(conn: sqlite3.Connection) -> int | None:
    raw = db.get_meta(conn, "seq")
    return None if raw is None else int(raw)


def bump(conn: sqlite3.Connection, key: bytes) -> int:
    """Count one change (inside the caller's write transaction); returns the new generation."""
    seq = (stored_seq(conn) or 0) + 1
    db.set_meta(conn, "seq", seq)
    db.set_meta(conn, "seq_mac", _seq_mac(key, seq))
    return seq


def verified_seq(conn: sqlite3.Connection, key: bytes, path: Path | str) -> int | None:
    """The database's generation after checking its MAC (None: a store from before generations)."""
    seq = stored_seq(conn)
    if seq is None:
        if db.get_meta(conn, "seq_mac") is not None:
            raise StoreError(f"the store {path} has a generation MAC but no generation (altered); restore a backup")
        return None
    mac = db.get_meta(conn, "seq_mac")
    if mac is None or not hmac.compare_digest(bytes(mac), _seq_mac(key, seq)):
        raise StoreError(f"the store {path} generation does not authenticate (altered without the key); restore "
                         "a backup (`biolock store import`)")
    return seq


def read_gen(state_dir: Path) -> int | None:
    """The generation recorded in ``store.gen`` (None when there is no file)."""
    path = Path(state_dir) / GEN_FILE
    if not path.exists():
        return None
    from device.saferead import read_regular

    try:
        doc = json.loads(read_regular(path, 4096, StoreError, "generation file").decode("utf-8"))
        if doc.get("format") != GEN_FORMAT or not isinstance(doc.get("generation"), int):
            raise ValueError
        return int(doc["generation"])
    except (ValueError, AttributeError):
        raise StoreError(f"{path} is damaged; if store.db is the one you trust, run `biolock store "
                         "accept-restore`") from None


def write_gen(state_dir: Path, seq: int, *, force: bool = False) -> None:
    """Record ``seq`` in ``store.gen`` (atomically), unless it already records a later one (another process)."""
    state_dir = Path(state_dir)
    try:
        # one writer at a time (the daemon and an admin command may commit together): the check and the replace
        # under one lock keep the recorded generation from ever going backwards
        lock_fd = os.open(state_dir / f".{GEN_FILE}.lock", os.O_WRONLY | os.O_CREAT, 0o600)
        try:
            fcntl.flock(lock_fd, fcntl.LOCK_EX)
            if not force:
                try:
                    current = read_gen(state_dir)
                except StoreError:
                    current = None
                if current is not None and current >= seq:
                    return
            keys.write_atomic(state_dir / GEN_FILE,
                              json.dumps({"format": GEN_FORMAT, "generation": seq}).encode() + b"\n")
        finally:
            os.close(lock_fd)  # releases the lock
    except OSError as exc:
        raise StoreError(f"cannot write {state_dir / GEN_FILE}: {exc.strerror}; check the state directory's "
                         "permissions") from None


def _remove_stale_temporaries(state_dir: Path) -> None:
    """Temporary files of a ``write_gen`` that crashed; a live process's file (its pid in the name) is left alone."""
    for leftover in Path(state_dir).glob(f".{GEN_FILE}.*.tmp"):
        try:
            pid = int(leftover.name.split(".")[3])
            os.kill(pid, 0)
        except (ValueError, IndexError, ProcessLookupError):
            leftover.unlink(missing_ok=True)  # not ours, or its writer is gone
        except PermissionError:
            pass  # another user's live process


def settle(conn: sqlite3.Connection, state_dir: Path, path: Path, key: bytes, *, accept_restore: bool = False,
           now: float = 0.0) -> int:
    """On open: upgrade a store from before generations, then refuse a rolled-back database; returns the generation."""
    _remove_stale_temporaries(state_dir)
    seq = verified_seq(conn, key, path)
    recorded = None if accept_restore else read_gen(state_dir)
    if seq is None:
        if recorded is not None:
            raise StoreError(f"the store {path} is older than this device's last state (it has no generation, "
                             f"{GEN_FILE} records {recorded}): it was rolled back or replaced; restore the right "
                             "store.db, or run `biolock store accept-restore` if this restore was intended")
        seq = _upgrade(conn, key, now)
    elif recorded is not None and seq < recorded:
        raise StoreError(f"the store {path} was rolled back: its generation is {seq} but this device already "
                         f"reached {recorded} ({GEN_FILE}); deleted users or lockouts may have come back. Restore "
                         "the newest store.db, or run `biolock store accept-restore` if this restore was intended")
    elif recorded is None and not accept_restore and seq > 1:
        raise StoreError(f"{Path(state_dir) / GEN_FILE} is missing, so a rolled-back {path} cannot be ruled out; "
                         "run `biolock store accept-restore` if store.db is the one you trust")
    if recorded is None or seq > recorded:
        write_gen(state_dir, seq, force=accept_restore)
    if accept_restore:
        with db.transaction(conn):
            conn.execute("INSERT INTO audit (time, event, user, decision, detail) VALUES (?, 'store.accept-restore',"
                         " NULL, 'ok', ?)", (now, f"generation {seq} accepted as current"))
    return seq


def _upgrade(conn: sqlite3.Connection, key: bytes, now: float) -> int:
    """Give a store from before generations its name MACs and generation 1 (one transaction; idempotent)."""
    with db.transaction(conn):
        seq = stored_seq(conn)
        if seq is not None:  # another process upgraded it first
            return seq
        users = conn.execute("SELECT count(*) FROM users").fetchone()[0]
        db.set_meta(conn, "seq", 1)
        reseal(conn, key)
        if users:
            conn.execute("INSERT INTO audit (time, event, user, decision, detail) VALUES (?, 'store.upgrade', NULL,"
                         " 'ok', ?)", (now, f"{users} user names bound to the key; generation 1"))
    return 1


def check(conn: sqlite3.Connection, state_dir: Path | None, key: bytes, problems: list[str]) -> None:
    """``store check``: user name MACs, the generation MAC, and the database against ``store.gen``."""
    for uid, name, mac in conn.execute("SELECT uid, name, name_mac FROM users ORDER BY id"):
        if not name_ok(key, uid, name, mac):
            problems.append(f"user {name!r}: name does not authenticate (changed without the key, e.g. swapped "
                            "with another user's by SQL); its templates are refused")
    try:
        seq = verified_seq(conn, key, "store.db")
    except StoreError as exc:
        problems.append(str(exc))
        return
    if state_dir is None:
        return
    try:
        recorded = read_gen(state_dir)
    except StoreError as exc:
        problems.append(str(exc))
        return
    if seq is None:
        problems.append("the store has no generation (written before biolock recorded one); opening it upgrades it")
    elif recorded is None:
        problems.append(f"{GEN_FILE} is missing: a rolled-back store.db cannot be ruled out")
    elif seq < recorded:
        problems.append(f"store.db is rolled back: generation {seq}, but {GEN_FILE} records {recorded}")
