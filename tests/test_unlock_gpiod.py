"""The libgpiod v2 backend against a fake kernel chip: the real gpiod enums and LineSettings, a fake request
that records every value set (logical and electrical) and produces edge events when a test drives an input."""

from __future__ import annotations

import threading
import types
from datetime import timedelta

import gpiod
import pytest
from gpiod.line import Direction, Edge, Value

from device.config import GpioUnlockConfig
from device.errors import UnlockError
from device.unlock.gpio_d import build_gpiod_unlocker, resolve_chip
from device.unlock.pulse import ManualScheduler

CHIPS = {"/dev/gpiochip0": "pinctrl-bcm2711", "/dev/gpiochip1": "raspberrypi-exp-gpio",
         "/dev/gpiochip4": "tegra234-gpio"}


class FakeRequest:
    def __init__(self, path, config, consumer):
        self.path, self.consumer, self.released = path, consumer, False
        self.settings = {}
        for offsets, settings in config.items():
            for off in offsets if isinstance(offsets, (tuple, list)) else (offsets,):
                self.settings[off] = settings
        self.values = {off: s.output_value for off, s in self.settings.items()}
        self.inputs = {off: Value.ACTIVE for off, s in self.settings.items() if s.direction == Direction.INPUT}
        self.history: list[tuple[int, Value, int]] = []  # (offset, logical value, electrical level)
        self.events: list[types.SimpleNamespace] = []
        self.event_ready = threading.Event()

    def _check(self):
        if self.released:
            raise gpiod.RequestReleasedError()

    def electrical(self, offset):
        logical = 1 if self.values[offset] == Value.ACTIVE else 0
        return logical ^ int(self.settings[offset].active_low)

    def set_value(self, offset, value):
        self._check()
        assert self.settings[offset].direction == Direction.OUTPUT, "wrote to an input line"
        self.values[offset] = value
        self.history.append((offset, value, self.electrical(offset)))

    def get_value(self, offset):
        self._check()
        if self.settings[offset].direction == Direction.INPUT:
            return self.inputs[offset]
        return self.values[offset]

    def drive(self, offset, level: int):
        """The outside world sets an input's electrical level (active-high request: level 1 = ACTIVE)."""
        old = self.inputs[offset]
        new = Value.ACTIVE if level else Value.INACTIVE
        self.inputs[offset] = new
        edge = self.settings[offset].edge_detection
        if old == Value.ACTIVE and new == Value.INACTIVE and edge in (Edge.FALLING, Edge.BOTH):
            self.events.append(types.SimpleNamespace(line_offset=offset))
            self.event_ready.set()

    def wait_edge_events(self, timeout=None):
        self._check()
        seconds = timeout.total_seconds() if isinstance(timeout, timedelta) else timeout
        return self.event_ready.wait(seconds)

    def read_edge_events(self):
        self._check()
        events, self.events = self.events, []
        self.event_ready.clear()
        return events

    def release(self):
        self.released = True


class FakeChip:
    def __init__(self, path):
        if path not in CHIPS:
            raise OSError(2, "No such file")
        self.path = path

    def get_info(self):
        return types.SimpleNamespace(label=CHIPS[self.path], name=self.path.rsplit("/", 1)[-1], num_lines=54)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def fake_gpiod():
    requests = []

    def request_lines(path, config, consumer=None, **_):
        if path not in CHIPS:
            raise OSError(2, "No such file or directory")
        busy = {off for r in requests if not r.released for off in r.settings}
        if busy & {o for offs in config for o in (offs if isinstance(offs, tuple) else (offs,))}:
            raise OSError(16, "Device or resource busy")
        req = FakeRequest(path, config, consumer)
        requests.append(req)
        return req

    mod = types.SimpleNamespace(line=gpiod.line, LineSettings=gpiod.LineSettings, Chip=FakeChip,
                                request_lines=request_lines, is_gpiochip_device=lambda p: p in CHIPS)
    return mod, requests


def build(cfg, sched=None):
    mod, requests = fake_gpiod()
    unl = build_gpiod_unlocker(cfg, gpiod_mod=mod, chips=list(CHIPS), scheduler=sched or ManualScheduler())
    return unl, requests[-1]


