"""Two things the daemon loop does between attempts: watch the unlocker's health, and lend the sensor.

Why here and not in app.py: they are policy around the loop (when to call itself degraded, when to give up so
systemd restarts it, how to hand the sensor to `biolock enroll`), and app.py keeps the attempt itself.

- Health: every ``health_every_s`` on the daemon's clock the unlocker's ``health()`` is asked (the serial lock
  re-opens a failed port then, sending nothing). Unhealthy: STATUS=degraded, a warning, an audit record. Unhealthy
  for ``max_degraded_s`` in a row: the loop stops with ``stats.degraded`` set; ``biolock run`` then exits 4.
- Lending (device/control.py): a client on the control socket asks for the sensor; the daemon closes it, says
  PAUSED, and waits (feeding the watchdog) until the client's connection ends; the loop then re-opens the sensor.
"""

from __future__ import annotations

import logging
from typing import Any

log = logging.getLogger("biolock.daemon")


class HealthAndLending:
    """Mixed into ``device.app.Daemon``; uses its clock, notifier, unlocker, control, stats and helpers."""

    clock: Any
    notifier: Any
    unlocker: Any
    control: Any
    stats: Any
    sensor: Any
    stop_event: Any
    opens_door: bool
    health_every_s: float
    max_degraded_s: float | None
    degraded_reason: str | None
    _degraded_since: float | None
    _next_health: float

    def _ready_status(self) -> str:
        sensor = getattr(self.sensor, "sensor_id", "sensor")
        lock = "" if self.opens_door else "; no lock configured (unlock.none): nothing opens"
        return f"ready: sensor {sensor} open{lock}"

    def _check_health(self) -> bool:
        """Probe the unlocker when due; True when it has been unhealthy for ``max_degraded_s`` (stop the loop)."""
        from device.unlock.base import unlocker_health

        now = self.clock()
        if now >= self._next_health:
            self._next_health = now + self.health_every_s
            reason = unlocker_health(self.unlocker)
            if reason and reason != self.degraded_reason:
                if self._degraded_since is None:
                    self._degraded_since = now
                    self._audit("unlock", user=None, decision="degraded", detail=reason[:200])
                log.warning("degraded: %s", reason)
                self.notifier.status(f"degraded: {reason}"[:200])
            elif not reason and self.degraded_reason:
                log.info("lock link healthy again after %.0f s", now - (self._degraded_since or now))
                self._degraded_since = None
                self.notifier.status(self._ready_status())
            self.degraded_reason = reason
        if self._degraded_since is None or self.max_degraded_s is None:
            return False
        if now - self._degraded_since < self.max_degraded_s:
            return False
        self.stats.degraded = f"degraded for {now - self._degraded_since:.0f} s: {self.degraded_reason}"[:300]
        log.error("%s; exiting so the service manager restarts biolock", self.stats.degraded)
        self.notifier.status(f"exiting: {self.stats.degraded}"[:200])
        return True

    def _lend_sensor(self) -> bool:
        """Serve a pause request from the control socket: close the sensor until the client lets go. True when
        the sensor was lent (the caller re-opens it)."""
        pid = self.control.pause_requested()
        if pid is None:
            return False
        self._close_sensor()
        self.control.confirm()
        log.info("sensor lent to pid %s (enrolment); the door does not open meanwhile", pid)
        self.notifier.status(f"paused: sensor lent to pid {pid} for enrolment")
        self._audit("sensor", user=None, decision="lent", detail=f"to pid {pid}")
        while not self.stop_event.is_set():
            why = self.control.pause_over()
            if why is not None:
                log.info("sensor back from pid %s: %s", pid, why)
                break
            self._wait(0.05)
        return True
