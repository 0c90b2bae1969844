"""The decisions ``biolock eval`` can score, chosen by name from a registry: adding a matcher is one entry.

A decision turns an image into a template (``extract``; a capture it cannot use is a failure to acquire) and
scores pairs of templates (``compare``) on the scale its card's thresholds use. Registry values are
``"module:factory"``; a factory takes ``DecisionOptions`` and returns an object with the ``Decision`` shape.
Every minutiae backend in ``device.minutiae.base.BACKENDS`` is also a decision of its own name (the backend
alone; thresholds when a card lists that backend as a matcher with thresholds of its own).

Built in: ``embedding`` (the model card alone), ``fused`` (embedding + minutiae through a minutiae fusion card,
what a fingerprint device decides with minutiae on), ``device`` (whichever of those the configuration makes the
device use). To add one, e.g. a classic vein matcher: ``DECISIONS["miura"] = "device.vein.classic:eval_decision"``.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from device.errors import BiolockError, ConfigError

DECISIONS: dict[str, str] = {
    "device": "device.evaluation.decisions:device_decision",
    "embedding": "device.evaluation.decisions:embedding_decision",
    "fused": "device.evaluation.decisions:fused_decision",
}
PAIR_CHUNK = 200_000


class AcquireError(BiolockError):
    """One capture gave no template (poor quality, no minutiae): counted as a failure to acquire."""


@dataclass(frozen=True)
class DecisionOptions:
    modality: str
    model: Path | None = None  # model card; default the shipped one for the modality
    card: Path | None = None  # fusion / matcher card; default beside the model card
    config: Any = None  # device.config.Config (the ``device`` decision follows it)
    extra: dict[str, Any] = field(default_factory=dict)


class Decision(Protocol):
    name: str
    modality: str
    matcher_id: str  # what decides: model id, backend template id, or both
    thresholds: dict[str, float] | None  # keyed 1e-3 / 1e-4 / 2e-5 on this decision's score; None: no card
    card_path: Path | None

    def extract(self, image: np.ndarray) -> Any: ...

    def compare(self, templates: Sequence[Any], pairs: np.ndarray) -> np.ndarray: ...

    def close(self) -> None: ...


def names() -> list[str]:
    """Every decision name: the registry plus each minutiae backend."""
    from device.minutiae.base import BACKENDS

    return sorted(set(DECISIONS) | set(BACKENDS))


def open_decision(name: str, options: DecisionOptions) -> Decision:
    """Build decision ``name``; ``ConfigError`` naming the known ones when it is unknown."""
    from device.minutiae.base import BACKENDS

    if name in DECISIONS:
        module, _, func = DECISIONS[name].partition(":")
        return getattr(importlib.import_module(module), func)(options)
    if name in BACKENDS:
        return MinutiaeAlone(name, options)
    raise ConfigError(f"unknown decision {name!r}; choose one of: {', '.join(names())}")


def _card(options: DecisionOptions):
    from device.inference import load_card

    if options.model is not None:
        card = load_card(options.model)
    else:
        from models import default_card

        card = load_card(default_card(options.modality))
    if card.modality != options.modality:
        raise ConfigError(f"{card.path}: a {card.modality} model cannot evaluate {options.modality} images")
    return card


def _matrix(vectors: Sequence[np.ndarray | None]) -> np.ndarray:
    """Stack embeddings; a failure to acquire (None) becomes a zero row (never in a scored pair)."""
    first = next(v for v in vectors if v is not None)
    return np.stack([np.zeros_like(first) if v is None else v for v in vectors]).astype(np.float32)


def _cosines(vectors: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    out = np.empty(len(pairs), dtype=np.float64)
    for s in range(0, len(pairs), PAIR_CHUNK):
        p = pairs[s:s + PAIR_CHUNK]
        out[s:s + len(p)] = np.einsum("ij,ij->i", vectors[p[:, 0]], vectors[p[:, 1]], dtype=np.float64)
    return out


class EmbeddingDecision:
    """The model card alone: preprocess, quality gate, embed; cosine of unit vectors."""

    name = "embedding"

    def __init__(self, options: DecisionOptions) -> None:
        from device.config import InferenceConfig
        from device.inference import build_embedder

        self.card = _card(options)
        self.modality = self.card.modality
        self.embedder = build_embedder(InferenceConfig(), self.card, modality=self.modality)
        self.matcher_id = self.embedder.model_id
        self.thresholds = dict(self.card.thresholds)
        self.card_path: Path | None = self.card.path

    def extract(self, image: np.ndarray) -> np.ndarray:
        from device.preprocess import preprocess

        prep = preprocess(image, self.modality, self.card.input_size, self.card.preprocessing)
        if not prep.quality.ok:
            raise AcquireError(prep.quality.reason or "poor quality capture")
        return self.embedder.embed(prep.image)

    def compare(self, templates: Sequence[np.ndarray], pairs: np.ndarray) -> np.ndarray:
        return _cosines(_matrix(templates), pairs)

    def close(self) -> None:
        self.embedder.close()


def embedding_decision(options: DecisionOptions) -> EmbeddingDecision:
    return EmbeddingDecision(options)


def _minutiae_scores(matcher: Any, templates: Sequence[Any], pairs: np.ndarray) -> np.ndarray:
    from device.minutiae.base import MinutiaeError

    out = np.zeros(len(pairs), dtype=np.float64)
    for k, (a, b) in enumerate(pairs):
        try:
            out[k] = matcher.compare(templates[a], templates[b])
        except MinutiaeError:
            out[k] = 0.0  # as on the device: a template that cannot be compared cannot help accept
    return out


class MinutiaeAlone:
    """A minutiae backend alone; scores on the card's normalized scale when a card gives it thresholds."""

    def __init__(self, kind: str, options: DecisionOptions) -> None:
        from device.minutiae.base import open_matcher

        if options.modality != "fingerprint":
            raise ConfigError(f"minutiae backend {kind!r} serves fingerprints, not {options.modality}")
        self.name, self.modality = kind, "fingerprint"
        self.matcher = open_matcher(kind)
        self.matcher_id = self.matcher.template_id
        self.thresholds: dict[str, float] | None = None
        self.card_path: Path | None = None
        self._normalizer = None
        for path in _card_candidates(options):
            spec = _spec_for(path, self.matcher_id)
            if spec is not None and spec.thresholds is not None:
                self.thresholds, self._normalizer, self.card_path = dict(spec.thresholds), spec.normalizer, path
                break

    def extract(self, image: np.ndarray) -> bytes:
        from device.imageio import to_grey_u8
        from device.minutiae.base import MinutiaeError

        try:
            return self.matcher.extract(to_grey_u8(np.asarray(image)))
        except MinutiaeError as exc:
            raise AcquireError(str(exc)) from exc

    def compare(self, templates: Sequence[bytes], pairs: np.ndarray) -> np.ndarray:
        raw = _minutiae_scores(self.matcher, templates, pairs)
        return raw if self._normalizer is None else np.asarray(self._normalizer(raw), dtype=np.float64)

    def close(self) -> None:
        pass


