"""Embedding networks: a MobileNetV3-small-like embedder for the device and a VGG16-style baseline.

Why these shapes:

* The device runs a full-integer int8 model on a Raspberry Pi class CPU, so the embedder is built from
  depthwise-separable inverted-residual blocks (MobileNetV3-small), with ReLU / hard-swish and optional
  squeeze-and-excitation -- all ops that TFLite quantizes to int8 without float islands.
* Verification depends on *where* features are, not only on what they are, so instead of global average
  pooling the head uses a global depthwise convolution (GDConv, as in MobileFaceNet): one learned weight per
  position and channel, then a 1x1 projection to the embedding.
* The network ends in :class:`L2Normalize`, a registered custom layer calling ``tf.math.l2_normalize``, which
  converts to TFLite's single ``L2_NORMALIZATION`` op (int8 capable). Keras' ``UnitNormalization`` does not
  survive int8 conversion (see DESIGN.md).
* :func:`build_vgg16_siamese` is the classic from-scratch VGG16 siamese branch from the fingerprint one-shot
  article, kept as a baseline to show what the light model saves (:func:`describe_model` counts both).

Shapes are ``(height, width)``; fingerprints use 96x96, vein crops 64x192 (finger axis horizontal).
"""

from __future__ import annotations

from dataclasses import dataclass

import keras
import tensorflow as tf
from keras import layers

FINGERPRINT_SHAPE = (96, 96)
VEIN_SHAPE = (64, 192)


@keras.saving.register_keras_serializable(package="biolock")
class L2Normalize(layers.Layer):
    """L2-normalises the last axis with ``tf.math.l2_normalize`` (one TFLite op, int8 capable)."""

    def __init__(self, epsilon: float = 1e-12, **kwargs):
        super().__init__(**kwargs)
        self.epsilon = float(epsilon)

    def call(self, inputs):
        return tf.math.l2_normalize(inputs, axis=-1, epsilon=self.epsilon)

    def get_config(self) -> dict:
        return {**super().get_config(), "epsilon": self.epsilon}


def _act(x, kind: str, name: str):
    if kind == "relu":
        return layers.ReLU(max_value=6.0, name=f"{name}_relu6")(x)
    return layers.Activation("hard_swish", name=f"{name}_hswish")(x)


def _make_divisible(value: float, divisor: int = 8) -> int:
    new = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * value else new


def _se(x, channels: int, name: str):
    squeeze = _make_divisible(channels / 4)
    s = layers.GlobalAveragePooling2D(keepdims=True, name=f"{name}_se_pool")(x)
    s = layers.Conv2D(squeeze, 1, name=f"{name}_se_reduce")(s)
    s = layers.ReLU(name=f"{name}_se_relu")(s)
    s = layers.Conv2D(channels, 1, name=f"{name}_se_expand")(s)
    s = layers.Activation("hard_sigmoid", name=f"{name}_se_gate")(s)
    return layers.Multiply(name=f"{name}_se_mul")([x, s])


def _inverted_residual(x, kernel: int, expand: int, out: int, se: bool, act: str, stride: int, name: str):
    in_ch = x.shape[-1]
    y = x
    if expand != in_ch:
        y = layers.Conv2D(expand, 1, use_bias=False, name=f"{name}_expand")(y)
        y = layers.BatchNormalization(name=f"{name}_expand_bn")(y)
        y = _act(y, act, f"{name}_expand")
    y = layers.DepthwiseConv2D(kernel, strides=stride, padding="same", use_bias=False, name=f"{name}_dw")(y)
    y = layers.BatchNormalization(name=f"{name}_dw_bn")(y)
    y = _act(y, act, f"{name}_dw")
    if se:
        y = _se(y, expand, name)
    y = layers.Conv2D(out, 1, use_bias=False, name=f"{name}_project")(y)
    y = layers.BatchNormalization(name=f"{name}_project_bn")(y)
    if stride == 1 and in_ch == out:
        y = layers.Add(name=f"{name}_add")([x, y])
    return y


# (kernel, expansion, output channels, squeeze-excite, activation, stride): MobileNetV3-small's first seven
# blocks, which bring 96x96 down to 6x6 (and 64x192 to 4x12) -- enough for a fingerprint or a vein pattern.
_MOBILE_BLOCKS = (
    (3, 16, 16, True, "relu", 2),
    (3, 72, 24, False, "relu", 2),
    (3, 88, 24, False, "relu", 1),
    (5, 96, 40, True, "hswish", 2),
    (5, 240, 40, True, "hswish", 1),
    (5, 120, 48, True, "hswish", 1),
    (5, 144, 48, True, "hswish", 1),
)


