"""The lock controller on a UART as an Unlocker: grant = challenge -> UNLOCK -> ACK over the firmware bridge.

Any bridge failure (silence after retries, a NACK, a bad answer) becomes UnlockError: the daemon treats it as
"not opened" -- fail closed. The key must have been provisioned by ``biolock lock pair`` beforehand.

A lock port that is absent at start or fails later (USB-UART re-enumerating) is not fatal: the link re-opens the
same path with backoff on the next grant or :meth:`health` check, and ``health`` tells the daemon meanwhile, so it
can report itself degraded (STATUS=) and, if that lasts, exit for systemd to restart it.
"""

from __future__ import annotations

import logging
import threading
from pathlib import Path
from typing import Any

from device.config import SerialUnlockConfig
from device.errors import UnlockError
from device.unlock.base import check_duration

log = logging.getLogger("biolock.unlock.serial")


class SerialLockUnlocker:
    """Wraps a :class:`firmware_bridge.link.Link`; one request at a time (a lock serialises callers)."""

    def __init__(self, link: Any) -> None:
        self.link = link
        self._lock = threading.Lock()

    @classmethod
    def from_config(cls, cfg: SerialUnlockConfig, state_dir: Path, **link_kwargs: Any) -> SerialLockUnlocker:
        from firmware_bridge.errors import BridgeError
        from firmware_bridge.link import Link

        try:
            link = Link.open(cfg.port, Path(state_dir), key_file=cfg.key_file, baud=cfg.baud, must_open=False,
                             timeout_s=cfg.timeout_s, retries=cfg.retries, **link_kwargs)
        except BridgeError as exc:
            raise UnlockError(f"serial lock on {cfg.port}: {exc}") from exc
        if link.key is None:
            link.close()
            raise UnlockError(f"serial lock on {cfg.port} is not paired; run `biolock lock pair` first")
        return cls(link)

    def grant(self, duration_ms: int, reason: str) -> None:
        from firmware_bridge.errors import BridgeError

        check_duration(duration_ms)
        with self._lock:
            try:
                self.link.unlock(duration_ms, reason)
            except BridgeError as exc:
                raise UnlockError(f"lock did not confirm the unlock: {exc}") from exc
        log.debug("lock opened for %d ms (%s)", duration_ms, reason)  # one INFO line per attempt: the daemon's

    def deny(self, reason: str) -> None:
        from firmware_bridge.errors import BridgeError

        with self._lock:
            try:
                self.link.deny(reason)
            except BridgeError as exc:  # a refusal that does not reach the lock changes nothing at the door
                log.warning("deny not delivered to the lock: %s", exc)

    def status(self) -> Any:
        from firmware_bridge.errors import BridgeError

        with self._lock:
            try:
                return self.link.status()
            except BridgeError as exc:
                raise UnlockError(f"lock status: {exc}") from exc

    def health(self) -> str | None:
        """None while the lock port works; else why not (a due re-open is tried first). Sends no frame: a
        HEARTBEAT per check would cost the lock a flash write each time."""
        with self._lock:
            reason = self.link.check()
        return None if reason is None else f"serial lock: {reason}"

    def close(self) -> None:
        with self._lock:
            self.link.close()
