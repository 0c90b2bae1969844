"""Lockout after repeated failures: pure rules plus their persistence in the store's ``lockout`` table.

Rule (ISO/IEC 30107-style attempt limiting, Android/FIDO practice): after ``max_failures`` consecutive failures a
subject is locked for ``seconds``; each further lockout before a success lasts ``growth`` times longer. A success
clears everything. Every lockout is capped (``max_seconds``; the shared identify
subject has its own short cap). Times are *monotonic* seconds passed in by the caller (tests pass a fake clock
and never sleep); each deadline is stored with the boot id it belongs to, so moving the wall clock forward or
back changes nothing, and after a reboot a running lockout starts again in full (see :func:`anchored`).
"""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass, replace

from device.config import LockoutConfig

BOOT_ID_FILE = "/proc/sys/kernel/random/boot_id"
LEGACY_BOOT = "legacy"  # rows written before schema 2 (wall-clock deadlines): re-anchored in full on first use
MAX_EXPONENT = 64  # growth ** 64 already exceeds every cap; also keeps float ** int from overflowing


def read_boot_id() -> str:
    """This boot's id (Linux), so a monotonic deadline is only trusted within the boot that wrote it."""
    try:
        with open(BOOT_ID_FILE, encoding="ascii") as fh:
            return fh.read().strip() or "unknown-boot"
    except OSError:
        return "unknown-boot"


@dataclass(frozen=True)
class Rules:
    """One subject kind's limits: users (``lockout.*``) or the shared identify back-off (``lockout.identify_*``)."""

    max_failures: int
    seconds: float
    growth: float
    max_seconds: float


def rules_for(config: LockoutConfig, subject: str) -> Rules:
    """Users get ``lockout.*``; the shared identify subject (``*...``) a short, capped back-off, so strangers are
    slowed but an enrolled user waits at most ``identify_max_seconds`` (issue 17 item 1)."""
    if subject.startswith("*"):
        return Rules(config.identify_failures, config.identify_seconds, config.growth, config.identify_max_seconds)
    return Rules(config.max_failures, config.seconds, config.growth, config.max_seconds)


@dataclass(frozen=True)
class LockoutState:
    failures: int = 0  # consecutive failures since the last lockout or success
    lockouts: int = 0  # lockouts since the last success
    locked_until: float = 0.0  # deadline on the monotonic clock of boot ``boot``
    duration: float = 0.0  # length of the current/last lockout
    boot: str = ""  # the boot whose monotonic clock ``locked_until`` is on; "" = no lockout running
    wall_until: float = 0.0  # wall-clock end, for display only (never used to decide)


def remaining(state: LockoutState, now: float) -> float:
    """Seconds the subject is still locked at monotonic ``now`` (0 when free); never more than the duration."""
    left = state.locked_until - now
    return 0.0 if left <= 0 else min(left, state.duration)


def lockout_seconds(rules: Rules | LockoutConfig, lockouts: int) -> float:
    """The ``lockouts``-th lockout's length: ``seconds * growth ** (n - 1)``, never above ``max_seconds``."""
    cap = float(getattr(rules, "max_seconds", float("inf")))
    grown = float(rules.seconds) * float(rules.growth) ** min(max(lockouts - 1, 0), MAX_EXPONENT)
    return min(grown, cap)


def after_failure(state: LockoutState, now: float, config: Rules | LockoutConfig, boot: str = "",
                  wall: float = 0.0) -> tuple[LockoutState, float]:
    """The state after one more failure, and the lockout seconds it starts (0 if none)."""
    failures = state.failures + 1
    if failures < config.max_failures:
        running = state.boot if remaining(state, now) > 0 else ""
        return replace(state, failures=failures, boot=running), 0.0
    lockouts = state.lockouts + 1
    duration = lockout_seconds(config, lockouts)
    return LockoutState(failures=0, lockouts=lockouts, locked_until=now + duration, duration=duration, boot=boot,
                        wall_until=wall + duration), duration


def anchored(state: LockoutState, now: float, boot: str, rules: Rules | LockoutConfig,
             wall: float = 0.0) -> LockoutState | None:
    """The state re-anchored to this boot when it was written in another one, else None (nothing to change).

    Why: a monotonic deadline means nothing after a reboot, and the wall clock can be moved either way. So a
    lockout running in another boot starts again, in full (capped), on this boot's monotonic clock: a reboot or
    a clock change never shortens a lockout; at worst it repeats one (bounded by ``max_seconds``)."""
    if not state.boot or state.boot == boot or state.duration <= 0:
        return None
    duration = min(state.duration, float(getattr(rules, "max_seconds", state.duration)))
    return replace(state, locked_until=now + duration, duration=duration, boot=boot, wall_until=wall + duration)


_COLUMNS = "failures, lockouts, locked_until, duration, boot, wall_until"


def _state(row: tuple) -> LockoutState:
    return LockoutState(int(row[0]), int(row[1]), float(row[2]), float(row[3]), str(row[4]), float(row[5]))


def load(conn: sqlite3.Connection, subject: str) -> LockoutState:
    row = conn.execute(f"SELECT {_COLUMNS} FROM lockout WHERE subject = ?", (subject,)).fetchone()
    return LockoutState() if row is None else _state(row)


def load_all(conn: sqlite3.Connection) -> list[tuple[str, LockoutState]]:
    """Every subject with a counter or a lockout, by name."""
    return [(str(r[0]), _state(r[1:])) for r in
            conn.execute(f"SELECT subject, {_COLUMNS} FROM lockout ORDER BY subject")]


def save(conn: sqlite3.Connection, subject: str, state: LockoutState) -> None:
    conn.execute(
        f"INSERT INTO lockout (subject, {_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(subject) DO UPDATE SET "
        "failures = excluded.failures, lockouts = excluded.lockouts, locked_until = excluded.locked_until, "
        "duration = excluded.duration, boot = excluded.boot, wall_until = excluded.wall_until",
        (subject, state.failures, state.lockouts, state.locked_until, state.duration, state.boot, state.wall_until),
    )


def clear(conn: sqlite3.Connection, subject: str) -> None:
    conn.execute("DELETE FROM lockout WHERE subject = ?", (subject,))


def clear_all(conn: sqlite3.Connection) -> int:
    return conn.execute("DELETE FROM lockout").rowcount
