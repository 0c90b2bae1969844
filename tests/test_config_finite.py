"""Issue 17 item 3: NaN and infinities pass every range comparison, so strict config must refuse them by name.

The attack: ``[lockout] seconds = nan`` disabled lockout, ``growth = nan`` allowed one lockout ever,
``[unlock.serial] timeout_s = nan`` hung a grant. Every float key of :class:`Config` is tried here, so a float
added later is covered without editing this test.
"""

from __future__ import annotations

import dataclasses
import typing
from pathlib import Path

import pytest

from device.config import Config, load_config
from device.errors import ConfigError


def _float_keys(cls: type, prefix: str = "") -> list[str]:
    """Dotted names of every float (or optional float) field reachable from ``cls``."""
    keys = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        args = [a for a in typing.get_args(hint) if a is not type(None)] or [hint]
        dotted = f"{prefix}.{f.name}" if prefix else f.name
        for arg in args:
            if dataclasses.is_dataclass(arg):
                keys += _float_keys(arg, dotted)
            elif arg is float:
                keys.append(dotted)
    return keys


FLOAT_KEYS = _float_keys(Config)


def _toml(dotted: str, value: str) -> str:
    *table, name = dotted.split(".")
    return f"[{'.'.join(table)}]\n{name} = {value}\n" if table else f"{name} = {value}\n"


def test_the_float_keys_are_found():
    assert {"lockout.seconds", "lockout.growth", "unlock.serial.timeout_s", "sensor.timeout_s",
            "sensor.exposure"} <= set(FLOAT_KEYS)


@pytest.mark.parametrize("value", ["nan", "+nan", "-nan", "inf", "+inf", "-inf"])
@pytest.mark.parametrize("key", FLOAT_KEYS)
def test_every_float_rejects_nan_and_infinity_naming_the_key(tmp_path: Path, key: str, value: str):
    path = tmp_path / "biolock.toml"
    path.write_text(_toml(key, value))
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert key in str(err.value) and "finite" in str(err.value)


def test_a_finite_value_still_loads(tmp_path: Path):
    path = tmp_path / "biolock.toml"
    path.write_text(_toml("lockout.seconds", "12.5"))
    assert load_config(path).lockout.seconds == 12.5


def test_non_utf8_config_is_a_config_error_naming_the_file(tmp_path: Path):
    path = tmp_path / "biolock.toml"
    path.write_bytes(b'[device]\nmodality = "finger\xff"\n')
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and "UTF-8" in str(err.value) and "\n" not in str(err.value)
