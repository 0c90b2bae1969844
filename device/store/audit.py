"""The audit log: one row per decision or admin action, never any biometric data.

Why so narrow: an audit trail must be safe to show to anyone who may read logs, so it records only time, event,
user name (or none for unknown), decision, a coarse score bucket (tenths, not the score), latency and a short
free-text detail. Details are made printable and cut to 200 characters, so an embedding cannot end up there by
accident (a 128-value vector does not fit); names, events and decisions that are not short printable text are
refused.
"""

from __future__ import annotations

import math
import sqlite3
from dataclasses import asdict, dataclass

from device.errors import StoreError

MAX_DETAIL = 200
MAX_FIELD = 64
KEEP_ROWS = 100_000  # older rows are pruned so the log cannot fill the disk


@dataclass(frozen=True)
class AuditRecord:
    id: int
    time: float
    event: str
    user: str | None
    decision: str
    score_bucket: str | None
    latency_ms: float | None
    detail: str

    def as_dict(self) -> dict:
        return asdict(self)


def score_bucket(score: float | None) -> str | None:
    """A coarse bucket for a similarity score: ``"0.6-0.7"``; ``None`` stays ``None``, NaN is ``"invalid"``."""
    if score is None:
        return None
    if not math.isfinite(score):
        return "invalid"
    low = math.floor(max(-1.0, min(score, 0.999999)) * 10) / 10
    return f"{low:.1f}-{low + 0.1:.1f}"


def _field(name: str, value: str | None, limit: int, *, optional: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= limit or not value.isprintable():
        raise StoreError(f"audit {name} must be printable text of 1..{limit} characters")
    return value


def clean_detail(detail: str) -> str:
    """Details are free text from callers (reasons, messages): made printable and cut to MAX_DETAIL characters.

    Cutting instead of refusing keeps a long reason from turning a decision into an error; the cap still keeps any
    vector of numbers out of the log."""
    if not isinstance(detail, str):
        raise StoreError("audit detail must be text")
    text = "".join(ch if ch.isprintable() else " " for ch in detail)
    return text if len(text) <= MAX_DETAIL else text[: MAX_DETAIL - 3] + "..."


def append(conn: sqlite3.Connection, now: float, event: str, user: str | None, decision: str,
           bucket: str | None, latency_ms: float | None, detail: str) -> None:
    """Validate and insert one audit row (caller holds a transaction or relies on autocommit)."""
    row = (
        float(now),
        _field("event", event, MAX_FIELD),
        _field("user", user, MAX_FIELD, optional=True),
        _field("decision", decision, MAX_FIELD),
        _field("score bucket", bucket, 16, optional=True),
        None if latency_ms is None else float(latency_ms),
        clean_detail(detail),
    )
    if row[5] is not None and not math.isfinite(row[5]):
        raise StoreError("audit latency must be finite")
    cur = conn.execute("INSERT INTO audit (time, event, user, decision, score_bucket, latency_ms, detail) "
                       "VALUES (?, ?, ?, ?, ?, ?, ?)", row)
    if cur.lastrowid and cur.lastrowid % 1000 == 0:
        conn.execute("DELETE FROM audit WHERE id <= ?", (cur.lastrowid - KEEP_ROWS,))


def tail(conn: sqlite3.Connection, n: int) -> list[AuditRecord]:
    """The last ``n`` records, oldest first."""
    rows = conn.execute("SELECT id, time, event, user, decision, score_bucket, latency_ms, detail FROM audit "
                        "ORDER BY id DESC LIMIT ?", (max(0, int(n)),)).fetchall()
    return [AuditRecord(*row) for row in reversed(rows)]
