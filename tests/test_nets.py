"""Networks: shapes, unit-length output, serialization, and parameter / multiply-add counts checked by hand."""

import numpy as np
import pytest

pytest.importorskip("tensorflow")
import keras  # noqa: E402

from training.nets import (  # noqa: E402
    FINGERPRINT_SHAPE,
    VEIN_SHAPE,
    L2Normalize,
    build_mobile_embedder,
    build_model,
    build_vgg16_siamese,
    describe_model,
)


@pytest.mark.parametrize("shape", [FINGERPRINT_SHAPE, VEIN_SHAPE])
def test_mobile_embedder_outputs_unit_vectors(shape):
    model = build_mobile_embedder(shape, embedding_size=64, width=0.5, head_channels=64)
    x = np.random.default_rng(0).random((3, *shape, 1), dtype=np.float32)
    out = np.asarray(model(x, training=False))
    assert out.shape == (3, 64)
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-5)
    assert model.layers[-1].__class__ is L2Normalize


def test_describe_counts_parameters_and_macs_by_hand():
    inp = keras.Input((8, 8, 1))
    x = keras.layers.Conv2D(4, 3, padding="same", use_bias=False)(inp)  # 8*8*3*3*1*4 = 2304 MACs, 36 params
    x = keras.layers.DepthwiseConv2D(3, strides=2, padding="same", use_bias=False)(x)  # 4*4*9*4 = 576, 36
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(5)(x)  # 64*5 = 320 MACs, 325 params
    model = keras.Model(inp, L2Normalize()(x))
    d = describe_model(model)
    assert d.params == 36 + 36 + 325 == model.count_params()
    assert d.macs == 2304 + 576 + 320
    assert d.embedding_size == 5


def test_light_model_is_far_cheaper_than_vgg16_baseline():
    light = describe_model(build_mobile_embedder(FINGERPRINT_SHAPE))
    vgg = describe_model(build_vgg16_siamese(FINGERPRINT_SHAPE))
    assert light.params < 500_000  # int8 must fit the 500 KB budget
    assert vgg.params > 20 * light.params
    assert vgg.macs > 100 * light.macs
    assert light.as_dict()["mmacs"] == pytest.approx(light.macs / 1e6, abs=0.01)


def test_save_and_load_with_custom_layer(tmp_path):
    model = build_model("mobile", (32, 32), 16, width=0.35, head_channels=16, se=False)
    path = tmp_path / "m.keras"
    model.save(path)
    loaded = keras.models.load_model(path, compile=False)
    x = np.random.default_rng(1).random((2, 32, 32, 1), dtype=np.float32)
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(model(x)), atol=1e-5)


def test_unknown_architecture():
    with pytest.raises(ValueError, match="unknown architecture"):
        build_model("resnet", FINGERPRINT_SHAPE)
