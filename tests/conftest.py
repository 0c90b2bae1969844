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


@pytest.fixture
def env(fixture_models, tmp_path: Path):
    """The admin CLI on the fixture model and a replay sensor folder: ``(run, tmp_path)``, where ``run(*args)``
    invokes ``biolock --config ... --state-dir ... *args``. Needs ``fixture_models`` imported by the test module."""
    from click.testing import CliRunner

    from device.cli import main

    cfg = tmp_path / "biolock.toml"
    cfg.write_text(f'[inference]\nmodel = "{fixture_models.int8_card}"\n[enrol]\ncaptures = 3\n'
                   f'[sensor]\ntype = "replay"\npath = "{tmp_path / "sensor"}"\n')
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, ["--config", str(cfg), "--state-dir", str(tmp_path / "state"), *args])

    return run, tmp_path
