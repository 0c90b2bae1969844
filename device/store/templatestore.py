"""The template store: users, enrolled fingers and their sealed embeddings in SQLite, plus audit and lockout.

Why one class: the daemon and the CLI share one small API (contract in the D1 brief) and never touch SQL. Every
multi-row change runs in one ``BEGIN IMMEDIATE`` transaction, so a crash or a second process never sees half an
enrolment. Templates belong to a model (``model_id``): ``gallery`` and ``user_templates`` return only the
templates of the model asked for, so nothing silently matches against stale templates after a model change,
and ``stale_users`` lists who must re-enrol. The store audits its own admin changes (enrol, delete, rename,
rotate, import) inside the same transaction; callers audit decisions with :meth:`TemplateStore.audit`.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np

from device.config import LockoutConfig
from device.errors import KeyError_, StoreError
from device.store import audit as audit_log
from device.store import db, integrity, keys, lockout, rotation
from device.store.check import CheckReport, run_check
from device.store.crypto import check_key, key_id, same_key_check
from device.store.keys import KEY_FILE, ensure_state_dir
from device.store.lockstore import LockoutMixin
from device.store.records import (
    BYTES,
    VECTOR,
    check_name,
    encode_all,
    encode_blobs,
    insert_enrolment,
    new_uid,
    open_blobs,
    open_matrix,
    rows,
)
from device.store.views import ByteGallery, Gallery, UserInfo, user_infos

SAME = object()  # rotate_key(passphrase=SAME): protect the new key file like the current one


class TemplateStore(LockoutMixin):
    """See the module docstring. Open with :meth:`open`; use as a context manager or call :meth:`close`."""

    def __init__(self, conn: sqlite3.Connection, path: Path, state_dir: Path, key: bytes, *, key_from_file: bool,
                 passphrase: str | None, lockout_config: LockoutConfig, clock: Callable[[], float],
                 boot_id: Callable[[], str] = lockout.read_boot_id):
        self._conn: sqlite3.Connection | None = conn
        self.path = path
        self.state_dir = state_dir
        self._key = key
        self._key_from_file = key_from_file
        self._passphrase = passphrase
        self.lockout_config = lockout_config
        self._clock = clock
        self._boot_id = boot_id
        self._lock = threading.RLock()
        self._cache: dict[tuple[str, ...], Gallery | ByteGallery] = {}
        self._seen: tuple[int, int] = (-1, -1)  # (PRAGMA data_version, generation) the cache was built at
        self._batch_depth = 0
        self._pending_gen = 0  # generation committed but not yet written to store.gen

    # ----------------------------------------------------------------------------------------------- opening
    @classmethod
    def open(cls, state_dir: Path, key: bytes | None = None, *, create: bool = True,
             lockout_config: LockoutConfig | None = None, passphrase: str | None = None,
             busy_timeout_s: float = 5.0, clock: Callable[[], float] = time.time,
             boot_id: Callable[[], str] = lockout.read_boot_id, accept_restore: bool = False) -> TemplateStore:
        """Open (or with ``create`` make) the store in ``state_dir``; ``key`` None reads ``store.key``.

        ``clock`` is the wall clock (audit times, display); lockout deadlines use the monotonic readings callers
        pass in, tied to ``boot_id()``. ``accept_restore`` takes the database as it is even when it is older than
        ``store.gen`` records (after an intended restore; audited)."""
        state_dir = Path(state_dir)
        path = state_dir / db.DB_FILE
        if not path.exists():
            if (state_dir / integrity.GEN_FILE).exists():  # a store existed here (a fresh key alone may not have one)
                raise StoreError(f"the store {path} is missing but {state_dir / integrity.GEN_FILE} shows one existed"
                                 ": the database was deleted or moved; restore it (or import a backup into a new "
                                 "state directory) -- a new empty store is never made in its place")
            if not create:
                raise StoreError(f"no template store in {state_dir}: enrol someone first, or pass the right "
                                 "--state-dir")
            ensure_state_dir(state_dir)
            db.create_private(path)
        elif path.stat().st_size == 0:
            raise StoreError(f"the store {path} is empty (0 bytes): it was truncated; restore it from a backup "
                             "(biolock store import) or move it away to start a new store")
        from_file = key is None
        if key is not None:
            key = check_key(key)
        with db.errors(path):
            conn = db.connect(path, busy_timeout_s)
            try:
                db.migrate(conn, path)
                key = rotation.settle_key(conn, state_dir, path, key, passphrase, clock)
                integrity.settle(conn, state_dir, path, key, accept_restore=accept_restore, now=clock())
            except BaseException:
                conn.close()
                raise
        return cls(conn, path, state_dir, key, key_from_file=from_file, passphrase=passphrase,
                   lockout_config=lockout_config or LockoutConfig(), clock=clock, boot_id=boot_id)

    def close(self) -> None:
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None
                self._cache.clear()

    def __enter__(self) -> TemplateStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            raise StoreError("the template store is closed")
        return self._conn

    @property
    def key_id(self) -> str:
        """A public 8-hex-digit name of the current key."""
        return key_id(self._key)

    @contextlib.contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        if self._batch_depth or self.conn.in_transaction:  # inside batch() or another write: it covers this change
            yield self.conn
            return
        try:
            with db.transaction(self.conn) as conn:
                yield conn
        except BaseException:
            self._pending_gen = 0  # rolled back: that generation was never committed, never record it
            raise
        self._publish()

    def _bump(self) -> None:
        """Count a change of users, templates or lockouts (inside a write transaction; see ``integrity``)."""
        self._pending_gen = integrity.bump(self.conn, self._sync())

    def _publish(self) -> None:
        """After a commit: record the generation in ``store.gen`` (never before: a crash leaves it behind)."""
        if self._pending_gen:
            seq, self._pending_gen = self._pending_gen, 0
            integrity.write_gen(self.state_dir, seq)

    @contextlib.contextmanager
    def batch(self) -> Iterator[TemplateStore]:
        """Group several changes in one transaction (one disk sync), e.g. a lockout counter and its audit record.

        Example: ``with store.batch(): store.record_failure(subject, now); store.audit(...)``. All or nothing.
        """
        with self._lock, db.errors(self.path):
            if self._batch_depth:
                yield self
                return
            try:
                with db.transaction(self.conn):
                    self._batch_depth += 1
                    try:
                        yield self
                    finally:
                        self._batch_depth -= 1
            except BaseException:
                self._pending_gen = 0  # rolled back: that generation was never committed, never record it
                raise
            self._publish()

    @contextlib.contextmanager
    def _read(self) -> Iterator[None]:
        """One read snapshot (WAL) for several statements, so a key check and the rows it covers agree."""
        if self._batch_depth or self.conn.in_transaction:
            yield
            return
        self.conn.execute("BEGIN")
        try:
            yield
        finally:
            if self.conn.in_transaction:
                self.conn.execute("COMMIT")

    def _sync(self) -> bytes:
        """Follow other processes' commits: drop stale galleries and pick up a key they rotated; returns the key.

        Called inside every read snapshot or write transaction that uses the key, so nothing is ever opened or
        sealed with a key that is no longer the store's (a daemon keeps working across ``biolock keys rotate``).
        """
        data_version = int(self.conn.execute("PRAGMA data_version").fetchone()[0])
        if data_version == self._seen[0]:
            return self._key
        gen = db.generation(self.conn)
        if gen != self._seen[1]:
            self._cache.clear()
        kcv = db.get_meta(self.conn, "key_check")
        if kcv is not None and not same_key_check(kcv, self._key):
            if not self._key_from_file:
                raise KeyError_("the store key was rotated by another process; reopen the store with the new key")
            self._key = rotation.resolve_file_key(self.state_dir, kcv, self._passphrase)
            self._cache.clear()
        self._seen = (data_version, gen)
        return self._key

    def _changed(self) -> None:
        db.bump_generation(self.conn)
        self._cache.clear()

    # ------------------------------------------------------------------------------------------- templates
    def enroll(self, user: str, finger: str, modality: str, model_id: str,
               embeddings: Sequence[np.ndarray]) -> None:
        """Store one finger's templates for ``user`` (created if new), replacing that finger's old ones; atomic."""
        plain, dim = encode_all(embeddings)
        self._enroll(user, finger, modality, model_id, plain, dim, VECTOR)

    def enroll_bytes(self, user: str, finger: str, modality: str, model_id: str, templates: Sequence[bytes]) -> None:
        """Like :meth:`enroll` for byte templates of any length up to ``crypto.MAX_BLOB`` (64 KB), e.g. a
        small-sensor enrolment of many placements (issue 18); sealed like embeddings, one record each."""
        self._enroll(user, finger, modality, model_id, encode_blobs(templates), 0, BYTES)

    def _enroll(self, user: str, finger: str, modality: str, model_id: str, plain: list[bytes], dim: int,
                kind: str) -> None:
        check_name("user name", user)
        check_name("finger", finger, 32)
        check_name("modality", modality, 32)
        check_name("model id", model_id, 128)
        with self._lock, db.errors(self.path), self._write():
            key = self._sync()
            mixed = self.conn.execute("SELECT kind FROM enrolments WHERE model_id = ? AND modality = ? AND kind != ? "
                                      "LIMIT 1", (model_id, modality, kind)).fetchone()
            if mixed:
                raise StoreError(f"model {model_id} has {mixed[0]} templates, got {kind} templates")
            other = self.conn.execute("SELECT DISTINCT dim FROM enrolments WHERE model_id = ? AND modality = ? "
                                      "AND dim != ?", (model_id, modality, dim)).fetchone()
            if other:
                raise StoreError(f"model {model_id} has {other[0]}-value templates, got {dim} values")
            now = self._clock()
            found = self.conn.execute("SELECT id, uid FROM users WHERE name = ?", (user,)).fetchone()
            if found is None:
                uid = new_uid()
                user_id = self.conn.execute("INSERT INTO users (uid, name, created) VALUES (?, ?, ?)",
                                            (uid, user, now)).lastrowid
                integrity.set_user_mac(self.conn, key, user_id)
            else:
                user_id, uid = found
            self.conn.execute("DELETE FROM enrolments WHERE user_id = ? AND finger = ? AND modality = ?",
                              (user_id, finger, modality))
            insert_enrolment(self.conn, key, user_id, uid, finger, modality, model_id, plain, dim, now, kind)
            audit_log.append(self.conn, now, "enrol", user, "ok", None, None,
                             f"{finger} {modality}: {len(plain)} templates")
            self._bump()
            self._changed()

    def byte_templates(self, modality: str, model_id: str, user: str | None = None) -> ByteGallery:
        """Every byte template of one model (or just ``user``'s), in enrolment order; cached like :meth:`gallery`.

        A record that does not open (tampered, moved, wrong key) or a renamed user raises ``SealError``: no
        decision is made on a damaged gallery. What the bytes mean is the matcher's business (it refuses its own
        damaged or foreign templates)."""
        with self._lock, db.errors(self.path), self._read():
            key = self._sync()
            cached = self._cache.get(("bytes", modality, model_id))
            if cached is None:
                found = list(rows(self.conn, "e.modality = ? AND e.model_id = ?", (modality, model_id)))
                cached = ByteGallery(tuple(r.user for r in found), tuple(r.finger for r in found),
                                     tuple(open_blobs(key, found)))
                self._cache[("bytes", modality, model_id)] = cached
            if user is None:
                return cached
            keep = [i for i, u in enumerate(cached.users) if u == user]
            return ByteGallery(tuple(cached.users[i] for i in keep), tuple(cached.fingers[i] for i in keep),
                               tuple(cached.templates[i] for i in keep))

    def user_templates(self, user: str, modality: str, model_id: str) -> np.ndarray:
        """All of ``user``'s templates for one model as an (n, d) float32 matrix; (0, d) if none."""
        with self._lock, db.errors(self.path), self._read():
            key = self._sync()
            found = list(rows(self.conn, "u.name = ? AND e.modality = ? AND e.model_id = ?",
                              (user, modality, model_id)))
            return open_matrix(key, found, found[0].dim if found else self._dim(modality, model_id))

    def _dim(self, modality: str, model_id: str) -> int:
        row = self.conn.execute("SELECT dim FROM enrolments WHERE modality = ? AND model_id = ? LIMIT 1",
                                (modality, model_id)).fetchone()
        return int(row[0]) if row else 0

    def gallery(self, modality: str, model_id: str) -> Gallery:
        """Every template of one model (for 1:N), cached until the store changes (in any process)."""
        with self._lock, db.errors(self.path), self._read():
            key = self._sync()
            cached = self._cache.get((modality, model_id))
            if cached is not None:
                return cached
            found = list(rows(self.conn, "e.modality = ? AND e.model_id = ?", (modality, model_id)))
            matrix = open_matrix(key, found, found[0].dim if found else self._dim(modality, model_id))
            matrix.setflags(write=False)
            gallery = Gallery([r.user for r in found], [r.finger for r in found], matrix)
            self._cache[(modality, model_id)] = gallery
            return gallery

    # ----------------------------------------------------------------------------------------------- users
    def users(self, current: dict[str, str] | None = None, only: str | None = None) -> list[UserInfo]:
        """Everyone enrolled (or just ``only``); ``needs_reenrol`` is set against ``current`` (modality -> model id)."""
        with self._lock, db.errors(self.path), self._read():
            return user_infos(self.conn, current or {}, only)

    def has_user(self, user: str) -> bool:
        with self._lock, db.errors(self.path):
            return self.conn.execute("SELECT 1 FROM users WHERE name = ?", (user,)).fetchone() is not None

    def stale_users(self, current: dict[str, str], only: str | None = None) -> list[str]:
        """Users (or just ``only``) with templates of a model other than the current one for that modality (they
        must re-enrol)."""
        return [u.name for u in self.users(current, only) if u.needs_reenrol]

    def delete_user(self, user: str) -> None:
        """Remove a user and all their templates."""
        with self._lock, db.errors(self.path), self._write():
            if self.conn.execute("DELETE FROM users WHERE name = ?", (user,)).rowcount == 0:
                raise StoreError(f"no user named {user!r}")
            audit_log.append(self.conn, self._clock(), "user.delete", user, "ok", None, None, "")
            self._bump()
            self._changed()

    def delete_finger(self, user: str, finger: str) -> int:
        """Remove one finger of a user (every modality); a user left with no finger is removed too.

        Returns how many enrolments (finger x modality) went. Like ``fprintd-delete USER -f FINGER``.
        """
        with self._lock, db.errors(self.path), self._write():
            row = self.conn.execute("SELECT id FROM users WHERE name = ?", (user,)).fetchone()
            if row is None:
                raise StoreError(f"no user named {user!r}")
            gone = self.conn.execute("DELETE FROM enrolments WHERE user_id = ? AND finger = ?",
                                     (row[0], finger)).rowcount
            if gone == 0:
                raise StoreError(f"{user} has no {finger} enrolled")
            if self.conn.execute("SELECT 1 FROM enrolments WHERE user_id = ?", (row[0],)).fetchone() is None:
                self.conn.execute("DELETE FROM users WHERE id = ?", (row[0],))
            audit_log.append(self.conn, self._clock(), "user.delete", user, "ok", None, None, f"finger {finger}")
            self._changed()
            return gone

    def rename_user(self, old: str, new: str) -> None:
        """Rename a user; templates stay bound to the user's internal id, so nothing is re-sealed."""
        check_name("user name", new)
        with self._lock, db.errors(self.path), self._write():
            if self.conn.execute("SELECT 1 FROM users WHERE name = ?", (new,)).fetchone():
                raise StoreError(f"a user named {new!r} already exists")
            if self.conn.execute("UPDATE users SET name = ? WHERE name = ?", (new, old)).rowcount == 0:
                raise StoreError(f"no user named {old!r}")
            user_id = self.conn.execute("SELECT id FROM users WHERE name = ?", (new,)).fetchone()[0]
            integrity.set_user_mac(self.conn, self._sync(), user_id)
            self._bump()
            audit_log.append(self.conn, self._clock(), "user.rename", new, "ok", None, None, f"was {old}"[:200])
            self._changed()

    # ------------------------------------------------------------------------------------- audit and lockout
    def audit(self, event: str, *, user: str | None, decision: str, score_bucket: str | None = None,
              latency_ms: float | None = None, detail: str = "") -> None:
        """Append one audit record (no biometric data: a score bucket, never a score or template)."""
        with self._lock, db.errors(self.path):
            audit_log.append(self.conn, self._clock(), event, user, decision, score_bucket, latency_ms, detail)

    def audit_tail(self, n: int = 20) -> list[audit_log.AuditRecord]:
        with self._lock, db.errors(self.path):
            return audit_log.tail(self.conn, n)


    # --------------------------------------------------------------------------------- check, keys, backup
    def check(self) -> CheckReport:
        """Verify every record; reports damage, changes nothing."""
        with self._lock, db.errors(self.path), self._read():
            try:
                key = self._sync()
            except (KeyError_, StoreError):
                key = self._key  # the report says the key does not match
            return run_check(self.conn, str(self.path), key, self.state_dir)

    def rotate_key(self, new_key: bytes, *, passphrase: object = SAME) -> int:
        """Re-seal everything with ``new_key`` in one transaction, then replace ``store.key`` atomically.

        ``passphrase``: protect the new key file with it (None: raw key file; default: like the current one).
        Returns the number of templates re-sealed.
        """
        with self._lock, db.errors(self.path):
            key_path = self.state_dir / KEY_FILE
            manage = self._key_from_file or key_path.exists()
            if manage and key_path.exists() and keys.is_sealed_file(key_path):
                raise KeyError_(f"{key_path} is sealed with systemd-creds: run `biolock keys unseal`, rotate, then "
                                "`biolock keys seal` again")
            phrase = passphrase
            if passphrase is SAME:  # keep the protection the current key file has
                wrapped = manage and key_path.exists() and keys.needs_passphrase(key_path.read_bytes())
                phrase = (self._passphrase or keys.passphrase_from_env()) if wrapped else None
                if wrapped and phrase is None:
                    raise KeyError_(f"{key_path} is protected by a passphrase: give it (or a new one) to rotate")
            if phrase is not None and not isinstance(phrase, str):
                raise KeyError_("the passphrase must be text")
            with self._read():
                old_key = self._sync()
            count = rotation.rotate(self.conn, self.state_dir, old_key, new_key, manage, phrase, self._clock())
            seq = integrity.stored_seq(self.conn)
            if seq:
                integrity.write_gen(self.state_dir, seq)
            self._key = check_key(new_key)
            self._passphrase = phrase
            self._cache.clear()
            return count

    def export_backup(self, path: Path, passphrase: str, *, overwrite: bool = False) -> int:
        """Write an encrypted, authenticated backup of all users and templates; returns the template count."""
        from device.store import backup

        if Path(path).exists() and not overwrite:
            raise StoreError(f"{path} already exists; choose another name (or overwrite it explicitly)")
        with self._lock, db.errors(self.path):
            with self._read():
                key = self._sync()
            count = backup.export_to(self.conn, key, Path(path), passphrase)
            audit_log.append(self.conn, self._clock(), "store.export", None, "ok", None, None,
                             f"{count} templates")
            return count

    def import_backup(self, path: Path, passphrase: str, *, replace: bool = False) -> int:
        """Add the users of a backup in one transaction (``replace`` overwrites same-named users)."""
        from device.store import backup

        with self._lock, db.errors(self.path):
            count = backup.import_from(self.conn, self._sync, Path(path), passphrase, replace, self._clock())
            self._cache.clear()
            seq = integrity.stored_seq(self.conn)
            if seq:
                integrity.write_gen(self.state_dir, seq)
            return count
