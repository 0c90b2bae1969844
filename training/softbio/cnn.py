"""The two convolutional classifiers of the study, trained from scratch at the same budget (TensorFlow / Keras 3).

- ``cnn``: two convolution blocks (32 and 64 filters, 3x3, ReLU, max-pooling), global average pooling, a dense
  layer of 64, dropout 0.5, one sigmoid output -- the "small CNN" of the study.
- ``resnet``: a deeper residual network (stem + three stages of two residual blocks, 32/64/128 filters, batch
  normalization), global average pooling, dropout, sigmoid. No ImageNet weights exist offline: from scratch.

Both get the augmentation as Keras layers that are active only while training: rotation, shift and zoom, and a
horizontal flip only when the hand is ignored (a mirrored left print looks like a right one). Loss: binary
cross-entropy with class weights from the training labels; early stopping on validation loss restores the best
epoch. TensorFlow is imported inside the functions so that nothing else in the tool needs it.
"""

from __future__ import annotations

import time

import numpy as np

from training.softbio.models import Budget, ModelRun
from training.softbio.splits import Split

# Keras' default 0.99 needs hundreds of steps before the moving statistics used at inference match the batches;
# at ~26 steps per epoch the ResNet ranked test images well (AUC 0.86) yet called every one of them the same class.
BN_MOMENTUM = 0.9


def _augmentation(keras, budget: Budget):
    """Rotation, shift, zoom (and flip) with NEAREST-neighbour resampling, then per-image standardization.

    Why nearest: at 64-128 px a ridge period is only 3-6 px, and bilinear resampling by any sub-pixel offset
    blurs the ridges (measured: -30 % high-pass contrast at 64 px). Every augmented training image would then be
    blurrier than every validation and test image, and the network learns the blur: it predicted one class for
    all validation images while its AUC was 0.70. Standardization takes out what contrast change remains.
    """
    opts = {"fill_mode": "reflect", "interpolation": "nearest"}
    layers = [
        keras.layers.RandomRotation(budget.rotation_deg / 360.0, seed=budget.seed, **opts),
        keras.layers.RandomTranslation(budget.shift, budget.shift, seed=budget.seed + 1, **opts),
    ]
    if budget.zoom > 0:
        layers.append(keras.layers.RandomZoom(budget.zoom, seed=budget.seed + 2, **opts))
    if budget.allow_flip:
        layers.append(keras.layers.RandomFlip("horizontal", seed=budget.seed + 3))
    layers.append(keras.layers.Lambda(_standardize, name="standardize"))
    return keras.Sequential(layers, name="augment")


def _standardize(x):
    """Zero mean, unit variance per image (train and inference alike)."""
    from keras import ops

    mean = ops.mean(x, axis=(1, 2, 3), keepdims=True)
    return (x - mean) / (ops.std(x, axis=(1, 2, 3), keepdims=True) + 1e-3)


def build_cnn(size: int, budget: Budget):
    """The small CNN: conv32-pool, conv64-pool, GAP, dense 64, dropout 0.5, sigmoid."""
    import keras

    inp = keras.Input((size, size, 1))
    x = _augmentation(keras, budget)(inp)
    for filters in (32, 64):
        x = keras.layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = keras.layers.MaxPooling2D(2)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(64, activation="relu")(x)
    x = keras.layers.Dropout(0.5)(x)
    return keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(x), name="softbio_cnn")


def _res_block(keras, x, filters: int, stride: int):
    shortcut = x
    y = keras.layers.Conv2D(filters, 3, strides=stride, padding="same", use_bias=False)(x)
    y = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(y)
    y = keras.layers.ReLU()(y)
    y = keras.layers.Conv2D(filters, 3, padding="same", use_bias=False)(y)
    y = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(y)
    if stride != 1 or x.shape[-1] != filters:
        shortcut = keras.layers.Conv2D(filters, 1, strides=stride, use_bias=False)(x)
        shortcut = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(shortcut)
    return keras.layers.ReLU()(keras.layers.Add()([y, shortcut]))


def build_resnet(size: int, budget: Budget):
    """The residual CNN: stem (conv 32 /2, max-pool), stages of 2 blocks at 32, 64 (/2), 128 (/2), GAP, sigmoid."""
    import keras

    inp = keras.Input((size, size, 1))
    x = _augmentation(keras, budget)(inp)
    x = keras.layers.Conv2D(32, 3, strides=2, padding="same", use_bias=False)(x)
    x = keras.layers.BatchNormalization(momentum=BN_MOMENTUM)(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.MaxPooling2D(2)(x)
    for filters, stride in ((32, 1), (32, 1), (64, 2), (64, 1), (128, 2), (128, 1)):
        x = _res_block(keras, x, filters, stride)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dropout(0.3)(x)
    return keras.Model(inp, keras.layers.Dense(1, activation="sigmoid")(x), name="softbio_resnet")


def _as_input(images: np.ndarray) -> np.ndarray:
    return (images.astype(np.float32) / 255.0)[..., None]


def class_weights(y: np.ndarray) -> dict[int, float]:
    """n / (classes * n_k) per class: rare classes weigh more (about 1.0 each once the part is balanced)."""
    classes, counts = np.unique(y, return_counts=True)
    return {int(c): float(y.size / (classes.size * n)) for c, n in zip(classes, counts, strict=True)}


def run_cnn(name: str, images: np.ndarray, y: np.ndarray, split: Split, budget: Budget,
            train: np.ndarray) -> ModelRun:
    """Train ``cnn`` or ``resnet`` on ``train`` (already balanced), stop early on the validation part, test."""
    import keras
    import tensorflow as tf

    try:
        tf.config.threading.set_intra_op_parallelism_threads(2)
        tf.config.threading.set_inter_op_parallelism_threads(1)
    except RuntimeError:
        pass  # already initialized by an earlier model in this process
    keras.utils.set_random_seed(budget.seed)
    t0 = time.monotonic()
    size = images.shape[1]
    model = (build_cnn if name == "cnn" else build_resnet)(size, budget)
    model.compile(optimizer=keras.optimizers.Adam(1e-3), loss="binary_crossentropy", metrics=["accuracy"])
    stop = keras.callbacks.EarlyStopping(monitor="val_loss", patience=budget.patience, restore_best_weights=True)
    hist = model.fit(_as_input(images[train]), y[train].astype(np.float32),
                     validation_data=(_as_input(images[split.val]), y[split.val].astype(np.float32)),
                     epochs=budget.epochs, batch_size=budget.batch_size, class_weight=class_weights(y[train]),
                     callbacks=[stop], verbose=budget.verbose, shuffle=True)
    scores = model.predict(_as_input(images[split.test]), batch_size=128, verbose=0).ravel().astype(np.float64)
    history = {k: [float(v) for v in vals] for k, vals in hist.history.items()}
    best_epoch = int(np.argmin(history["val_loss"])) + 1 if history.get("val_loss") else None
    info = {"params": int(model.count_params()), "epochs_run": len(history.get("loss", [])),
            "best_epoch": best_epoch, "train_images": int(train.size), "seconds": round(time.monotonic() - t0, 1)}
    return ModelRun(name, split.kind, split.test, scores, (scores >= 0.5).astype(np.int64), history, info)
