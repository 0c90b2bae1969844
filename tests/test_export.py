"""Export: a real int8 .tflite that LiteRT runs and whose card the device accepts; failures write nothing."""

import json

import numpy as np
import pytest

from device.errors import DatasetError, ModelError

pytest.importorskip("tensorflow")

from training_fixtures import *  # noqa: E402,F403 - fixtures


def test_export_writes_int8_model_and_matching_card(tiny_export):
    from ai_edge_litert.interpreter import Interpreter

    from device.inference.card import load_card, sha256_file

    card = load_card(tiny_export.card)  # the device's own validation, sha256 included
    assert card.quantization == "int8-full" and card.modality == "vein"
    assert card.input.shape == (1, 64, 192, 1) and card.input.dtype == "int8"
    assert card.sha256 == sha256_file(tiny_export.int8)
    assert set(card.thresholds) == {"1e-3", "1e-4", "2e-5"}
    assert card.thresholds["1e-3"] <= card.thresholds["1e-4"] <= card.thresholds["2e-5"]
    raw = json.loads(tiny_export.card.read_text())
    assert raw["metrics"]["genuine_pairs"] > 0 and raw["metrics"]["impostor_pairs"] > 0
    interp = Interpreter(model_path=str(tiny_export.int8))
    interp.allocate_tensors()
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]
    assert np.dtype(inp["dtype"]) == np.int8 and np.dtype(out["dtype"]) == np.int8
    interp.set_tensor(inp["index"], np.zeros(inp["shape"], np.int8))
    interp.invoke()
    assert interp.get_tensor(out["index"]).shape == (1, card.embedding_size)
    assert not list(tiny_export.card.parent.glob(".*.tmp")), "temporary files left behind"


def test_int8_embeddings_match_float_on_device_path(tiny_export, tiny_prepared):
    from training.embed import CardEmbedder, TfliteEmbedder

    q = CardEmbedder(tiny_export.card)(tiny_prepared.images[:8])
    f = TfliteEmbedder(tiny_export.float32)(tiny_prepared.images[:8])
    assert np.mean(np.sum(q * f, axis=1)) > 0.95
    assert tiny_export.checks["mean_cosine"] == pytest.approx(
        tiny_export.checks["mean_cosine"]) and tiny_export.checks["mean_cosine"] > 0.9


def test_onnx_export_runs_or_error_is_recorded(tiny_export, tiny_prepared):
    card = json.loads(tiny_export.card.read_text())
    if tiny_export.onnx is None:
        assert card["onnx_file"] is None and card["onnx_error"]
        return
    from training.embed import TfliteEmbedder
    from training.export import onnx_embed

    o = onnx_embed(tiny_export.onnx.read_bytes(), tiny_prepared.images[:4])
    f = TfliteEmbedder(tiny_export.float32)(tiny_prepared.images[:4])
    assert np.min(np.sum(o * f, axis=1)) > 0.999


def test_broken_int8_model_fails_with_numbers_and_writes_nothing(tiny_run, tiny_data, tmp_path, monkeypatch):
    import training.export as export
    from training.nets import build_model

    real_convert = export.convert_int8

    def broken(model, rep):  # quantize a different (random) network: int8 no longer matches float
        other = build_model("mobile", model.input_shape[1:3], int(model.output_shape[-1]), 0.35,
                            head_channels=32, se=False)
        return real_convert(other, rep)

    monkeypatch.setattr(export, "convert_int8", broken)
    out = tmp_path / "out"
    with pytest.raises(export.ExportError, match=r"mean cosine float vs int8 -?\d\.\d+ < 0\.99"):
        export.export_model(tiny_run.best_model, tiny_data, out, "vein", "x", representative=10, onnx=False,
                            progress=False)
    assert list(out.iterdir()) == [], "a failed export must leave nothing behind"


def test_check_match_reports_eer_gap():
    from training.export import ExportError, check_match

    checks = {"float": {"eer": 0.02}, "int8": {"eer": 0.04}, "eer_delta": 0.02, "mean_cosine": 0.995}
    with pytest.raises(ExportError, match=r"2\.00% vs int8 4\.00%"):
        check_match(checks, 0.005, 0.99)
    check_match({**checks, "eer_delta": 0.004}, 0.005, 0.99)


def _write_manifest(root, rows):
    import cv2

    root.mkdir(parents=True, exist_ok=True)
    (root / "set").mkdir(exist_ok=True)
    lines = ["dataset,relpath,identity,impression"]
    rng = np.random.default_rng(0)
    for ident, imp, content in rows:
        rel = f"{ident}_{imp}.png"
        if content is None:
            cv2.imwrite(str(root / "set" / rel), (rng.random((100, 300)) * 255).astype(np.uint8))
        else:
            (root / "set" / rel).write_bytes(content)
        lines.append(f"set,{rel},{ident},{imp}")
    (root / "manifest.csv").write_text("\n".join(lines) + "\n")
    return root


def test_bad_datasets_are_clear_errors(tmp_path):
    from training.prepared import prepare

    one = _write_manifest(tmp_path / "one", [("a", 1, None), ("a", 2, None)])
    with pytest.raises(DatasetError, match="1 identity"):
        prepare(one, "vein", workers=1, progress=False)
    single = _write_manifest(tmp_path / "single", [("a", 1, None), ("a", 2, None), ("b", 1, None)])
    with pytest.raises(DatasetError, match="fewer than 2 impressions"):
        prepare(single, "vein", workers=1, min_impressions=2, progress=False)
    broken = _write_manifest(tmp_path / "broken", [("a", 1, None), ("a", 2, None), ("b", 1, None),
                                                   ("b", 2, b"\x89PNG\r\n\x1a\n truncated")])
    with pytest.raises((DatasetError, Exception)) as info:
        prepare(broken, "vein", workers=1, min_impressions=2, progress=False)
    assert "b_2.png" in str(info.value)


def test_non_tflite_and_mismatched_card_are_refused(tiny_export, tmp_path):
    import shutil

    from training.embed import load_embedder

    fake = tmp_path / "model.tflite"
    fake.write_bytes(b"this is not a flatbuffer at all")
    with pytest.raises(ModelError, match="not a TFLite model"):
        load_embedder(fake)
    copy = tmp_path / "copy"
    shutil.copytree(tiny_export.card.parent, copy)
    model = copy / tiny_export.int8.name
    model.write_bytes(model.read_bytes()[:-16] + bytes(16))  # tamper with the weights
    with pytest.raises(ModelError, match="does not match the card"):
        load_embedder(copy / tiny_export.card.name)
