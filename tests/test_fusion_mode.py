"""The device's fusion mode end to end: real LiteRT on the fixture .tflite models, a real SQLite store, a fusion
card written by the training side's card builder, the daemon loop over replay sensors, and the CLI.

People: alice (identity 1) and bob (2) are enrolled in both modalities; mallory (7) is not. Fingerprint identity i
goes with vein identity i (one person). The card is fitted on other identities (20-39), never on the test people.
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from models_fixture import finger_image, fixture_models, vein_image  # noqa: F401 - fixture

from device.app import Daemon
from device.cli import main
from device.config import Config, DeviceConfig, EnrolConfig, InferenceConfig, MatchingConfig, SensorConfig, load_config
from device.errors import ConfigError
from device.fusion import FusionCardError, load_fusion_card, save_fusion_card
from device.fusion_capture import PairedSensor
from device.fusion_pipeline import FusionAuthenticator
from device.sensors.base import NoFingerError, Sensor
from device.sensors.replay import ReplaySensor
from device.unlock import NullUnlocker

pytestmark = pytest.mark.timeout(120)  # the first test in a session may build the fixture models

ALICE, BOB, MALLORY = 1, 2, 7
FIT_IDS, FIT_IMPRESSIONS = range(20, 40), 2  # the identities (and impressions each) the fusion card is fitted on


def captures(identity: int, impression: int, *, fingerprint: bool = True, vein: bool = True) -> dict:
    return {"fingerprint": finger_image(identity, impression) if fingerprint else None,
            "vein": vein_image(identity, impression) if vein else None}


@pytest.fixture(scope="module")
def card_file(fixture_models, tmp_path_factory) -> Path:  # noqa: F811
    """A fusion card from training/fusion/card_builder.py, fitted on the fixture models' embeddings."""
    from device.inference import build_embedder
    from device.preprocess import preprocess
    from training.fusion.card_builder import write_card

    cards = {"fingerprint": fixture_models.int8_card, "vein": fixture_models.vein_card}
    render = {"fingerprint": finger_image, "vein": vein_image}
    embeddings, models, labels = {}, {}, [str(i) for i in FIT_IDS for _ in range(FIT_IMPRESSIONS)]
    for m, card in cards.items():
        embedder = build_embedder(InferenceConfig(), card, modality=m)
        try:
            models[m] = embedder.model_id
            embeddings[m] = np.stack([embedder.embed(preprocess(render[m](i, j), m, embedder.card.input_size).image)
                                      for i in FIT_IDS for j in range(FIT_IMPRESSIONS)])
        finally:
            embedder.close()
    path = tmp_path_factory.mktemp("fusion") / "fusion_card.json"
    return write_card(path, embeddings, models, labels, "weighted_sum/tanh", "test: fixture models")


def fusion_config(fixture_models, card: Path | None, *, fallback: bool = False,  # noqa: F811
                  allow_unsupported_level: bool = True, **sections) -> Config:
    """The fixture card is calibrated on 760 impostor pairs (it supports no level): allowed unless a test checks
    the refusal (tests/test_decided_by.py)."""
    return Config(device=DeviceConfig(modality="fusion"), enrol=EnrolConfig(captures=3),
                  inference=InferenceConfig(model=fixture_models.int8_card, vein_model=fixture_models.vein_card),
                  matching=MatchingConfig(fusion_card=card, fusion_fallback=fallback,
                                          allow_unsupported_level=allow_unsupported_level), **sections)


def open_auth(fixture_models, card_file, state: Path, fallback: bool = False) -> FusionAuthenticator:  # noqa: F811
    return FusionAuthenticator.from_config(fusion_config(fixture_models, card_file, fallback=fallback), state)


@pytest.fixture(scope="module")
def enrolled_state(fixture_models, card_file, tmp_path_factory) -> Path:  # noqa: F811
    """A store with alice and bob enrolled in both modalities (built once; each test copies it)."""
    state = tmp_path_factory.mktemp("enrolled") / "state"
    with open_auth(fixture_models, card_file, state) as auth:
        for name, identity in (("alice", ALICE), ("bob", BOB)):
            results = auth.enroll(name, "right-index", {"fingerprint": [finger_image(identity, j) for j in range(3)],
                                                        "vein": [vein_image(identity, j) for j in range(3)]})
            assert {m: r.ok for m, r in results.items()} == {"fingerprint": True, "vein": True}, results
    return state


@pytest.fixture
def state(enrolled_state, tmp_path) -> Path:
    import shutil

    return Path(shutil.copytree(enrolled_state, tmp_path / "state"))


