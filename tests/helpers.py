"""Small helpers shared by several test files (fixtures live in conftest.py and models_fixture.py)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest

from device.pipeline import Decision

DEPLOY = Path(__file__).resolve().parents[1] / "deploy"

# the real systemd-creds with a per-test host secret needs the binary and root
needs_creds = pytest.mark.skipif(shutil.which("systemd-creds") is None or os.geteuid() != 0,
                                 reason="needs systemd-creds (systemd >= 250) and root for its host secret")

OWNERS = {170: "alice", 85: "bob"}  # daemon tests: marker grey level (a 4-bit level * 17) -> enrolled user


def write(path: Path, image: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)
    return str(path)


def unit_settings() -> dict[str, list[str]]:
    """The keys of deploy/biolock.service, each with every value it is given."""
    settings: dict[str, list[str]] = {}
    for line in (DEPLOY / "biolock.service").read_text().splitlines():
        if "=" in line and not line.startswith(("#", "[")):
            key, value = line.split("=", 1)
            settings.setdefault(key.strip(), []).append(value.strip())
    return settings


def print_of(level: int) -> np.ndarray:
    """A stand-in capture whose top-left pixel names who it belongs to (see ``decide``)."""
    image = np.full((288, 256), 120, np.uint8)
    image[0, 0] = level
    return image


def decide(image: np.ndarray) -> Decision:
    """The daemon tests' matcher: the marker pixel's owner in ``OWNERS`` is accepted, anyone else rejected."""
    user = OWNERS.get(int(image[0, 0]))
    return Decision(user is not None, user, 0.9 if user else 0.1, 0.5, "match" if user else "no match", 1.0)
