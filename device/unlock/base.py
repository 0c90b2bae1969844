"""The unlock interface (contract 8) and the two backends that need no hardware.

Why a tiny interface: the daemon only ever says "open for this long" or "refused"; whether that becomes an
authenticated frame to a lock controller, a relay pulse on a GPIO line, or both, is configuration. Every
backend fails closed: ``grant`` returns only when the unlock was confirmed (the lock's ACK, the relay line
read back as driven) and raises :class:`~device.errors.UnlockError` otherwise.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Protocol, runtime_checkable

from device.errors import UnlockError

log = logging.getLogger("biolock.unlock")


@runtime_checkable
class Unlocker(Protocol):
    """Something that can open a lock for a while, signal a refusal, and be closed."""

    def grant(self, duration_ms: int, reason: str) -> None:
        """Open for ``duration_ms``; return only once confirmed, else raise UnlockError."""
        ...

    def deny(self, reason: str) -> None:
        """Signal a refusal (LED blink, DENY frame). Never opens anything; best effort."""
        ...

    def close(self) -> None:
        """Leave everything locked and release the hardware."""
        ...


def check_duration(duration_ms: int) -> int:
    """Reject durations no lock should be asked for (a bug upstream must not hold a door open)."""
    if isinstance(duration_ms, bool) or not isinstance(duration_ms, int):
        raise UnlockError(f"unlock duration must be an integer number of milliseconds, got {duration_ms!r}")
    if not 1 <= duration_ms <= 60_000:
        raise UnlockError(f"unlock duration {duration_ms} ms is out of range; allowed: 1 to 60000")
    return duration_ms


class NullUnlocker:
    """Used when no serial lock and no GPIO line is configured: logs the decision, opens nothing."""

    HISTORY = 100  # recent decisions kept for inspection; bounded so a long-running daemon does not grow
    opens_door = False  # the daemon logs unlocked=False for its grants: nothing was opened

    def __init__(self) -> None:
        self.grants: list[tuple[int, str]] = []
        self.denials: list[str] = []

    def grant(self, duration_ms: int, reason: str) -> None:
        check_duration(duration_ms)
        self.grants.append((duration_ms, reason))
        del self.grants[: -self.HISTORY]
        log.debug("unlock granted (no lock configured): %d ms, %s", duration_ms, reason)  # the attempt line says it

    def deny(self, reason: str) -> None:
        self.denials.append(reason)
        del self.denials[: -self.HISTORY]
        log.debug("unlock denied (no lock configured): %s", reason)

    def close(self) -> None:
        pass

    def health(self) -> str | None:
        return None


def unlocker_health(unlocker: object) -> str | None:
    """Why ``unlocker`` cannot open the door right now, or None. Backends without ``health`` count as healthy
    (a GPIO relay is checked on every grant by reading its line back)."""
    check = getattr(unlocker, "health", None)
    if check is None:
        return None
    try:
        return check()
    except Exception as exc:  # a health probe that raises is itself a reason
        return f"{type(unlocker).__name__}: {exc}"


class CompositeUnlocker:
    """Several unlockers driven together, e.g. the lock controller on the UART and a relay on a GPIO line.

    Members are granted in order and the first failure stops the rest and is raised, so put the authenticated
    lock first: if it cannot confirm, the local relay does not fire either (fail closed). ``deny`` and ``close``
    reach every member even if one of them fails.
    """

    def __init__(self, members: Iterable[Unlocker]) -> None:
        self.members = list(members)

    def grant(self, duration_ms: int, reason: str) -> None:
        check_duration(duration_ms)
        for member in self.members:
            member.grant(duration_ms, reason)

    def health(self) -> str | None:
        reasons = [r for r in (unlocker_health(m) for m in self.members) if r]
        return "; ".join(reasons) or None

    def deny(self, reason: str) -> None:
        for member in self.members:
            try:
                member.deny(reason)
            except Exception as exc:  # a refusal must never turn into a crash of the daemon loop
                log.warning("deny signal failed on %s: %s", type(member).__name__, exc)

    def close(self) -> None:
        errors = []
        for member in self.members:
            try:
                member.close()
            except Exception as exc:
                errors.append(f"{type(member).__name__}: {exc}")
        if errors:
            raise UnlockError("closing unlockers failed: " + "; ".join(errors))
