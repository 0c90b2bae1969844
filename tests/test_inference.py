"""Model cards and the LiteRT / Edge TPU embedders on a real int8 .tflite built by the fixture."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from models_fixture import finger_image, fixture_models, model_dir  # noqa: F401 - fixtures

from device.config import InferenceConfig
from device.errors import ModelError
from device.inference import build_embedder, card_for
from device.inference.base import dequantize, finalize, quantize
from device.inference.card import TensorSpec, load_card
from device.inference.edgetpu import EdgeTpuEmbedder
from device.inference.litert import LiteRTEmbedder
from device.preprocess import preprocess


def prepared(identity: int, impression: int) -> np.ndarray:
    return preprocess(finger_image(identity, impression), "fingerprint").image


def edit_card(path: Path, **changes) -> Path:
    raw = json.loads(path.read_text())
    for key, value in changes.items():
        if "." in key:
            outer, inner = key.split(".")
            raw[outer][inner] = value
        elif value is None:
            raw.pop(key, None)
        else:
            raw[key] = value
    path.write_text(json.dumps(raw))
    return path


def test_card_loads_with_model_id_and_thresholds(fixture_models):  # noqa: F811
    card = load_card(fixture_models.int8_card)
    assert card.model_id == f"{card.name}@{card.version}+{card.sha256[:12]}"
    assert card.input_size == (96, 96) and card.embedding_size == 128 and card.quantization == "int8-full"
    assert set(card.thresholds) >= {"1e-3", "1e-4", "2e-5"}


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"format": "something/2"}, "unknown model card format"),
        ({"sha256": "0" * 64}, "does not match the card"),
        ({"preprocessing": "fingerprint-v0"}, "unknown to this device"),
        ({"preprocessing": "vein-v1"}, "does not belong to modality"),
        ({"modality": "iris"}, "modality"),
        ({"input.shape": [1, 96, 96, 3]}, "input shape"),
        ({"input.dtype": "float16"}, "dtype"),
        ({"embedding_size": 64}, "embedding_size"),
        ({"quantization": "int4"}, "quantization"),
        ({"thresholds": {"1e-3": 0.4, "1e-4": 0.5}}, "thresholds"),
        ({"thresholds": {"1e-3": 0.4, "1e-4": 0.5, "2e-5": 7}}, "thresholds"),
        ({"thresholds": {"1e-3": 0.7, "1e-4": 0.6, "2e-5": 0.65}}, "must not decrease"),
        ({"file": "missing.tflite"}, "missing"),
        ({"name": None}, "lacks 'name'"),
    ],
)
def test_bad_cards_are_model_errors_naming_the_file(model_dir, changes, message):  # noqa: F811
    card = edit_card(model_dir / "fixture.json", **changes)
    with pytest.raises(ModelError, match=message) as info:
        load_card(card)
    assert str(card) in str(info.value) or "missing.tflite" in str(info.value)


@pytest.mark.parametrize("prep", ["fingerprint-v1", "fingerprint-v2"])
def test_cards_of_every_served_fingerprint_preprocessing_load(model_dir, prep):  # noqa: F811
    card = load_card(edit_card(model_dir / "fixture.json", preprocessing=prep))
    assert card.preprocessing == prep


def test_garbage_and_missing_cards(tmp_path):
    with pytest.raises(ModelError, match="not found"):
        load_card(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_bytes(b"\x00\xffnot json")
    with pytest.raises(ModelError, match="bad.json"):
        load_card(bad)


def test_swapped_model_under_a_card_is_refused(model_dir):  # noqa: F811
    """The float model's file under the int8 card (sha256 updated to match): tensors disagree with the card."""
    import hashlib

    card = model_dir / "fixture.json"
    shutil.copy(model_dir / "fixture_float.tflite", model_dir / "fixture_int8.tflite")
    edit_card(card, sha256=hashlib.sha256((model_dir / "fixture_int8.tflite").read_bytes()).hexdigest())
    with pytest.raises(ModelError, match="do not belong together"):
        LiteRTEmbedder(load_card(card))


def test_truncated_model_file_is_refused(model_dir):  # noqa: F811
    (model_dir / "fixture_int8.tflite").write_bytes((model_dir / "fixture_int8.tflite").read_bytes()[:1000])
    with pytest.raises(ModelError, match="does not match the card"):
        load_card(model_dir / "fixture.json")


