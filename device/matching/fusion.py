"""Score-fusion hooks: combine normalized per-modality scores into one score and threshold.

Why only hooks here: the fusion issue trains the rule (and its fusion card); the device core fixes the interface so
the pipeline can call it. A fusion function takes scores already normalized so that each modality's own decision
threshold maps to 0 (``normalize``), and returns one fused score decided against 0. Missing modalities are None;
a rule decides what to do with them (the default rules fail closed).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping

FusionFn = Callable[[Mapping[str, float | None]], float]
_RULES: dict[str, FusionFn] = {}


def normalize(score: float, threshold: float) -> float:
    """Shift a cosine so the modality's threshold is 0 and scale to [-1, 1]-ish units: > 0 would accept alone."""
    span = max(1.0 - threshold, 1e-6) if score >= threshold else max(threshold + 1.0, 1e-6)
    return (score - threshold) / span


def register(name: str) -> Callable[[FusionFn], FusionFn]:
    """Decorator: make a fusion rule available by name (the fusion card names its rule)."""

    def add(fn: FusionFn) -> FusionFn:
        _RULES[name] = fn
        return fn

    return add


def get_rule(name: str) -> FusionFn:
    from device.errors import ConfigError

    try:
        return _RULES[name]
    except KeyError as exc:
        raise ConfigError(f"unknown fusion rule {name!r} (known: {', '.join(sorted(_RULES))})") from exc


def rules() -> list[str]:
    return sorted(_RULES)


@register("mean")
def mean_rule(scores: Mapping[str, float | None]) -> float:
    """Mean of the normalized scores; any missing modality fails closed (-inf)."""
    values = list(scores.values())
    if not values or any(v is None or not math.isfinite(v) for v in values):
        return -math.inf
    return sum(values) / len(values)  # type: ignore[arg-type]


@register("min")
def min_rule(scores: Mapping[str, float | None]) -> float:
    """Both must pass (AND): the weakest normalized score; missing fails closed."""
    values = list(scores.values())
    if not values or any(v is None or not math.isfinite(v) for v in values):
        return -math.inf
    return min(values)  # type: ignore[type-var]
