"""The host's persistent counters: the last counter it sent and the highest one it accepted from the lock.

Why on disk, written before use: if the board restarts, a counter it already used must never be reused (the
lock would refuse it) and a lock frame it already accepted must never be accepted again (replay). The file is
tiny text (``tx rx``), replaced atomically (write, fsync, rename), mode 0600.
"""

from __future__ import annotations

import os
from pathlib import Path

from firmware_bridge.errors import PairingError, ReplayError
from firmware_bridge.frame import COUNTER_MAX


class MemoryCounters:
    """Counters kept in memory (fuzzers, tests); same rules as the file-backed store."""

    def __init__(self, tx: int = 0, rx: int = 0) -> None:
        self.tx = tx
        self.rx = rx

    def _save(self) -> None:
        pass

    def next_tx(self) -> int:
        """Reserve and persist the next counter to send."""
        if self.tx >= COUNTER_MAX:
            raise PairingError("send counter exhausted; pair again with a new key")
        self.tx += 1
        self._save()
        return self.tx

    def bump_tx(self, at_least: int) -> None:
        """Jump forward (never back) so the next counter is above ``at_least`` (the lock's NACK said so)."""
        if at_least > self.tx:
            self.tx = min(at_least, COUNTER_MAX)
            self._save()

    def accept_rx(self, counter: int) -> None:
        """Accept a lock counter only if it is above every one accepted before; persist before acting."""
        if counter <= self.rx:
            raise ReplayError(f"lock counter {counter} is not above the highest accepted ({self.rx})")
        self.rx = counter
        self._save()

    def reset(self) -> None:
        """A new key starts new counters on both sides (pairing only)."""
        self.tx = 0
        self.rx = 0
        self._save()


class FileCounters(MemoryCounters):
    """Counters persisted in ``path`` (``<state_dir>/lock.counters``)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        tx, rx = 0, 0
        if self.path.exists():
            try:
                fields = self.path.read_text().split()
                tx, rx = int(fields[0]), int(fields[1])
                if not (0 <= tx <= COUNTER_MAX and 0 <= rx <= COUNTER_MAX):
                    raise ValueError
            except (OSError, ValueError, IndexError) as exc:
                # refusing is the only safe answer: guessing low could accept a replay
                raise PairingError(f"counter file {self.path} is damaged; pair the lock again") from exc
        super().__init__(tx, rx)

    def _save(self) -> None:
        tmp = self.path.with_name(self.path.name + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.write(fd, f"{self.tx} {self.rx}\n".encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
