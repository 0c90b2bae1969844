"""Issue 17 item 8: what a caller learns from a reject.

Attack: every reject printed the exact score and threshold (a hill-climbing oracle), and "not enrolled" vs
"no match" told a stranger which names are enrolled. Safe outcome: a reject says "no match" and nothing else
unless the admin asks with ``-v`` or ``--json``.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from models_fixture import finger_image, fixture_models  # noqa: F401 - fixture

from device.cli import main
from device.pipeline import public_reason


def write(path: Path, image: np.ndarray) -> str:
    cv2.imwrite(str(path), image)
    return str(path)


@pytest.mark.parametrize("reason, shown", [
    ("no match", "no match"), ("not enrolled", "no match"), ("needs re-enrolment: enrolled with another model",
                                                            "no match"),
    ("no fingerprint templates enrolled", "no match"), ("nobody enrolled", "no match"),
    ("not enrolled; too many failures, locked for 30 s", "no match; too many failures, locked for 30 s"),
    ("no match (fused 0.31 < 0.5)", "no match"), ("too dark", "too dark"), ("no finger found", "no finger found"),
    ("locked out: try again in 3 s", "locked out: try again in 3 s")])
def test_public_reason(reason, shown):
    assert public_reason(reason) == shown


def test_rejects_reveal_neither_score_nor_who_is_enrolled(fixture_models, tmp_path):  # noqa: F811
    cfg = tmp_path / "biolock.toml"
    cfg.write_text(f'[inference]\nmodel = "{fixture_models.int8_card}"\n[enrol]\ncaptures = 3\n')

    def run(*args: str):
        return CliRunner().invoke(main, ["--config", str(cfg), "--state-dir", str(tmp_path / "state"), *args])

    images = [a for i in range(3) for a in ("--image", write(tmp_path / f"a{i}.png", finger_image(1, i)))]
    assert run("enroll", "alice", "--finger", "right-index", *images).exit_code == 0
    stranger = write(tmp_path / "stranger.png", finger_image(9, 0))

    enrolled = run("verify", "alice", "--image", stranger)
    unknown = run("verify", "mallory", "--image", stranger)
    assert enrolled.exit_code == unknown.exit_code == 1
    assert enrolled.output == "REJECT alice: no match\n" and unknown.output == "REJECT mallory: no match\n"
    ident = run("identify", "--image", stranger)
    assert ident.exit_code == 1 and ident.output == "REJECT unknown: no match\n"
    for r in (enrolled, unknown, ident):
        assert "score" not in r.output and "threshold" not in r.output

    verbose = run("-v", "verify", "mallory", "--image", stranger)  # the admin asks for details
    assert verbose.exit_code == 1 and "not enrolled" in verbose.output and "threshold" in verbose.output
    detail = json.loads(run("verify", "alice", "--image", stranger, "--json").output)
    assert detail["reason"] == "no match" and detail["score"] < detail["threshold"]
