"""The template store's lockout methods (a mixin of ``TemplateStore``; rules in ``lockout``).

Why apart: ``TemplateStore`` stays readable; these methods only need its connection, lock, write transaction,
clocks and generation counter. Every change bumps the store generation (``integrity``), so restoring an older
``store.db`` to erase a lockout is refused.
"""

from __future__ import annotations

from device.store import audit as audit_log
from device.store import db, lockout


class LockoutMixin:
    """Lockout counters per subject (a user name, or ``*identify*`` for the shared identify back-off)."""

    def _lockout_state(self, subject: str, now: float) -> lockout.LockoutState:
        """``subject``'s state with a lockout from another boot re-anchored (and saved) on this boot's clock."""
        state = lockout.load(self.conn, subject)
        moved = lockout.anchored(state, now, self._boot_id(), lockout.rules_for(self.lockout_config, subject),
                                 self._clock())
        if moved is None:
            return state
        with self._write():
            lockout.save(self.conn, subject, moved)
            self._bump()
        return moved

    def lockout_remaining(self, subject: str, now: float) -> float:
        """Seconds ``subject`` is still locked out at monotonic ``now`` (0 = free to try)."""
        with self._lock, db.errors(self.path):
            return lockout.remaining(self._lockout_state(subject, now), now)

    def record_failure(self, subject: str, now: float) -> float:
        """Count a failed attempt at monotonic ``now``; returns the lockout seconds it starts (0 if none)."""
        with self._lock, db.errors(self.path), self._write():
            state, seconds = lockout.after_failure(self._lockout_state(subject, now), now,
                                                   lockout.rules_for(self.lockout_config, subject),
                                                   self._boot_id(), self._clock())
            lockout.save(self.conn, subject, state)
            self._bump()
            return seconds

    def lockouts(self, now: float) -> list[tuple[str, lockout.LockoutState, float]]:
        """Every subject with failures or a lockout: (subject, state, seconds left at monotonic ``now``)."""
        with self._lock, db.errors(self.path):
            subjects = [name for name, _ in lockout.load_all(self.conn)]
            out = []
            for name in subjects:
                state = self._lockout_state(name, now)
                out.append((name, state, lockout.remaining(state, now)))
            return out

    def reset_lockout(self, subject: str | None, *, by: str = "admin") -> int:
        """Clear one subject's (or with None every) failures and lockout, audited; returns how many were cleared."""
        with self._lock, db.errors(self.path), self._write():
            if subject is None:
                count = lockout.clear_all(self.conn)
            else:
                count = self.conn.execute("DELETE FROM lockout WHERE subject = ?", (subject,)).rowcount
            self._bump()
            audit_log.append(self.conn, self._clock(), "lockout.reset", None if subject is None or
                             subject.startswith("*") else subject, "ok", None, None,
                             f"{'all' if subject is None else subject}: {count} cleared by {by}"[:200])
            return count

    def record_success(self, subject: str) -> None:
        """Clear ``subject``'s failures and lockouts (no disk write when there is nothing to clear)."""
        with self._lock, db.errors(self.path):
            if lockout.load(self.conn, subject) == lockout.LockoutState():
                return
            with self._write():
                lockout.clear(self.conn, subject)
                self._bump()