def test_embeddings_are_unit_vectors_and_int8_tracks_float(fixture_models):  # noqa: F811
    images = np.stack([prepared(i, 0) for i in range(4)])
    with LiteRTEmbedder(load_card(fixture_models.int8_card)) as q, \
            LiteRTEmbedder(load_card(fixture_models.float_card), num_threads=2) as f:
        a, b = q.embed_batch(images), f.embed_batch(images)
        assert a.shape == (4, 128) and a.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
        assert np.all(np.sum(a * b, axis=1) > 0.97)  # int8 within quantization error of float
        np.testing.assert_allclose(q.embed(images[0]), a[0], atol=1e-6)  # one == batch of one
        assert q.model_id != f.model_id


def test_thread_count_does_not_change_the_embedding(fixture_models):  # noqa: F811
    card = load_card(fixture_models.int8_card)
    image = prepared(3, 1)
    with LiteRTEmbedder(card, num_threads=1) as one, LiteRTEmbedder(card, num_threads=2) as two:
        np.testing.assert_allclose(one.embed(image), two.embed(image), atol=1e-6)


def test_wrong_input_size_and_nan_input_are_refused(fixture_models):  # noqa: F811
    with LiteRTEmbedder(load_card(fixture_models.int8_card)) as e:
        with pytest.raises(ModelError, match="96x96"):
            e.embed(np.zeros((64, 192), np.float32))
        with pytest.raises(ModelError, match="NaN"):
            e.embed(np.full((96, 96), np.nan, np.float32))


def test_nan_model_output_fails_closed(fixture_models):  # noqa: F811
    with LiteRTEmbedder(load_card(fixture_models.nan_card)) as e:
        with pytest.raises(ModelError, match="NaN"):
            e.embed(prepared(1, 0))


def test_finalize_refuses_zero_constant_and_nan_vectors():
    with pytest.raises(ModelError, match="zero"):
        finalize(np.zeros((1, 8)), "m")
    with pytest.raises(ModelError, match="constant"):
        finalize(np.full((1, 8), 0.3), "m")
    with pytest.raises(ModelError, match="NaN"):
        finalize(np.array([[1.0, np.inf]]), "m")
    out = finalize(np.array([[3.0, 4.0], [0.0, -2.0]]), "m")
    np.testing.assert_allclose(out, [[0.6, 0.8], [0.0, -1.0]])


def test_quantize_round_trip_and_saturation():
    spec = TensorSpec((1, 2, 2, 1), "int8", 1 / 255, -128)
    x = np.array([0.0, 0.6, 1.0, 1.5], np.float32)
    q = quantize(x, spec)
    assert q.dtype == np.int8 and q.tolist() == [-128, 25, 127, 127]
    np.testing.assert_allclose(dequantize(q, spec)[:3], x[:3], atol=1 / 255)


# LiteRT's Delegate.__del__ trips over its own half-built object after a failed load (upstream bug, harmless).
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_edgetpu_missing_delegate_is_a_clear_error(fixture_models):  # noqa: F811
    with pytest.raises(ModelError, match="Edge TPU delegate .* failed to load"):
        EdgeTpuEmbedder(load_card(fixture_models.int8_card), library="libedgetpu-not-here.so.1")
    with pytest.raises(ModelError, match="fully int8"):
        EdgeTpuEmbedder(load_card(fixture_models.float_card))


@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_build_embedder_by_type_and_default_card(fixture_models):  # noqa: F811
    e = build_embedder(InferenceConfig(type="litert", num_threads=2), fixture_models.int8_card)
    assert e.backend == "litert" and e.num_threads == 2
    e.close()
    with pytest.raises(ModelError, match="Edge TPU"):
        build_embedder(InferenceConfig(type="edgetpu"), fixture_models.int8_card)
    with pytest.raises(ModelError, match="cannot serve"):
        card_for(InferenceConfig(model=fixture_models.int8_card), "vein")


def test_default_card_is_found_or_a_model_error(monkeypatch, tmp_path):
    import models

    monkeypatch.setattr(models, "MODELS_DIR", tmp_path)
    with pytest.raises(ModelError, match="--model"):
        models.default_card("fingerprint")
    (tmp_path / "vein.json").write_text("{}")
    assert models.default_card("vein") == tmp_path / "vein.json"
    with pytest.raises(ModelError, match="no shipped model"):
        models.default_card("iris")


def test_no_litert_runtime_is_a_clear_error(fixture_models, monkeypatch):  # noqa: F811
    import sys

    from device.inference import litert

    monkeypatch.setitem(sys.modules, "ai_edge_litert.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime.interpreter", None)
    monkeypatch.setitem(sys.modules, "tflite_runtime", None)
    with pytest.raises(ModelError, match="no LiteRT runtime installed"):
        litert.LiteRTEmbedder(load_card(fixture_models.int8_card))
    assert "tf.lite" not in Path(litert.__file__).read_text().replace("never ``tf.lite``", "")
