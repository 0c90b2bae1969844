"""The onnxruntime backend (CPU provider here) against LiteRT on the same inputs."""

from __future__ import annotations

import json

import numpy as np
import pytest
from models_fixture import finger_image, fixture_models, model_dir  # noqa: F401 - fixtures

from device.config import InferenceConfig
from device.errors import ModelError
from device.inference import build_embedder
from device.inference.card import load_card
from device.inference.litert import LiteRTEmbedder
from device.inference.onnx_backend import OnnxEmbedder, choose_providers
from device.matching import accept, cosine_scores, threshold_for
from device.preprocess import preprocess

pytest.importorskip("onnxruntime")


@pytest.fixture
def onnx_card(fixture_models):  # noqa: F811
    if fixture_models.onnx_error:
        pytest.fail(f"the fixture's ONNX export failed: {fixture_models.onnx_error}")
    return load_card(fixture_models.int8_card)


def test_onnx_cpu_matches_litert_embeddings_and_decisions(onnx_card, fixture_models, tmp_path):  # noqa: F811
    images = np.stack([preprocess(finger_image(i // 2, i % 2), "fingerprint").image for i in range(8)])
    with OnnxEmbedder(onnx_card, state_dir=tmp_path) as onnx, \
            LiteRTEmbedder(load_card(fixture_models.float_card)) as flt, LiteRTEmbedder(onnx_card) as q:
        assert onnx.providers == ["CPUExecutionProvider"]
        a, b, c = onnx.embed_batch(images), flt.embed_batch(images), q.embed_batch(images)
        np.testing.assert_allclose(a, b, atol=1e-4)  # same float network: same numbers
        assert np.all(np.sum(a * c, axis=1) > 0.97)  # int8 LiteRT within quantization error
        threshold = threshold_for(onnx_card.thresholds, "balanced")
        for i in range(len(images)):
            da = [accept(s, threshold) for s in cosine_scores(a[i], a)]
            dc = [accept(s, threshold) for s in cosine_scores(c[i], c)]
            assert da == dc
        assert da.count(True) == 2  # itself and its other impression


def test_build_embedder_onnx_type(onnx_card, tmp_path):
    e = build_embedder(InferenceConfig(type="onnx"), onnx_card, state_dir=tmp_path)
    assert e.backend == "onnx" and e.model_id == onnx_card.model_id
    e.close()


def test_onnx_file_is_checked(model_dir, tmp_path):  # noqa: F811
    card = model_dir / "fixture.json"
    raw = json.loads(card.read_text())
    if not raw["onnx_file"]:
        pytest.skip("no ONNX export")
    (model_dir / raw["onnx_file"]).write_bytes(b"not onnx")
    with pytest.raises(ModelError, match="does not match the card"):
        OnnxEmbedder(load_card(card), state_dir=tmp_path)
    raw["onnx_file"] = None
    card.write_text(json.dumps(raw))
    with pytest.raises(ModelError, match="names no onnx_file"):
        OnnxEmbedder(load_card(card))


def test_provider_preference_and_trt_engine_cache(tmp_path):
    chosen = choose_providers(["CPUExecutionProvider", "CUDAExecutionProvider", "TensorrtExecutionProvider"],
                              tmp_path)
    assert chosen[0][0] == "TensorrtExecutionProvider"
    assert chosen[0][1]["trt_engine_cache_path"] == str(tmp_path) and chosen[0][1]["trt_engine_cache_enable"]
    assert chosen[1:] == ["CUDAExecutionProvider", "CPUExecutionProvider"]
    assert choose_providers(["CPUExecutionProvider"], None) == ["CPUExecutionProvider"]
    with pytest.raises(ModelError):
        choose_providers(["AzureExecutionProvider"], None)
