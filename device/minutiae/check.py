"""``MinutiaeCheck``: a minutiae backend plus the fusion card that turns (cosine, minutiae score) into one score.

The card (``biolock-fusion-card/1``, matchers ``fingerprint`` and ``minutiae``) is fitted on synthetic genuine and
impostor pairs by ``biolock train minutiae-card``; its thresholds are per *pair* of captures, like a model card's,
so a user's score is the best fused score over their enrolled captures. Each matcher names what it was fitted on
(the embedding model id, the backend's template id) and both must be what the device runs: scores of another
model or backend mean nothing.

``best`` compares templates in order of falling cosine and stops at the first fused score over the threshold:
a genuine touch usually needs one minutiae comparison, an impostor needs all of them (those are the fast ones).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.errors import ImageError
from device.fusion import FusionCard, FusionCardError, combine, load_fusion_card
from device.matching.decision import threshold_for
from device.minutiae.base import MINUTIAE_MODALITY, MinutiaeError, MinutiaeMatcher, open_matcher

MATCHERS = ("fingerprint", "minutiae")


@dataclass(frozen=True)
class MinutiaeCheck:
    matcher: MinutiaeMatcher
    card: FusionCard
    card_path: Path
    # the card's (embedding, second matcher) names and the store modality of the second matcher's templates: the
    # same machinery fuses the vein model with the vein line matcher (device.vein.setup)
    names: tuple[str, str] = MATCHERS
    store_modality: str = MINUTIAE_MODALITY

    def model_input(self, image: np.ndarray) -> np.ndarray:
        """What the embedding model gets: the backend's region of the capture when it has one (vein), else it."""
        region = getattr(self.matcher, "model_input", None)
        return region(image) if region is not None else image

    def capture_problem(self, image: np.ndarray) -> str | None:
        """Why a capture has no usable region (vein: no finger, two fingers, at the edge, ...), else None."""
        region = getattr(self.matcher, "region", None)
        if region is None:
            return None
        try:
            region(image)
        except ImageError as exc:
            return str(exc)
        return None

    def threshold(self, security: str) -> float:
        """The fused-score threshold for a security level (a pair of captures at that FMR)."""
        return threshold_for(self.card.thresholds, security)

    def fused(self, cosine: np.ndarray | float, minutiae: np.ndarray | float) -> np.ndarray:
        """Fused scores of pairs; NaN in either input gives -inf (fail closed)."""
        c = np.atleast_1d(np.asarray(cosine, dtype=np.float64))
        m = np.atleast_1d(np.asarray(minutiae, dtype=np.float64))
        spec = {s.name: s for s in self.card.matchers}
        first, second = self.names
        rows = np.stack([spec[first].normalizer(c), spec[second].normalizer(m)], axis=1)
        out = combine(rows, self.card.rule, self.card.weight_vector_for(self.names))
        return np.where(np.isfinite(c) & np.isfinite(m), out, -np.inf)

    def compare_all(self, probe: bytes, templates: Sequence[bytes]) -> np.ndarray:
        """Minutiae scores of a probe against templates; a damaged template scores 0 (it cannot help accept)."""
        out = np.zeros(len(templates), dtype=np.float64)
        for i, t in enumerate(templates):
            try:
                out[i] = self.matcher.compare(probe, t)
            except MinutiaeError:
                out[i] = 0.0
        return out

    def best(self, cosines: np.ndarray, probe: bytes, templates: Sequence[bytes], threshold: float) -> float:
        """The best fused score of one user's captures, stopping at the first one at or over ``threshold``."""
        cos = np.asarray(cosines, dtype=np.float64).reshape(-1)
        if cos.shape[0] != len(templates):
            raise MinutiaeError(f"{cos.shape[0]} embedding templates but {len(templates)} minutiae templates")
        best = -math.inf
        for i in np.argsort(-cos, kind="stable"):
            score = float(self.fused(cos[i], self.compare_all(probe, [templates[i]])[0])[0])
            best = max(best, score)
            if best >= threshold:
                break
        return best


def load_minutiae_check(kind: str, card_path: Path, model_id: str, names: tuple[str, str] = MATCHERS,
                        store_modality: str = MINUTIAE_MODALITY, builder: str = "minutiae-card") -> MinutiaeCheck:
    """Open backend ``kind`` and its fusion card; the card must be fitted on this model and this backend."""
    card = load_fusion_card(card_path, names)
    first, second = names
    if card.rule != "weighted_sum":
        raise FusionCardError(f"fusion card {card_path}: a minutiae card uses the weighted_sum rule, not {card.rule}")
    matcher = open_matcher(kind)
    fitted = {s.name: s.model for s in card.matchers}
    if fitted[first] != model_id:
        raise FusionCardError(f"fusion card {card_path} was fitted on model {fitted[first]}, the device runs "
                              f"{model_id}; build one with biolock train {builder}")
    if fitted[second] != matcher.template_id:
        raise FusionCardError(f"fusion card {card_path} was fitted on {fitted[second]}, the device runs "
                              f"{matcher.template_id}; build one with biolock train {builder}")
    return MinutiaeCheck(matcher, card, Path(card_path), names, store_modality)
