"""Lockout after repeated failures: pure rules plus their persistence in the store's ``lockout`` table.

Rule (ISO/IEC 30107-style attempt limiting, Android/FIDO practice): after ``max_failures`` consecutive failures a
subject is locked for ``seconds``; each further lockout before a success lasts ``growth`` times longer. A success
clears everything. Times are wall-clock seconds passed in by the caller, so tests never sleep and the state
survives restarts. If the clock is set back, the remaining time never exceeds the lockout's own duration
(fail closed, but not forever).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace

from device.config import LockoutConfig


@dataclass(frozen=True)
class LockoutState:
    failures: int = 0  # consecutive failures since the last lockout or success
    lockouts: int = 0  # lockouts since the last success
    locked_until: float = 0.0
    duration: float = 0.0  # length of the current/last lockout


def remaining(state: LockoutState, now: float) -> float:
    """Seconds the subject is still locked at ``now`` (0 when free)."""
    left = state.locked_until - now
    return 0.0 if left <= 0 else min(left, state.duration)


def after_failure(state: LockoutState, now: float, config: LockoutConfig) -> tuple[LockoutState, float]:
    """The state after one more failure, and the lockout seconds it starts (0 if none)."""
    failures = state.failures + 1
    if failures < config.max_failures:
        return replace(state, failures=failures), 0.0
    lockouts = state.lockouts + 1
    duration = float(config.seconds) * float(config.growth) ** (lockouts - 1)
    return LockoutState(failures=0, lockouts=lockouts, locked_until=now + duration, duration=duration), duration


def load(conn: sqlite3.Connection, subject: str) -> LockoutState:
    row = conn.execute("SELECT failures, lockouts, locked_until, duration FROM lockout WHERE subject = ?",
                       (subject,)).fetchone()
    return LockoutState() if row is None else LockoutState(int(row[0]), int(row[1]), float(row[2]), float(row[3]))


def save(conn: sqlite3.Connection, subject: str, state: LockoutState) -> None:
    conn.execute(
        "INSERT INTO lockout VALUES (?, ?, ?, ?, ?) ON CONFLICT(subject) DO UPDATE SET failures = excluded.failures,"
        " lockouts = excluded.lockouts, locked_until = excluded.locked_until, duration = excluded.duration",
        (subject, state.failures, state.lockouts, state.locked_until, state.duration),
    )


def clear(conn: sqlite3.Connection, subject: str) -> None:
    conn.execute("DELETE FROM lockout WHERE subject = ?", (subject,))
