"""Cosine scores between unit-length embeddings: 1:1 against a user's samples, 1:N over a gallery matrix.

Pure numpy, no state. Embeddings are unit vectors, so a cosine is a dot product; scores are clipped to [-1, 1]
(rounding can push a dot product of unit vectors just past 1). Identify is one matrix-vector product plus a
per-user maximum, vectorized so 10,000 templates take well under a millisecond on a Pi-class CPU.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


def _as_probe(probe: np.ndarray) -> np.ndarray:
    p = np.asarray(probe, dtype=np.float32).reshape(-1)
    return p


def cosine_scores(probe: np.ndarray, templates: np.ndarray) -> np.ndarray:
    """Scores (n,) of one unit probe (d,) against unit templates (n, d); (0,) when there are none."""
    t = np.asarray(templates, dtype=np.float32)
    if t.size == 0:
        return np.zeros(0, dtype=np.float32)
    p = _as_probe(probe)
    if t.ndim != 2 or t.shape[1] != p.shape[0]:
        raise ValueError(f"templates {t.shape} do not match a probe of size {p.shape[0]}")
    return np.clip(t @ p, -1.0, 1.0)


def verify_score(probe: np.ndarray, templates: np.ndarray) -> float:
    """1:1 score: the best cosine against every enrolled sample of the claimed user (-1 if none)."""
    scores = cosine_scores(probe, templates)
    return float(scores.max()) if scores.size else -1.0


@dataclass(frozen=True)
class Candidate:
    user: str
    score: float


def user_index(users: Sequence[str]) -> tuple[list[str], np.ndarray]:
    """Distinct users in first-seen order and, per gallery row, the index of its user."""
    names: dict[str, int] = {}
    idx = np.fromiter((names.setdefault(u, len(names)) for u in users), dtype=np.int64, count=len(users))
    return list(names), idx


def identify_scores(probe: np.ndarray, matrix: np.ndarray, users: Sequence[str]) -> dict[str, float]:
    """1:N: each user's best score over their rows of the gallery matrix."""
    scores = cosine_scores(probe, matrix)
    if scores.size == 0:
        return {}
    names, idx = user_index(users)
    best = np.full(len(names), -np.inf, dtype=np.float32)
    np.maximum.at(best, idx, scores)
    return {name: float(best[i]) for i, name in enumerate(names)}


def identify(probe: np.ndarray, matrix: np.ndarray, users: Sequence[str], top: int = 2) -> list[Candidate]:
    """The ``top`` best users by score, best first (ties broken by name, so results are reproducible)."""
    scores = cosine_scores(probe, matrix)
    if scores.size == 0:
        return []
    if len(users) != scores.shape[0]:
        raise ValueError(f"{len(users)} user labels for {scores.shape[0]} gallery rows")
    # Fast path: the best rows first, then collapse to users (one user may own several of the best rows).
    k = min(scores.shape[0], max(top * 8, 16))
    part = np.argpartition(-scores, k - 1)[:k] if k < scores.shape[0] else np.arange(scores.shape[0])
    best: dict[str, float] = {}
    for i in part:
        u = users[i]
        s = float(scores[i])
        if s > best.get(u, -2.0):
            best[u] = s
    if len(best) < top and k < scores.shape[0]:
        best = identify_scores(probe, matrix, users)
    ranked = sorted(best.items(), key=lambda kv: (-kv[1], kv[0]))
    return [Candidate(u, s) for u, s in ranked[:top]]


def pairwise(embeddings: np.ndarray) -> np.ndarray:
    """The (n, n) cosine matrix of a set of unit vectors (enrolment agreement check)."""
    e = np.asarray(embeddings, dtype=np.float32)
    return np.clip(e @ e.T, -1.0, 1.0)



def agreeing_subset(embeddings: np.ndarray, threshold: float, size: int) -> list[int]:
    """Enrolment agreement: indices of up to ``size`` captures that form one connected group at ``threshold``.

    Every kept capture scores >= ``threshold`` with at least one other kept capture and the group's agreement
    graph is connected. Why not every pair: several templates are stored precisely because placements differ, and
    two captures of opposite edges of a finger need not match each other, only the captures between them. A
    different finger still gets in only through a false match at the enrolment threshold (the card's FMR 1/1,000),
    and a stray capture that matches nothing is left out. Grown greedily from each seed, best-connected first,
    always adding the capture with the most links into the group; the largest group wins. Returns it sorted; a
    single capture agrees with itself.
    """
    e = np.asarray(embeddings, dtype=np.float32)
    if e.shape[0] == 0:
        return []
    return connected_group(pairwise(e) >= threshold, size)


def connected_group(agree: np.ndarray, size: int) -> list[int]:
    """``agreeing_subset`` on a precomputed (n, n) boolean agreement matrix (any pair score, e.g. a fused one)."""
    agree = np.array(agree, dtype=bool)
    n = agree.shape[0]
    if n == 0 or size < 1:
        return []
    if agree.shape != (n, n):
        raise ValueError(f"an agreement matrix must be square, got {agree.shape}")
    agree = agree & agree.T
    np.fill_diagonal(agree, False)
    degree = agree.sum(axis=1)
    order = sorted(range(n), key=lambda i: (-int(degree[i]), i))
    best: list[int] = []
    for seed in order:
        group = [seed]
        while len(group) < size:
            links = agree[:, group].sum(axis=1)
            links[group] = 0
            candidates = [j for j in order if links[j] > 0]
            if not candidates:
                break
            group.append(max(candidates, key=lambda j: int(links[j])))  # ties: the better-connected capture
        if len(group) > len(best):
            best = group
        if len(best) >= size:
            break
    return sorted(best)
