"""Build the device's fusion card from deep embeddings of paired fingerprint + vein samples.

The device fuses the two modalities' *embedding cosine* scores (what its pipeline computes), so the card is
learned from those: normalization per matcher and weights on all genuine / impostor pairs of the synthetic
multimodal set (impostors capped at scores.MAX_VALIDATION_IMPOSTORS, fixed seed), thresholds at FMR 1e-3, 1e-4 and
2e-5 from the fused impostor scores (with fewer than 50,000 impostors the 2e-5 threshold is simply above every
impostor seen: say so when quoting it), and single-matcher thresholds for the audited fallback.
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np

from device.fusion import FusionCard, MatcherSpec, combine, fit_normalizer, save_fusion_card
from device.fusion.card import THRESHOLD_KEYS
from training import metrics
from training.fusion.scores import learn_weights, validation_pairs


def fmr_thresholds(impostor: np.ndarray) -> dict[str, float]:
    """A card's thresholds: the lowest score at FMR 1e-3, 1e-4 and 2e-5 of these impostor scores."""
    return {k: metrics.threshold_at_fmr(impostor, float(k)) for k in THRESHOLD_KEYS}


def _cos(e: np.ndarray, pairs: np.ndarray) -> np.ndarray:
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    return np.einsum("ij,ij->i", e[pairs[:, 0]], e[pairs[:, 1]])


def build_card(embeddings: dict[str, np.ndarray], models: dict[str, str | None], labels: list[str],
               scheme: str = "weighted_sum/tanh", trained_on: str = "") -> FusionCard:
    """A validated ``FusionCard`` for matchers named by modality (``embeddings[name]`` rows aligned with labels)."""
    rule, method = scheme.split("/")
    names = list(embeddings)
    gen, imp = validation_pairs(labels, np.arange(len(labels)))
    raw = {n: (_cos(embeddings[n], gen), _cos(embeddings[n], imp)) for n in names}
    norms = {n: fit_normalizer(method, *raw[n]) for n in names}
    ng = np.stack([norms[n](raw[n][0]) for n in names], axis=1)
    ni = np.stack([norms[n](raw[n][1]) for n in names], axis=1)
    weights = learn_weights(ng, ni) if rule == "weighted_sum" else np.full(len(names), 1.0 / len(names))
    fg, fi = combine(ng, rule, weights), combine(ni, rule, weights)

    matchers = tuple(
        MatcherSpec(name=n, modality=n, normalizer=norms[n], model=models.get(n), thresholds=fmr_thresholds(ni[:, k]))
        for k, n in enumerate(names)
    )
    single = {n: metrics.eer(*raw[n]).eer for n in names}
    extra = {
        "metrics": {"eer": metrics.eer(fg, fi).eer, "single_eer": single, "genuine_pairs": int(len(fg)),
                    "impostor_pairs": int(len(fi)), "measured_on": "the pairs the card was fitted on"},
        "trained_on": trained_on, "created": date.today().isoformat(),
    }
    w = {n: float(x) for n, x in zip(names, weights, strict=True)}
    total = sum(w.values())
    w = {n: v / total for n, v in w.items()}
    card = FusionCard(name="+".join(names), rule=rule, matchers=matchers, weights=w, thresholds=fmr_thresholds(fi),
                      extra=extra)
    from training.card_calibration import calibrate_fusion_card  # issue 16: thresholds the counts support

    return calibrate_fusion_card(card, {f"synthetic:{trained_on or 'fit pairs'}": (fg, fi)},
                                 "fused scores of the pairs the card was fitted on")


def write_card(path: Path, embeddings: dict[str, np.ndarray], models: dict[str, str | None], labels: list[str],
               scheme: str, trained_on: str) -> Path:
    return save_fusion_card(build_card(embeddings, models, labels, scheme, trained_on), path)
