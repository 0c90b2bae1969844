"""The FVC evaluation protocol (per dataset, each sensor separately) and a one-call summary.

Genuine pairs: every pair of impressions of the same finger. Impostor pairs: the first impression of each finger
against the first impression of every other finger (each unordered pair once). "First" is the lowest impression
number (numeric order when impressions are numbers, text order otherwise).
"""

from __future__ import annotations

from collections import defaultdict
from itertools import combinations

import numpy as np

from training import metrics

MIN_IMPOSTORS_FOR_FMR1000 = 1000


def _impression_key(value: str) -> tuple[int, int | str]:
    text = str(value)
    return (0, int(text)) if text.isdigit() else (1, text)


def fvc_pairs(labels: list[str], impressions: list[str]) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Index pairs (i, j), i < j, for the FVC genuine and impostor comparisons."""
    if len(labels) != len(impressions):
        raise ValueError("labels and impressions differ in length")
    by_id: dict[str, list[int]] = defaultdict(list)
    for idx, label in enumerate(labels):
        by_id[label].append(idx)
    genuine: list[tuple[int, int]] = []
    firsts: list[int] = []
    for label in sorted(by_id):
        members = sorted(by_id[label], key=lambda k: (_impression_key(impressions[k]), k))
        genuine.extend((min(a, b), max(a, b)) for a, b in combinations(members, 2))
        firsts.append(members[0])
    impostor = [(min(a, b), max(a, b)) for a, b in combinations(firsts, 2)]
    return genuine, impostor


def cosine_pair_scores(embeddings: np.ndarray, pairs: list[tuple[int, int]]) -> np.ndarray:
    """Cosine similarity for each index pair (rows are normalized here, so raw embeddings are fine)."""
    emb = np.asarray(embeddings, dtype=np.float64)
    norms = np.linalg.norm(emb, axis=1, keepdims=True)
    emb = emb / np.where(norms == 0, 1.0, norms)
    if not pairs:
        return np.zeros(0)
    idx = np.asarray(pairs)
    return np.einsum("ij,ij->i", emb[idx[:, 0]], emb[idx[:, 1]])


def summarize(genuine, impostor) -> dict:
    """EER (FVC midpoint), FMR100, FMR1000 (only with >= 1,000 impostors), ZeroFMR, ROC AUC and pair counts."""
    g = np.asarray(genuine, dtype=np.float64)
    i = np.asarray(impostor, dtype=np.float64)
    e = metrics.eer(g, i)
    return {
        "eer": e.eer,
        "eer_low": e.eer_low,
        "eer_high": e.eer_high,
        "eer_threshold": e.threshold,
        "fmr100": metrics.fnmr_at_fmr(g, i, 0.01),
        "fmr1000": metrics.fnmr_at_fmr(g, i, 0.001) if i.size >= MIN_IMPOSTORS_FOR_FMR1000 else None,
        "zero_fmr": metrics.zero_fmr(g, i),
        "roc_auc": metrics.roc_auc(g, i),
        "genuine_pairs": int(g.size),
        "impostor_pairs": int(i.size),
    }
