"""Helpers shared by the admin CLI's test files (the ``env`` fixture itself is in conftest.py)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def write(path: Path, image: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)
    return str(path)
