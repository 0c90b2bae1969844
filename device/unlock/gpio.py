"""A relay (or strike) on a GPIO line, plus status LED, door sensor and exit button; backend-neutral.

Why split from the backends: gpiozero (Raspberry Pi) and libgpiod v2 (Jetson and other boards) differ only in
how a line is opened. The behaviour -- pulse length, active-low wiring, read-back confirmation, LED, exit
button -- lives here once, written against two tiny line interfaces that each backend (and each test fake)
provides.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Protocol

from device.errors import UnlockError
from device.unlock.base import check_duration
from device.unlock.pulse import Pulser, Scheduler, ThreadScheduler

log = logging.getLogger("biolock.unlock.gpio")

DENY_BLINKS = 3
DENY_BLINK_S = 0.15


class OutputLine(Protocol):
    """A digital output; ``on``/``off`` are logical (active-low wiring is the backend's business)."""

    def on(self) -> None: ...
    def off(self) -> None: ...
    def is_active(self) -> bool: ...
    def close(self) -> None: ...


class InputLine(Protocol):
    """A digital input read as its raw electrical level (True = high)."""

    def level(self) -> bool: ...
    def close(self) -> None: ...


class GpioUnlocker:
    """Pulses the relay on ``grant``; LED on while open and blinking on ``deny``; exit button opens too.

    ``pulse_ms`` (when set) overrides the duration the daemon asks for: a strike that must not be energised
    for long is protected by its wiring's own limit, not by whoever calls ``grant``.
    """

    def __init__(
        self,
        relay: OutputLine,
        *,
        led: OutputLine | None = None,
        door: InputLine | None = None,
        door_open_level: bool = True,
        pulse_ms: int | None = None,
        scheduler: Scheduler | None = None,
    ) -> None:
        self.relay = relay
        self.led = led
        self.door = door
        self.door_open_level = door_open_level
        self.pulse_ms = pulse_ms
        self.scheduler = scheduler or ThreadScheduler()
        self._closed = False
        relay.off()
        if led is not None:
            led.off()
        self._pulser = Pulser(self._open, self._shut, self.scheduler)
        self.grants = 0
        self.exit_pulse_ms = 3000

    def _open(self) -> None:
        self.relay.on()
        if self.led is not None:
            self.led.on()

    def _shut(self) -> None:
        self.relay.off()
        if self.led is not None:
            self.led.off()

    def grant(self, duration_ms: int, reason: str) -> None:
        if self._closed:
            raise UnlockError("GPIO unlocker is closed")
        duration = check_duration(self.pulse_ms if self.pulse_ms is not None else duration_ms)
        try:
            self._pulser.pulse(duration)
            confirmed = self.relay.is_active()
        except UnlockError:
            raise
        except Exception as exc:  # a GPIO driver error is "not confirmed"
            self._safe_stop()
            raise UnlockError(f"relay line failed: {exc}") from exc
        if not confirmed:
            self._safe_stop()
            raise UnlockError("relay line did not read back as active; not unlocked")
        self.grants += 1
        log.debug("relay energised for %d ms (%s)", duration, reason)  # one INFO line per attempt: the daemon's

    def deny(self, reason: str) -> None:
        if self._closed or self.led is None or self._pulser.active:
            return
        led = self.led
        for i in range(DENY_BLINKS * 2):
            action: Callable[[], None] = led.on if i % 2 == 0 else led.off
            self.scheduler.call_later(i * DENY_BLINK_S, self._guarded(action))
        log.debug("denied: %s", reason)

    def _guarded(self, action: Callable[[], None]) -> Callable[[], None]:
        def run() -> None:
            if not self._closed and not self._pulser.active:
                action()

        return run

    def exit_pressed(self) -> None:
        """The request-to-exit button: opens from the inside without a biometric."""
        if self._closed:
            return
        try:
            self.grant(self.pulse_ms or self.exit_pulse_ms, "exit button")
        except UnlockError as exc:  # runs on a GPIO callback thread: log, never raise there
            log.error("exit button: %s", exc)

    def door_open(self) -> bool | None:
        """True/False from the door sensor, None when no sensor is wired."""
        if self.door is None:
            return None
        return self.door.level() == self.door_open_level

    def status(self) -> dict[str, object]:
        return {"relay_active": self.relay.is_active(), "door_open": self.door_open(), "grants": self.grants}

    def _safe_stop(self) -> None:
        try:
            self._pulser.stop()
        except Exception as exc:
            log.error("could not switch the relay off: %s", exc)

    def close(self) -> None:
        if self._closed:
            return
        self._safe_stop()
        self._closed = True
        for line in (self.relay, self.led, self.door):
            if line is not None:
                line.close()
