"""Coral Edge TPU through LiteRT's external delegate ``libedgetpu.so.1``.

Why a separate backend with no fallback: an Edge TPU model is a fully int8 model compiled by ``edgetpu_compiler``;
if the delegate does not load (no runtime installed, no device plugged in, no permission on /dev/apex_0), running
the same file on the CPU would silently be slow or fail in odd ways. So a failed load is a ModelError saying what
to check, and the administrator decides to switch ``inference.type`` to ``litert``.
"""

from __future__ import annotations

from device.errors import ModelError
from device.inference.card import ModelCard
from device.inference.litert import LiteRTEmbedder, load_delegate_fn

EDGETPU_LIBRARY = "libedgetpu.so.1"


class EdgeTpuEmbedder(LiteRTEmbedder):
    backend = "edgetpu"

    def __init__(self, card: ModelCard, num_threads: int = 1, library: str = EDGETPU_LIBRARY) -> None:
        if card.quantization != "int8-full":
            raise ModelError(f"{card.path}: the Edge TPU needs a fully int8 model (card says {card.quantization})")
        try:
            delegate = load_delegate_fn()(library)
        except (ValueError, OSError, RuntimeError) as exc:
            raise ModelError(
                f"Edge TPU delegate {library} failed to load ({exc}); install the Edge TPU runtime "
                "(libedgetpu1-std), plug in the Coral device and check permissions, or set "
                "inference.type = \"litert\" to run on the CPU"
            ) from exc
        super().__init__(card, num_threads=num_threads, delegates=[delegate])
