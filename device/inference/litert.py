"""LiteRT (the maintained successor of tflite-runtime) on the CPU, XNNPACK by default.

Why these rules: ``ai_edge_litert`` first, ``tflite_runtime`` only on legacy boards, never ``tf.lite`` (TensorFlow
costs seconds and hundreds of MB on a Pi); ``num_threads`` always passed (LiteRT's default is one thread, which is
rarely what the configuration says); the interpreter's real tensors are compared with the card so a model swapped
under its card is refused at load time, not discovered as wrong decisions.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np

from device.errors import ModelError
from device.inference.base import Embedder, dequantize, quantize
from device.inference.card import ModelCard, TensorSpec
from device.nativelog import quiet_native


def interpreter_class() -> type:
    """The LiteRT Interpreter class: ai_edge_litert, else tflite_runtime (never TensorFlow)."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        try:
            from tflite_runtime.interpreter import Interpreter  # legacy boards (device-legacy extra)
        except ImportError as exc:
            raise ModelError(
                "no LiteRT runtime installed: pip install 'biolock[device]' (ai-edge-litert) "
                "or, on 32-bit ARM with Python <= 3.11, 'biolock[device-legacy]'"
            ) from exc
    return Interpreter


def load_delegate_fn() -> Any:
    try:
        from ai_edge_litert.interpreter import load_delegate
    except ImportError:
        from tflite_runtime.interpreter import load_delegate
    return load_delegate


def _check_tensor(detail: dict[str, Any], spec: TensorSpec, which: str, card: ModelCard) -> None:
    shape = tuple(int(s) for s in detail["shape"])
    dtype = np.dtype(detail["dtype"]).name
    if shape != spec.shape or dtype != spec.dtype:
        raise ModelError(
            f"{card.path}: the model's {which} is {list(shape)} {dtype} but the card says "
            f"{list(spec.shape)} {spec.dtype}: model and card do not belong together"
        )
    if spec.quantized:
        scale, zero = detail["quantization"]
        if not np.isclose(scale, spec.scale, rtol=1e-4) or int(zero) != spec.zero_point:
            raise ModelError(
                f"{card.path}: the model's {which} quantization ({scale:.6g}, {zero}) differs from the card "
                f"({spec.scale:.6g}, {spec.zero_point})"
            )


class LiteRTEmbedder(Embedder):
    """One LiteRT interpreter; thread-safe (calls are serialized, as the interpreter is not re-entrant)."""

    backend = "litert"

    def __init__(self, card: ModelCard, num_threads: int = 1, delegates: list[Any] | None = None) -> None:
        super().__init__(card)
        if num_threads < 1:
            raise ModelError(f"num_threads must be >= 1, got {num_threads}")
        self.num_threads = num_threads
        interpreter = interpreter_class()
        try:
            with quiet_native("litert"):  # the XNNPACK notice is C++ on fd 2, printed by allocate_tensors()
                self._interp = interpreter(
                    model_path=str(card.model_path), num_threads=num_threads, experimental_delegates=delegates or None
                )
                self._interp.allocate_tensors()
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"{card.model_path}: LiteRT cannot load this model: {exc}") from exc
        inputs, outputs = self._interp.get_input_details(), self._interp.get_output_details()
        if len(inputs) != 1 or len(outputs) != 1:
            raise ModelError(f"{card.model_path}: expected one input and one output tensor")
        _check_tensor(inputs[0], card.input, "input", card)
        _check_tensor(outputs[0], card.output, "output", card)
        self._in, self._out = inputs[0]["index"], outputs[0]["index"]
        self._lock = threading.Lock()

    def _run(self, batch: np.ndarray) -> np.ndarray:
        q = quantize(batch, self.card.input)[..., None]
        rows = []
        with self._lock:
            if self._interp is None:
                raise ModelError(f"{self.card.file}: embedder is closed")
            for item in q:
                self._interp.set_tensor(self._in, item[None])
                self._interp.invoke()
                rows.append(self._interp.get_tensor(self._out).reshape(-1).copy())
        return dequantize(np.stack(rows), self.card.output)

    def close(self) -> None:
        with self._lock:
            self._interp = None
