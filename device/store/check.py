"""``store check``: verify every record and report damage, changing nothing.

Why read-only: a damaged store is evidence and may still hold recoverable templates; a checker that "repairs"
by deleting would turn a recoverable fault into data loss. The report names rows and users, never template data.
"""

from __future__ import annotations

import sqlite3
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from device.errors import BiolockError
from device.store import db
from device.store import integrity as name_integrity
from device.store.crypto import cipher, same_key_check
from device.store.db import STORE_FORMAT, get_meta, schema_version
from device.store.records import rows


@dataclass
class CheckReport:
    path: str
    schema_version: int = 0
    users: int = 0
    enrolments: int = 0
    templates: int = 0
    opened: int = 0  # templates that opened with the store key and decoded to a valid vector
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def as_dict(self) -> dict:
        return {**asdict(self), "ok": self.ok}


def _count(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def run_check(conn: sqlite3.Connection, path: str, key: bytes, state_dir: Path | None = None) -> CheckReport:
    """Check SQLite integrity, the schema, the key, user names, the generation (against ``store.gen`` in
    ``state_dir``), enrolment counts and every sealed template."""
    report = CheckReport(path=path)
    try:
        integrity = [r[0] for r in conn.execute("PRAGMA integrity_check").fetchall()]
        if integrity != ["ok"]:
            report.problems += [f"sqlite integrity: {line}" for line in integrity[:20]]
        for table, rowid, parent, _ in conn.execute("PRAGMA foreign_key_check").fetchall():
            report.problems.append(f"{table} row {rowid} points to a missing {parent} row")
        report.schema_version = schema_version(conn)
        if report.schema_version != db.SCHEMA_VERSION:
            report.problems.append(f"schema version {report.schema_version}, expected {db.SCHEMA_VERSION}")
        fmt = get_meta(conn, "format")
        if (fmt.decode() if isinstance(fmt, bytes) else fmt) != STORE_FORMAT:
            report.problems.append(f"store format is {fmt!r}, expected {STORE_FORMAT!r}")
        kcv = get_meta(conn, "key_check")
        if kcv is None or not same_key_check(kcv, key):
            report.problems.append("the key does not match the store's key check value")
        report.users, report.enrolments, report.templates = (_count(conn, t) for t in
                                                              ("users", "enrolments", "templates"))
        for eid, user, finger, expected, actual in conn.execute(
                "SELECT e.id, u.name, e.finger, e.count, (SELECT count(*) FROM templates t WHERE t.enrolment_id "
                "= e.id) FROM enrolments e JOIN users u ON u.id = e.user_id"):
            if expected != actual:
                report.problems.append(f"enrolment {eid} ({user}, {finger}) has {actual} templates, expected "
                                       f"{expected} (partial enrolment)")
        for (name,) in conn.execute("SELECT name FROM users WHERE id NOT IN (SELECT user_id FROM enrolments)"):
            report.notes.append(f"user {name!r} has no enrolled finger")
        name_integrity.check(conn, state_dir, key, report.problems)
        aead = cipher(key)
        for row in rows(conn):
            try:
                vector = row.decoded(aead)  # an embedding, or a byte template (schema 4)
            except BiolockError as exc:
                report.problems.append(f"template {row.template_id} of user {row.user!r} ({row.finger}, "
                                       f"{row.model_id}): {exc}")
                continue
            if isinstance(vector, np.ndarray) and not np.any(vector):
                report.problems.append(f"template {row.template_id} of user {row.user!r} is all zeros")
                continue
            report.opened += 1
    except sqlite3.DatabaseError as exc:
        report.problems.append(f"sqlite: {exc} (the file is damaged; restore from a backup)")
    return report
