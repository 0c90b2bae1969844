"""A small, real .tflite embedder + model card for the device-core tests (built once per test session).

Why a hand-built network and not a trained one: the tests exercise the device plumbing (card checks, LiteRT int8,
matching, enrolment, lockout), not accuracy, and training would cost minutes. The network is a tiny CNN whose
first convolution has zero-mean kernels (so a uniform image embeds to the zero vector, which the device must refuse)
followed by a tanh, a second convolution, average pooling, a dense layer and ``tf.math.l2_normalize`` inside a
registered custom layer. With random weights it is close to a random projection of the high-passed image, so two
impressions of the same synthetic finger score high and different fingers score near zero -- enough to test
decisions. A second network of the same shape takes 64x192 vein ROIs. The cards' thresholds are fixed by hand
for this fixture (they are not measured FMR thresholds).

Only this file imports TensorFlow, and only inside :func:`build_fixture_models`.
Set ``BIOLOCK_TEST_MODEL_CACHE=/some/dir`` to reuse built models between test sessions while developing.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

INPUT = (96, 96)
VEIN_INPUT = (64, 192)
EMBEDDING = 128
THRESHOLDS = {"1e-3": 0.45, "1e-4": 0.55, "2e-5": 0.65}
VEIN_THRESHOLDS = {"1e-3": 0.65, "1e-4": 0.72, "2e-5": 0.8}  # vein impostors here reach ~0.5, genuine >= 0.9
FIXTURE_VERSION = "4"  # bump when the network or images change (invalidates BIOLOCK_TEST_MODEL_CACHE)


@dataclass(frozen=True)
class FixtureModels:
    """Paths of the built fixture artifacts."""

    root: Path
    int8_card: Path  # int8-full .tflite + ONNX (float) export
    float_card: Path  # float32 .tflite of the same weights
    nan_card: Path  # a float model whose output is NaN for every input
    vein_card: Path  # int8-full vein model (64x192 input, vein-v1 preprocessing)
    onnx_error: str | None  # exact error if the ONNX export failed


def finger_image(identity: int, impression: int, shape: tuple[int, int] = (288, 256), noise: float = 6.0) -> np.ndarray:
    """A synthetic fingerprint-like uint8 image: ridges following a smooth, identity-specific orientation field.

    Impressions of one identity differ by sensor noise and a small contrast change only (no shift), which the
    fixture network tolerates. The finger fills the frame (no background shared by every identity).
    """
    h, w = shape
    rng = np.random.default_rng(identity * 7919 + 13)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = xx / w - 0.5, yy / h - 0.5
    theta = np.zeros_like(u)
    for _ in range(4):
        a, fx, fy, ph = rng.normal(0, 1.2), rng.uniform(0.5, 3), rng.uniform(0.5, 3), rng.uniform(0, 6.28)
        theta += a * np.sin(2 * np.pi * (fx * u + fy * v) + ph)
    period = rng.uniform(8.0, 11.0)
    phase = np.cumsum(np.cos(theta), axis=1) + np.cumsum(np.sin(theta), axis=0)
    ridges = np.sin(2 * np.pi * phase / period + rng.uniform(0, 6.28))
    irng = np.random.default_rng(identity * 104729 + impression * 31 + 7)
    contrast = 1.0 + irng.uniform(-0.08, 0.08)
    img = 128 + 90 * contrast * ridges + irng.normal(0, noise, size=ridges.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def vein_image(identity: int, impression: int, shape: tuple[int, int] = (100, 300), noise: float = 4.0) -> np.ndarray:
    """A synthetic NIR finger-vein ROI (finger axis horizontal): dark, smooth, identity-specific vessels on a
    brighter finger; impressions differ by noise and brightness only."""
    h, w = shape
    rng = np.random.default_rng(identity * 6007 + 5)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    img = 170 - 60 * (2 * (yy / h - 0.5)) ** 2
    for _ in range(int(rng.integers(5, 8))):
        y0, amp, freq = rng.uniform(0.2, 0.8) * h, rng.uniform(5, 20), rng.uniform(0.5, 2.5)
        phase, width = rng.uniform(0, 6.3), rng.uniform(2, 4)
        centre = y0 + amp * np.sin(2 * np.pi * freq * xx / w + phase)
        img -= 45 * np.exp(-(((yy - centre) / width) ** 2))
    irng = np.random.default_rng(identity * 104729 + impression * 31 + 11)
    img = img * (1 + irng.uniform(-0.05, 0.05)) + irng.normal(0, noise, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _write_card(path: Path, tflite: Path, quantization: str, onnx: Path | None, name: str,
                modality: str = "fingerprint") -> None:
    from ai_edge_litert.interpreter import Interpreter

    interp = Interpreter(model_path=str(tflite), num_threads=1)
    inp, out = interp.get_input_details()[0], interp.get_output_details()[0]

    def tensor(detail: dict) -> dict:
        scale, zero = detail["quantization"]
        return {"shape": [int(s) for s in detail["shape"]], "dtype": np.dtype(detail["dtype"]).name,
                "scale": float(scale), "zero_point": int(zero)}

    card = {
        "format": "biolock-model-card/1", "name": name, "version": "0.0.1", "modality": modality,
        "file": tflite.name, "sha256": _sha256(tflite),
        "onnx_file": onnx.name if onnx else None, "onnx_sha256": _sha256(onnx) if onnx else None,
        "input": tensor(inp), "output": tensor(out), "embedding_size": EMBEDDING,
        "preprocessing": f"{modality}-v1", "quantization": quantization,
        "thresholds": dict(VEIN_THRESHOLDS if modality == "vein" else THRESHOLDS),
        "metrics": {"eer": None, "genuine_pairs": 0, "impostor_pairs": 0, "fmr100": None},
        "trained_on": "test fixture: random-projection CNN, thresholds fixed by hand (not measured)",
        "created": "2026-11-22",
    }
    path.write_text(json.dumps(card, indent=2))


def build_fixture_models(out: Path) -> FixtureModels:
    """Build the fixture models into ``out`` (TensorFlow imported here only)."""
    import tensorflow as tf

    keras = tf.keras
    out.mkdir(parents=True, exist_ok=True)

    @keras.utils.register_keras_serializable(package="biolock_test")
    class L2Normalize(keras.layers.Layer):
        def call(self, x):
            return tf.math.l2_normalize(x, axis=-1)

    def projection_model(size: tuple[int, int], seed: int):
        rng = np.random.default_rng(seed)
        inp = keras.Input((*size, 1), name="image")
        conv1 = keras.layers.Conv2D(16, 5, strides=2, padding="valid", use_bias=False)
        x = keras.layers.Activation("tanh")(conv1(inp))
        conv2 = keras.layers.Conv2D(16, 3, strides=2, padding="valid", use_bias=False)
        x = keras.layers.AveragePooling2D(4)(conv2(x))
        x = keras.layers.Flatten()(x)
        dense = keras.layers.Dense(EMBEDDING, use_bias=False)
        model = keras.Model(inp, L2Normalize()(dense(x)))
        k1 = rng.normal(0, 1, (5, 5, 1, 16)).astype(np.float32)
        k1 -= k1.mean(axis=(0, 1, 2), keepdims=True)  # zero-mean: a uniform image gives a zero vector
        conv1.set_weights([k1 * 0.5])
        conv2.set_weights([rng.normal(0, 0.3, (3, 3, 16, 16)).astype(np.float32)])
        dense.set_weights([rng.normal(0, 0.1, (dense.input.shape[-1], EMBEDDING)).astype(np.float32)])
        return model

    def int8_tflite(model, calib: list[np.ndarray], path: Path) -> None:
        def representative():
            for arr in calib:
                yield [arr[None, :, :, None]]

        conv = tf.lite.TFLiteConverter.from_keras_model(model)
        conv.optimizations = [tf.lite.Optimize.DEFAULT]
        conv.representative_dataset = representative
        conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        conv.inference_input_type = tf.int8
        conv.inference_output_type = tf.int8
        path.write_bytes(conv.convert())

    model = projection_model(INPUT, 1234)
    int8 = out / "fixture_int8.tflite"
    from device.preprocess import preprocess  # calibrate on what the device will feed the model

    int8_tflite(model, [preprocess(finger_image(i, j), "fingerprint").image for i in range(12) for j in range(2)],
                int8)
    flt = out / "fixture_float.tflite"
    flt.write_bytes(tf.lite.TFLiteConverter.from_keras_model(model).convert())
    vein = out / "vein_int8.tflite"
    int8_tflite(projection_model(VEIN_INPUT, 4321),
                [preprocess(vein_image(i, 0), "vein").image for i in range(12)], vein)

    onnx_path: Path | None = out / "fixture.onnx"
    onnx_error = None
    try:
        import tf2onnx

        spec = (tf.TensorSpec((None, *INPUT, 1), tf.float32, name="image"),)
        fn = tf.function(lambda x: model(x, training=False))
        tf2onnx.convert.from_function(fn, input_signature=spec, opset=13, output_path=str(onnx_path))
    except Exception as exc:  # noqa: BLE001 - reported verbatim by the ONNX tests
        onnx_error = f"{type(exc).__name__}: {exc}"
        onnx_path = None

    nan_in = keras.Input((*INPUT, 1))
    nan_out = keras.layers.Lambda(lambda t: tf.math.sqrt(-1.0 - keras.layers.Flatten()(t)[:, :EMBEDDING]))(nan_in)
    nan_model = keras.Model(nan_in, nan_out)
    nan_tfl = out / "nan_float.tflite"
    nan_tfl.write_bytes(tf.lite.TFLiteConverter.from_keras_model(nan_model).convert())

    cards = (out / "fixture.json", out / "fixture_float.json", out / "nan.json", out / "vein.json")
    _write_card(cards[0], int8, "int8-full", onnx_path, "fixture-mobile")
    _write_card(cards[1], flt, "float32", None, "fixture-mobile-float")
    _write_card(cards[2], nan_tfl, "float32", None, "fixture-nan")
    _write_card(cards[3], vein, "int8-full", None, "fixture-vein", modality="vein")
    (out / "onnx_error.txt").write_text(onnx_error or "")
    return FixtureModels(out, *cards, onnx_error)


def _load(out: Path) -> FixtureModels:
    err = (out / "onnx_error.txt").read_text() or None
    return FixtureModels(out, out / "fixture.json", out / "fixture_float.json", out / "nan.json", out / "vein.json",
                         err)


_BUILT: dict[str, FixtureModels] = {}


@pytest.fixture(scope="session")
def fixture_models(tmp_path_factory: pytest.TempPathFactory) -> FixtureModels:
    """Built once per session (TensorFlow conversion takes seconds); optionally cached across sessions."""
    cache = os.environ.get("BIOLOCK_TEST_MODEL_CACHE")
    src = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:12]
    cached = Path(cache) / f"fixture-{FIXTURE_VERSION}-{src}" if cache else None
    # find, not import: a cached build needs no TensorFlow (the emulated board check, deploy/arm64, builds the
    # models on the host and runs the tests on aarch64 without TensorFlow)
    if importlib.util.find_spec("tensorflow") is None and not (cached and (cached / "vein.json").is_file()):
        pytest.skip("the fixture model needs the `train` extra (tensorflow) or a BIOLOCK_TEST_MODEL_CACHE build")
    if cached is not None:
        if not (cached / "vein.json").is_file():
            tmp = Path(cache) / f".building-{os.getpid()}"
            shutil.rmtree(tmp, ignore_errors=True)
            build_fixture_models(tmp)
            shutil.rmtree(cached, ignore_errors=True)
            tmp.rename(cached)
        return _load(cached)
    # Each test module imports this fixture, which pytest treats as separate definitions: build once per process.
    if "models" not in _BUILT:
        _BUILT["models"] = build_fixture_models(tmp_path_factory.mktemp("fixture-models"))
    return _BUILT["models"]


@pytest.fixture
def model_dir(fixture_models: FixtureModels, tmp_path: Path) -> Path:
    """A private, writable copy of the fixture models (tests may tamper with it)."""
    dst = tmp_path / "models"
    shutil.copytree(fixture_models.root, dst)
    return dst
