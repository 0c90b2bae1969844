"""gpiozero backend (Raspberry Pi): relay, LED, door sensor and exit button as gpiozero devices.

Tests run it on gpiozero's MockFactory (``GPIOZERO_PIN_FACTORY=mock``), whose pins keep a history of states.
"""

from __future__ import annotations

from typing import Any

from device.config import GpioUnlockConfig
from device.errors import UnlockError
from device.unlock.gpio import GpioUnlocker
from device.unlock.pulse import Scheduler


class _ZeroOutput:
    def __init__(self, pin: int, active_low: bool, factory: Any) -> None:
        from gpiozero import OutputDevice

        self.device = OutputDevice(pin, active_high=not active_low, initial_value=False, pin_factory=factory)

    def on(self) -> None:
        self.device.on()

    def off(self) -> None:
        self.device.off()

    def is_active(self) -> bool:
        return bool(self.device.value)

    def close(self) -> None:
        self.device.close()


class _ZeroInput:
    def __init__(self, pin: int, pull_up: bool, factory: Any) -> None:
        from gpiozero import DigitalInputDevice

        self.device = DigitalInputDevice(pin, pull_up=pull_up, pin_factory=factory)

    def level(self) -> bool:
        return bool(self.device.pin.state)

    def close(self) -> None:
        self.device.close()


def build_gpiozero_unlocker(
    cfg: GpioUnlockConfig, *, pin_factory: Any = None, scheduler: Scheduler | None = None
) -> GpioUnlocker:
    """Open the configured lines with gpiozero; GPIO errors become UnlockError naming the pin."""
    try:
        import gpiozero
    except ImportError as exc:
        raise UnlockError("unlock.gpio.backend = 'gpiozero' but gpiozero is not installed") from exc
    opened: list[Any] = []
    try:
        relay = _ZeroOutput(cfg.relay_pin, cfg.active_low, pin_factory)
        opened.append(relay)
        led = None
        if cfg.status_led_pin is not None:
            led = _ZeroOutput(cfg.status_led_pin, cfg.status_led_active_low, pin_factory)
            opened.append(led)
        door = None
        if cfg.door_sensor_pin is not None:
            door = _ZeroInput(cfg.door_sensor_pin, cfg.inputs_pull_up, pin_factory)
            opened.append(door)
        unlocker = GpioUnlocker(
            relay, led=led, door=door, door_open_level=cfg.door_open_level == "high", pulse_ms=cfg.pulse_ms,
            scheduler=scheduler,
        )
        if cfg.exit_button_pin is not None:
            button = gpiozero.Button(cfg.exit_button_pin, pull_up=cfg.inputs_pull_up, pin_factory=pin_factory)
            opened.append(button)
            button.when_pressed = lambda: unlocker.exit_pressed()
            unlocker.exit_button = button  # type: ignore[attr-defined]  # kept alive; closed with the process
    except gpiozero.GPIOZeroError as exc:
        for item in opened:
            item.close()
        raise UnlockError(f"cannot open GPIO line (relay {cfg.relay_pin}): {exc}") from exc
    return unlocker
