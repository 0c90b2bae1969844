"""onnxruntime backend: the route to GPU acceleration on a Jetson (TensorRT or CUDA), CPU elsewhere.

Why ONNX: LiteRT's wheels have no Linux GPU delegate, so on a Jetson the training export's ONNX file (named in the
model card, with its own sha256) runs through onnxruntime. TensorRT builds an engine on first use, which takes
minutes on a Nano, so its engine cache lives in the state directory and survives restarts. The model takes float
images in [0, 1] and returns the embedding, which is normalized here like every other backend's.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from device.errors import ModelError
from device.inference.base import Embedder
from device.inference.card import ModelCard, verify_file

PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")


def choose_providers(available: list[str], cache_dir: Path | None) -> list[str | tuple[str, dict]]:
    """TensorRT, then CUDA, then CPU, among those onnxruntime has; TensorRT caches engines in ``cache_dir``."""
    chosen: list[str | tuple[str, dict]] = []
    for name in PREFERRED:
        if name not in available:
            continue
        if name == "TensorrtExecutionProvider" and cache_dir is not None:
            chosen.append((name, {"trt_engine_cache_enable": True, "trt_engine_cache_path": str(cache_dir),
                                  "trt_fp16_enable": True}))
        else:
            chosen.append(name)
    if not chosen:
        raise ModelError(f"onnxruntime offers none of {', '.join(PREFERRED)} (has {available})")
    return chosen


class OnnxEmbedder(Embedder):
    backend = "onnx"

    def __init__(self, card: ModelCard, num_threads: int = 1, state_dir: Path | None = None,
                 providers: list[str] | None = None) -> None:
        super().__init__(card)
        path = card.onnx_path
        if path is None:
            raise ModelError(f"{card.path}: inference.type is onnx but the card names no onnx_file")
        verify_file(path, card.onnx_sha256, card.path)
        try:
            import onnxruntime as ort
        except ImportError as exc:
            raise ModelError("inference.type is onnx but onnxruntime is not installed: pip install "
                             "'biolock[jetson]'") from exc
        cache = None
        if state_dir is not None:
            cache = Path(state_dir) / "trt-cache"
            cache.mkdir(parents=True, exist_ok=True)
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = num_threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        wanted = choose_providers(providers or ort.get_available_providers(), cache)
        try:
            self._session = ort.InferenceSession(str(path), sess_options=opts, providers=wanted)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"{path}: onnxruntime cannot load this model: {exc}") from exc
        self.providers = self._session.get_providers()
        inputs, outputs = self._session.get_inputs(), self._session.get_outputs()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{path}: expected one input and one output")
        shape = inputs[0].shape
        h, w = card.input_size
        if len(shape) != 4 or list(shape[1:]) != [h, w, 1]:
            raise ModelError(f"{path}: ONNX input shape {shape} does not match the card's [n, {h}, {w}, 1]")
        self._input = inputs[0].name
        self._lock = threading.Lock()

    def _run(self, batch: np.ndarray) -> np.ndarray:
        with self._lock:
            if self._session is None:
                raise ModelError(f"{self.card.onnx_file}: embedder is closed")
            (out,) = self._session.run(None, {self._input: batch[..., None].astype(np.float32)})
        return np.asarray(out, dtype=np.float32).reshape(batch.shape[0], -1)

    def close(self) -> None:
        with self._lock:
            self._session = None
