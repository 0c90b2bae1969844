"""libgpiod v2 backend (Jetson, Pi 5, any board with /dev/gpiochipN): one line request for all our lines.

The chip is named in ``unlock.gpio.chip`` by path (``/dev/gpiochip0``), name (``gpiochip0``) or label
(``tegra234-gpio``, ``pinctrl-rp1``): labels are stable across kernels where chip numbers are not. Offsets are
the chip's line offsets (``relay_pin`` etc.). Tests pass a fake ``gpiod`` module whose line request records
every value it is set to; only the kernel's chip is faked.
"""

from __future__ import annotations

import glob
import logging
import threading
from datetime import timedelta
from typing import Any

from device.config import GpioUnlockConfig
from device.errors import UnlockError
from device.unlock.gpio import GpioUnlocker
from device.unlock.pulse import Scheduler

log = logging.getLogger("biolock.unlock.gpiod")
CONSUMER = "biolock"


def resolve_chip(spec: str, gpiod_mod: Any, candidates: list[str] | None = None) -> str:
    """The chip device path for a path, a name (gpiochip0) or a label; UnlockError listing what exists."""
    paths = sorted(glob.glob("/dev/gpiochip*")) if candidates is None else list(candidates)
    if spec.startswith("/"):
        if spec in paths or (candidates is None and gpiod_mod.is_gpiochip_device(spec)):
            return spec
        raise UnlockError(f"unlock.gpio.chip = {spec!r}: no such GPIO chip; found: {', '.join(paths) or 'none'}")
    for path in paths:
        if path.rsplit("/", 1)[-1] == spec:
            return path
    labels = []
    for path in paths:
        try:
            with gpiod_mod.Chip(path) as chip:
                label = chip.get_info().label
        except OSError as exc:
            log.debug("cannot open %s: %s", path, exc)
            continue
        labels.append(f"{path} ({label})")
        if label == spec:
            return path
    raise UnlockError(
        f"unlock.gpio.chip = {spec!r} matches no GPIO chip path, name or label; found: {', '.join(labels) or 'none'}"
    )


class _Output:
    def __init__(self, request: Any, offset: int, values: Any) -> None:
        self.request, self.offset, self.values = request, offset, values

    def on(self) -> None:
        self.request.set_value(self.offset, self.values.ACTIVE)

    def off(self) -> None:
        self.request.set_value(self.offset, self.values.INACTIVE)

    def is_active(self) -> bool:
        return self.request.get_value(self.offset) == self.values.ACTIVE

    def close(self) -> None:
        pass  # the shared request is released by GpiodUnlocker.close


class _Input:
    def __init__(self, request: Any, offset: int, values: Any) -> None:
        self.request, self.offset, self.values = request, offset, values

    def level(self) -> bool:
        return self.request.get_value(self.offset) == self.values.ACTIVE  # inputs are requested active-high

    def close(self) -> None:
        pass


class GpiodUnlocker(GpioUnlocker):
    """A GpioUnlocker that owns one libgpiod line request (and the exit-button watcher thread)."""

    request: Any = None
    _stop: threading.Event | None = None

    def close(self) -> None:
        if self._stop is not None:
            self._stop.set()
        super().close()
        if self.request is not None:
            self.request.release()
            self.request = None


def build_gpiod_unlocker(
    cfg: GpioUnlockConfig, *, gpiod_mod: Any = None, chips: list[str] | None = None, scheduler: Scheduler | None = None
) -> GpiodUnlocker:
    """Request the configured lines from the configured chip; errors become UnlockError naming chip and line."""
    if gpiod_mod is None:
        try:
            import gpiod as gpiod_mod
        except ImportError as exc:
            raise UnlockError("unlock.gpio.backend = 'gpiod' but the gpiod package (libgpiod v2) is missing") from exc
    line = gpiod_mod.line
    path = resolve_chip(cfg.chip, gpiod_mod, chips)
    pull = line.Bias.PULL_UP if cfg.inputs_pull_up else line.Bias.DISABLED
    config: dict[int, Any] = {
        cfg.relay_pin: gpiod_mod.LineSettings(
            direction=line.Direction.OUTPUT, active_low=cfg.active_low, output_value=line.Value.INACTIVE
        )
    }
    if cfg.status_led_pin is not None:
        config[cfg.status_led_pin] = gpiod_mod.LineSettings(
            direction=line.Direction.OUTPUT, active_low=cfg.status_led_active_low, output_value=line.Value.INACTIVE
        )
    if cfg.door_sensor_pin is not None:
        config[cfg.door_sensor_pin] = gpiod_mod.LineSettings(direction=line.Direction.INPUT, bias=pull)
    if cfg.exit_button_pin is not None:
        pressed_edge = line.Edge.FALLING if cfg.inputs_pull_up else line.Edge.RISING
        config[cfg.exit_button_pin] = gpiod_mod.LineSettings(
            direction=line.Direction.INPUT, bias=pull, edge_detection=pressed_edge,
            debounce_period=timedelta(milliseconds=20),
        )
    if len(config) != sum(p is not None for p in (cfg.relay_pin, cfg.status_led_pin, cfg.door_sensor_pin,
                                                  cfg.exit_button_pin)):
        raise UnlockError("unlock.gpio: relay, LED, door sensor and exit button must use different lines")
    try:
        request = gpiod_mod.request_lines(path, consumer=CONSUMER, config=config)
    except (OSError, ValueError) as exc:
        raise UnlockError(f"cannot request GPIO lines {sorted(config)} on {path}: {exc}") from exc
    values = line.Value
    unlocker = GpiodUnlocker(
        _Output(request, cfg.relay_pin, values),
        led=_Output(request, cfg.status_led_pin, values) if cfg.status_led_pin is not None else None,
        door=_Input(request, cfg.door_sensor_pin, values) if cfg.door_sensor_pin is not None else None,
        door_open_level=cfg.door_open_level == "high",
        pulse_ms=cfg.pulse_ms,
        scheduler=scheduler,
    )
    unlocker.request = request
    if cfg.exit_button_pin is not None:
        unlocker._stop = threading.Event()
        threading.Thread(
            target=_watch_exit_button, args=(unlocker, request, cfg.exit_button_pin, unlocker._stop),
            name="biolock-exit-button", daemon=True,
        ).start()
    return unlocker


def _watch_exit_button(unlocker: GpioUnlocker, request: Any, offset: int, stop: threading.Event) -> None:
    """Wait for edge events on the exit button's line and open on each press."""
    while not stop.is_set():
        try:
            if not request.wait_edge_events(timedelta(milliseconds=200)):
                continue
            events = request.read_edge_events()
        except Exception as exc:  # request released on close, or the chip went away
            if not stop.is_set():
                log.error("exit button watcher stopped: %s", exc)
            return
        if any(getattr(ev, "line_offset", offset) == offset for ev in events):
            unlocker.exit_pressed()
