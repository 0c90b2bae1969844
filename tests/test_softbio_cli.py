"""``biolock train softbio`` end to end: files in, report out; user errors are one line with exit code 2."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from device.cli import main
from training.softbio import planted


def _invoke(*args):
    return CliRunner().invoke(main, ["train", "softbio", *map(str, args)])


def test_svm_study_on_a_socofing_folder_writes_the_report(tmp_path):
    root = planted.write_socofing_set(tmp_path / "SOCOFing", subjects=20, fingers=2, seed=1, altered_per_print=1,
                                      size=64)
    (root / "Real" / "notes_scan.bmp").write_bytes(next((root / "Real").iterdir()).read_bytes())
    out = tmp_path / "out"
    result = _invoke("--data", root, "--out", out, "--models", "svm", "--size", 64)
    assert result.exit_code == 0, result.output
    assert "| svm | subject |" in result.output and "| svm | image |" in result.output
    study = json.loads((out / "results.json").read_text())
    assert study["data"]["images"] == 20 * 2 * 2 and study["data"]["altered_images"] == 40
    assert study["shared_between_parts"]["subject"] == {"subjects": 0, "source_prints": 0}
    assert study["shared_between_parts"]["image"]["subjects"] > 0
    ev = {e["split"]: e for e in study["evaluations"]}
    assert set(ev["subject"]["per_hand"]) == {"left", "right"}
    assert set(ev["subject"]["real_vs_altered"]) == {"real", "altered"}
    report = (out / "report.md").read_text()
    for needle in ("Limitations", "Privacy", "notes_scan.bmp", "Per finger", "Real vs altered", "inflation"):
        assert needle in report, needle
    assert (out / "confusion.png").stat().st_size > 1000 and (out / "roc.png").stat().st_size > 1000
    assert not (out / "curves.png").exists()  # no CNN ran


def test_one_class_is_a_one_line_error(tmp_path):
    manifest = planted.write_planted_set(tmp_path / "p", subjects=8, impressions=1, seed=0)
    text = manifest.read_text().replace(",female,", ",male,")
    manifest.write_text(text)
    result = _invoke("--data", manifest, "--out", tmp_path / "out", "--models", "svm")
    assert result.exit_code == 2
    assert "error: only one class" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_too_few_subjects_and_unknown_model_are_one_line_errors(tmp_path):
    manifest = planted.write_planted_set(tmp_path / "p", subjects=6, impressions=2, seed=0)
    result = _invoke("--data", manifest, "--out", tmp_path / "out", "--models", "svm")
    assert result.exit_code == 2 and "too few subjects" in result.output
    result = _invoke("--data", manifest, "--out", tmp_path / "out", "--models", "svm,knn")
    assert result.exit_code == 2 and "unknown model" in result.output


def test_permute_labels_is_recorded(tmp_path):
    manifest = planted.write_planted_set(tmp_path / "p", subjects=24, impressions=1, seed=2, size=64)
    out = tmp_path / "out"
    result = _invoke("--data", manifest, "--out", out, "--models", "svm", "--split", "subject", "--permute-labels")
    assert result.exit_code == 0, result.output
    study = json.loads((out / "results.json").read_text())
    assert study["permuted_labels"] is True and "--permute-labels" in study["command"]
    assert "PERMUTED" in (out / "report.md").read_text()


@pytest.mark.slow
@pytest.mark.timeout(900)  # TensorFlow's import and graph tracing take minutes on a CPU shared by many jobs
def test_cnn_smoke_run_and_resnet_shape(tmp_path):
    """The small CNN trains for one epoch on tiny images end to end; the ResNet is deeper and residual."""
    manifest = planted.write_planted_set(tmp_path / "p", subjects=24, impressions=1, seed=3, size=48)
    out = tmp_path / "out"
    result = _invoke("--data", manifest, "--out", out, "--models", "cnn", "--split", "subject",
                     "--epochs", 1, "--size", 32, "--batch-size", 16)
    assert result.exit_code == 0, result.output
    study = json.loads((out / "results.json").read_text())
    (e,) = study["evaluations"]
    assert e["model"] == "cnn" and e["info"]["epochs_run"] == 1 and len(e["history"]["val_loss"]) == 1
    assert 0.0 <= e["auc"] <= 1.0 and e["test_images"] == sum(e["test_images_per_class"].values())
    assert (out / "curves.png").stat().st_size > 1000

    from training.softbio.cnn import build_cnn, build_resnet
    from training.softbio.models import Budget

    cnn, resnet = build_cnn(32, Budget()), build_resnet(32, Budget())
    adds = [layer for layer in resnet.layers if type(layer).__name__ == "Add"]
    convs = [layer for layer in resnet.layers if type(layer).__name__ == "Conv2D"]
    assert len(adds) == 6 and len(convs) > 12 and resnet.count_params() > 10 * cnn.count_params()
    assert [type(layer).__name__ for layer in cnn.layers].count("Conv2D") == 2
