"""Small-sensor mode (issue 18): `biolock enroll` on an emulated R503 (real driver over a pty) enrols many linked
placements with one line of feedback per touch; touches of another finger are refused (never a template of two
fingers); verify and identify match a touch against every placement; damaged templates never let anyone in.

Real SQLite and AES-GCM; the touches are synthetic R503 touches (capacitive192, 4 bits per pixel).
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner

from device.cli import main
from device.config import Config, EnrolConfig, MatchingConfig, SensorConfig
from device.errors import ConfigError
from device.pipeline import Authenticator
from device.small_sensor import MODEL_ID, PARTIAL_MODALITY, SmallSensorAuthenticator, is_small_sensor
from device.store.crypto import SealError
from training.r503_scores import r503_touch

SEED = 7
PLACEMENTS = 5


def touch(identity: int, impression: int) -> np.ndarray:
    return r503_touch(SEED, identity, impression)


def r503_config(placements: int = PLACEMENTS, **matching) -> Config:
    """An R503 configuration run as an allowed unsupported setting: 5 placements (not the card's 10) keep the
    tests quick, and the card's claims do not cover another count; the refusals themselves are tested below."""
    matching.setdefault("allow_unsupported_level", True)
    return Config(sensor=SensorConfig(type="r30x", module="r503"), enrol=EnrolConfig(placements=placements),
                  matching=MatchingConfig(**matching))


def test_small_sensor_mode_is_chosen_by_the_r503_or_by_partial():
    assert is_small_sensor(r503_config())
    assert is_small_sensor(Config(matching=MatchingConfig(minutiae="partial")))
    assert not is_small_sensor(Config(sensor=SensorConfig(type="r30x", module="r307")))
    assert not is_small_sensor(r503_config(minutiae="off"))  # the operator chose: no small-sensor mode


def test_levels_the_card_does_not_support_and_other_placement_counts_are_refused(tmp_path):
    state = tmp_path / "state"
    with pytest.raises(ConfigError, match="'secure' is not supported by .*fingerprint_small_sensor.json"):
        Authenticator.from_config(r503_config(10, security="secure", allow_unsupported_level=False), state)
    with pytest.raises(ConfigError, match="enrol.placements = 5 but the small-sensor card"):
        Authenticator.from_config(r503_config(5, allow_unsupported_level=False), state)
    raw = json.loads((Path(__file__).parents[1] / "models" / "fingerprint_small_sensor.json").read_text())
    big = tmp_path / "big.json"
    big.write_text(json.dumps({**raw, "window": [250, 250]}))  # a card checked on larger windows than the R503's
    with pytest.raises(ConfigError, match="the r503 sees 189x189 px at 500 dpi, less than the 250x250"):
        Authenticator.from_config(r503_config(10, minutiae_card=big, allow_unsupported_level=False), state)
    assert not state.exists()  # refused before the store opens
    # balanced holds on the synthetic fitting set and on real partial prints cut to the R503's window (held out)
    with Authenticator.from_config(r503_config(10, allow_unsupported_level=False), state) as auth:
        assert isinstance(auth, SmallSensorAuthenticator) and auth.decision_info.supported is True
        assert auth.threshold == auth.small_card.thresholds["1e-4"] and auth.budget <= 16 * 1024
        assert auth.small_card.window == (189, 189)
        assert "holds on held-out fingerprint/polyu_hrf_500dpi@189x189" in auth.decision_info.summary()
    with Authenticator.from_config(r503_config(10, security="secure"), state) as auth:
        assert auth.decision_info.supported is False
        assert "allowed by matching.allow_unsupported_level" in auth.decision_info.summary()
    with Authenticator.from_config(r503_config(5, minutiae_card=big), state) as auth:
        refused = auth.verify("nobody", touch(0, 100))  # a touch smaller than the card's window: not decided
        assert not refused.accepted and "smaller than the 250x250 px window" in refused.reason
    card = tmp_path / "card.json"
    raw["thresholds"]["1e-4"] = 3.0  # a lower threshold written in by hand
    card.write_text(json.dumps(raw))
    with pytest.raises(ConfigError, match="edited after calibration"):
        Authenticator.from_config(r503_config(10, minutiae_card=card), state)


def test_biolock_enroll_on_the_emulated_r503_then_verify_and_identify(tmp_path):
    from device.sensors.r30x_emulator import R30xEmulator

    state = tmp_path / "state"
    with R30xEmulator("r503") as emu:
        cfg = tmp_path / "biolock.toml"
        cfg.write_text(f'[sensor]\ntype = "r30x"\nmodule = "r503"\nport = "{emu.port}"\nfinger_timeout_s = 5\n'
                       'timeout_s = 2\n[matching]\nallow_unsupported_level = true\n')  # else 10 placements,
        # balanced, the shipped card (which supports no level: refused at start without the override)
        for i in range(40):
            emu.present(touch(0, i))
        run = CliRunner().invoke(main, ["--config", str(cfg), "--state-dir", str(state), "enroll", "alice"])
        assert run.exit_code == 0, run.output
        assert "touch 10 times, moving the finger a little each time" in run.output
        assert "first placement stored" in run.output
        lines = [ln for ln in run.output.splitlines() if ln.startswith("[")]
        assert "(10/10)" in lines[-1] and "done: placement 10 stored" in lines[-1]
        assert any("move your finger" in ln and "% of the finger)" in ln for ln in lines)
        assert f"enrolled alice (right-index): 10 placements from {len(lines)} touches" in run.output
        for name, img in (("genuine.png", touch(0, 100)), ("stranger.png", touch(9, 0))):
            cv2.imwrite(str(tmp_path / name), img)
        ok = CliRunner().invoke(main, ["--config", str(cfg), "--state-dir", str(state), "verify", "alice", "--image",
                                       str(tmp_path / "genuine.png"), "--json"])
        assert ok.exit_code == 0, ok.output
        who = CliRunner().invoke(main, ["--config", str(cfg), "--state-dir", str(state), "identify", "--image",
                                        str(tmp_path / "stranger.png")])
        assert who.exit_code == 1, who.output
    conn = sqlite3.connect(state / "store.db")
    (modality, model, kind, count), = conn.execute("SELECT modality, model_id, kind, count FROM enrolments")
    assert (modality, model, kind, count) == (PARTIAL_MODALITY, MODEL_ID, "bytes", 1)


@pytest.fixture
def auth(tmp_path):
    with Authenticator.from_config(r503_config(), tmp_path / "state") as a:
        yield a


def test_touches_of_another_finger_are_refused_never_merged(auth):
    # first touch of finger 0, then only finger 1: nothing links, the enrolment fails and stores nothing
    said = []
    result = auth.enroll("alice", "right-index", [touch(0, 0)] + [touch(1, i) for i in range(20)],
                         on_capture=said.append)
    assert not result.ok and "only 1 of 5 placements linked" in result.reason
    assert all("does not overlap what is enrolled: use the same finger" in f.message for f in said[1:])
    assert not auth.store.has_user("alice")
    # finger 1 interleaved with finger 0: only finger 0's touches are stored
    mixed = [touch(0, i // 2) if i % 2 == 0 else touch(1, 30 + i) for i in range(40)]
    result = auth.enroll("alice", "right-index", mixed, on_capture=said.append)
    assert result.ok and result.stored == PLACEMENTS
    refused = [at for at, why in result.rejected if "does not overlap" in why]
    assert refused and all(at % 2 == 0 for at in refused)  # attempt numbers of finger 1's touches (1-based)
    assert auth.verify("alice", touch(0, 100)).accepted
    assert not any(auth.verify("alice", touch(1, 100 + i)).accepted for i in range(3))


def test_bad_touches_are_refused_with_what_to_do(auth):
    blank = np.full((192, 192), 238, np.uint8)
    sliver = touch(0, 0).copy()
    sliver[:, 24:] = 238  # the finger covers an eighth of the window
    said = []
    result = auth.enroll("alice", "right-index", [blank, sliver, touch(0, 0), touch(0, 0)], on_capture=said.append)
    assert not result.ok and [f.ok for f in said] == [False, False, True, False]
    assert "place the finger flat" in said[1].message or "covers only" in said[1].message
    assert "the same image twice" in said[3].message
    d = auth.identify(blank)
    assert not d.accepted and d.score != d.score  # no comparison: NaN, a retry for the daemon


def test_duplicate_finger_is_refused_and_decisions_use_every_placement(auth):
    assert auth.enroll("alice", "right-index", (touch(0, i) for i in range(30))).ok
    assert auth.enroll("bob", "right-index", (touch(1, i) for i in range(30))).ok
    dup = auth.enroll("mallory", "left-index", (touch(0, 40 + i) for i in range(30)))
    assert not dup.ok and dup.duplicate_of == "alice"
    d = auth.identify(touch(1, 100))
    assert d.accepted and d.user == "bob" and d.score >= auth.threshold
    assert not auth.identify(touch(5, 0)).accepted
    v = auth.verify("carol", touch(0, 100))
    assert not v.accepted and v.reason == "not enrolled"
    auth.store.enroll_bytes("dave", "right-index", PARTIAL_MODALITY, "biolock-partial-orb128/t0s0+placements0", [b"x"])
    auth.store.enroll("erin", "right-index", "fingerprint", "fp-mobile@1+abc", [np.ones(4, np.float32)])
    assert auth.verify("dave", touch(0, 100)).reason.startswith("needs re-enrolment: enrolled with another small")
    assert auth.verify("erin", touch(0, 100)).reason.startswith("needs re-enrolment: enrolled without small")
    assert auth.stale_users() == ["dave"]
    assert auth.store.audit_tail(1)[0].score_bucket is None
    auth.verify("alice", touch(1, 100))
    assert auth.store.audit_tail(1)[0].score_bucket.startswith("matches ")


def test_a_damaged_template_scores_zero_and_a_tampered_record_stops_the_decision(auth, tmp_path):
    good = touch(0, 100)
    assert auth.enroll("alice", "right-index", (touch(0, i) for i in range(30))).ok
    assert auth.verify("alice", good).accepted
    template = auth.store.byte_templates(PARTIAL_MODALITY, MODEL_ID).templates[0]
    broken = bytearray(template)
    broken[100] ^= 1  # sealed correctly, but not a template the matcher wrote
    auth.store.enroll_bytes("alice", "right-index", PARTIAL_MODALITY, MODEL_ID, [bytes(broken)])
    d = auth.verify("alice", good)
    assert not d.accepted and d.score == 0.0 and d.reason.startswith("no match")
    auth.store.enroll_bytes("alice", "right-index", PARTIAL_MODALITY, MODEL_ID, [template])
    conn = sqlite3.connect(tmp_path / "state" / "store.db")
    conn.execute("UPDATE templates SET sealed = substr(sealed, 1, 40) || x'00' || substr(sealed, 42)")
    conn.commit()
    conn.close()
    with pytest.raises(SealError):
        auth.identify(good)


def test_status_in_small_sensor_mode_names_the_partial_matcher_not_the_model(tmp_path):
    from click.testing import CliRunner

    from device.cli import main

    cfg = tmp_path / "biolock.toml"
    cfg.write_text('[sensor]\ntype = "r30x"\nmodule = "r503"\nport = "/dev/null"\n')
    res = CliRunner().invoke(main, ["--config", str(cfg), "--state-dir", str(tmp_path / "state"), "status"])
    assert "model:      not used (small-sensor mode" in res.output, res.output
    from device.small_sensor import load_card, small_card_path

    t = load_card(small_card_path(Config())).thresholds["1e-4"]
    assert f"security:   balanced -> threshold {t:g} consistent matches" in res.output
    assert "holds on held-out fingerprint/polyu_hrf_500dpi@189x189" in res.output
