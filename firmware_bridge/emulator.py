"""An emulated lock controller on a pty: the REAL firmware (firmware/main.py) on the CPython shim.

``Emulator(flash_dir).start()`` returns a tty path that pyserial opens like any serial port. Between the pty
and the firmware's UART sits a fault injector working on whole frames (split at 0x00): drop, corrupt (one bit
flipped), delay, reorder (a frame held back until the next one) and reboot (the board restarts, losing RAM but
keeping its flash), each with a probability, from a seeded RNG so a failing run can be repeated. The relay,
door sensor and pair button are shim pins the tests can read and drive.
"""

from __future__ import annotations

import logging
import os
import random
import select
import threading
import time
import tty
from dataclasses import dataclass
from pathlib import Path

from firmware_bridge.shim.flash import FlashOs
from firmware_bridge.shim.loader import load_firmware_main
from firmware_bridge.shim.machine import Board

log = logging.getLogger("biolock.lock.emulator")


@dataclass(frozen=True)
class Faults:
    """Per-frame fault probabilities; ``directions`` says which way they apply ('to_lock', 'to_host')."""

    drop: float = 0.0
    corrupt: float = 0.0
    delay: float = 0.0
    delay_s: float = 0.02
    reorder: float = 0.0
    reboot: float = 0.0  # checked per frame arriving at the lock
    seed: int = 0
    directions: tuple[str, ...] = ("to_lock", "to_host")
    byte_at_a_time: bool = False  # deliver every byte separately, both ways

    @property
    def any(self) -> bool:
        return any((self.drop, self.corrupt, self.delay, self.reorder, self.reboot))


class _FaultyPipe:
    """Frames go in, (possibly faulted) frames come out through ``sink``."""

    def __init__(self, name: str, faults: Faults, rng: random.Random, sink, counts: dict[str, int]) -> None:
        self.name = name
        self.faults = faults if name in faults.directions else Faults()
        self.rng = rng
        self.sink = sink
        self.counts = counts
        self.held: bytes | None = None
        self.active = True

    def send(self, wire: bytes) -> None:
        f, rng = self.faults, self.rng
        if not self.active or wire == b"\x00":  # faults hit frames, not the lone leading delimiters
            self.sink(wire)
            return
        if f.drop and rng.random() < f.drop:
            self.counts[f"{self.name}.drop"] += 1
            return
        if f.corrupt and rng.random() < f.corrupt:
            data = bytearray(wire)
            i = rng.randrange(len(data))
            data[i] ^= 1 << rng.randrange(8)
            wire = bytes(data)
            self.counts[f"{self.name}.corrupt"] += 1
        if f.delay and rng.random() < f.delay:
            self.counts[f"{self.name}.delay"] += 1
            time.sleep(f.delay_s)
        if f.reorder and self.held is None and rng.random() < f.reorder:
            self.counts[f"{self.name}.reorder"] += 1
            self.held = wire
            return
        self.sink(wire)
        if self.held is not None:
            held, self.held = self.held, None
            self.sink(held)


