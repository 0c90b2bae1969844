"""The fusion card: which matchers are fused, how each score is normalized, the rule, weights and thresholds.

JSON (written by ``biolock train fusion-report --out DIR`` as ``DIR/fusion_card.json``, read by the device's
``fusion`` decision mode)::

    {"format": "biolock-fusion-card/1", "name": "fingerprint+vein",
     "rule": "weighted_sum",                      # weighted_sum | sum | max | min
     "matchers": [
       {"name": "fingerprint", "modality": "fingerprint", "model": "fingerprint-mobile@1.0.0+0123456789ab",
        "normalization": {"method": "tanh", "params": {"mu": 0.8, "sigma": 0.1, "spread": 0.01}},
        "thresholds": {"1e-3": 0.49, "1e-4": 0.48, "2e-5": 0.47}},   # this matcher alone (fallback); may be null
       {"name": "vein", ...}],
     "weights": {"fingerprint": 0.6, "vein": 0.4},  # one per matcher, >= 0, summing to 1
     "thresholds": {"1e-3": 0.51, "1e-4": 0.52, "2e-5": 0.53},  # on the fused score, FMR 1/1000, 1/10000, 1/50000
     "metrics": {...}, "trained_on": "...", "created": "2026-11-22"}

Everything is validated at load (``load_fusion_card``): a weight table that names other matchers than the card's
(or than the matchers the device is configured with) is a ``FusionCardError`` naming both lists, never a
surprise at decision time.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from device.atomicfile import write_json_atomic
from device.errors import ModelError
from device.fusion.normalization import Normalizer, check_normalizer
from device.fusion.rules import RULES

FORMAT = "biolock-fusion-card/1"
THRESHOLD_KEYS = ("1e-3", "1e-4", "2e-5")
WEIGHT_SUM_TOLERANCE = 1e-3


class FusionCardError(ModelError):
    """A fusion card is missing, malformed, or does not fit the configured matchers."""


@dataclass(frozen=True)
class MatcherSpec:
    name: str
    modality: str
    normalizer: Normalizer
    model: str | None = None
    thresholds: Mapping[str, float] | None = None  # single-matcher thresholds on the normalized score


@dataclass(frozen=True)
class FusionCard:
    name: str
    rule: str
    matchers: tuple[MatcherSpec, ...]
    weights: Mapping[str, float]
    thresholds: Mapping[str, float]
    extra: Mapping[str, object] = field(default_factory=dict)  # metrics, trained_on, created: informative only

    @property
    def calibration(self):
        """The validated calibration block (``device.calibration.fields``), or None on a card without one."""
        raw = self.extra.get("calibration")
        if raw is None:
            return None
        from device.calibration.fields import parse_calibration

        return parse_calibration(raw, self.thresholds, f"fusion card {self.name}", FusionCardError)

    @property
    def matcher_names(self) -> tuple[str, ...]:
        return tuple(m.name for m in self.matchers)

    def weight_vector(self) -> list[float]:
        return [float(self.weights[m.name]) for m in self.matchers]

    def weight_vector_for(self, names: Sequence[str]) -> list[float]:
        """Weights in the order of ``names`` (callers that stack scores in their own order)."""
        return [float(self.weights[n]) for n in names]

    def to_dict(self) -> dict:
        return {
            "format": FORMAT,
            "name": self.name,
            "rule": self.rule,
            "matchers": [
                {
                    "name": m.name,
                    "modality": m.modality,
                    "model": m.model,
                    "normalization": m.normalizer.to_dict(),
                    "thresholds": None if m.thresholds is None else {k: float(v) for k, v in m.thresholds.items()},
                }
                for m in self.matchers
            ],
            "weights": {k: float(v) for k, v in self.weights.items()},
            "thresholds": {k: float(v) for k, v in self.thresholds.items()},
            **dict(self.extra),
        }


def _thresholds(raw: object, where: str, source: str) -> dict[str, float]:
    if not isinstance(raw, Mapping):
        raise FusionCardError(f"{source}: {where} must be an object with keys {', '.join(THRESHOLD_KEYS)}")
    if set(raw) != set(THRESHOLD_KEYS):
        raise FusionCardError(
            f"{source}: {where} has keys {', '.join(sorted(raw))}; expected exactly {', '.join(THRESHOLD_KEYS)}"
        )
    out = {}
    for k in THRESHOLD_KEYS:
        v = raw[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
            raise FusionCardError(f"{source}: {where}[{k!r}] = {v!r} is not a finite number")
        out[k] = float(v)
    return out


def _matcher(raw: object, index: int, source: str) -> MatcherSpec:
    if not isinstance(raw, Mapping):
        raise FusionCardError(f"{source}: matchers[{index}] must be an object")
    name = raw.get("name")
    if not isinstance(name, str) or not name:
        raise FusionCardError(f"{source}: matchers[{index}] needs a non-empty string 'name'")
    norm = raw.get("normalization")
    if not isinstance(norm, Mapping) or not isinstance(norm.get("params"), Mapping):
        raise FusionCardError(f"{source}: matcher {name!r} needs 'normalization': {{'method': ..., 'params': {{...}}}}")
    problem = check_normalizer(str(norm.get("method")), norm["params"])
    if problem:
        raise FusionCardError(f"{source}: matcher {name!r}: {problem}")
    thresholds = raw.get("thresholds")
    return MatcherSpec(
        name=name,
        modality=str(raw.get("modality", name)),
        normalizer=Normalizer(str(norm["method"]), {k: float(v) for k, v in norm["params"].items()}),
        model=raw.get("model") if isinstance(raw.get("model"), str) else None,
        thresholds=None if thresholds is None else _thresholds(thresholds, f"matcher {name!r} thresholds", source),
    )


def parse_fusion_card(data: object, source: str = "fusion card",
                      expected_matchers: Sequence[str] | None = None) -> FusionCard:
    """Validate a decoded card; ``expected_matchers`` = the matchers the device is configured with."""
    if not isinstance(data, Mapping):
        raise FusionCardError(f"{source}: expected a JSON object")
    if data.get("format") != FORMAT:
        raise FusionCardError(f"{source}: format is {data.get('format')!r}, expected {FORMAT!r}")
    rule = data.get("rule")
    if rule not in RULES:
        raise FusionCardError(f"{source}: rule {rule!r} is not one of {', '.join(RULES)}")
    raw_matchers = data.get("matchers")
    if not isinstance(raw_matchers, list) or len(raw_matchers) < 2:
        raise FusionCardError(f"{source}: 'matchers' must list at least two matchers to fuse")
    matchers = tuple(_matcher(m, i, source) for i, m in enumerate(raw_matchers))
    names = [m.name for m in matchers]
    if len(set(names)) != len(names):
        raise FusionCardError(f"{source}: matcher names repeat: {', '.join(names)}")
    weights = data.get("weights")
    if not isinstance(weights, Mapping):
        raise FusionCardError(f"{source}: 'weights' must map each matcher name to a weight")
    if set(weights) != set(names):
        raise FusionCardError(
            f"{source}: weights name [{', '.join(sorted(weights))}] but the card's matchers are "
            f"[{', '.join(sorted(names))}]; retrain the card for these matchers"
        )
    for k, v in weights.items():
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)) or float(v) < 0:
            raise FusionCardError(f"{source}: weight for {k!r} = {v!r} must be a finite number >= 0")
    total = sum(float(v) for v in weights.values())
    if abs(total - 1.0) > WEIGHT_SUM_TOLERANCE:
        raise FusionCardError(f"{source}: weights sum to {total:.6g}, expected 1")
    if expected_matchers is not None and set(expected_matchers) != set(names):
        raise FusionCardError(
            f"{source}: the device is configured with matchers [{', '.join(sorted(expected_matchers))}] but the "
            f"card's weights are for [{', '.join(sorted(names))}]; use a fusion card trained for this device"
        )
    thresholds = _thresholds(data.get("thresholds"), "thresholds", source)
    known = {"format", "name", "rule", "matchers", "weights", "thresholds"}
    extra = {k: v for k, v in data.items() if k not in known}
    if "calibration" in extra:
        from device.calibration.fields import parse_calibration

        parse_calibration(extra["calibration"], thresholds, source, FusionCardError)
    return FusionCard(
        name=str(data.get("name", "fusion")), rule=rule, matchers=matchers,
        weights={k: float(v) for k, v in weights.items()}, thresholds=thresholds, extra=extra,
    )


def load_fusion_card(path: Path | str, expected_matchers: Sequence[str] | None = None) -> FusionCard:
    """Read and validate a fusion card file; every problem is a ``FusionCardError`` naming the file."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except FileNotFoundError as exc:
        raise FusionCardError(f"fusion card {p} does not exist") from exc
    except OSError as exc:
        raise FusionCardError(f"fusion card {p} cannot be read: {exc.strerror or exc}") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise FusionCardError(f"fusion card {p} is not valid JSON: {exc.msg} at line {exc.lineno}") from exc
    return parse_fusion_card(data, f"fusion card {p}", expected_matchers)


def save_fusion_card(card: FusionCard, path: Path | str) -> Path:
    """Write ``card`` atomically (temp file in the same folder, then rename) after re-validating it."""
    p = Path(path)
    data = card.to_dict()
    parse_fusion_card(data, f"fusion card {p}")
    write_json_atomic(p, data, indent=2)
    return p
