"""``decided_by`` (issue 16): identify --json says what decided, like verify --json, in single and fusion mode."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
from click.testing import CliRunner
from models_fixture import finger_image, fixture_models  # noqa: F401 - fixture

from device.cli import main
from device.config import Config, EnrolConfig, InferenceConfig, MatchingConfig
from device.pipeline import Authenticator

pytestmark = pytest.mark.timeout(120)  # the first test in a session may build the fixture models


def _single(card: Path, tmp_path: Path) -> tuple[Path, Path]:
    """A state dir with one enrolled user and a config file naming the fixture model."""
    state, cfg = tmp_path / "state", tmp_path / "b.toml"
    cfg.write_text(f'[inference]\nmodel = "{card}"\n[enrol]\ncaptures = 3\n')
    config = Config(inference=InferenceConfig(model=card), matching=MatchingConfig(),
                    enrol=EnrolConfig(captures=3, max_attempts=6))
    with Authenticator.from_config(config, state) as auth:
        assert auth.enroll("alice", "right-index", [finger_image(7, i) for i in range(3)]).ok
    return state, cfg


def test_identify_json_says_what_decided_like_verify(fixture_models, tmp_path):  # noqa: F811
    card = fixture_models.int8_card
    state, cfg = _single(card, tmp_path)
    probe = tmp_path / "probe.png"
    cv2.imwrite(str(probe), finger_image(7, 5))
    base = ["--config", str(cfg), "--state-dir", str(state)]
    ident = CliRunner().invoke(main, [*base, "identify", "--image", str(probe), "--json"])
    ver = CliRunner().invoke(main, [*base, "verify", "alice", "--image", str(probe), "--json"])
    assert ident.exit_code == 0 and ver.exit_code == 0, ident.output + ver.output
    got, want = json.loads(ident.output), json.loads(ver.output)
    assert got["user"] == "alice"
    assert got["decided_by"] == want["decided_by"]
    assert got["decided_by"]["level"] == "balanced" and got["decided_by"]["threshold"] == pytest.approx(
        got["threshold"])
    # a stranger's refusal says what refused it too
    cv2.imwrite(str(probe), finger_image(900, 0))
    stranger = CliRunner().invoke(main, [*base, "identify", "--image", str(probe), "--json"])
    assert stranger.exit_code == 1 and json.loads(stranger.output)["decided_by"] == want["decided_by"]
