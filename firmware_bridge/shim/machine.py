"""``machine`` for CPython: Pin with recorded history, UART over byte queues, a WDT that does nothing.

One :class:`Board` is one microcontroller; several boards can live in one process (each emulator has its own).
"""

from __future__ import annotations

import threading
import time
import types
from collections.abc import Callable


class Board:
    """The pins, UARTs and clock of one emulated board."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.levels: dict[object, int] = {}  # output level or external input level per pin id
        self.modes: dict[object, int] = {}
        self.history: dict[object, list[tuple[float, int]]] = {}
        self.uarts: dict[int, UART] = {}
        self.rx_event = threading.Event()
        self.tx_hook: Callable[[int, bytes], None] | None = None  # where UART writes go
        board = self

        class _Pin(Pin):
            _board = board

        class _UART(UART):
            _board = board

        self.machine = types.SimpleNamespace(Pin=_Pin, UART=_UART, WDT=WDT, reset=self._no_reset)
        self.time = types.SimpleNamespace(
            ticks_ms=self.ticks_ms, ticks_diff=lambda a, b: a - b, ticks_add=lambda a, b: a + b,
            sleep_ms=self.sleep_ms, sleep=time.sleep, time=time.time,
        )

    def _no_reset(self) -> None:
        raise RuntimeError("machine.reset() on the emulated board: use Emulator.reboot()")

    def ticks_ms(self) -> int:
        return int(self.clock() * 1000)

    def sleep_ms(self, ms: int) -> None:
        """Sleep, but wake as soon as UART bytes arrive (so the emulated loop answers without lag)."""
        if self.rx_event.wait(ms / 1000.0):
            self.rx_event.clear()

    def drive(self, pin_id: object, level: int) -> None:
        """Set the external level of an input pin (a door contact opening, a button press)."""
        self.levels[pin_id] = 1 if level else 0

    def level(self, pin_id: object) -> int:
        return self.levels.get(pin_id, 0)

    def rising_edges(self, pin_id: object) -> int:
        hist = self.history.get(pin_id, [])
        return sum(1 for prev, cur in zip(hist, hist[1:], strict=False) if prev[1] == 0 and cur[1] == 1)


class Pin:
    IN = 0
    OUT = 1
    OPEN_DRAIN = 2
    PULL_UP = 1
    PULL_DOWN = 2
    _board: Board

    def __init__(self, pin_id: object, mode: int = -1, pull: int = -1, *, value: int | None = None) -> None:
        self.id = pin_id
        b = self._board
        if mode != -1:
            b.modes[pin_id] = mode
        if mode == Pin.IN and pin_id not in b.levels:
            b.levels[pin_id] = 1 if pull == Pin.PULL_UP else 0  # nothing connected: the pull decides
        if value is not None:
            self.value(value)
        b.history.setdefault(pin_id, [(b.clock(), b.levels.get(pin_id, 0))])

    def value(self, v: int | None = None) -> int | None:
        b = self._board
        if v is None:
            return b.levels.get(self.id, 0)
        level = 1 if v else 0
        if b.modes.get(self.id) == Pin.OUT:
            b.levels[self.id] = level
            hist = b.history.setdefault(self.id, [])
            if not hist or hist[-1][1] != level:
                hist.append((b.clock(), level))
        return None

    def on(self) -> None:
        self.value(1)

    def off(self) -> None:
        self.value(0)

    def __call__(self, v: int | None = None) -> int | None:
        return self.value(v)


class UART:
    """Non-blocking UART: ``read`` returns what has arrived (or None), like MicroPython with timeout=0."""

    _board: Board

    def __init__(self, uart_id: int, baudrate: int = 115200, *, tx: object = None, rx: object = None,
                 rxbuf: int = 256, timeout: int = 0, **_: object) -> None:
        self.id = uart_id
        self.baudrate = baudrate
        self.rxbuf = rxbuf
        self._rx = bytearray()
        self._lock = threading.Lock()
        self.overruns = 0
        self._board.uarts[uart_id] = self

    def inject(self, data: bytes) -> None:
        """Bytes arriving on RX (from the emulator); beyond ``rxbuf`` they are lost, as on the chip."""
        with self._lock:
            room = self.rxbuf - len(self._rx)
            if len(data) > room:
                self.overruns += len(data) - room
                data = data[:max(room, 0)]
            self._rx += data
        self._board.rx_event.set()

    def any(self) -> int:
        with self._lock:
            return len(self._rx)

    def read(self, nbytes: int | None = None) -> bytes | None:
        with self._lock:
            if not self._rx:
                return None
            n = len(self._rx) if nbytes is None else min(nbytes, len(self._rx))
            data = bytes(self._rx[:n])
            del self._rx[:n]
            return data

    def write(self, buf: bytes) -> int:
        hook = self._board.tx_hook
        if hook is not None:
            hook(self.id, bytes(buf))
        return len(buf)


class WDT:
    def __init__(self, id: int = 0, timeout: int = 5000) -> None:
        self.timeout = timeout
        self.feeds = 0

    def feed(self) -> None:
        self.feeds += 1
