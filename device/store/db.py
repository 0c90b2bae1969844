"""SQLite plumbing for the template store: connection settings, schema and migrations, error translation.

Why these settings: WAL lets the daemon read while the CLI writes; ``busy_timeout`` makes a second process wait
for a lock instead of failing at once; ``BEGIN IMMEDIATE`` takes the write lock up front so a multi-row change
is all or nothing and never deadlocks half way; foreign keys make deleting a user delete their templates.

Schema versions are rows of ``schema_version``; ``MIGRATIONS[i]`` brings the store to version ``i + 1``. A store
written by a newer biolock is refused rather than guessed at.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterator
from pathlib import Path

from device.errors import StoreError

DB_FILE = "store.db"
STORE_FORMAT = "biolock-store/1"

MIGRATIONS: list[str] = [
    """
    CREATE TABLE meta (name TEXT PRIMARY KEY, value BLOB NOT NULL);
    CREATE TABLE users (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        uid TEXT NOT NULL UNIQUE,
        name TEXT NOT NULL UNIQUE,
        created REAL NOT NULL
    );
    CREATE TABLE enrolments (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        user_id INTEGER NOT NULL REFERENCES users(id) ON DELETE CASCADE,
        finger TEXT NOT NULL,
        modality TEXT NOT NULL,
        model_id TEXT NOT NULL,
        dim INTEGER NOT NULL,
        count INTEGER NOT NULL,
        created REAL NOT NULL,
        UNIQUE (user_id, finger, modality)
    );
    CREATE TABLE templates (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        uid TEXT NOT NULL UNIQUE,
        enrolment_id INTEGER NOT NULL REFERENCES enrolments(id) ON DELETE CASCADE,
        sealed BLOB NOT NULL
    );
    CREATE INDEX templates_enrolment ON templates(enrolment_id);
    CREATE INDEX enrolments_model ON enrolments(modality, model_id);
    CREATE TABLE audit (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        time REAL NOT NULL,
        event TEXT NOT NULL,
        user TEXT,
        decision TEXT NOT NULL,
        score_bucket TEXT,
        latency_ms REAL,
        detail TEXT NOT NULL DEFAULT ''
    );
    CREATE TABLE lockout (
        subject TEXT PRIMARY KEY,
        failures INTEGER NOT NULL DEFAULT 0,
        lockouts INTEGER NOT NULL DEFAULT 0,
        locked_until REAL NOT NULL DEFAULT 0,
        duration REAL NOT NULL DEFAULT 0
    );
    """,
    # 2: lockout deadlines on the monotonic clock of a named boot (issue 17 item 1); rows from schema 1 hold
    # wall-clock deadlines, so a running one is marked to start again in full on its first use (fail closed).
    """
    ALTER TABLE lockout ADD COLUMN boot TEXT NOT NULL DEFAULT '';
    ALTER TABLE lockout ADD COLUMN wall_until REAL NOT NULL DEFAULT 0;
    UPDATE lockout SET boot = 'legacy', wall_until = locked_until WHERE duration > 0;
    """,
    # 3: user names bound to the key (issue 17 item 4); filled in by integrity.settle with the key on first open
    """
    ALTER TABLE users ADD COLUMN name_mac BLOB;
    """,
    # 4: byte templates (issue 18): an enrolment holds float vectors ('vector': every enrolment before) or
    # variable-length byte templates ('bytes', e.g. small-sensor placements of up to 16 KB); a biolock before
    # schema 4 refuses such a store (newer schema) instead of misreading its templates
    """
    ALTER TABLE enrolments ADD COLUMN kind TEXT NOT NULL DEFAULT 'vector';
    """,
]
SCHEMA_VERSION = len(MIGRATIONS)


def translate(exc: sqlite3.Error, path: Path | str) -> StoreError:
    """A StoreError that tells the user what an SQLite failure means for them."""
    text = str(exc)
    low = text.lower()
    if "locked" in low or "busy" in low:
        return StoreError(f"the store {path} is busy (another biolock process holds it); try again")
    if "not a database" in low or "malformed" in low or "disk image" in low or "no such table" in low \
            or "could not decode" in low:
        return StoreError(f"the store {path} is damaged ({text}); nothing was changed -- move it away, then "
                          "restore a backup with `biolock store import` (or enrol again in a new store)")
    if "readonly" in low or "unable to open" in low:
        return StoreError(f"cannot write the store {path} ({text}); check the state directory's permissions")
    return StoreError(f"store {path}: {text}")


@contextlib.contextmanager
def errors(path: Path | str) -> Iterator[None]:
    """Turn any sqlite3 error inside the block into a StoreError naming the store."""
    try:
        yield
    except sqlite3.Error as exc:
        raise translate(exc, path) from None
    except UnicodeEncodeError:  # a name from the command line with bytes that are not UTF-8 (surrogate escapes)
        raise StoreError("a name or text given is not valid UTF-8; use UTF-8 text") from None
    except UnicodeDecodeError:  # text in the file is not UTF-8: a flipped byte, or not written by biolock
        raise StoreError(f"the store {path} is damaged (text that is not UTF-8); nothing was changed -- run "
                         "`biolock store check`, then restore a backup with `biolock store import`") from None


def connect(path: Path, busy_timeout_s: float) -> sqlite3.Connection:
    """Open the database with the store's settings (autocommit; transactions are explicit)."""
    conn = sqlite3.connect(str(path), timeout=busy_timeout_s, isolation_level=None, check_same_thread=False)
    try:
        conn.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
        conn.execute("PRAGMA foreign_keys = ON")
        mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise StoreError(f"the store {path} cannot use WAL mode (got {mode}); is the filesystem read-only?")
        conn.execute("PRAGMA synchronous = FULL")
    except BaseException:
        conn.close()
        raise
    return conn


