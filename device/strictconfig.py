"""Strict loading of TOML tables into frozen dataclasses.

Why strict: a typo in a security setting (``secuirty = "convenient"``) must stop the daemon at start, not be
ignored. Every field is typed; ranges and choices live in field metadata (``min``, ``max``) or in ``Literal``
types, and errors name the dotted key and what is allowed.
"""

from __future__ import annotations

import dataclasses
import math
import sys
import types
import typing
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args, get_origin

from device.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on 3.10 only
    import tomli as tomllib

T = TypeVar("T")
MAX_CONFIG_BYTES = 1024 * 1024


def ranged(default: Any, *, min: float | None = None, max: float | None = None, doc: str = "") -> Any:
    """A dataclass field with an allowed numeric range, checked by :func:`from_table`."""
    return dataclasses.field(default=default, metadata={"min": min, "max": max, "doc": doc})


def read_toml(path: Path) -> dict[str, Any]:
    """Read a TOML file, turning I/O and syntax problems into ConfigError naming the file."""
    from device.saferead import read_regular

    try:
        return tomllib.loads(read_regular(path, MAX_CONFIG_BYTES, ConfigError, "config file").decode("utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file not found: {path}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:  # TOML is UTF-8; tomllib lets the codec error escape
        raise ConfigError(f"{path}: not valid UTF-8 at byte {exc.start}; a config file must be UTF-8 text") from None
    except IsADirectoryError:
        raise ConfigError(f"config file is a directory: {path}") from None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc


def from_table(cls: type[T], table: dict[str, Any] | None, prefix: str = "") -> T:
    """Build dataclass ``cls`` from a TOML table, rejecting unknown keys, wrong types and out-of-range values."""
    table = {} if table is None else table
    if not isinstance(table, dict):
        raise ConfigError(f"{prefix or 'config'}: expected a table, got {type(table).__name__}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(table) - set(fields))
    if unknown:
        where = f"[{prefix}]" if prefix else "top level"
        raise ConfigError(
            f"unknown key {_dotted(prefix, unknown[0])!r} in {where}; allowed keys: {', '.join(sorted(fields))}"
        )
    values: dict[str, Any] = {}
    for name, field in fields.items():
        key = _dotted(prefix, name)
        if name not in table:
            continue
        values[name] = _convert(hints[name], table[name], key, field.metadata)
    return cls(**values)


def _dotted(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


def _convert(hint: Any, value: Any, key: str, meta: Any) -> Any:
    origin = get_origin(hint)
    if dataclasses.is_dataclass(hint):
        return from_table(hint, value, key)
    if origin is Literal:
        choices = get_args(hint)
        if value not in choices:
            raise ConfigError(f"{key} = {value!r} is not allowed; choose one of: {', '.join(map(repr, choices))}")
        return value
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if value is None:
            return None
        errors = []
        for arg in args:
            try:
                return _convert(arg, value, key, meta)
            except ConfigError as exc:
                errors.append(str(exc))
        raise ConfigError(errors[0])
    if origin in (list, tuple):
        (item,) = get_args(hint)[:1] or (Any,)
        if not isinstance(value, list):
            raise ConfigError(f"{key} must be a list, got {type(value).__name__}")
        items = [_convert(item, v, f"{key}[{i}]", meta) for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if hint is Path:
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{key} must be a non-empty path string, got {value!r}")
        return Path(value).expanduser()
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key} must be an integer, got {value!r}")
        return _check_range(value, key, meta)
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{key} must be a number, got {value!r}")
        if not math.isfinite(value):  # NaN passes every range check (all comparisons are false): refuse it here
            raise ConfigError(f"{key} = {value} is not allowed: it must be a finite number (not nan or inf)")
        return _check_range(float(value), key, meta)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key} must be a string, got {value!r}")
        return value
    if hint is Any:
        return value
    raise TypeError(f"strictconfig cannot handle type {hint!r} for {key}")  # programming error


def _check_range(value: float, key: str, meta: Any) -> Any:
    lo = meta.get("min") if meta else None
    hi = meta.get("max") if meta else None
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        lo_s = "-inf" if lo is None else lo
        hi_s = "inf" if hi is None else hi
        raise ConfigError(f"{key} = {value} is out of range; allowed: {lo_s} to {hi_s}")
    return value
