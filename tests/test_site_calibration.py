"""Site calibration, the level check at start, fail-closed minutiae, audit buckets and named duplicates."""

from __future__ import annotations

import importlib.util
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from models_fixture import finger_image, fixture_models  # noqa: F401 - fixture

from device.calibration.fit import calibrate
from device.calibration.policy import audit_bucket
from device.calibration.site import SiteCalibrationError, load_site, site_path
from device.calibration.sitecal import SiteScores, site_thresholds, users_needed
from device.cli import main
from device.config import Config, EnrolConfig, InferenceConfig, MatchingConfig
from device.errors import ConfigError
from device.minutiae.base import MinutiaeError
from device.pipeline import Authenticator

MODELS = Path(__file__).resolve().parents[1] / "models"


def _config(card: Path, **matching) -> Config:
    return Config(inference=InferenceConfig(model=card), matching=MatchingConfig(**matching),
                  enrol=EnrolConfig(captures=3, max_attempts=6))


def _enrol(card: Path, state: Path, users: int) -> None:
    with Authenticator.from_config(_config(card), state) as auth:
        for u in range(users):
            assert auth.enroll(f"u{u}", "right-index", [finger_image(100 + u, i) for i in range(3)]).ok


def test_users_needed_and_buckets():
    assert users_needed(1e-3) == 16 and users_needed(1e-4) == 50  # 5 captures each
    assert audit_bucket(2.3, True) == "fused 2.0-2.5" and audit_bucket(-0.2, True) == "fused -0.5-0.0"
    assert audit_bucket(0.95, False) == "0.9-1.0" and audit_bucket(None, True) is None


def test_site_thresholds_only_tighten():
    rng = np.random.default_rng(0)
    scores = SiteScores(rng.normal(0.9, 0.05, 300), rng.normal(0.1, 0.1, 10_000), np.zeros(0), 20, 100, 0, 0)
    in_force = {"1e-3": 0.2, "1e-4": 0.9, "2e-5": 0.95}
    tight = site_thresholds(scores, in_force, allow_looser=False)
    assert all(tight[k] >= in_force[k] for k in in_force) and tight["1e-3"] > 0.2
    loose = site_thresholds(scores, in_force, allow_looser=True)
    assert loose["1e-4"] < 0.9 and loose["1e-3"] <= loose["1e-4"] <= loose["2e-5"]


def test_calibrate_writes_a_site_file_the_device_uses(fixture_models, tmp_path):  # noqa: F811
    state = tmp_path / "state"
    card = fixture_models.int8_card
    cfg = tmp_path / "b.toml"
    cfg.write_text(f'[inference]\nmodel = "{card}"\n[enrol]\ncaptures = 3\n')
    _enrol(card, state, 4)
    few = CliRunner().invoke(main, ["--config", str(cfg), "--state-dir", str(state), "calibrate", "--no-progress"])
    assert few.exit_code == 2 and "at least 10 enrolled users" in few.output and "(has 4)" in few.output
    assert not site_path(state).exists()
    _enrol_more = [(u, [finger_image(100 + u, i) for i in range(3)]) for u in range(4, 12)]
    with Authenticator.from_config(_config(card), state) as auth:
        for u, imgs in _enrol_more:
            assert auth.enroll(f"u{u}", "right-index", imgs).ok
    # the DET plot needs matplotlib (train extra); on a board without it, calibrate still writes the site file
    plotting = importlib.util.find_spec("matplotlib") is not None
    plot_args = ["--plot", str(tmp_path / "det.png")] if plotting else []
    res = CliRunner().invoke(main, ["--config", str(cfg), "--state-dir", str(state), "calibrate", "--no-progress",
                                    *plot_args])
    assert res.exit_code == 0, res.output
    assert "with 12 people enrolled (36 stored captures: 36 genuine and 594 impostor pairs)" in res.output
    site = load_site(state)
    card_t = json.loads(Path(card).read_text())["thresholds"]
    assert all(site.thresholds[k] >= card_t[k] for k in card_t)
    assert (tmp_path / "det.png").is_file() == plotting
    with Authenticator.from_config(_config(card), state) as auth:
        assert auth.threshold == pytest.approx(site.thresholds["1e-4"]) and auth.decision_info.site
    status = CliRunner().invoke(main, ["--config", str(cfg), "--state-dir", str(state), "status", "--json"])
    assert json.loads(status.output)["model"]["decision"]["site"] == str(site_path(state))
    import cv2

    cv2.imwrite(str(tmp_path / "probe.png"), finger_image(100, 7))
    ver = CliRunner().invoke(main, ["--config", str(cfg), "--state-dir", str(state), "verify", "u0", "--image",
                                    str(tmp_path / "probe.png"), "--json"])
    decided = json.loads(ver.output)["decided_by"]
    assert decided["threshold"] == pytest.approx(site.thresholds["1e-4"]) and decided["level"] == "balanced"
    # a site file for another matcher stops the start, and calibrate refuses it without --replace
    raw = json.loads(site_path(state).read_text())
    raw["matcher"] = "other-model@1+000000000000"
    site_path(state).write_text(json.dumps(raw))
    with pytest.raises(SiteCalibrationError, match="made for other-model"):
        Authenticator.from_config(_config(card), state)
    again = CliRunner().invoke(main, ["--config", str(cfg), "--state-dir", str(state), "calibrate", "--no-progress"])
    assert again.exit_code == 2 and "nothing changed" in again.output
    assert json.loads(site_path(state).read_text())["matcher"] == "other-model@1+000000000000"


