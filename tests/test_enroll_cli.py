"""The admin CLI: enroll / verify / identify / status from image files and from the (replay) sensor."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from click.testing import CliRunner
from helpers import write
from models_fixture import finger_image, fixture_models  # noqa: F401 - fixture

from device.cli import main


def enrol_args(tmp: Path, identity: int, name: str) -> list[str]:
    args = []
    for i in range(3):
        args += ["--image", write(tmp / f"{name}{i}.png", finger_image(identity, i))]
    return args


def test_enroll_verify_identify_exit_codes(env):
    run, tmp = env
    r = run("enroll", "alice", "--finger", "right-index", *enrol_args(tmp, 1, "alice"))
    assert r.exit_code == 0 and "enrolled alice (right-index): 3 templates" in r.output, r.output
    assert run("enroll", "bob", "--finger", "left-thumb", *enrol_args(tmp, 2, "bob")).exit_code == 0

    alice = write(tmp / "probe_alice.png", finger_image(1, 9))
    r = run("verify", "alice", "--image", alice)
    assert r.exit_code == 0 and r.output.startswith("ACCEPT alice: match"), r.output
    r = run("verify", "bob", "--image", alice, "--json")
    assert r.exit_code == 1
    decision = json.loads(r.output)
    assert decision["accepted"] is False and decision["score"] < decision["threshold"]

    r = run("identify", "--image", alice, "--json")
    assert r.exit_code == 0 and json.loads(r.output)["user"] == "alice"
    r = run("identify", "--image", write(tmp / "stranger.png", finger_image(7, 0)))
    assert r.exit_code == 1 and r.output.startswith("REJECT unknown")

    r = run("status", "--json")
    status = json.loads(r.output)
    assert r.exit_code == 0 and status["store"]["users"] == 2 and status["store"]["templates"] == 6
    assert status["model"]["threshold"] == 0.55 and status["problems"] == []


def test_failed_enrolment_is_an_error_and_stores_nothing(env):
    run, tmp = env
    blank = write(tmp / "blank.png", np.full((288, 256), 255, np.uint8))
    r = run("enroll", "carol", "--finger", "right-index", "--image", blank, "--image", blank, "--json")
    assert r.exit_code == 2 and "error: enrolment of carol (right-index) failed" in r.output
    assert json.loads(r.output.splitlines()[0])["stored"] == 0
    r = run("enroll", "carol", "--finger", "nose", "--image", blank)
    assert r.exit_code == 2 and "unknown finger" in r.output and "Traceback" not in r.output
    assert json.loads(run("status", "--json").output)["store"] is None  # a failed enrolment creates no store
    assert not (tmp / "state").exists() or not any((tmp / "state").iterdir())


def test_verify_and_enroll_from_the_sensor(env):
    """Without --image the configured sensor (here the replay sensor over a folder) is used."""
    run, tmp = env
    for i in range(3):
        write(tmp / "sensor" / f"{i}.png", finger_image(3, i))
    r = run("enroll", "dave", "--finger", "right-ring")
    assert r.exit_code == 0, r.output
    assert "place your finger" in r.output
    # the replay sensor starts again for the new process: its first image is dave's
    r = run("verify", "dave")
    assert r.exit_code == 0, r.output


def test_errors_are_one_line_with_exit_2(env, tmp_path):
    run, tmp = env
    bad = tmp / "bad.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    r = run("verify", "alice", "--image", str(bad))
    assert r.exit_code == 2 and "bad.png" in r.output and "Traceback" not in r.output
    r = CliRunner().invoke(main, ["--state-dir", str(tmp_path / "s2"), "verify", "alice", "--image",
                                  write(tmp / "x.png", finger_image(1, 0))])
    from models import MODELS_DIR

    if (MODELS_DIR / "fingerprint.json").is_file():  # shipped model: nobody is enrolled in the new store
        assert r.exit_code == 1 and "no match" in r.output  # never "not enrolled" (issue 17 item 8)
    else:
        assert r.exit_code == 2 and "--model" in r.output and "Traceback" not in r.output


def test_status_lists_users_to_re_enrol_after_a_model_change(env, fixture_models):  # noqa: F811
    run, tmp = env
    r = run("enroll", "erin", "--finger", "left-ring", "--model", str(fixture_models.float_card),
            *enrol_args(tmp, 4, "erin"))
    assert r.exit_code == 0, r.output
    r = run("status")  # the configured (int8) model is current: erin's float-model templates are stale
    assert r.exit_code == 0 and "re-enrol:   erin" in r.output
    r = run("-v", "verify", "erin", "--image", write(tmp / "erin_probe.png", finger_image(4, 7)))
    assert r.exit_code == 1 and "needs re-enrolment" in r.output  # only with -v (issue 17 item 8)