@pytest.mark.parametrize("spec, path", [("/dev/gpiochip4", "/dev/gpiochip4"), ("gpiochip1", "/dev/gpiochip1"),
                                        ("tegra234-gpio", "/dev/gpiochip4"), ("pinctrl-bcm2711", "/dev/gpiochip0")])
def test_chip_resolved_by_path_name_or_label(spec, path):
    mod, _ = fake_gpiod()
    assert resolve_chip(spec, mod, list(CHIPS)) == path


def test_unknown_chip_lists_what_exists():
    mod, _ = fake_gpiod()
    with pytest.raises(UnlockError, match="tegra234-gpio"):
        resolve_chip("nope", mod, list(CHIPS))
    with pytest.raises(UnlockError, match="no such GPIO chip"):
        resolve_chip("/dev/gpiochip9", mod, list(CHIPS))


def test_pulse_on_the_relay_line_with_recorded_history():
    sched = ManualScheduler()
    unl, req = build(GpioUnlockConfig(backend="gpiod", chip="tegra234-gpio", relay_pin=12), sched)
    assert req.path == "/dev/gpiochip4" and req.consumer == "biolock"
    assert req.settings[12].direction == Direction.OUTPUT and req.values[12] == Value.INACTIVE
    unl.grant(2500, "alice")
    assert sched.requested == [pytest.approx(2.5)]
    assert req.electrical(12) == 1
    sched.advance(2.5)
    assert [(o, v) for o, v, _ in req.history if o == 12] == [(12, Value.INACTIVE), (12, Value.ACTIVE),
                                                              (12, Value.INACTIVE)]
    unl.close()
    assert req.released


def test_active_low_relay_drives_the_line_low_to_open():
    sched = ManualScheduler()
    unl, req = build(GpioUnlockConfig(backend="gpiod", chip="gpiochip0", relay_pin=5, active_low=True), sched)
    assert req.settings[5].active_low and req.electrical(5) == 1  # locked = high
    unl.grant(300, "x")
    assert req.electrical(5) == 0
    sched.advance(0.3)
    assert req.electrical(5) == 1
    unl.close()


def test_led_door_and_settings():
    sched = ManualScheduler()
    unl, req = build(GpioUnlockConfig(backend="gpiod", chip="gpiochip0", relay_pin=5, status_led_pin=6,
                                      door_sensor_pin=7, door_open_level="high"), sched)
    assert req.settings[7].direction == Direction.INPUT and req.settings[7].bias == gpiod.line.Bias.PULL_UP
    req.drive(7, 1)
    assert unl.door_open() is True
    req.drive(7, 0)
    assert unl.door_open() is False
    unl.grant(400, "x")
    assert req.values[6] == Value.ACTIVE
    sched.advance(0.4)
    assert req.values[6] == Value.INACTIVE
    unl.close()


def test_exit_button_edge_opens():
    sched = ManualScheduler()
    unl, req = build(GpioUnlockConfig(backend="gpiod", chip="gpiochip0", relay_pin=5, exit_button_pin=8,
                                      pulse_ms=700), sched)
    assert req.settings[8].edge_detection == Edge.FALLING
    req.drive(8, 0)  # pressed: pulled to ground
    deadline = threading.Event()
    for _ in range(500):
        if req.values[5] == Value.ACTIVE:
            break
        deadline.wait(0.01)
    assert req.values[5] == Value.ACTIVE and unl.grants == 1
    unl.close()


def test_busy_line_and_shared_offsets_are_typed_errors():
    mod, _ = fake_gpiod()
    first = build_gpiod_unlocker(GpioUnlockConfig(backend="gpiod", relay_pin=5), gpiod_mod=mod, chips=list(CHIPS),
                                 scheduler=ManualScheduler())
    with pytest.raises(UnlockError, match="busy"):
        build_gpiod_unlocker(GpioUnlockConfig(backend="gpiod", relay_pin=5), gpiod_mod=mod, chips=list(CHIPS))
    first.close()
    with pytest.raises(UnlockError, match="different lines"):
        build_gpiod_unlocker(GpioUnlockConfig(backend="gpiod", relay_pin=5, status_led_pin=5), gpiod_mod=mod,
                             chips=list(CHIPS))


def test_released_request_fails_closed():
    unl, req = build(GpioUnlockConfig(backend="gpiod", relay_pin=5))
    req.release()
    with pytest.raises(UnlockError):
        unl.grant(300, "x")
