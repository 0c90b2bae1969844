"""``biolock train eval``: a model on every dataset (each sensor separately) with the FVC protocol.

Per dataset: EER (FVC midpoint of [EER_low, EER_high] at observed scores -- no interpolation between scores;
match when score >= threshold), FMR100, FMR1000 (only with >= 1,000 impostor pairs), ZeroFMR, ROC AUC,
closed-set rank-1 identification (gallery: first impression of each finger; probes: the others) and the pair
counts. The model may be a model card (.json), a .tflite (its card is used when it sits beside it: the device's
LiteRT path) or a Keras file; images are prepared by ``device.preprocess`` exactly as on the device.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from device.errors import DatasetError, ModelError
from training.prepared import PreparedSet


def rank1(emb: np.ndarray, labels: list[str], impressions: list[str]) -> float | None:
    """Closed-set rank-1: each non-first impression against the first impression of every finger."""
    from training.metrics import rank1_accuracy
    from training.protocol import _impression_key

    first: dict[str, int] = {}
    for i, (lab, imp) in enumerate(zip(labels, impressions, strict=False)):
        if lab not in first or _impression_key(imp) < _impression_key(impressions[first[lab]]):
            first[lab] = i
    gallery = sorted(first)
    probes = [i for i in range(len(labels)) if first[labels[i]] != i]
    if len(gallery) < 2 or not probes:
        return None
    g = emb[[first[k] for k in gallery]]
    scores = emb[probes] @ g.T
    return rank1_accuracy(scores, [labels[i] for i in probes], gallery)


def evaluate_prepared(embed, prepared: PreparedSet) -> tuple[dict, dict[str, tuple[np.ndarray, np.ndarray]]]:
    """Metrics per sensor subset and the raw scores (for plots)."""
    from training.protocol import cosine_pair_scores, fvc_pairs, summarize

    results: dict[str, dict] = {}
    scores: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for name, subset in sorted(prepared.subsets().items()):
        gen, imp = fvc_pairs(subset.labels, subset.impressions)
        if not gen or not imp:
            raise DatasetError(f"{name}: needs at least two identities with two impressions each for the FVC protocol")
        emb = embed(subset.images)
        g, i = cosine_pair_scores(emb, gen), cosine_pair_scores(emb, imp)
        r = summarize(g, i)
        r["rank1"] = rank1(emb, subset.labels, subset.impressions)
        r["identities"] = subset.identity_count()
        r["images"] = len(subset)
        r["quality_rejects"] = int((~subset.quality_ok).sum())
        results[name] = r
        scores[name] = (g, i)
    return results, scores


def evaluate_model(model: str | Path, data: str | Path, modality: str | None = None,
                   cache_dir: Path | None = None, progress: bool = True):
    """Evaluate a model file on a dataset folder/manifest; returns (results dict, scores per dataset)."""
    from training.embed import load_embedder, modality_of
    from training.prepared import prepare

    modality = modality or modality_of(model)  # the card or the run folder: checked before TensorFlow loads
    if modality is None:
        raise ModelError(f"{model}: neither a model card nor its run folder (run.json) says which modality it is; "
                         "pass --modality")
    embed = load_embedder(model)
    prepared = prepare(data, modality, embed.input_size, cache_dir=cache_dir, min_impressions=2, progress=progress,
                       preprocessing_id=embed.preprocessing_id)
    results, scores = evaluate_prepared(embed, prepared)
    return {"model": str(model), "modality": modality, "data": str(data), "datasets": results}, scores


def format_results(results: dict) -> str:
    """Plain-text table for the terminal."""
    from training.report import results_table

    return "\n".join(results_table(results))
