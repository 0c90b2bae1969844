"""Shared fixtures. Real data from ../shared/data is optional: tests that use it skip when it is absent."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("BIOLOCK_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def shared_data() -> Path:
    """The real sensor sets beside the checkout; skips the test where they are absent."""
    if not (SHARED_DATA / "manifest.csv").is_file():
        pytest.skip(f"real data not present at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture(autouse=True)
def _isolated_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Keep tests away from the user's config, state directory and real GPIO."""
    monkeypatch.delenv("BIOLOCK_CONFIG", raising=False)
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setenv("BIOLOCK_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
