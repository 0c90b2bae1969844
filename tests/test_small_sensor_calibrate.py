"""`biolock calibrate --strangers FOLDER` in small-sensor mode: stranger touches scored exactly as the device scores
a touch against every enrolled finger's placements template; thresholds only tighten; the device decides at the site
threshold; a sensor smaller than the card's window starts only on a site calibration of its own window whose
measurement supports the level; foreign, damaged or unsupporting site files fail closed.

Real SQLite store and AES-GCM, the real partial matcher; touches are synthetic R503 touches (capacitive192, 4 bits
per pixel). Cards are copies of the shipped one with 5 placements (quick enrolment) and, where a test needs them,
another window or thresholds low enough for strangers to reach (their calibration block measured by the same code
as every card's, so they load unmodified).
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from device.calibration.fit import measure
from device.calibration.site import SiteCalibrationError, load_site, save_site, site_path
from device.calibration.sitecal import SiteScores, build_site, site_thresholds
from device.cli import main
from device.config import Config, EnrolConfig, MatchingConfig, SensorConfig
from device.errors import ConfigError
from device.minutiae.partial_backend import TEMPLATE_ID
from device.pipeline import Authenticator
from device.small_sensor import MODEL_ID, SmallSensorAuthenticator, site_matcher
from training.r503_scores import r503_touch

SEED = 7
PLACEMENTS = 5
SHIPPED = Path(__file__).resolve().parents[1] / "models" / "fingerprint_small_sensor.json"
STRANGERS = range(20, 28)  # people never enrolled (u0-u2 are identities 0-2)
LOW = {"1e-3": 4.0, "1e-4": 5.0, "2e-5": 6.0}


@functools.cache
def touch(identity: int, impression: int) -> np.ndarray:
    return r503_touch(SEED, identity, impression)


def _card(tmp_path: Path, name: str, window: tuple[int, int] = (189, 189), low: bool = False) -> Path:
    """A copy of the shipped card for 5 placements, checked on ``window``; ``low``: thresholds 4 / 5 / 6 matches
    measured on 40,000 impostors of 0-3 matches (convenient and balanced supported), so strangers reach them."""
    raw = json.loads(SHIPPED.read_text())
    raw["placements"], raw["window"] = PLACEMENTS, list(window)
    raw["matcher"], raw["model_id"] = TEMPLATE_ID, MODEL_ID  # these tests check the site file, not the shipped card
    if low:
        imp = np.random.default_rng(0).integers(0, 4, 40_000).astype(float)
        raw["thresholds"] = LOW
        raw["calibration"] = measure({"synthetic:test": (np.full(300, 20.0), imp)}, LOW, "test card").to_dict()
    path = tmp_path / name
    path.write_text(json.dumps(raw))
    return path


def _config(card: Path, **matching) -> Config:
    return Config(sensor=SensorConfig(type="r30x", module="r503"), enrol=EnrolConfig(placements=PLACEMENTS),
                  matching=MatchingConfig(minutiae_card=card, **matching))


def _toml(tmp_path: Path, card: Path) -> Path:
    cfg = tmp_path / "biolock.toml"
    cfg.write_text(f'[sensor]\ntype = "r30x"\nmodule = "r503"\nport = "/dev/null"\n[enrol]\nplacements = {PLACEMENTS}\n'
                   f'[matching]\nminutiae_card = "{card}"\n')
    return cfg


def _enrol(config: Config, state: Path, users: int = 3) -> None:
    with Authenticator.from_config(config, state) as auth:
        for u in range(users):
            assert auth.enroll(f"u{u}", "right-index", [touch(u, i) for i in range(30)]).ok


def _strangers(folder: Path, extra: bool = True) -> None:
    """Stranger touches as PNGs; ``extra`` adds 3 images the device does not score."""
    folder.mkdir()
    for s in STRANGERS:
        cv2.imwrite(str(folder / f"s{s}.png"), touch(s, 0))
    if extra:
        cv2.imwrite(str(folder / "blank.png"), np.full((192, 192), 238, np.uint8))  # refused by _touch
        cv2.imwrite(str(folder / "s20_again.png"), touch(20, 0))  # the same stranger twice
        cv2.imwrite(str(folder / "crop.png"), touch(21, 1)[:128, :128])  # not this sensor's size


def _calibrate(cfg: Path, state: Path, *args: str):
    return CliRunner().invoke(main, ["--config", str(cfg), "--state-dir", str(state), "calibrate", "--no-progress",
                                     *args])


def test_strangers_against_every_enrolled_finger_tighten_the_threshold_the_device_then_uses(tmp_path):
    card, state = _card(tmp_path, "low.json", low=True), tmp_path / "state"
    cfg = _toml(tmp_path, card)
    _enrol(_config(_card(tmp_path, "shipped5.json")), state)  # the low card would call u1 a duplicate of u0
    _strangers(tmp_path / "strangers")
    with Authenticator.from_config(_config(card), state) as auth:  # the card alone decides each stranger
        assert auth.threshold == LOW["1e-4"]
        seen = {s: auth.identify(touch(s, 0)) for s in STRANGERS}
    scored = {s: d for s, d in seen.items() if d.score == d.score}  # NaN: refused as a touch, never compared
    n = len(scored)
    worst = max(scored, key=lambda s: scored[s].score)
    best = scored[worst].score  # the highest stranger score against any enrolled finger
    assert n >= 6 and scored[worst].accepted, f"the test needs a stranger the low card lets in: {seen}"
    res = _calibrate(cfg, state, "--strangers", str(tmp_path / "strangers"))
    assert res.exit_code == 0, res.output
    assert f"{n} stranger touches of 189x189 px at 500 dpi: {3 * n} stranger pairs" in res.output
    assert f"{3 + len(STRANGERS) - n} stranger images refused as touches, not scored" in res.output
    assert "1 x the same image twice" in res.output and "not this sensor's size (126x126" in res.output
    assert "FNMR is not measured" in res.output
    site = load_site(state, site_matcher(PLACEMENTS))
    assert site.window == (189, 189) and site.strangers == n and site.enrolled_users == 3
    assert site.calibration.levels["balanced"].impostor_pairs == 3 * n
    assert site.calibration.levels["balanced"].sets == (f"site:{n} strangers",)
    # so few pairs allow no false match at any level: each threshold is one match above the best stranger
    assert site.thresholds == {k: max(best + 1, v) for k, v in LOW.items()}
    assert MODEL_ID in site.matcher
    with Authenticator.from_config(_config(card), state) as auth:
        assert isinstance(auth, SmallSensorAuthenticator)
        assert auth.threshold == best + 1 and auth.decision_info.site == str(site_path(state))
        after = auth.identify(touch(worst, 0))
        assert after.score == best and not after.accepted  # the card's threshold took it, the site's does not
        assert auth.verify("u0", touch(0, 0)).accepted  # an enrolled placement still gets in
    status = CliRunner().invoke(main, ["--config", str(cfg), "--state-dir", str(state), "status", "--json"])
    decision = json.loads(status.output)["model"]["decision"]
    assert decision["threshold"] == best + 1 and decision["site"] == str(site_path(state))


def test_thresholds_never_loosen_without_allow_looser(tmp_path):
    card, state = _card(tmp_path, "shipped5.json"), tmp_path / "state"  # thresholds 12 / 14 / 14 matches
    cfg = _toml(tmp_path, card)
    card_t = json.loads(card.read_text())["thresholds"]
    _enrol(_config(card), state)
    _strangers(tmp_path / "strangers", extra=False)
    loose = _calibrate(cfg, state, "--strangers", str(tmp_path / "strangers"), "--allow-looser", "--dry-run",
                       "--json")
    assert loose.exit_code == 0, loose.output
    assert json.loads(loose.output)["thresholds"]["1e-4"] < card_t["1e-4"]  # what this site alone needs
    assert not site_path(state).exists()  # dry run
    res = _calibrate(cfg, state, "--strangers", str(tmp_path / "strangers"))
    assert res.exit_code == 0, res.output
    site = load_site(state, site_matcher(PLACEMENTS))
    assert site.thresholds == card_t and "+0.0000 vs card" in res.output
    assert site.card_supported == ("convenient", "balanced")  # R503-sized strangers: the card still covers them
    # an existing, tighter site file is in force too: calibrating again keeps it
    raw = json.loads(site_path(state).read_text())
    raw["thresholds"] = {"1e-3": 15.0, "1e-4": 16.0, "2e-5": 16.0}
    raw["calibration"] = measure({"x": (np.zeros(0), np.zeros(100))}, raw["thresholds"]).to_dict()
    site_path(state).write_text(json.dumps(raw))
    again = _calibrate(cfg, state, "--strangers", str(tmp_path / "strangers"))
    assert again.exit_code == 0, again.output
    assert load_site(state, site_matcher(PLACEMENTS)).thresholds == {"1e-3": 15.0, "1e-4": 16.0, "2e-5": 16.0}


def test_small_sensor_calibrate_needs_strangers_it_can_score(tmp_path):
    card, state = _card(tmp_path, "shipped5.json"), tmp_path / "state"
    cfg = _toml(tmp_path, card)
    nobody = tmp_path / "blank"
    nobody.mkdir()
    cv2.imwrite(str(nobody / "blank.png"), np.full((192, 192), 238, np.uint8))
    empty = _calibrate(cfg, state, "--strangers", str(nobody))
    assert empty.exit_code == 2 and "nobody is enrolled with small-sensor templates" in empty.output
    _enrol(_config(card), state, users=1)
    res = _calibrate(cfg, state)
    assert res.exit_code == 2, res.output
    assert "needs --strangers FOLDER" in res.output and "one stitched template per enrolled finger" in res.output
    refused = _calibrate(cfg, state, "--strangers", str(nobody))
    assert refused.exit_code == 2 and "none of the 1 stranger images could be scored" in refused.output
    assert not site_path(state).exists()


def _site_file(state: Path, pairs: int, window: tuple[int, int] = (189, 189), placements: int = PLACEMENTS) -> None:
    """A small-sensor site file made by the calibrate code from ``pairs`` stranger scores of 0-9 matches (below
    the card's 12 / 14): 40,000 of them support convenient and balanced, 2,000 support no level."""
    card_t = json.loads(SHIPPED.read_text())["thresholds"]
    strangers = np.random.default_rng(1).integers(0, 10, pairs).astype(float)
    scores = SiteScores(np.zeros(0), np.zeros(0), strangers, 4, 8, pairs // 8, 0, window, {}, small_sensor=True)
    thresholds = site_thresholds(scores, card_t, allow_looser=False, integer_scores=True)
    save_site(state, build_site(None, scores, thresholds, card_t, None, site_matcher(placements)))


def test_a_smaller_sensor_starts_only_on_a_site_calibration_of_its_window_that_supports_the_level(tmp_path):
    big, state = _card(tmp_path, "big.json", window=(250, 250)), tmp_path / "state"  # the R503 is smaller
    cfg = _toml(tmp_path, big)
    with pytest.raises(ConfigError, match="the r503 sees 189x189 px at 500 dpi, less than the 250x250") as exc:
        Authenticator.from_config(_config(big), state)
    assert "no site calibration measured it" in str(exc.value)
    assert "biolock calibrate --strangers FOLDER" in str(exc.value)
    state.mkdir()
    _site_file(state, 2_000)  # too few pairs: no level supported
    with pytest.raises(ConfigError, match="does not support 'balanced'.*biolock calibrate --strangers FOLDER"):
        Authenticator.from_config(_config(big), state)
    _site_file(state, 40_000)
    with Authenticator.from_config(_config(big), state) as auth:
        info = auth.decision_info
        assert info.supported is True and info.site == str(site_path(state)) and auth.threshold == 14
        assert "'balanced' rests on this site's 40,000 stranger pairs" in info.summary()
        assert auth.enroll("u0", "right-index", [touch(0, i) for i in range(30)]).ok  # R503 touches not refused
        d = auth.verify("u0", touch(0, 0))
        assert d.accepted and "smaller than" not in d.reason
    with pytest.raises(ConfigError, match="does not support 'secure' .*40,000 impostor pairs"):  # cannot show 2e-5
        Authenticator.from_config(_config(big, security="secure"), state)
    status = CliRunner().invoke(main, ["--config", str(cfg), "--state-dir", str(state), "status"])
    assert "rests on this site's 40,000 stranger pairs" in status.output, status.output
    # fail closed: another window, another placement count (another matcher), a damaged file
    _site_file(state, 40_000, window=(128, 128))
    with pytest.raises(SiteCalibrationError, match="strangers' touches of 128x128 px at 500 dpi, but the r503 sees"):
        Authenticator.from_config(_config(big, allow_unsupported_level=True), state)
    _site_file(state, 40_000, placements=10)
    with pytest.raises(SiteCalibrationError, match="was made for .*x10 placements"):
        Authenticator.from_config(_config(big), state)
    site_path(state).write_text("{")
    with pytest.raises(SiteCalibrationError, match="cannot be read"):
        Authenticator.from_config(_config(big), state)
    refused = CliRunner().invoke(main, ["--config", str(cfg), "--state-dir", str(state), "status"])
    assert "problem:    decision: site calibration" in refused.output, refused.output


def test_a_site_file_of_the_normal_pipeline_is_refused_and_calibrate_replaces_it_only_when_asked(tmp_path):
    card, state = _card(tmp_path, "shipped5.json"), tmp_path / "state"
    cfg = _toml(tmp_path, card)
    _enrol(_config(card), state, users=1)
    _site_file(state, 40_000)
    raw = json.loads(site_path(state).read_text())
    raw["matcher"] = "fp-mobile@1+abc"  # made by biolock calibrate for an embedding model
    site_path(state).write_text(json.dumps(raw))
    with pytest.raises(SiteCalibrationError, match="made for fp-mobile@1"):
        Authenticator.from_config(_config(card), state)
    _strangers(tmp_path / "strangers", extra=False)
    kept = _calibrate(cfg, state, "--strangers", str(tmp_path / "strangers"))
    assert kept.exit_code == 2 and "nothing changed" in kept.output
    assert json.loads(site_path(state).read_text())["matcher"] == "fp-mobile@1+abc"
    replaced = _calibrate(cfg, state, "--strangers", str(tmp_path / "strangers"), "--replace")
    assert replaced.exit_code == 0, replaced.output
    assert load_site(state, site_matcher(PLACEMENTS)).strangers == len(STRANGERS)


def test_touches_of_another_source_smaller_than_the_card_are_decided_only_for_the_sites_window(tmp_path):
    big, state = _card(tmp_path, "big.json", window=(250, 250)), tmp_path / "state"
    cfg = Config(enrol=EnrolConfig(placements=PLACEMENTS), matching=MatchingConfig(minutiae="partial",
                                                                                    minutiae_card=big))
    with Authenticator.from_config(cfg, state) as auth:  # an image source: its size is checked per touch
        refused = auth.verify("u0", touch(0, 0))
        assert not refused.accepted and "smaller than the 250x250 px window" in refused.reason
    _site_file(state, 40_000)  # strangers of 189x189 at 500 dpi support balanced
    with Authenticator.from_config(cfg, state) as auth:
        assert auth.touch_windows == ((250, 250), (189, 189))
        assert auth.enroll("u0", "right-index", [touch(0, i) for i in range(30)]).ok
        assert auth.verify("u0", touch(0, 0)).accepted
        small = auth.verify("u0", cv2.resize(touch(0, 0), (128, 128)))
        assert not small.accepted and "smaller than the 189x189 px window" in small.reason


def test_strangers_of_an_image_source_set_the_window_and_must_share_one_size(tmp_path):
    card, state = _card(tmp_path, "shipped5.json"), tmp_path / "state"  # checked on 189x189 windows
    cfg = tmp_path / "partial.toml"
    cfg.write_text(f'[enrol]\nplacements = {PLACEMENTS}\n[matching]\nminutiae = "partial"\n'
                   f'minutiae_card = "{card}"\n')
    _enrol(Config(enrol=EnrolConfig(placements=PLACEMENTS),
                  matching=MatchingConfig(minutiae="partial", minutiae_card=card)), state)
    folder = tmp_path / "small"
    folder.mkdir()
    for s in STRANGERS:  # a 6.5 mm sensor: the centre 128x128 of each touch (500 dpi)
        cv2.imwrite(str(folder / f"s{s}.png"), touch(s, 0)[32:160, 32:160])
    res = _calibrate(cfg, state, "--strangers", str(folder), "--json")
    assert res.exit_code == 0, res.output
    out = json.loads(res.output)
    assert out["window"] == [128, 128] and out["card_supported"] == []  # the card says nothing about 128x128
    assert out["calibration"]["levels"]["balanced"]["impostor_pairs"] == 3 * out["strangers"] > 0
    cv2.imwrite(str(folder / "whole.png"), touch(30, 0))  # one 192x192 touch among them
    mixed = _calibrate(cfg, state, "--strangers", str(folder))
    assert mixed.exit_code == 2 and "have different sizes" in mixed.output and "at 128x128" in mixed.output
