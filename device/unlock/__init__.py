"""Unlock signalling (contract 8): ``build_unlocker(config.unlock, state_dir) -> Unlocker``.

What gets built follows the configuration: the authenticated serial lock controller when
``unlock.serial.enabled``, a GPIO relay when ``unlock.gpio.backend`` is ``gpiozero`` or ``gpiod``, both
together (serial first, see :class:`CompositeUnlocker`), or a :class:`NullUnlocker` that only logs.
"""

from __future__ import annotations

from pathlib import Path

from device.config import UnlockConfig
from device.unlock.base import CompositeUnlocker, NullUnlocker, Unlocker, check_duration

__all__ = ["CompositeUnlocker", "NullUnlocker", "Unlocker", "build_unlocker", "check_duration"]


def build_unlocker(config: UnlockConfig, state_dir: Path) -> Unlocker:
    """The unlocker the configuration asks for; raises UnlockError/ConfigError if it cannot be opened."""
    members: list[Unlocker] = []
    if config.serial.enabled:
        from device.unlock.serial_lock import SerialLockUnlocker

        members.append(SerialLockUnlocker.from_config(config.serial, Path(state_dir)))
    backend = config.gpio.backend
    try:
        if backend == "gpiozero":
            from device.unlock.gpio_zero import build_gpiozero_unlocker

            members.append(build_gpiozero_unlocker(config.gpio))
        elif backend == "gpiod":
            from device.unlock.gpio_d import build_gpiod_unlocker

            members.append(build_gpiod_unlocker(config.gpio))
        if backend != "none":
            members[-1].exit_pulse_ms = config.duration_ms  # the exit button opens as long as a grant
    except Exception:
        for member in members:
            member.close()
        raise
    if not members:
        return NullUnlocker()
    if len(members) == 1:
        return members[0]
    return CompositeUnlocker(members)