class Emulator:
    """A lock controller behind a pty; use as a context manager or call start()/stop()."""

    def __init__(self, flash_dir: Path, faults: Faults | None = None, *, door_sensor: bool = True,
                 pair_button_held: bool = False, link: Path | str | None = None) -> None:
        self.flash = FlashOs(Path(flash_dir))
        self.faults = faults or Faults()
        self.rng = random.Random(self.faults.seed)
        self.counts: dict[str, int] = _ZeroDict()
        self.board = Board()
        self.fw = load_firmware_main(self.board.machine, self.board.time, self.flash)
        self.door_sensor = door_sensor
        self.unlock_log: list[tuple[int, bytes]] = []  # (duration ms, reason) of every relay activation
        self.boots = 0
        self._pair_button_held = pair_button_held
        self.controller = None
        self._master = self._slave = -1
        self._stop = threading.Event()
        self._reboot = threading.Event()
        self._threads: list[threading.Thread] = []
        self._write_lock = threading.Lock()
        self.to_host = _FaultyPipe("to_host", self.faults, self.rng, self._write_master, self.counts)
        self.to_lock = _FaultyPipe("to_lock", self.faults, self.rng, self._deliver_to_uart, self.counts)
        self.port: str | None = None
        self.link = Path(link) if link is not None else None  # a stable path (symlink) like a udev SYMLINK+=
        self.unplugged = False
        self._plugs = 0  # which pty pair _master belongs to (changes with every plug, under _write_lock)

    # --- lifecycle -------------------------------------------------------------------------------------
    def start(self) -> str:
        self._plug()
        self.board.tx_hook = lambda _uart, data: self.to_host.send(data)
        self._boot()
        for target, name in ((self._firmware_loop, "lock-firmware"), (self._pty_reader, "lock-pty")):
            t = threading.Thread(target=target, name=name, daemon=True)
            t.start()
            self._threads.append(t)
        return self.port

    def _plug(self) -> None:
        master, slave = os.openpty()
        tty.setraw(slave)
        tty.setraw(master)
        tty_name = os.ttyname(slave)
        if self.link is not None:
            tmp = self.link.with_name(self.link.name + ".new")
            tmp.unlink(missing_ok=True)
            tmp.symlink_to(tty_name)
            os.replace(tmp, self.link)
        with self._write_lock:
            self._master, self._slave = master, slave
            self._plugs += 1
        self.port = str(self.link) if self.link is not None else tty_name

    def unplug_port(self) -> None:
        """The USB-UART disappears: the pty pair is closed (a host's open port now fails with EIO) and the
        link removed. The board keeps running (it has its own power), so RAM and the relay timer survive."""
        with self._write_lock:
            fds, (self._master, self._slave) = (self._master, self._slave), (-1, -1)
        for fd in fds:
            if fd >= 0:
                try:
                    os.close(fd)
                except OSError:
                    pass
        if self.link is not None:
            self.link.unlink(missing_ok=True)

    def replug_port(self) -> str:
        """The USB-UART comes back as a NEW tty (another /dev/pts number) behind the same link."""
        self._plug()
        return self.port

    def reenumerate(self) -> str:
        """Drop and re-create the port at once, as a USB-UART re-enumerating."""
        self.unplug_port()
        return self.replug_port()

    def _boot(self) -> None:
        # machine.Pin(PAIR_PIN, IN, PULL_UP) reads 1 unless the button is held (driven low)
        self.board.drive(self.fw.PAIR_PIN, 0 if self._pair_button_held else 1)
        if self.door_sensor:
            self.board.levels.setdefault(self.fw.DOOR_PIN, 0)
        self.controller = self.fw.build(str(self.flash.root))
        self._pair_button_held = False
        if not self.door_sensor:
            self.controller.door = None
        self.controller.on_unlock = lambda ms, reason: self.unlock_log.append((ms, reason))
        self.boots += 1

    def _firmware_loop(self) -> None:
        while not self._stop.is_set():
            self.fw.run(self.controller, should_stop=lambda: self._stop.is_set() or self._reboot.is_set())
            if self._reboot.is_set() and not self._stop.is_set():
                self._reboot.clear()
                self.counts["reboots"] += 1
                self._boot()

    def _pty_reader(self) -> None:
        """Why the read happens under ``_write_lock``, after checking the fd is still this plug's master:
        ``unplug_port`` closes the fd from another thread, and the process re-uses a closed number at once (the
        host opening its key or counter file). Reading a number that was only valid before the select would
        swallow that file's contents -- the host then sees an empty key file."""
        pending = bytearray()
        plug = self._plugs
        while not self._stop.is_set():
            with self._write_lock:
                fd, now = self._master, self._plugs
            if now != plug:
                pending.clear()  # the port was replaced: a half frame from the old one is gone
                plug = now
            if fd < 0:  # unplugged: wait for the port to come back
                self._stop.wait(0.01)
                continue
            try:
                ready, _, _ = select.select([fd], [], [], 0.05)
            except (OSError, ValueError):
                with self._write_lock:
                    if (self._master, self._plugs) == (fd, plug):
                        return  # the current port itself is broken
                continue  # closed under us; the next round sees the new port (or none)
            if not ready:
                continue
            with self._write_lock:
                if (self._master, self._plugs) != (fd, plug):
                    continue  # unplugged meanwhile: fd may name another file of this process by now
                try:
                    data = os.read(fd, 4096)  # select said ready on this very fd: does not block
                except OSError:
                    return
            if self.unplugged:
                continue  # the line is there but nobody is listening (board unpowered or cable cut)
            pending += data
            while True:
                zero = pending.find(b"\x00")
                if zero < 0:
                    break
                wire = bytes(pending[:zero + 1])
                del pending[:zero + 1]
                if self.faults.reboot and self._reboots_active and "to_lock" in self.faults.directions and \
                        self.rng.random() < self.faults.reboot:
                    self.counts["to_lock.reboot"] += 1
                    self.reboot()
                    continue  # the frame arrived while the board was restarting
                self.to_lock.send(wire)
            if len(pending) > 4096:  # no delimiter in sight: hand it over, the firmware discards oversize
                self._deliver_to_uart(bytes(pending))
                pending.clear()

    def _deliver_to_uart(self, data: bytes) -> None:
        uart = self.board.uarts.get(self.fw.UART_ID)
        if uart is None:
            return
        if self.faults.byte_at_a_time:
            for i in range(len(data)):
                uart.inject(data[i:i + 1])
        else:
            uart.inject(data)

    def _write_master(self, data: bytes) -> None:
        with self._write_lock:
            if self._master < 0:
                return  # no port: the bytes go nowhere, as on a pulled cable
            try:
                if self.faults.byte_at_a_time:
                    for i in range(len(data)):
                        os.write(self._master, data[i:i + 1])
                else:
                    os.write(self._master, data)
            except OSError as exc:
                log.debug("pty write failed: %s", exc)

    def set_faults_active(self, active: bool) -> None:
        """Switch fault injection on or off (e.g. off while pairing, on for the soak)."""
        self.to_host.active = self.to_lock.active = active
        self._reboots_active = active

    _reboots_active = True

    def reboot(self, *, wait: bool = False, hold_pair_button: bool = False) -> None:
        """Restart the board: RAM (challenge, cached answer, relay timer) is lost, flash is kept."""
        self._pair_button_held = hold_pair_button
        before = self.boots
        self._reboot.set()
        self.board.rx_event.set()
        if wait:
            deadline = time.monotonic() + 5
            while self.boots == before and time.monotonic() < deadline:
                time.sleep(0.002)

    def stop(self) -> None:
        self._stop.set()
        self.board.rx_event.set()
        for t in self._threads:
            t.join(timeout=5)
        self.unplug_port()

    def __enter__(self) -> Emulator:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- what a test can see and do -------------------------------------------------------------------
    @property
    def relay_on(self) -> bool:
        return bool(self.board.level(self.fw.RELAY_PIN))

    @property
    def relay_activations(self) -> int:
        return self.board.rising_edges(self.fw.RELAY_PIN)

    def set_door(self, is_open: bool) -> None:
        self.board.drive(self.fw.DOOR_PIN, 1 if is_open else 0)

    def press_pair_button(self) -> None:
        """Hold the pair button at power-up: the board forgets its key and accepts a new PAIR."""
        self.reboot(wait=True, hold_pair_button=True)


class _ZeroDict(dict):
    def __missing__(self, key: str) -> int:
        return 0
