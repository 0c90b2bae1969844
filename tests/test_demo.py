"""`biolock demo` and `biolock run` end to end: real driver, emulated R307 and lock, real Authenticator + LiteRT.

The accept path uses D2's fixture model with the fixture's own finger images (the fixture network is a random
projection: it matches those, not the synthetic generator's shifted impressions). The shipped-model path is the
same code with ``render`` left to training.synth.
"""

import json
import os

import cv2
import pytest
from click.testing import CliRunner
from models_fixture import finger_image, fixture_models  # noqa: F401 - fixture

import models
from device.cli import main
from device.demo import DemoError, plan, run_demo

pytestmark = pytest.mark.timeout(300)


def test_demo_without_a_model_names_what_is_missing(monkeypatch, tmp_path):
    monkeypatch.setattr(models, "MODELS_DIR", tmp_path)
    result = CliRunner().invoke(main, ["demo"])
    assert result.exit_code == 2
    assert "fingerprint.json" in result.output and "--model" in result.output


def test_plan_interleaves_fresh_impressions():
    touches = plan(3, 2, 3)
    assert [t.kind for t in touches].count("genuine") == 6 and len(touches) == 9
    assert all(t.impression >= 20 for t in touches if t.kind == "genuine")
    assert {t.identity for t in touches if t.kind == "impostor"} == {3, 4, 5}


def test_demo_enrols_accepts_genuine_rejects_impostors_and_opens_the_lock(fixture_models):  # noqa: F811
    lines = []
    summary = run_demo(model=fixture_models.int8_card, render=finger_image, echo=lines.append)
    assert summary.enrolled == ["alice", "bob", "carol"]
    assert (summary.genuine, summary.impostors) == (6, 3)
    assert summary.impostors_rejected == 3
    assert summary.genuine_accepted == 6
    assert summary.lock == "emulated lock controller" and summary.lock_opens == summary.genuine_accepted
    assert len(summary.decision_ms) == 9 and summary.median_decision_ms > 0
    text = "\n".join(lines)
    assert "summary: enrolled 3" in text and "impostors rejected 3/3" in text and "lock opened" in text


def test_demo_cli_with_synthetic_r307_prints(fixture_models, tmp_path):  # noqa: F811
    state = tmp_path / "demo-state"
    args = ["--state-dir", str(state), "demo", "--model", str(fixture_models.int8_card), "--people", "1",
            "--genuine", "1", "--impostors", "1"]
    result = CliRunner().invoke(main, args)
    assert result.exit_code in (0, 1), result.output
    assert "sensor: emulated R307" in result.output and "summary: enrolled" in result.output
    assert (state / "templates.db").exists() or any(state.iterdir())
    again = CliRunner().invoke(main, args)  # a state dir that already holds a store is refused
    assert again.exit_code == 2 and "not empty" in again.output


def test_demo_soak_reports_memory(fixture_models):  # noqa: F811
    summary = run_demo(model=fixture_models.int8_card, render=finger_image, people=1, genuine=1, impostors=1,
                       soak=20, echo=lambda line: None)
    assert summary.memory["attempts"] == 20 and summary.memory["rss_end_kib"] > 0


def test_demo_rejects_bad_arguments(tmp_path, fixture_models):  # noqa: F811
    with pytest.raises(DemoError):
        run_demo(model=fixture_models.int8_card, people=0)
    with pytest.raises(DemoError, match="not found"):
        run_demo(model=tmp_path / "none.json")


def test_run_command_decides_on_replayed_fingers_and_reports_rss(fixture_models, tmp_path):  # noqa: F811
    state = tmp_path / "state"
    run_demo(model=fixture_models.int8_card, render=finger_image, people=1, genuine=0, impostors=0,
             state_dir=state, echo=lambda line: None)  # enrols alice (identity 0) into `state`
    folder = tmp_path / "replay"
    folder.mkdir()
    for i, (identity, impression) in enumerate([(0, 30), (5, 0), (0, 31)]):
        cv2.imwrite(str(folder / f"{i}.png"), finger_image(identity, impression))
    (folder / "3.png").write_bytes(b"")  # a capture that cannot be read: a fault, audited, nothing opens
    cfg = tmp_path / "biolock.toml"
    cfg.write_text(f'[sensor]\ntype = "replay"\npath = "{folder}"\n[unlock]\nduration_ms = 500\nnone = true\n')
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    result = CliRunner(env=env).invoke(
        main, ["--config", str(cfg), "--state-dir", str(state), "run", "--model", str(fixture_models.int8_card)]
    )
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output.strip().splitlines()[-1])
    assert (stats["attempts"], stats["accepted"], stats["rejected"], stats["unlocks"]) == (4, 2, 1, 0)  # no lock
    assert stats["faults"] == 1
    from device.store import TemplateStore

    with TemplateStore.open(state, None) as store:
        events = [(r.event, r.decision) for r in store.audit_tail(4)]
    assert events == [("identify", "accept"), ("identify", "reject"), ("identify", "accept"), ("sensor", "fault")]
    cfg.write_text(f'[sensor]\ntype = "replay"\npath = "{folder}"\nloop = true\n[unlock]\nnone = true\n')
    result = CliRunner().invoke(
        main, ["--config", str(cfg), "--state-dir", str(state), "run", "--model", str(fixture_models.int8_card),
               "--soak", "30"]
    )
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output.strip().splitlines()[-1])
    assert stats["attempts"] == 30 and stats["memory"]["attempts"] == 30 and stats["faults"] == 30 // 4


def test_run_in_verify_mode_needs_a_user(tmp_path):
    cfg = tmp_path / "biolock.toml"
    cfg.write_text('[matching]\nmode = "verify"\n')
    result = CliRunner().invoke(main, ["--config", str(cfg), "run"])
    assert result.exit_code == 2 and "--user" in result.output


def test_fusion_demo_fits_a_synthetic_card_and_runs_without_tensorflow():
    """`biolock demo --modality fusion` on the shipped models, in a fresh interpreter: the device path (and the
    card fitted at start) must not import TensorFlow. Strangers are never let in; genuine counts are reported."""
    import subprocess
    import sys

    code = ("import sys\nfrom click.testing import CliRunner\nfrom device.cli import main\n"
            "r = CliRunner().invoke(main, ['demo', '--modality', 'fusion', '--people', '2', '--genuine', '1', "
            "'--impostors', '2'])\nprint(r.output)\n"
            "print('tensorflow imported:', any(m.split('.')[0] in ('tensorflow', 'keras') for m in sys.modules))\n"
            "sys.exit(r.exit_code)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    out = done.stdout
    assert done.returncode == 0, out + done.stderr  # 1: an impostor was accepted
    assert "fitted at start on synthetic data only" in out
    assert "matching.allow_unsupported_level = true" in out and "level: 'balanced'" in out
    assert "enrol alice  (right-index): fingerprint 2 captures, vein 2 captures, stored" in out
    assert "summary: enrolled 2 (alice, bob)" in out and "impostors rejected 2/2" in out
    assert "genuine accepted" in out and "unlocks carried out by the lock controller" in out
    assert "tensorflow imported: False" in out