def build_mobile_embedder(
    input_shape: tuple[int, int] = FINGERPRINT_SHAPE,
    embedding_size: int = 128,
    width: float = 1.0,
    head_channels: int = 256,
    se: bool = True,
    dropout: float = 0.0,
    name: str = "mobile_embedder",
) -> keras.Model:
    """MobileNetV3-small-like embedder: (H, W, 1) float image in [0, 1] -> unit-length embedding."""
    h, w = input_shape
    inputs = keras.Input(shape=(h, w, 1), name="image")
    x = layers.Rescaling(2.0, offset=-1.0, name="centre")(inputs)  # [0, 1] -> [-1, 1]
    x = layers.Conv2D(_make_divisible(16 * width), 3, strides=2, padding="same", use_bias=False, name="stem")(x)
    x = layers.BatchNormalization(name="stem_bn")(x)
    x = _act(x, "hswish", "stem")
    for i, (k, e, o, use_se, act, s) in enumerate(_MOBILE_BLOCKS):
        x = _inverted_residual(
            x, k, _make_divisible(e * width), _make_divisible(o * width), use_se and se, act, s, f"block{i}"
        )
    x = layers.Conv2D(head_channels, 1, use_bias=False, name="head_expand")(x)
    x = layers.BatchNormalization(name="head_expand_bn")(x)
    x = _act(x, "hswish", "head")
    fh, fw = int(x.shape[1]), int(x.shape[2])
    x = layers.DepthwiseConv2D((fh, fw), padding="valid", use_bias=False, name="gdconv")(x)
    x = layers.BatchNormalization(name="gdconv_bn")(x)
    if dropout > 0:
        x = layers.Dropout(dropout, name="dropout")(x)
    x = layers.Conv2D(embedding_size, 1, use_bias=False, name="embed")(x)
    x = layers.BatchNormalization(name="embed_bn")(x)
    x = layers.Reshape((embedding_size,), name="flatten")(x)  # static shape: no SHAPE ops in TFLite
    outputs = L2Normalize(name="l2norm")(x)
    return keras.Model(inputs, outputs, name=name)


def build_vgg16_siamese(
    input_shape: tuple[int, int] = FINGERPRINT_SHAPE,
    embedding_size: int = 128,
    width: float = 1.0,
    name: str = "vgg16_siamese",
) -> keras.Model:
    """VGG16-style siamese branch (13 3x3 convolutions in 5 blocks, from scratch), ending in a dense embedding.

    ``width`` scales every block's channels (1.0 = the original 64..512), so a narrow copy can be trained on a
    CPU for the comparison while :func:`describe_model` reports what the full one costs.
    """
    h, w = input_shape
    inputs = keras.Input(shape=(h, w, 1), name="image")
    x = layers.Rescaling(2.0, offset=-1.0, name="centre")(inputs)
    for b, (convs, ch) in enumerate(((2, 64), (2, 128), (3, 256), (3, 512), (3, 512))):
        ch = max(8, int(round(ch * width)))
        for c in range(convs):
            x = layers.Conv2D(ch, 3, padding="same", activation="relu", name=f"vgg_block{b + 1}_conv{c + 1}")(x)
        x = layers.MaxPooling2D(2, name=f"vgg_block{b + 1}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dense(max(64, int(4096 * width / 8)), activation="relu", name="fc")(x)
    x = layers.Dense(embedding_size, name="embed")(x)
    outputs = L2Normalize(name="l2norm")(x)
    return keras.Model(inputs, outputs, name=name)


ARCHITECTURES = {"mobile": build_mobile_embedder, "vgg16": build_vgg16_siamese}


def build_model(arch: str, input_shape: tuple[int, int], embedding_size: int = 128, width: float = 1.0, **kw):
    """Build a registered architecture by name (``mobile`` or ``vgg16``)."""
    if arch not in ARCHITECTURES:
        raise ValueError(f"unknown architecture {arch!r}; choose one of {sorted(ARCHITECTURES)}")
    return ARCHITECTURES[arch](input_shape=input_shape, embedding_size=embedding_size, width=width, **kw)


@dataclass(frozen=True)
class ModelDescription:
    """Size and cost of a model for one input: what the device pays per embedding."""

    name: str
    params: int
    trainable_params: int
    macs: int
    input_shape: tuple[int, ...]
    embedding_size: int

    def as_dict(self) -> dict:
        return {
            "name": self.name,
            "params": self.params,
            "trainable_params": self.trainable_params,
            "macs": self.macs,
            "mmacs": round(self.macs / 1e6, 2),
            "input_shape": list(self.input_shape),
            "embedding_size": self.embedding_size,
        }


def _layer_macs(layer) -> int:
    """Multiply-adds of one layer for batch 1 (convolutions and dense layers; the rest is negligible)."""
    if isinstance(layer, layers.DepthwiseConv2D):
        _, oh, ow, oc = layer.output.shape
        kh, kw = layer.kernel_size
        return int(oh * ow * kh * kw * oc)
    if isinstance(layer, layers.Conv2D):
        _, oh, ow, oc = layer.output.shape
        kh, kw = layer.kernel_size
        ic = layer.input.shape[-1]
        return int(oh * ow * kh * kw * ic * oc // layer.groups)
    if isinstance(layer, layers.Dense):
        return int(layer.input.shape[-1] * layer.units)
    return 0


def describe_model(model: keras.Model) -> ModelDescription:
    """Parameters and multiply-adds (per embedding, batch 1) of a functional model."""
    trainable = sum(int(tf.size(w)) for w in model.trainable_weights)
    total = sum(int(tf.size(w)) for w in model.weights)
    macs = sum(_layer_macs(layer) for layer in model.layers)
    return ModelDescription(
        name=model.name,
        params=total,
        trainable_params=trainable,
        macs=macs,
        input_shape=tuple(int(d) for d in model.input_shape[1:]),
        embedding_size=int(model.output_shape[-1]),
    )