class SmallSensorPairs(MinutiaeAlone):
    """Small-sensor mode's matcher on pairs of images, one touch against one. Why no thresholds: the device
    decides a touch against a finger's stitched placements, whose scores (and the small-sensor card's thresholds)
    are another distribution; applying them to single pairs would report FMRs the device never has. The
    per-touch protocol is ``training/partial_enrol_sim.py``."""

    def __init__(self, options: DecisionOptions) -> None:
        super().__init__("partial", DecisionOptions(options.modality, extra=options.extra))
        self.name = "device (small sensor: partial, one image against one; per-touch levels not scored)"
        self.thresholds, self._normalizer, self.card_path = None, None, None


def _card_candidates(options: DecisionOptions) -> list[Path]:
    if options.card is not None:
        return [Path(options.card)]
    from device.minutiae.setup import default_card_path

    try:
        return [default_card_path(_card(options).path)]
    except BiolockError:
        return []


def _spec_for(path: Path, matcher_id: str):
    from device.fusion import load_fusion_card

    if not Path(path).is_file():
        return None
    try:
        card = load_fusion_card(path)
    except BiolockError:
        return None
    return next((s for s in card.matchers if s.model == matcher_id), None)


def _backend_for(card_path: Path) -> str:
    """The minutiae backend whose template id the card's ``minutiae`` matcher was fitted on."""
    from device.fusion import load_fusion_card
    from device.minutiae.base import BACKENDS, available, open_matcher

    wanted = {s.name: s.model for s in load_fusion_card(card_path).matchers}.get("minutiae")
    tried = []
    for kind in sorted(BACKENDS):
        if available(kind) is None and open_matcher(kind).template_id == wanted:
            return kind
        tried.append(f"{kind} ({available(kind) or 'another template id'})")
    raise ConfigError(f"{card_path} was fitted on minutiae {wanted}, which no usable backend here produces "
                      f"(tried: {', '.join(tried)}); install its backend or pass another --card")