def _calibrated_card(src: Path, dst_dir: Path) -> Path:
    """A copy of ``src`` whose thresholds and calibration come from 20,000 impostors: balanced and secure unshown."""
    dst_dir.mkdir(parents=True, exist_ok=True)
    raw = json.loads(src.read_text())
    shutil.copy(src.parent / raw["file"], dst_dir / raw["file"])
    rng = np.random.default_rng(3)
    t, cal = calibrate({"synthetic:x": (rng.normal(0.9, 0.03, 200), np.tanh(rng.normal(0, 0.2, 20_000)))}, "test",
                       ceiling=1.0)
    raw["thresholds"], raw["calibration"] = t, cal.to_dict()
    out = dst_dir / src.name
    out.write_text(json.dumps(raw))
    return out


def test_an_unsupported_level_is_refused_unless_allowed(fixture_models, tmp_path):  # noqa: F811
    card = _calibrated_card(Path(fixture_models.int8_card), tmp_path / "m")
    with pytest.raises(ConfigError, match="strongest level it supports is 'convenient'"):
        Authenticator.from_config(_config(card, security="balanced"), tmp_path / "s")
    with Authenticator.from_config(_config(card, security="balanced", allow_unsupported_level=True),
                                   tmp_path / "s") as auth:
        assert auth.decision_info.override and auth.decision_info.supported is False
    with Authenticator.from_config(_config(card, security="convenient"), tmp_path / "s") as auth:
        info = auth.decision_info
        assert info.supported and info.impostor_pairs == 20_000 and "supported" in info.summary()


def test_a_minutiae_card_that_cannot_be_built_fails_closed(fixture_models, tmp_path):  # noqa: F811
    src = Path(fixture_models.int8_card)
    d = tmp_path / "m"
    d.mkdir()
    raw = json.loads(src.read_text())
    shutil.copy(src.parent / raw["file"], d / raw["file"])
    card = d / src.name
    card.write_text(src.read_text())
    from device.inference import load_card

    fusion = json.loads((MODELS / "fingerprint_minutiae.json").read_text())
    fusion.pop("calibration", None)
    fusion["matchers"][0]["model"] = load_card(card).model_id
    fusion["matchers"][1]["model"] = "no-such-backend@1/x"
    (d / f"{card.stem}_minutiae.json").write_text(json.dumps(fusion))
    with pytest.raises(MinutiaeError, match="pip install"):
        Authenticator.from_config(_config(card), tmp_path / "s")
    with Authenticator.from_config(_config(card, minutiae_fallback=True), tmp_path / "s") as auth:
        assert auth.minutiae is None


def test_a_duplicate_names_the_user_and_can_be_overridden(fixture_models, tmp_path):  # noqa: F811
    with Authenticator.from_config(_config(fixture_models.int8_card), tmp_path / "s") as auth:
        assert auth.enroll("alice", "right-index", [finger_image(7, i) for i in range(3)]).ok
        dup = auth.enroll("bob", "right-index", [finger_image(7, i) for i in range(3, 6)])
        assert not dup.ok and dup.duplicate_of == "alice" and "'alice'" in dup.reason
        forced = auth.enroll("bob", "right-index", [finger_image(7, i) for i in range(3, 6)], allow_duplicate=True)
        assert forced.ok
