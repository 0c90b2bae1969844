"""Learned foreground segmentation (optional stage): a tiny int8 CNN on block features instead of two thresholds.

Why block features and not pixels: the classic stage (``segment``) already measures what separates finger from
background on the 8-px block grid (band-pass energy, orientation coherence); the network sees those plus the
block's grey mean and contrast and 31 blocks of context around each block, so it can learn *shapes* (a finger
outline, a smudge, a noisy border) that two global thresholds cannot. Features are normalized per image, which
keeps a network trained only on synthetic prints (``training/fp_segmentation.py``) usable on real sensors.

The model is a fully convolutional int8 TFLite file whose input is resized to each image's block grid; it runs
on LiteRT (never TensorFlow). Its card (``models/fingerprint_segment.json``, format ``biolock-segment-card/1``)
names the feature version, the tensors and the sha256 of the file; all are checked at load time.

Switch: ``params.SEGMENTER`` ("classic" default) or the ``biolock-learnedseg`` minutiae backend, or
``extract_minutiae(..., segmenter="learned")``. ``$BIOLOCK_FP_SEGMENT_CARD`` points at another card (a model of
your own from ``biolock train fp-segment``).
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from device.errors import ModelError
from device.fingerprint import params
from device.fingerprint.errors import FingerprintError
from device.fingerprint.segment import clean_blocks

CARD_FORMAT = "biolock-segment-card/1"
FEATURES_ID = "fp-seg-blockfeat-v1"
N_FEATURES = 4
DEFAULT_CARD = Path(__file__).resolve().parents[2] / "models" / "fingerprint_segment.json"
CARD_ENV = "BIOLOCK_FP_SEGMENT_CARD"
MIN_BLOCKS = 4  # a block grid smaller than this on a side is not a capture


def block_features(img: np.ndarray, raw: np.ndarray, block_coherence: np.ndarray) -> np.ndarray:
    """(H/B, W/B, 4) float32 in about [-1, 1]: log band-pass energy relative to the image's 95th percentile,
    orientation coherence, grey mean and grey contrast of each block.

    ``img`` is the uint8 capture padded to whole blocks, ``raw`` its band-pass (``extract.bandpass``) and
    ``block_coherence`` the orientation field's block coherence (both as ``extract.prepare`` computes them).
    """
    img, raw, coh = np.asarray(img), np.asarray(raw), np.asarray(block_coherence)
    b = params.BLOCK
    if img.ndim != 2 or img.dtype != np.uint8 or raw.shape != img.shape or img.shape[0] % b or img.shape[1] % b:
        raise FingerprintError("bad_image", f"block features need a uint8 image padded to whole {b}-px blocks and "
                                            f"its band-pass of the same shape, got {img.dtype} {img.shape} and "
                                            f"{raw.shape}")
    size = (img.shape[1] // b, img.shape[0] // b)
    if coh.shape != (size[1], size[0]) or min(size) < MIN_BLOCKS:
        raise FingerprintError("bad_image", f"block coherence {coh.shape} does not fit the image's block grid "
                                            f"{(size[1], size[0])} (at least {MIN_BLOCKS} blocks a side)")
    raw = raw.astype(np.float32, copy=False)
    energy = cv2.resize(raw * raw, size, interpolation=cv2.INTER_AREA)
    ref = max(float(np.percentile(energy, 95)), 1e-6)
    log_e = (np.log10(energy / ref + 1e-3) + 1.5) / 1.5
    g = img.astype(np.float32)
    mean = cv2.resize(g, size, interpolation=cv2.INTER_AREA)
    sq = cv2.resize(g * g, size, interpolation=cv2.INTER_AREA)
    contrast = np.sqrt(np.maximum(sq - mean * mean, 0.0)) / 32.0 - 1.0
    feats = np.stack([log_e, 2.0 * coh.astype(np.float32) - 1.0, mean / 128.0 - 1.0, contrast], axis=-1)
    if not np.all(np.isfinite(feats)):
        raise FingerprintError("bad_image", "block features are not finite (a damaged capture)")
    return np.clip(feats, -1.5, 1.5).astype(np.float32)


def _spec(card: dict, key: str, path: Path) -> tuple[str, float, int]:
    t = card.get(key)
    if not isinstance(t, dict) or t.get("dtype") not in ("int8", "float32"):
        raise ModelError(f"{path}: '{key}' must give dtype int8 or float32")
    try:
        return str(t["dtype"]), float(t.get("scale", 0.0)), int(t.get("zero_point", 0))
    except (TypeError, ValueError) as exc:
        raise ModelError(f"{path}: '{key}' has a bad scale or zero point: {exc}") from None


class LearnedSegmenter:
    """The segmentation model behind its card on LiteRT; ``probabilities`` and ``block_mask`` per image.

    Thread-safe (calls are serialized: one interpreter, resized to each image's block grid).
    """

    def __init__(self, card_path: Path | str = DEFAULT_CARD, num_threads: int = 1) -> None:
        from device.inference.litert import interpreter_class
        from device.nativelog import quiet_native

        path = Path(card_path)
        try:
            card = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"{path}: cannot read the segmentation model card: {exc}") from None
        if not isinstance(card, dict) or card.get("format") != CARD_FORMAT:
            raise ModelError(f"{path}: not a {CARD_FORMAT} card")
        if card.get("features") != FEATURES_ID or card.get("block") != params.BLOCK:
            raise ModelError(f"{path}: model made for features {card.get('features')!r} on {card.get('block')}-px "
                             f"blocks; this extractor computes {FEATURES_ID!r} on {params.BLOCK}-px blocks")
        model_path = path.parent / str(card.get("file", ""))
        try:
            blob = model_path.read_bytes()
        except OSError as exc:
            raise ModelError(f"{path}: model file missing: {exc}") from None
        if hashlib.sha256(blob).hexdigest() != card.get("sha256"):
            raise ModelError(f"{model_path}: sha256 differs from its card {path}: model and card do not belong "
                             "together")
        self.card, self.path = card, path
        self.input, self.output = _spec(card, "input", path), _spec(card, "output", path)
        threshold = card.get("threshold", 0.5)
        if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not 0.0 < threshold < 1.0:
            raise ModelError(f"{path}: 'threshold' must be a probability between 0 and 1, got {threshold!r}")
        self.threshold = float(threshold)
        self._blob = blob  # the interpreter reads the model from this buffer: keep it alive with it
        try:
            with quiet_native("litert"):
                self._interp = interpreter_class()(model_content=blob, num_threads=int(num_threads))
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{model_path}: LiteRT cannot load this model: {exc}") from exc
        ins, outs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(ins) != 1 or len(outs) != 1 or int(ins[0]["shape"][-1]) != N_FEATURES:
            raise ModelError(f"{model_path}: expected one input of {N_FEATURES} feature channels and one output")
        for detail, (dtype, scale, zero), which in ((ins[0], self.input, "input"), (outs[0], self.output, "output")):
            got = np.dtype(detail["dtype"]).name
            q_scale, q_zero = detail["quantization"]
            if got != dtype or (dtype == "int8" and (not np.isclose(q_scale, scale, rtol=1e-4) or q_zero != zero)):
                raise ModelError(f"{model_path}: the model's {which} ({got}, {q_scale:.6g}, {q_zero}) differs from "
                                 f"its card ({dtype}, {scale:.6g}, {zero})")
        self._in, self._out = ins[0]["index"], outs[0]["index"]
        self._shape: tuple[int, int] | None = None
        self._lock = threading.Lock()

    def probabilities(self, features: np.ndarray) -> np.ndarray:
        """Foreground probability per block, (H/B, W/B) float32 in [0, 1], from ``block_features``."""
        f = np.asarray(features)
        if f.ndim != 3 or f.shape[-1] != N_FEATURES or min(f.shape[:2]) < MIN_BLOCKS or f.dtype != np.float32:
            raise FingerprintError("bad_image", f"segmentation features must be float32 (rows, cols, {N_FEATURES}) "
                                                f"with at least {MIN_BLOCKS} blocks a side, got {f.dtype} {f.shape}")
        if not np.all(np.isfinite(f)):
            raise FingerprintError("bad_image", "segmentation features are not finite")
        dtype, scale, zero = self.input
        x = f[None]
        if dtype == "int8":
            x = np.clip(np.round(x / scale + zero), -128, 127).astype(np.int8)
        with self._lock:
            if self._shape != f.shape[:2]:
                self._interp.resize_tensor_input(self._in, [1, f.shape[0], f.shape[1], N_FEATURES], strict=True)
                self._interp.allocate_tensors()
                self._shape = f.shape[:2]
            self._interp.set_tensor(self._in, x)
            self._interp.invoke()
            out = self._interp.get_tensor(self._out)[0, :, :, 0].copy()
        dtype, scale, zero = self.output
        if dtype == "int8":
            out = (out.astype(np.float32) - zero) * scale
        return np.clip(out.astype(np.float32), 0.0, 1.0)

    def block_mask(self, features: np.ndarray) -> np.ndarray:
        """Boolean block mask: probability above the card's threshold, then the classic clean-up."""
        return clean_blocks(self.probabilities(features) > self.threshold)


def card_path() -> Path:
    """The segmentation card in use: ``$BIOLOCK_FP_SEGMENT_CARD`` (a model of your own), else the shipped one."""
    return Path(os.environ.get(CARD_ENV) or DEFAULT_CARD)


def segmenter(path: Path | str | None = None) -> LearnedSegmenter:
    """One shared segmenter per card (loading costs a few ms; the interpreter is reused)."""
    return _segmenter(str(path or card_path()))


@lru_cache(maxsize=4)
def _segmenter(path: str) -> LearnedSegmenter:
    return LearnedSegmenter(path)


def learned_block_mask(img: np.ndarray, raw: np.ndarray, block_coherence: np.ndarray) -> np.ndarray:
    """The learned block mask of one prepared image (see ``block_features`` for the arguments)."""
    return segmenter().block_mask(block_features(img, raw, block_coherence))
