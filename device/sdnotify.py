"""systemd's notify protocol without libsystemd: READY=1, STATUS=, STOPPING=1 and the watchdog.

Why our own: it is one datagram on the AF_UNIX socket named by ``NOTIFY_SOCKET`` (``@name`` = abstract
namespace), and a missing or broken socket must never stop the daemon (outside systemd every call is a no-op
returning False). ``Type=notify`` units wait for ``READY=1``, which biolock sends only once the model is loaded
and the sensor is open. With ``WatchdogSec=`` systemd sets ``WATCHDOG_USEC``; the daemon loop pings at half that
interval from the loop itself (not from a helper thread), so a loop that hangs stops pinging and gets restarted.
"""

from __future__ import annotations

import logging
import os
import socket
from collections.abc import Mapping

log = logging.getLogger(__name__)


class SdNotifier:
    def __init__(self, environ: Mapping[str, str] | None = None) -> None:
        env = os.environ if environ is None else environ
        path = env.get("NOTIFY_SOCKET", "")
        self.address = "\0" + path[1:] if path.startswith("@") else path
        self._interval = _watchdog_interval(env)
        self._sock: socket.socket | None = None
        self._last_ping: float | None = None

    @property
    def enabled(self) -> bool:
        return bool(self.address)

    @property
    def watchdog_interval_s(self) -> float | None:
        """Half of ``WATCHDOG_USEC`` in seconds when the watchdog is on for this process, else None."""
        return self._interval

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=value`` lines in one datagram; False when not under systemd or the send failed."""
        if not self.enabled:
            return False
        try:
            if self._sock is None:
                self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
            self._sock.sendto("\n".join(assignments).encode("utf-8"), self.address)
            return True
        except OSError as exc:
            log.warning("sd_notify to %r failed: %s", self.address, exc)
            return False

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *([f"STATUS={status}"] if status else []))

    def status(self, text: str) -> bool:
        return self.notify(f"STATUS={text}")

    def stopping(self) -> bool:
        return self.notify("STOPPING=1")

    def watchdog(self) -> bool:
        return self.notify("WATCHDOG=1")

    def ping_if_due(self, now: float) -> bool:
        """Send WATCHDOG=1 when half the watchdog interval has passed since the last ping (``now``: monotonic)."""
        if self._interval is None:
            return False
        if self._last_ping is not None and now - self._last_ping < self._interval:
            return False
        self._last_ping = now
        return self.watchdog()

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None


def _watchdog_interval(env: Mapping[str, str]) -> float | None:
    usec = env.get("WATCHDOG_USEC", "")
    pid = env.get("WATCHDOG_PID", "")
    if not usec.isdigit() or int(usec) == 0:
        return None
    if pid and (not pid.isdigit() or int(pid) != os.getpid()):
        return None  # the watchdog is meant for another process (e.g. our parent)
    return int(usec) / 2 / 1_000_000
