"""The board's flash for CPython: a folder, and the ``os`` subset the firmware uses (counting writes).

Why count: every counter update is a flash write on the real board; the soak reports how many there were.
"""

from __future__ import annotations

import os
from pathlib import Path


class FlashOs:
    """``os`` as the firmware sees it: rename, remove, urandom, listdir; rename counts as one flash write."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.writes = 0

    def rename(self, src: str, dst: str) -> None:
        self.writes += 1
        os.replace(src, dst)

    def remove(self, path: str) -> None:
        os.remove(path)

    def listdir(self, path: str = ".") -> list[str]:
        return os.listdir(path)

    @staticmethod
    def urandom(n: int) -> bytes:
        return os.urandom(n)

    def wipe(self) -> None:
        """Erase the flash (a board fresh from the factory)."""
        for item in self.root.iterdir():
            if item.is_file():
                item.unlink()
