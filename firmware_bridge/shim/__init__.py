"""CPython stand-ins for the MicroPython hardware modules, so the real firmware runs unchanged in tests.

``machine.Board`` gives one emulated RP2040 board: ``board.machine`` (Pin, UART, WDT), ``board.time``
(ticks_ms, ticks_diff, sleep_ms) and ``flash.FlashOs`` (the ``os`` subset the firmware uses, over a folder
that plays the board's flash). :func:`load_firmware_main` executes ``firmware/main.py`` with those modules
in place of ``machine``, ``time`` and ``os``.
"""

from firmware_bridge.shim.loader import FIRMWARE_DIR, load_firmware_main

__all__ = ["FIRMWARE_DIR", "load_firmware_main"]
