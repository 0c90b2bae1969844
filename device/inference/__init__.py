"""Embedding inference: a model card plus a backend chosen by ``inference.type`` (litert, edgetpu, onnx).

Backends are imported inside :func:`build_embedder`, so a board without onnxruntime (or an Edge TPU) never
imports it. The card comes from ``inference.model`` or the shipped default for the modality.
"""

from __future__ import annotations

from pathlib import Path

from device.config import InferenceConfig
from device.errors import ConfigError, ModelError
from device.inference.base import Embedder, finalize
from device.inference.card import ModelCard, load_card

__all__ = ["Embedder", "ModelCard", "build_embedder", "card_for", "finalize", "load_card"]


def card_for(config: InferenceConfig, modality: str, card_path: Path | None = None) -> ModelCard:
    """The validated card to use: explicit path, else ``inference.model``, else the shipped default."""
    path = card_path or config.model
    if path is None:
        from models import default_card

        path = default_card(modality)
    card = load_card(path)
    if card.modality != modality:
        raise ModelError(f"{card.path}: a {card.modality} model cannot serve device.modality = {modality!r}")
    return card


def build_embedder(config: InferenceConfig, card_path: Path | ModelCard | None = None, *,
                   modality: str = "fingerprint", state_dir: Path | None = None) -> Embedder:
    """The configured backend on a checked card. Delegate failures are errors, never a silent CPU fallback."""
    card = card_path if isinstance(card_path, ModelCard) else card_for(config, modality, card_path)
    if config.type == "litert":
        from device.inference.litert import LiteRTEmbedder

        return LiteRTEmbedder(card, num_threads=config.num_threads)
    if config.type == "edgetpu":
        from device.inference.edgetpu import EdgeTpuEmbedder

        return EdgeTpuEmbedder(card, num_threads=config.num_threads)
    if config.type == "onnx":
        from device.inference.onnx_backend import OnnxEmbedder

        return OnnxEmbedder(card, num_threads=config.num_threads, state_dir=state_dir)
    raise ConfigError(f"inference.type {config.type!r} is not one of litert, edgetpu, onnx")