def audit_details(auth: FusionAuthenticator, n: int = 1) -> list[str]:
    return [r.detail for r in auth.store.audit_tail(n)]


# --- decisions ----------------------------------------------------------------------------------------------

def test_genuine_with_both_modalities_is_accepted(fixture_models, card_file, state):  # noqa: F811
    card = load_fusion_card(card_file)
    with open_auth(fixture_models, card_file, state) as auth:
        d = auth.verify("alice", captures(ALICE, 8))
        assert d.accepted and d.user == "alice" and d.reason == "match (fused)", d
        assert not d.fallback_used and d.audit_note is None
        assert d.threshold == pytest.approx(card.thresholds["1e-4"])  # balanced: the card's fused threshold
        assert d.score >= d.threshold and set(d.scores) == {"fingerprint", "vein"}
        who = auth.identify(captures(BOB, 9))
        assert who.accepted and who.user == "bob", who
        assert auth.store.audit_tail(1)[0].decision == "accept"


def test_impostor_is_rejected(fixture_models, card_file, state):  # noqa: F811
    with open_auth(fixture_models, card_file, state) as auth:
        d = auth.verify("alice", captures(BOB, 8))  # bob claiming to be alice
        assert not d.accepted and d.reason.startswith("no match") and d.score < d.threshold, d
        d = auth.identify(captures(MALLORY, 0))
        assert not d.accepted and d.user is None and d.reason.startswith("no match"), d
        # a genuine fingerprint with someone else's vein is not enough either
        mixed = {"fingerprint": finger_image(ALICE, 8), "vein": vein_image(MALLORY, 0)}
        assert not auth.verify("alice", mixed).accepted


def test_missing_modality_rejects_without_fallback(fixture_models, card_file, state):  # noqa: F811
    with open_auth(fixture_models, card_file, state) as auth:
        d = auth.verify("alice", captures(ALICE, 8, vein=False), {"vein": "no finger at the vein sensor"})
        assert not d.accepted and not d.fallback_used and d.missing == {"vein": "no finger at the vein sensor"}
        assert "vein missing" in d.reason and "fallback is off" in d.reason, d.reason
        assert audit_details(auth)[0].startswith("fusion rejected: vein missing and fallback is off")
        # a capture that fails its quality gate counts as missing too
        flat = {"fingerprint": finger_image(ALICE, 8), "vein": np.full((100, 300), 128, np.uint8)}
        d = auth.identify(flat)
        assert not d.accepted and "vein" in d.missing and d.user is None, d
        # nothing captured at all: rejected, no score
        d = auth.verify("alice", {"fingerprint": None, "vein": None})
        assert not d.accepted and d.score != d.score


def test_fallback_decides_on_the_present_modality_and_audits_it(fixture_models, card_file, state):  # noqa: F811
    card = load_fusion_card(card_file)
    with open_auth(fixture_models, card_file, state, fallback=True) as auth:
        d = auth.verify("alice", captures(ALICE, 8, vein=False), {"vein": "no finger at the vein sensor"})
        assert d.accepted and d.fallback_used and d.reason.startswith("match on fingerprint alone"), d
        assert d.threshold == pytest.approx(card.matchers[0].thresholds["1e-4"])  # the fingerprint's own threshold
        detail = audit_details(auth)[0]
        assert detail.startswith("fusion fallback: vein missing; decided on fingerprint alone: accepted"), detail
        d = auth.identify(captures(BOB, 9, fingerprint=False))
        assert d.accepted and d.user == "bob" and d.fallback_used and "decided on vein alone" in d.audit_note
        d = auth.verify("alice", captures(BOB, 9, vein=False))  # fallback is not a way around a mismatch
        assert not d.accepted and d.fallback_used and d.reason.startswith("no match on fingerprint alone"), d
        assert audit_details(auth)[0].startswith("fusion fallback: vein missing; decided on fingerprint alone: "
                                                 "rejected")


def test_failures_count_towards_lockout(fixture_models, card_file, state):  # noqa: F811
    with open_auth(fixture_models, card_file, state) as auth:
        for _ in range(5):
            auth.verify("alice", captures(BOB, 8))
        d = auth.verify("alice", captures(ALICE, 8))
        assert not d.accepted and d.reason.startswith("locked out"), d
        d = auth.identify(captures(ALICE, 8))  # issue 17 item 1: the verify lockout holds in identify too
        assert not d.accepted and d.user is None and d.reason.startswith("locked out"), d


# --- start-up checks ------------------------------------------------------------------------------------------

