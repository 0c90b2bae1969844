"""Run ``firmware/main.py`` under CPython with shim modules standing in for ``machine``, ``time`` and ``os``.

The firmware's own imports (``lockfw``, ``lockproto``) resolve from the firmware folder, which is put on
``sys.path`` once; nothing in the firmware is edited or re-implemented for the emulator.
"""

from __future__ import annotations

import builtins
import sys
import types
from pathlib import Path
from typing import Any

FIRMWARE_DIR = Path(__file__).resolve().parents[1] / "firmware"


def firmware_on_path() -> None:
    if str(FIRMWARE_DIR) not in sys.path:
        sys.path.insert(0, str(FIRMWARE_DIR))


def load_firmware_main(machine: Any, time_mod: Any, os_mod: Any) -> types.SimpleNamespace:
    """Execute firmware/main.py (not as __main__) and return its namespace (build, run, constants)."""
    firmware_on_path()
    replacements = {"machine": machine, "time": time_mod, "os": os_mod}
    real_import = builtins.__import__

    def shim_import(name: str, globals: Any = None, locals: Any = None, fromlist: Any = (), level: int = 0) -> Any:
        if name in replacements and level == 0:
            return replacements[name]
        return real_import(name, globals, locals, fromlist, level)

    path = FIRMWARE_DIR / "main.py"
    namespace: dict[str, Any] = {
        "__name__": "biolock_firmware_main",
        "__file__": str(path),
        "__builtins__": {**vars(builtins), "__import__": shim_import},
    }
    exec(compile(path.read_text(), str(path), "exec"), namespace)
    return types.SimpleNamespace(**{k: v for k, v in namespace.items() if not k.startswith("__")})
