"""The one small interface every inference backend implements, and the pure helpers they share.

Why: the pipeline should not care whether LiteRT on a CPU, an Edge TPU or onnxruntime on a Jetson computes the
embedding. Each backend only turns a batch of preprocessed images into raw model outputs; quantization,
dequantization and the fail-closed checks (NaN, zero or constant vectors) live here once.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence

import numpy as np

from device.errors import ModelError
from device.inference.card import ModelCard, TensorSpec

# A unit vector whose elements are (nearly) all equal carries no identity: a saturated or broken model.
_MIN_SPREAD = 1e-6


def quantize(images: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Float images in [0, 1] to the model's input dtype (int8/uint8 with scale/zero point, or float32)."""
    if not spec.quantized:
        return images.astype(np.float32, copy=False)
    info = np.iinfo(spec.dtype)
    q = np.round(images / spec.scale + spec.zero_point)
    return np.clip(q, info.min, info.max).astype(spec.dtype)


def dequantize(raw: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Raw model output back to float32."""
    if not spec.quantized:
        return raw.astype(np.float32, copy=False)
    return ((raw.astype(np.float32) - spec.zero_point) * spec.scale).astype(np.float32)


def finalize(vectors: np.ndarray, source: str) -> np.ndarray:
    """L2-normalize each row; NaN/inf, zero and constant vectors are a ModelError (fail closed, never match)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    if vectors.ndim != 2:
        raise ModelError(f"{source}: expected (n, d) embeddings, got shape {vectors.shape}")
    if not np.all(np.isfinite(vectors)):
        raise ModelError(f"{source}: the model produced NaN or infinite values; refusing to match")
    norms = np.linalg.norm(vectors, axis=1)
    if np.any(norms <= 1e-12):
        raise ModelError(f"{source}: the model produced a zero embedding; refusing to match")
    unit = vectors / norms[:, None]
    if np.any(np.ptp(unit, axis=1) < _MIN_SPREAD):
        raise ModelError(f"{source}: the model produced a constant embedding; refusing to match")
    return unit


def check_images(images: np.ndarray, size: tuple[int, int], source: str) -> np.ndarray:
    """A batch (n, H, W) or one image (H, W) of float32 in [0, 1] at the model's input size."""
    arr = np.asarray(images)
    if arr.ndim == 2:
        arr = arr[None]
    if arr.ndim != 3 or arr.shape[1:] != tuple(size):
        raise ModelError(f"{source}: expects images of {size[0]}x{size[1]} (HxW), got shape {np.shape(images)}")
    arr = arr.astype(np.float32, copy=False)
    if not np.all(np.isfinite(arr)):
        raise ModelError(f"{source}: input image contains NaN or infinite values")
    return np.clip(arr, 0.0, 1.0)


class Embedder(ABC):
    """Turns preprocessed images (float32 (H, W) in [0, 1]) into unit-length float32 embeddings."""

    backend = "base"

    def __init__(self, card: ModelCard) -> None:
        self.card = card

    @property
    def model_id(self) -> str:
        return self.card.model_id

    @property
    def input_size(self) -> tuple[int, int]:
        return self.card.input_size

    @abstractmethod
    def _run(self, batch: np.ndarray) -> np.ndarray:
        """Raw float outputs (n, d) for float images (n, H, W) already checked; dequantized by the backend."""

    def embed_batch(self, images: Sequence[np.ndarray] | np.ndarray) -> np.ndarray:
        """(n, d) float32 unit vectors; raises ModelError for anything that is not a usable embedding."""
        batch = check_images(np.stack(list(images)) if not isinstance(images, np.ndarray) else images,
                             self.input_size, self.card.file)
        raw = self._run(batch)
        if raw.shape != (batch.shape[0], self.card.embedding_size):
            raise ModelError(f"{self.card.file}: output shape {raw.shape} does not match the card's embedding size")
        return finalize(raw, self.card.file)

    def embed(self, image: np.ndarray) -> np.ndarray:
        """One (d,) unit vector."""
        return self.embed_batch(np.asarray(image)[None])[0]

    def close(self) -> None:  # noqa: B027 - optional: backends with nothing to free keep this
        """Release the runtime (idempotent)."""

    def __enter__(self) -> Embedder:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