def test_card_for_other_matchers_fails_at_load(fixture_models, card_file, tmp_path):  # noqa: F811
    data = json.loads(card_file.read_text())
    data["matchers"][1]["name"] = data["matchers"][1]["modality"] = "iris"
    data["weights"] = {"fingerprint": data["weights"]["fingerprint"], "iris": data["weights"]["vein"]}
    wrong = tmp_path / "iris_card.json"
    wrong.write_text(json.dumps(data))
    with pytest.raises(FusionCardError) as err:
        open_auth(fixture_models, wrong, tmp_path / "state")
    assert str(wrong) in str(err.value) and "iris" in str(err.value) and "fingerprint, vein" in str(err.value)


def test_card_fitted_on_another_model_fails_at_load(fixture_models, card_file, tmp_path):  # noqa: F811
    card = load_fusion_card(card_file)
    other = tmp_path / "other_card.json"
    spec = card.matchers[1]
    save_fusion_card(type(card)(card.name, card.rule, (card.matchers[0], type(spec)(
        spec.name, spec.modality, spec.normalizer, "vein-mobile@9.9.9+000000000000", spec.thresholds)),
        card.weights, card.thresholds), other)
    with pytest.raises(FusionCardError, match="fitted on model vein-mobile@9.9.9") as err:
        open_auth(fixture_models, other, tmp_path / "state")
    assert str(other) in str(err.value)


def test_missing_or_unconfigured_card_is_a_clear_error(fixture_models, tmp_path):  # noqa: F811
    absent = tmp_path / "nowhere" / "fusion_card.json"
    with pytest.raises(FusionCardError, match=f"fusion card {absent} does not exist"):
        open_auth(fixture_models, absent, tmp_path / "state")
    with pytest.raises(ConfigError, match="needs matching.fusion_card"):
        open_auth(fixture_models, None, tmp_path / "state")


def test_config_sections_for_the_second_sensor(tmp_path):
    cfg = tmp_path / "biolock.toml"
    cfg.write_text('[device]\nmodality = "fusion"\n[matching]\nfusion_card = "card.json"\n'
                   '[sensor]\ntype = "r30x"\n[sensor_vein]\ntype = "camera"\nsource = "1"\nfinger_timeout_s = 4\n'
                   '[inference]\nvein_model = "vein.json"\n')
    config = load_config(cfg)
    assert config.sensor.type == "r30x" and config.sensor_vein.type == "camera"
    assert config.sensor_vein.finger_timeout_s == 4.0 and config.inference.vein_model == Path("vein.json")
    assert load_config(None).sensor_vein is None
    cfg.write_text('[device]\nmodality = "fusion"\n[sensor_vein]\ntype = "camera"\nsorce = "1"\n')
    with pytest.raises(ConfigError, match="unknown key 'sensor_vein.sorce'"):
        load_config(cfg)
    cfg.write_text('[device]\nmodality = "fusion"\n[sensor_vein]\ntype = "camera"\n')
    with pytest.raises(ConfigError, match=f"{cfg}: device.modality = 'fusion' needs matching.fusion_card"):
        load_config(cfg)
    cfg.write_text('[device]\nmodality = "vein"\n[sensor_vein]\ntype = "camera"\n')
    with pytest.raises(ConfigError, match=r"\[sensor_vein\] only apply to device.modality = 'fusion'"):
        load_config(cfg)


# --- the daemon -------------------------------------------------------------------------------------------------

class SilentSensor(Sensor):
    """A vein sensor that never sees a finger (unplugged camera LED, a finger that never comes)."""

    sensor_id = "silent"

    def capture(self, timeout_s, cancel=None):
        (cancel or threading.Event()).wait(min(timeout_s, 0.05))
        raise NoFingerError("no finger")


def run_daemon(auth, fingerprints, veins, *, unlocker, vein_factory=None, require_vein=True):
    vein_factory = vein_factory or (lambda: ReplaySensor(veins, sensor_id="vein-replay"))
    sensor = lambda: PairedSensor(lambda: ReplaySensor(fingerprints, sensor_id="fp-replay"),  # noqa: E731
                                  vein_factory, secondary_timeout_s=0.2, require_secondary=require_vein)
    daemon = Daemon(sensor, lambda frame: auth.identify(frame.images, frame.missing), unlocker, duration_ms=1500,
                    poll_s=0.1, backoff_s=(0.05, 0.1), clear_timeout_s=0.1, audit=auth.store.audit,
                    decide_frame=True)
    return daemon.run()


