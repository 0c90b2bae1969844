"""``decided_by`` (issue 16): identify --json says what decided, like verify --json, in single and fusion mode."""

from __future__ import annotations

import dataclasses
import json
import logging
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from models_fixture import finger_image, fixture_models, vein_image  # noqa: F401 - fixture
from test_fusion_mode import ALICE, card_file, fusion_config  # noqa: F401 - fixture

from device.cli import main
from device.config import Config, EnrolConfig, InferenceConfig, MatchingConfig
from device.errors import ConfigError
from device.fusion_pipeline import FusionAuthenticator
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


# --- fusion mode: the fusion card's calibration decides whether the level holds -------------------------------

def _recalibrated(src: Path, dst: Path) -> Path:
    """The fixture fusion card re-calibrated on 20,000 fused impostor scores: 'convenient' shown, 'balanced' not."""
    from device.fusion import load_fusion_card, save_fusion_card
    from training.card_calibration import calibrate_fusion_card

    rng = np.random.default_rng(5)
    sets = {"synthetic:test": (rng.normal(0.9, 0.02, 300), rng.normal(0.5, 0.05, 20_000))}
    return save_fusion_card(calibrate_fusion_card(load_fusion_card(src), sets), dst)


def test_fusion_refuses_a_level_its_card_does_not_support(fixture_models, card_file, tmp_path, caplog):  # noqa: F811
    from device.fusion import load_fusion_card

    card = _recalibrated(card_file, tmp_path / "fusion_card.json")
    with pytest.raises(ConfigError, match="'balanced' is not supported by .*strongest level it supports is "
                                          "'convenient'.*allow_unsupported_level"):
        FusionAuthenticator.from_config(fusion_config(fixture_models, card, allow_unsupported_level=False),
                                        tmp_path / "s")
    with caplog.at_level(logging.WARNING), FusionAuthenticator.from_config(
            fusion_config(fixture_models, card, allow_unsupported_level=True), tmp_path / "s") as auth:
        info = auth.decision_info
        assert info.override and info.supported is False and info.level == "balanced"
        assert info.threshold == pytest.approx(auth.threshold)  # the fused threshold that decides
    assert any("NOT supported" in r.getMessage() for r in caplog.records)  # logged on every start
    with pytest.raises(ConfigError, match="supports no level: .*biolock train fusion-report"):  # 760 impostors
        FusionAuthenticator.from_config(fusion_config(fixture_models, card_file, allow_unsupported_level=False),
                                        tmp_path / "s")
    cfg = fusion_config(fixture_models, card, allow_unsupported_level=False)
    cfg = dataclasses.replace(cfg, matching=dataclasses.replace(cfg.matching, security="convenient"))
    with FusionAuthenticator.from_config(cfg, tmp_path / "s") as auth:
        info = auth.decision_info
        assert info.supported and not info.override and info.impostor_pairs == 20_000
        assert info.threshold == pytest.approx(load_fusion_card(card).thresholds["1e-3"])
        assert info.matcher.startswith("fusion ") and auth.model_ids["vein"] in info.matcher
        assert info.card == str(card) and "supported: FMR bound" in info.summary()


def test_fusion_fallback_is_logged_on_every_start(fixture_models, card_file, tmp_path, caplog):  # noqa: F811
    with caplog.at_level(logging.WARNING), FusionAuthenticator.from_config(
            fusion_config(fixture_models, card_file, fallback=True), tmp_path / "s"):
        pass
    assert any(r.getMessage().startswith("FALLBACK: matching.fusion_fallback") for r in caplog.records)


def test_fusion_cli_says_what_decides(fixture_models, card_file, tmp_path):  # noqa: F811
    card = _recalibrated(card_file, tmp_path / "fusion_card.json")
    state = tmp_path / "state"
    with FusionAuthenticator.from_config(fusion_config(fixture_models, card), state) as auth:
        results = auth.enroll("alice", "right-index", {"fingerprint": [finger_image(ALICE, j) for j in range(3)],
                                                       "vein": [vein_image(ALICE, j) for j in range(3)]})
        assert all(r.ok for r in results.values()), results
    fp, vein = tmp_path / "fp.png", tmp_path / "vein.png"
    cv2.imwrite(str(fp), finger_image(ALICE, 8))
    cv2.imwrite(str(vein), vein_image(ALICE, 8))
    cfg = tmp_path / "biolock.toml"
    head = (f'[device]\nmodality = "fusion"\n[inference]\nmodel = "{fixture_models.int8_card}"\n'
            f'vein_model = "{fixture_models.vein_card}"\n[sensor_vein]\ntype = "replay"\npath = "{tmp_path}"\n')
    cfg.write_text(head + f'[matching]\nfusion_card = "{card}"\nsecurity = "convenient"\n')
    base = ["--config", str(cfg), "--state-dir", str(state)]
    files = ["--image", str(fp), "--vein-image", str(vein), "--json"]
    ident = CliRunner().invoke(main, [*base, "identify", *files])
    ver = CliRunner().invoke(main, [*base, "verify", "alice", *files])
    assert ident.exit_code in (0, 1) and ver.exit_code in (0, 1), ident.output + ver.output
    got, want = json.loads(ident.stdout), json.loads(ver.stdout)
    assert got["decided_by"] == want["decided_by"] and got["decided_by"]["supported"] is True
    assert got["decided_by"]["threshold"] == pytest.approx(got["threshold"]) and got["decided_by"]["claim"] == 1e-3
    status = json.loads(CliRunner().invoke(main, [*base, "status", "--json"]).stdout)
    assert status["fusion"]["decision"]["threshold"] == pytest.approx(got["threshold"]), status
    assert "supported: FMR bound" in status["fusion"]["decision"]["summary"] and status["problems"] == []
    run = tmp_path / "run.toml"  # the daemon's start log says it too
    fps = tmp_path / "fps"
    run.write_text(cfg.read_text() + f'[sensor]\ntype = "replay"\npath = "{fps}"\n[unlock]\nnone = true\n')
    fps.mkdir()
    cv2.imwrite(str(fps / "0.png"), finger_image(ALICE, 9))
    started = CliRunner().invoke(main, ["--config", str(run), "--state-dir", str(state), "run", "--poll", "0.1"])
    assert started.exit_code == 0 and f"security: {got['decided_by']['matcher']} decides at convenient" in (
        started.output), started.output
    # the configured level the card does not show: every decision command refuses, status names the problem
    cfg.write_text(head + f'[matching]\nfusion_card = "{card}"\nsecurity = "balanced"\n')
    refused = CliRunner().invoke(main, [*base, "identify", *files])
    assert refused.exit_code == 2 and "strongest level it supports is 'convenient'" in refused.output
    status = json.loads(CliRunner().invoke(main, [*base, "status", "--json"]).stdout)
    assert any(p.startswith("decision: security level 'balanced'") for p in status["problems"]), status
