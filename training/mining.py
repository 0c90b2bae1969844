"""Offline triplet mining, as in the fingerprint siamese article: half easy (random), half hard.

For each anchor: an *easy* triplet takes a random positive (same identity) and a random negative; a *hard*
triplet takes the farthest positive and the closest negative under the current embeddings (cosine score:
lowest-scoring genuine, highest-scoring impostor). Pure numpy; embeddings come from the model being trained.
"""

from __future__ import annotations

import numpy as np


def mine_triplets(
    embeddings: np.ndarray | None, labels: list[str] | np.ndarray, count: int, rng: np.random.Generator,
    hard_fraction: float = 0.5,
) -> np.ndarray:
    """``count`` triplets (anchor, positive, negative) as an (count, 3) int array of sample indices.

    Anchors are drawn from samples whose identity has another impression. With ``embeddings=None`` (before
    the first epoch) every triplet is random.
    """
    lab = np.asarray(labels)
    n = lab.size
    same = lab[:, None] == lab[None, :]
    np.fill_diagonal(same, False)
    anchors_ok = np.nonzero(same.any(axis=1))[0]
    if anchors_ok.size == 0 or np.all(lab == lab[0]):
        raise ValueError("triplet mining needs at least two identities and one with two impressions")
    n_hard = int(round(count * hard_fraction)) if embeddings is not None else 0
    out = np.zeros((count, 3), np.int64)
    anchors = rng.choice(anchors_ok, count, replace=True)
    sims = None
    if n_hard:
        e = np.asarray(embeddings, np.float64)
        e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
        sims = e[anchors[:n_hard]] @ e.T  # (n_hard, n)
    for row, a in enumerate(anchors):
        pos = np.nonzero(same[a])[0]
        neg = np.nonzero(lab != lab[a])[0]
        if row < n_hard and sims is not None:
            s = sims[row]
            p = pos[np.argmin(s[pos])]
            q = neg[np.argmax(s[neg])]
        else:
            p = rng.choice(pos)
            q = rng.choice(neg)
        out[row] = (a, p, q)
    del n
    return out