def test_daemon_in_fusion_mode_unlocks_only_for_the_genuine(fixture_models, card_file, state):  # noqa: F811
    people = [ALICE, MALLORY, BOB]
    unlocker = NullUnlocker()
    with open_auth(fixture_models, card_file, state) as auth:
        stats = run_daemon(auth, [finger_image(i, 8) for i in people], [vein_image(i, 8) for i in people],
                           unlocker=unlocker)
    assert [a.outcome for a in stats.history] == ["accepted", "rejected", "accepted"], stats.history
    assert [reason.split(":")[0] for _, reason in unlocker.grants] == ["alice", "bob"]
    assert stats.accepted == 2 and stats.unlocks == 0 and len(unlocker.denials) == 1  # NullUnlocker opens nothing


def test_silent_vein_sensor_neither_hangs_nor_unlocks(fixture_models, card_file, state):  # noqa: F811
    unlocker = NullUnlocker()
    with open_auth(fixture_models, card_file, state) as auth:
        stats = run_daemon(auth, [finger_image(ALICE, 8)], [], unlocker=unlocker, vein_factory=SilentSensor)
        note = audit_details(auth)[0]
    assert stats.unlocks == 0 and unlocker.grants == [] and stats.attempts == 1
    assert "no finger at the vein sensor within 0.2 s" in stats.history[0].reason
    assert note.startswith("fusion rejected: vein missing")
    with open_auth(fixture_models, card_file, state, fallback=True) as auth:  # fallback: fingerprint alone
        unlocker = NullUnlocker()
        stats = run_daemon(auth, [finger_image(ALICE, 8)], [], unlocker=unlocker, vein_factory=SilentSensor,
                           require_vein=False)
        assert stats.accepted == 1 and audit_details(auth, 2)[1].startswith("fusion fallback: vein missing")


# --- the CLI ------------------------------------------------------------------------------------------------------

def write(path: Path, image: np.ndarray) -> str:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), image)
    return str(path)


