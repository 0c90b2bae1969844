"""Timed relay pulses: "on now, off after N ms", driven by a scheduler that tests can step by hand.

Why a scheduler object instead of ``time.sleep``: ``grant`` must not block the daemon for the whole pulse,
and tests must check the pulse length without sleeping. :class:`ThreadScheduler` is the real one (a daemon
``threading.Timer``); :class:`ManualScheduler` is its fake, advanced explicitly by tests.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Protocol


class Cancellable(Protocol):
    def cancel(self) -> None: ...


class Scheduler(Protocol):
    def call_later(self, delay_s: float, fn: Callable[[], None]) -> Cancellable: ...


class ThreadScheduler:
    """Runs ``fn`` on a daemon timer thread after ``delay_s`` seconds."""

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> Cancellable:
        timer = threading.Timer(delay_s, fn)
        timer.daemon = True
        timer.start()
        return timer


class _Pending:
    def __init__(self, due: float, fn: Callable[[], None]) -> None:
        self.due = due
        self.fn = fn
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class ManualScheduler:
    """A scheduler whose time moves only when :meth:`advance` is called (for tests and simulations)."""

    def __init__(self) -> None:
        self.now = 0.0
        self.pending: list[_Pending] = []
        self.requested: list[float] = []  # every delay ever asked for, in seconds

    def call_later(self, delay_s: float, fn: Callable[[], None]) -> Cancellable:
        item = _Pending(self.now + delay_s, fn)
        self.pending.append(item)
        self.requested.append(delay_s)
        return item

    def advance(self, seconds: float) -> None:
        self.now += seconds
        due = [p for p in self.pending if p.due <= self.now + 1e-12]
        self.pending = [p for p in self.pending if p not in due]
        for item in sorted(due, key=lambda p: p.due):
            if not item.cancelled:
                item.fn()


class Pulser:
    """Turns an output on and schedules it off; a new pulse while one runs restarts the countdown."""

    def __init__(self, on: Callable[[], None], off: Callable[[], None], scheduler: Scheduler | None = None) -> None:
        self._on = on
        self._off = off
        self._scheduler = scheduler or ThreadScheduler()
        self._lock = threading.Lock()
        self._pending: Cancellable | None = None
        self.active = False

    def pulse(self, duration_ms: int) -> None:
        with self._lock:
            if self._pending is not None:
                self._pending.cancel()
            self._on()
            self.active = True
            self._pending = self._scheduler.call_later(duration_ms / 1000.0, self._expire)

    def _expire(self) -> None:
        with self._lock:
            self._pending = None
            self.active = False
            self._off()

    def stop(self) -> None:
        """Cancel any running pulse and turn the output off now."""
        with self._lock:
            if self._pending is not None:
                self._pending.cancel()
                self._pending = None
            self.active = False
            self._off()