class FusedDecision:
    """Embedding + minutiae through a minutiae fusion card: the score a fingerprint device decides on."""

    name = "fused"

    def __init__(self, options: DecisionOptions, kind: str | None = None, check: Any = None) -> None:
        from device.minutiae.check import load_minutiae_check
        from device.minutiae.setup import default_card_path

        self.embedding = EmbeddingDecision(options)
        self.modality = self.embedding.modality
        if check is not None:  # a check the device resolved (e.g. the vein line matcher, issue 19)
            self.check, path = check, Path(check.card_path)
        else:
            if self.modality != "fingerprint":
                raise ConfigError("--decision fused builds the fingerprint minutiae check; use --decision device")
            path = Path(options.card) if options.card is not None else default_card_path(self.embedding.card.path)
            self.check = load_minutiae_check(kind or _backend_for(path), path, self.embedding.matcher_id)
        self.matcher_id = f"{self.embedding.matcher_id} + {self.check.matcher.template_id}"
        self.thresholds = dict(self.check.card.thresholds)
        self.card_path: Path | None = path

    def extract(self, image: np.ndarray) -> tuple[np.ndarray, bytes]:
        from device.imageio import to_grey_u8
        from device.minutiae.base import MinutiaeError

        problem = self.check.capture_problem(image)  # vein: no finger region (issue 19), as on the device
        if problem is not None:
            raise AcquireError(problem)
        vector = self.embedding.extract(self.check.model_input(image))  # vein: the model sees the region
        try:
            return vector, self.check.matcher.extract(to_grey_u8(np.asarray(image)))
        except MinutiaeError as exc:
            raise AcquireError(str(exc)) from exc

    def compare(self, templates: Sequence[tuple[np.ndarray, bytes]], pairs: np.ndarray) -> np.ndarray:
        cos = _cosines(_matrix([None if t is None else t[0] for t in templates]), pairs)
        second = [None if t is None else t[1] for t in templates]
        bulk = getattr(self.check.matcher, "compare_pairs", None)  # vein lines: all pairs by FFT (issue 19)
        mnt = bulk(second, pairs) if bulk is not None else _minutiae_scores(self.check.matcher, second, pairs)
        return np.asarray(self.check.fused(cos, mnt), dtype=np.float64)

    def close(self) -> None:
        self.embedding.close()


def fused_decision(options: DecisionOptions) -> FusedDecision:
    return FusedDecision(options)


def device_decision(options: DecisionOptions) -> Decision:
    """What the configured device decides with: fused when its minutiae setup resolves, else the embedding; in
    small-sensor mode the partial-print matcher (issue 18)."""
    from device.config import Config
    from device.small_sensor import is_small_sensor

    config = options.config or Config()
    if config.device.modality != options.modality:
        import dataclasses

        config = dataclasses.replace(config, device=dataclasses.replace(config.device, modality=options.modality))
    if is_small_sensor(config):
        return SmallSensorPairs(options)
    from device.minutiae.setup import resolve

    card = _card(options)
    if options.card is not None:
        import dataclasses

        config = dataclasses.replace(config, matching=dataclasses.replace(config.matching, minutiae_card=options.card))
    check, _ = resolve(config, card.path, card.model_id)
    if check is None:
        return EmbeddingDecision(options)
    return FusedDecision(options, check=check)