def test_cli_enrol_verify_and_run_in_fusion_mode(fixture_models, card_file, tmp_path):  # noqa: F811
    fp_dir, vein_dir = tmp_path / "fp", tmp_path / "vein"
    for k, i in enumerate([ALICE, MALLORY]):
        write(fp_dir / f"{k}.png", finger_image(i, 8))
        write(vein_dir / f"{k}.png", vein_image(i, 8))
    cfg = tmp_path / "biolock.toml"
    cfg.write_text(f'[device]\nmodality = "fusion"\n[enrol]\ncaptures = 3\n'
                   f'[inference]\nmodel = "{fixture_models.int8_card}"\nvein_model = "{fixture_models.vein_card}"\n'
                   f'[matching]\nfusion_card = "{card_file}"\nallow_unsupported_level = true\n'
                   f'[sensor]\ntype = "replay"\npath = "{fp_dir}"\n'
                   f'[sensor_vein]\ntype = "replay"\npath = "{vein_dir}"\nfinger_timeout_s = 0.5\n'
                   '[unlock]\nnone = true\n')
    runner = CliRunner()

    def run(*args: str):
        return runner.invoke(main, ["--config", str(cfg), "--state-dir", str(tmp_path / "state"), *args])

    fps = [a for j in range(3) for a in ("--image", write(tmp_path / f"a{j}.png", finger_image(ALICE, j)))]
    veins = [a for j in range(3) for a in ("--vein-image", write(tmp_path / f"v{j}.png", vein_image(ALICE, j)))]
    r = run("enroll", "alice", "--finger", "right-index", *fps)
    assert r.exit_code == 2 and "--vein-image" in r.output, r.output  # fusion enrols both (or --only)
    r = run("enroll", "alice", "--finger", "right-index", *fps, *veins)
    assert r.exit_code == 0 and "enrolled alice (right-index, vein): 3 templates" in r.output, r.output
    r = run("verify", "alice", "--image", str(fp_dir / "0.png"), "--vein-image", str(vein_dir / "0.png"), "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["reason"] == "match (fused)", r.output
    assert json.loads(r.stdout)["decided_by"]["matcher"].startswith("fusion ")  # issue 16: what decides
    r = run("verify", "alice", "--image", str(fp_dir / "0.png"))  # no vein file: missing, fallback off
    assert r.exit_code == 1 and "vein missing: no image file given" in r.output, r.output
    r = run("sensor", "test", "--vein", "--count", "1")  # the second sensor can be checked on its own
    assert r.exit_code == 0 and f"opened replay:{vein_dir}" in r.output and "quality" in r.output, r.output
    r = run("status", "--json")
    info = json.loads(r.stdout)
    assert r.exit_code == 0 and info["problems"] == [] and info["fusion"]["card"] == str(card_file), r.output
    assert info["store"]["users"] == 1 and info["vein_model"]["model_id"].startswith("fixture-vein@")
    r = run("run", "--poll", "0.1")
    assert r.exit_code == 0, r.output
    summary = json.loads(r.output.strip().splitlines()[-1])
    assert (summary["attempts"], summary["accepted"], summary["unlocks"], summary["rejected"]) == (2, 1, 0, 1)


def test_run_in_fusion_mode_needs_the_vein_sensor_section(fixture_models, card_file, tmp_path):  # noqa: F811
    cfg = tmp_path / "biolock.toml"
    cfg.write_text(f'[device]\nmodality = "fusion"\n[matching]\nfusion_card = "{card_file}"\n')
    r = CliRunner().invoke(main, ["--config", str(cfg), "run"])
    assert r.exit_code == 2 and "[sensor_vein]" in r.output, r.output
    cfg.write_text(f'[device]\nmodality = "fusion"\n[matching]\nfusion_card = "{card_file}"\n'
                   '[sensor_vein]\ntype = "replay"\n')
    r = CliRunner().invoke(main, ["--config", str(cfg), "run"])
    assert r.exit_code == 2 and "[sensor_vein]: sensor.type = 'replay' needs sensor.path" in r.output, r.output
    assert SensorConfig().type == "replay"  # the single-sensor default is unchanged


# --- the paired sensor alone (no models) ----------------------------------------------------------------------

class FlakySensor(ReplaySensor):
    """A vein sensor that is unplugged during its first capture, then works when opened again."""

    opened_count = 0

    def open(self):
        type(self).opened_count += 1
        super().open()

    def capture(self, timeout_s, cancel=None):
        if type(self).opened_count == 1:
            from device.sensors.base import SensorUnavailableError

            raise SensorUnavailableError("camera unplugged")
        return super().capture(timeout_s, cancel)


def test_paired_sensor_reports_a_lost_vein_sensor_and_reopens_it():
    images = [np.full((8, 8), k, np.uint8) for k in (10, 20)]
    FlakySensor.opened_count = 0
    with PairedSensor(lambda: ReplaySensor(images), lambda: FlakySensor([np.full((4, 4), 99, np.uint8)]),
                      secondary_timeout_s=0.1) as sensor:
        first = sensor.capture(0.1)
        assert first.images["vein"] is None and first.missing == {"vein": "vein sensor lost: camera unplugged"}
        assert int(first.images["fingerprint"][0, 0]) == 10
        second = sensor.capture(0.1)
        assert second.missing == {} and int(second.images["vein"][0, 0]) == 99 and FlakySensor.opened_count == 2


def test_paired_sensor_needs_the_vein_sensor_at_start_unless_fallback(tmp_path):
    from device.sensors.base import SensorUnavailableError

    primary = ReplaySensor([np.zeros((8, 8), np.uint8)])
    absent = lambda: ReplaySensor(tmp_path / "no-camera")  # noqa: E731
    with pytest.raises(SensorUnavailableError, match="vein sensor: cannot be opened"):
        PairedSensor(lambda: primary, absent, secondary_timeout_s=0.1).open()
    assert not primary.opened  # the fingerprint sensor is released again
    with PairedSensor(lambda: ReplaySensor([np.zeros((8, 8), np.uint8)]), absent, secondary_timeout_s=0.1,
                      require_secondary=False) as sensor:
        frame = sensor.capture(0.1)
    assert frame.images["vein"] is None and "cannot be opened" in frame.missing["vein"]


def test_person_enrolled_in_one_modality_only(fixture_models, card_file, state):  # noqa: F811
    with open_auth(fixture_models, card_file, state) as auth:
        results = auth.enroll("carol", "left-index", {"fingerprint": [finger_image(3, j) for j in range(3)]})
        assert list(results) == ["fingerprint"] and results["fingerprint"].ok
        d = auth.identify(captures(3, 8))  # both captured, but carol has no vein templates
        assert not d.accepted and d.user is None and "carol" not in d.reason, d
        d = auth.verify("carol", captures(3, 8))
        assert not d.accepted and "vein missing: no vein templates enrolled for carol" in d.reason, d
    with open_auth(fixture_models, card_file, state, fallback=True) as auth:
        d = auth.identify(captures(3, 8))
        assert d.accepted and d.user == "carol" and d.fallback_used, d
        assert auth.store.audit_tail(1)[0].detail.startswith("fusion fallback: vein missing; decided on "
                                                             "fingerprint alone: accepted")
