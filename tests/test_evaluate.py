"""Evaluation and reports: FVC pair counts, rank-1, JSON CLI output, report files; AUC cross-checked."""

import json

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from training_fixtures import *  # noqa: E402,F403 - fixtures


def test_rank1_on_hand_made_embeddings():
    from training.evaluate import rank1

    emb = np.array([[1, 0], [0, 1], [0.9, 0.1], [0.2, 0.8], [0.6, 0.4]], np.float64)
    emb /= np.linalg.norm(emb, axis=1, keepdims=True)
    labels = ["a", "b", "a", "b", "b"]
    imps = ["1", "1", "2", "2", "3"]
    # probes: a2 -> a (right), b2 -> b (right), b3 (0.6,0.4) -> a (wrong): 2/3
    assert rank1(emb, labels, imps) == pytest.approx(2 / 3)


def test_evaluate_tflite_with_card_gives_fvc_counts(tiny_export, tiny_data):
    from training.evaluate import evaluate_model

    results, scores = evaluate_model(tiny_export.int8, tiny_data, progress=False)
    assert results["modality"] == "vein"
    (name, r), = results["datasets"].items()
    assert r["genuine_pairs"] == 10 * 3 and r["impostor_pairs"] == 45  # 10 fingers x C(3,2); C(10,2)
    assert r["fmr1000"] is None  # fewer than 1,000 impostors: never quoted
    assert 0.0 <= r["eer"] <= 1.0 and 0.0 <= r["rank1"] <= 1.0
    g, i = scores[name]
    from sklearn.metrics import roc_auc_score

    y = np.r_[np.ones(len(g)), np.zeros(len(i))]
    assert r["roc_auc"] == pytest.approx(roc_auc_score(y, np.r_[g, i]), abs=1e-9)  # independent implementation


def test_eval_cli_json_and_report(tiny_export, tiny_data, tiny_run, tmp_path):
    from click.testing import CliRunner

    from device.cli import main

    res = CliRunner().invoke(main, ["train", "eval", str(tiny_export.card), "--data", str(tiny_data), "--json"])
    assert res.exit_code == 0, res.output
    payload = json.loads(res.output[res.output.index("{"):])
    assert list(payload["datasets"].values())[0]["genuine_pairs"] == 30
    out = tmp_path / "rep"
    res = CliRunner().invoke(main, ["train", "report", str(tiny_export.int8), "--data", str(tiny_data),
                                    "--out", str(out), "--history", str(tiny_run.out_dir / "history.json")])
    assert res.exit_code == 0, res.output
    for name in ("report.md", "report.html", "results.json", "curves.png"):
        assert (out / name).is_file(), name
    pngs = {p.name.rsplit("_", 1)[-1] for p in out.glob("*_*.png")}
    assert {"roc.png", "det.png", "hist.png", "rates.png"} <= pngs
    assert "EER" in (out / "report.md").read_text()


def test_eval_cli_errors_are_one_line(tmp_path, tiny_data):
    from click.testing import CliRunner

    from device.cli import main

    bogus = tmp_path / "m.tflite"
    bogus.write_bytes(b"nope")
    res = CliRunner().invoke(main, ["train", "eval", str(bogus), "--data", str(tiny_data), "--modality", "vein"])
    assert res.exit_code == 2 and "not a TFLite model" in res.output and "Traceback" not in res.output
