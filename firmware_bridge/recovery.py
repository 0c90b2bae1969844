"""Re-opening the lock port after an I/O error (a USB-UART that re-enumerates, a cable pulled and put back).

Why a mixin of its own: ``Link`` keeps the protocol; this keeps the port alive. Any failed read or write closes
the port and raises PortError for that request (never retried on the new port: fail closed). The next request,
or :meth:`PortRecovery.check` (the daemon's idle health probe, which sends nothing), re-opens the same path at
most once per backoff step: the first try at once, then 0.5 s doubling to 30 s, on the link's passed-in clock.
"""

from __future__ import annotations

import logging
import os
from typing import Any

from firmware_bridge import frame as F
from firmware_bridge.errors import PortError

log = logging.getLogger("biolock.lock")


class PortRecovery:
    """Expects ``port``, ``reopen``, ``reopen_backoff_s``, ``down_reason``, ``clock``, ``reader``, ``state``,
    ``stats``, ``url``, ``_reopen_at`` and ``_reopen_delay`` on the instance (set by ``Link.__init__``)."""

    def _port_failed(self, what: str, exc: BaseException) -> PortError:
        """Close the broken port and schedule a re-open; returns the error to raise for this request."""
        reason = f"{what}: {exc}"
        port, self.port = self.port, None
        if port is not None:
            try:
                port.close()
            except Exception as close_exc:  # a vanished device may refuse even this
                log.debug("closing the broken lock port: %s", close_exc)
        self.down_reason = reason
        self.reader = F.FrameReader()
        if self.state == "ready":
            self.state = "paired"  # greet again after re-opening: the lock may have rebooted meanwhile
        self.stats["port_errors"] += 1
        log.warning("lock port failed (%s); it will be re-opened", reason)
        return PortError(reason)

    def _ensure_port(self) -> Any:
        """The open port, re-opening it when it is down and the backoff allows; else PortError at once."""
        if self.port is not None:
            return self.port
        if self.reopen is None:
            raise PortError(f"the lock port is not open ({self.down_reason})")
        now = self.clock()
        if now < self._reopen_at:
            raise PortError(f"the lock port is down ({self.down_reason}); next re-open in "
                            f"{self._reopen_at - now:.1f} s")
        try:
            port = self.reopen()
        except PortError as exc:
            self._reopen_at = now + self._reopen_delay
            self._reopen_delay = min(self._reopen_delay * 2, self.reopen_backoff_s[1])
            self.stats["reopen_failures"] += 1
            self.down_reason = str(exc)
            raise
        self.port = port
        self.reader = F.FrameReader()
        self.down_reason = None
        self._reopen_at = 0.0
        self._reopen_delay = self.reopen_backoff_s[0]
        self.stats["reopens"] += 1
        log.info("lock port re-opened")
        return port

    def check(self) -> str | None:
        """None while the port works; else why not. Re-opens a down port when due; sends nothing to the lock.

        A zero-wait read finds a hung-up port (EIO); a device path that now names another device (a USB-UART
        that re-enumerated behind the same symlink) counts as gone too. Bytes read here are unsolicited and are
        discarded (no request is outstanding between calls).
        """
        try:
            port = self._ensure_port()
            if self.url is not None and "://" not in self.url:  # a device path, not a pyserial URL
                fileno = getattr(port, "fileno", None)
                if fileno is not None:
                    try:
                        same = os.stat(self.url).st_rdev == os.fstat(fileno()).st_rdev
                    except OSError as exc:
                        raise self._port_failed("lock port path", exc) from None
                    if not same:
                        raise self._port_failed("lock port path", OSError("now names another device"))
            for item in self.reader.feed(self._read_some(0.0)):
                self.stats["unsolicited"] += 1
                del item
        except PortError as exc:
            return self.down_reason or str(exc)  # stable text (no countdown) so a log line is written once
        return None
