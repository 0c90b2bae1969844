"""Training configuration: strict dataclasses (unknown keys and out-of-range values are errors) plus presets.

A TOML file may name a ``preset`` and override any key of it::

    preset = "default"
    seed = 7
    [loss]
    name = "eer"
    target_fmr = 0.001
    [optim]
    epochs = 20

Presets: ``tiny`` (trains in seconds, for tests), ``default``, ``ship-fingerprint`` and ``ship-vein`` (the
shipped models' recipe, sized for ~30 minutes on a shared 2-core CPU).
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from device.errors import ConfigError
from device.strictconfig import from_table, ranged, read_toml

LossName = Literal["triplet", "batch_hard", "semi_hard", "eer", "contrastive", "logistic", "cosface"]


@dataclass(frozen=True)
class ModelSection:
    arch: Literal["mobile", "vgg16"] = "mobile"
    embedding_size: int = ranged(128, min=8, max=1024)
    width: float = ranged(1.0, min=0.05, max=4.0)
    head_channels: int = ranged(256, min=8, max=2048)
    se: bool = True
    dropout: float = ranged(0.0, min=0.0, max=0.9)


@dataclass(frozen=True)
class LossSection:
    name: LossName = "batch_hard"
    margin: float = ranged(0.2, min=0.0, max=4.0, doc="triplet margin on squared distance; pair margin; "
                                                        "cosface: cosine margin (< 1)")
    scale: float = ranged(30.0, min=1.0, max=128.0, doc="cosface: logit scale")
    temperature: float = ranged(0.1, min=1e-4, max=10.0, doc="EERLoss initial temperature")
    min_temperature: float = ranged(0.01, min=1e-5, max=10.0)
    temperature_decay: float = ranged(0.85, min=0.1, max=1.0, doc="per epoch")
    target_fmr: float | None = ranged(None, min=1e-6, max=0.5, doc="EERLoss: FNMR at this FMR instead of EER")
    hard_fraction: float = ranged(0.5, min=0.0, max=1.0, doc="offline triplets: share of hard ones")
    triplets_per_batch: int = ranged(21, min=1, max=4096)


@dataclass(frozen=True)
class DataSection:
    val_fraction: float = ranged(0.15, min=0.0, max=0.8)
    test_fraction: float = ranged(0.15, min=0.0, max=0.8)
    val_max_identities: int = ranged(150, min=2, max=100000, doc="cap on identities used for per-epoch EER")
    workers: int = ranged(2, min=1, max=64, doc="processes for preprocessing")


@dataclass(frozen=True)
class OptimSection:
    epochs: int = ranged(30, min=1, max=10000)
    steps_per_epoch: int = ranged(100, min=1, max=1000000)
    batch_p: int = ranged(16, min=2, max=4096, doc="identities per batch")
    batch_k: int = ranged(4, min=2, max=64, doc="impressions per identity per batch")
    learning_rate: float = ranged(2e-3, min=1e-7, max=1.0)
    min_learning_rate: float = ranged(1e-5, min=0.0, max=1.0)
    lr_patience: int = ranged(3, min=1, max=1000, doc="epochs without a gain in select_on before LR is cut")
    lr_factor: float = ranged(0.5, min=0.01, max=0.99)
    patience: int = ranged(8, min=1, max=1000, doc="early stopping: epochs without a gain in select_on")
    weight_decay: float = ranged(1e-4, min=0.0, max=1.0)
    # the validation metric that picks the best epoch, cuts the LR and stops early: the EER, or FNMR at FMR 1 %
    # (for fine-tuning towards the low-FMR operating points the device decides at)
    select_on: Literal["eer", "fmr100"] = "eer"


@dataclass(frozen=True)
class AugmentSection:
    strength: float = ranged(1.0, min=0.0, max=3.0)
    rotation_deg: float = ranged(10.0, min=0.0, max=180.0)
    shift_frac: float = ranged(0.06, min=0.0, max=0.5)
    scale_frac: float = ranged(0.05, min=0.0, max=0.5, doc="zoom in [1 - s, 1 + s]: sensors differ in scale")
    elastic_alpha: float = ranged(2.5, min=0.0, max=20.0)
    partial_prob: float = ranged(0.3, min=0.0, max=1.0)


@dataclass(frozen=True)
class TrainConfig:
    preset: str = "default"
    seed: int = ranged(1, min=0, max=2**31 - 1)
    model: ModelSection = field(default_factory=ModelSection)
    loss: LossSection = field(default_factory=LossSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    augment: AugmentSection = field(default_factory=AugmentSection)

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    "tiny": {
        "model": {"embedding_size": 32, "width": 0.35, "head_channels": 32, "se": False},
        "data": {"val_fraction": 0.25, "test_fraction": 0.0, "workers": 1},
        "optim": {"epochs": 2, "steps_per_epoch": 3, "batch_p": 4, "batch_k": 2, "patience": 2},
    },
    "ship-fingerprint": {
        # batch_hard collapsed here (loss stuck at the margin, all cosines > 0.99); the pair loss does not.
        "loss": {"name": "logistic"},
        "augment": {"scale_frac": 0.15},
        "data": {"val_fraction": 0.15, "test_fraction": 0.15, "val_max_identities": 120},
        "optim": {"epochs": 60, "steps_per_epoch": 40, "batch_p": 16, "batch_k": 4, "learning_rate": 3e-3,
                  "patience": 8, "lr_patience": 3},
    },
    "ship-vein": {
        "loss": {"name": "batch_hard", "margin": 0.3},
        "data": {"val_fraction": 0.15, "test_fraction": 0.15, "val_max_identities": 120},
        "augment": {"rotation_deg": 4.0, "elastic_alpha": 1.5, "partial_prob": 0.15},
        "optim": {"epochs": 30, "steps_per_epoch": 40, "batch_p": 16, "batch_k": 4, "learning_rate": 3e-3,
                  "patience": 8, "lr_patience": 3},
    },
}


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in extra.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = _merge(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def build_config(table: dict[str, Any] | None = None, preset: str | None = None) -> TrainConfig:
    """A validated config: the preset (``preset`` argument, else the table's, else ``default``) + the table."""
    table = dict(table or {})
    name = preset or table.get("preset") or "default"
    if name not in PRESETS:
        raise ConfigError(f"unknown training preset {name!r}; choose one of: {', '.join(PRESETS)}")
    merged = _merge(PRESETS[name], table)
    merged["preset"] = name
    return from_table(TrainConfig, merged)


def load_train_config(path: Path | None = None, preset: str | None = None,
                      overrides: dict[str, Any] | None = None) -> TrainConfig:
    """Read a TOML config file (optional), apply it over its preset, then ``overrides``."""
    table = read_toml(Path(path)) if path is not None else {}
    if overrides:
        table = _merge(table, overrides)
    return build_config(table, preset)
