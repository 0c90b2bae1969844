"""Training behaves as Keras users expect (issue 21): no silent overwrite, the run folder says its modality, the
export gate is sized by the validation set and its override is recorded, reports name FNMR at FMR 1 %."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner

from device.cli import main
from device.errors import ConfigError


def _fake_run(tmp_path, modality: str | None = "vein"):
    run = tmp_path / "run"
    run.mkdir()
    (run / "best.keras").write_bytes(b"not a real model")
    if modality:
        (run / "run.json").write_text(json.dumps({"modality": modality, "preprocessing": f"{modality}-v1"}))
    return run


def test_fit_refuses_an_existing_run_without_resume_or_force(tmp_path):
    from training.fit import RunExistsError, check_run_folder

    run = _fake_run(tmp_path)
    with pytest.raises(RunExistsError, match="--resume.*--force"):
        check_run_folder(run, resume=False, force=False)
    assert (run / "best.keras").read_bytes() == b"not a real model"  # untouched
    check_run_folder(run, resume=True, force=False)  # continuing is fine
    with pytest.raises(ConfigError, match="contradict"):
        check_run_folder(run, resume=True, force=True)
    check_run_folder(run, resume=False, force=True)
    assert not (run / "best.keras").exists()  # --force starts over: no stale best model survives
    check_run_folder(tmp_path / "fresh", resume=False, force=False)  # a new folder needs nothing


def test_train_fit_cli_refuses_before_preparing_anything(tmp_path):
    run = _fake_run(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    res = CliRunner().invoke(main, ["train", "fit", "--modality", "vein", "--data", str(data), "--out", str(run)])
    assert res.exit_code == 2, res.output
    assert res.output.startswith("error: ") and "--resume" in res.output and "--force" in res.output
    assert not (run / "cache").exists()


def test_train_eval_reads_the_modality_from_the_run_folder_before_tensorflow(tmp_path):
    from training.embed import modality_of

    assert modality_of(_fake_run(tmp_path) / "best.keras") == "vein"
    bare = tmp_path / "bare"
    bare.mkdir()
    (bare / "best.keras").write_bytes(b"x")
    code = (
        "import sys\n"
        "from training.evaluate import evaluate_model\n"
        "try:\n"
        f"    evaluate_model({str(bare / 'best.keras')!r}, {str(tmp_path)!r})\n"
        "except Exception as exc:\n"
        "    print(type(exc).__name__, exc)\n"
        "print('tensorflow' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert "ModelError" in out and "run.json" in out and "--modality" in out
    assert out.strip().endswith("False"), "the modality error must come before TensorFlow is imported"


def _scores(n_gen: int, n_imp: int, shift: float, seed: int = 0):
    rng = np.random.default_rng(seed)
    g, i = rng.normal(0.7, 0.15, n_gen), rng.normal(0.3, 0.15, n_imp)
    return g, i, g + rng.normal(shift, 0.01, n_gen), i + rng.normal(0, 0.01, n_imp)


def test_export_gate_is_sized_by_the_validation_set():
    from training.export_gate import FLOOR, decide, paired_eer_interval

    small = paired_eer_interval(*_scores(280, 45, 0.0), replicates=200)
    assert small["half_width"] > FLOOR  # 45 impostor pairs cannot resolve half a point
    assert decide({**small, "delta": 0.008}, None)["passed"]  # within the noise: passes
    large = paired_eer_interval(*_scores(3000, 3000, -0.1), replicates=100)
    gate = decide(large, None)
    assert large["delta"] > 0.02 and not gate["passed"]  # a real int8 loss on many pairs is refused
    forced = decide(large, 0.5)
    assert forced["passed"] and forced["rule"].startswith("override") and forced["allowed"] == 0.5


def test_export_cli_offers_the_override():
    res = CliRunner().invoke(main, ["train", "export", "--help"])
    assert "--max-eer-delta" in res.output and "Example" in res.output


def test_report_names_fnmr_at_fmr_and_html_has_the_card_without_backticks(tmp_path):
    from training.report import results_table, write_report

    rng = np.random.default_rng(1)
    results = {"model": "models/fingerprint_int8.tflite", "datasets": {"fvc": {
        "genuine_pairs": 280, "impostor_pairs": 45, "eer": 0.1, "fmr100": 0.2, "fmr1000": None, "zero_fmr": 0.3,
        "roc_auc": 0.9, "rank1": 0.8}}}
    assert "FNMR at FMR 1 %" in results_table(results)[0] and "FMR100" not in results_table(results)[0]
    card = {"name": "fingerprint-mobile", "version": "2.0.0", "modality": "fingerprint",
            "thresholds": {"1e-4": 0.6}, "metrics": {"eer": 0.05}}
    history = [{"epoch": e, "loss": 1 / e, "val_eer": 0.3 / e, "val_fmr100": 0.5 / e} for e in range(1, 4)]
    paths = write_report(results, {"fvc": (rng.normal(0.7, 0.2, 280), rng.normal(0.3, 0.2, 45))}, tmp_path,
                         history, card)
    page = paths["html"].read_text()
    assert "`" not in page and "<h2>Model card</h2>" in page and "fingerprint-mobile" in page
    assert (tmp_path / "curves.png").stat().st_size > 1000 and (tmp_path / "fvc_det.png").is_file()