@contextlib.contextmanager
def transaction(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """``BEGIN IMMEDIATE`` ... ``COMMIT``; rolls back on any exception (also on KeyboardInterrupt)."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        yield conn
    except BaseException:
        if conn.in_transaction:
            conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")


def schema_version(conn: sqlite3.Connection) -> int:
    """The store's schema version (0 for an empty database)."""
    has = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'schema_version'").fetchone()
    if not has:
        tables = conn.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]
        if tables:
            raise StoreError("this database is not a biolock store (it has tables but no schema_version)")
        return 0
    return int(conn.execute("SELECT coalesce(max(version), 0) FROM schema_version").fetchone()[0])


def migrate(conn: sqlite3.Connection, path: Path | str) -> int:
    """Bring the schema up to date in one transaction; returns the version reached.

    An up-to-date store is only read (no write lock), so opening never waits for a busy writer."""
    if schema_version(conn) == SCHEMA_VERSION:
        return SCHEMA_VERSION
    with transaction(conn):
        current = schema_version(conn)
        if current > SCHEMA_VERSION:
            raise StoreError(f"the store {path} has schema version {current}, newer than this biolock "
                             f"understands ({SCHEMA_VERSION}); upgrade biolock")
        if current == 0:
            conn.execute("CREATE TABLE schema_version (version INTEGER PRIMARY KEY, applied REAL NOT NULL)")
        for version in range(current + 1, SCHEMA_VERSION + 1):
            for statement in MIGRATIONS[version - 1].split(";"):
                if statement.strip():
                    conn.execute(statement)
            conn.execute("INSERT INTO schema_version VALUES (?, ?)", (version, time.time()))
    return SCHEMA_VERSION


def get_meta(conn: sqlite3.Connection, name: str) -> bytes | None:
    row = conn.execute("SELECT value FROM meta WHERE name = ?", (name,)).fetchone()
    return None if row is None else bytes(row[0]) if isinstance(row[0], (bytes, memoryview)) else row[0]


def set_meta(conn: sqlite3.Connection, name: str, value: bytes | str | int) -> None:
    conn.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(name) DO UPDATE SET value = excluded.value",
                 (name, value))


def bump_generation(conn: sqlite3.Connection) -> None:
    """Mark the templates as changed so every process drops its cached gallery."""
    conn.execute("INSERT INTO meta VALUES ('generation', 1) "
                 "ON CONFLICT(name) DO UPDATE SET value = value + 1")


def generation(conn: sqlite3.Connection) -> int:
    row = conn.execute("SELECT value FROM meta WHERE name = 'generation'").fetchone()
    return int(row[0]) if row else 0


def create_private(path: Path) -> None:
    """Create the database file 0600 before SQLite does (its -wal/-shm files copy these permissions)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass
    except OSError as exc:
        raise StoreError(f"cannot create the store {path}: {exc.strerror}") from None
