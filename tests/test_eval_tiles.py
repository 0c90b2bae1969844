"""Pairs are scored tile by tile (so a matcher's per-template cache serves them) and returned in the order asked."""

from __future__ import annotations

import numpy as np

from device.evaluation.datasets import impostor_pairs
from device.evaluation.runner import TILE, score_pairs, tile_order


class CountingDecision:
    """Scores i * 10,000 + j and counts the templates a 2-tile LRU cache of templates would have to rebuild."""

    def __init__(self, capacity: int) -> None:
        self.capacity, self.cache, self.misses = capacity, [], 0

    def _touch(self, k: int) -> None:
        if k in self.cache:
            self.cache.remove(k)
        else:
            self.misses += 1
            if len(self.cache) >= self.capacity:
                self.cache.pop(0)
        self.cache.append(k)

    def compare(self, templates, pairs):
        for a, b in pairs:
            self._touch(int(a))
            self._touch(int(b))
        return np.array([a * 10_000 + b for a, b in pairs], dtype=np.float64)


def test_scores_come_back_in_the_order_asked():
    labels = [f"f{i // 3}" for i in range(600)]
    pairs = impostor_pairs(labels, [str(i % 3 + 1) for i in range(600)], "all")
    scores, _ = score_pairs(CountingDecision(10**6), [None] * 600, pairs, "x", progress=False)
    assert np.array_equal(scores, pairs[:, 0] * 10_000 + pairs[:, 1])
    order = tile_order(pairs)
    assert np.array_equal(np.sort(order), np.arange(len(pairs)))  # a permutation: every pair once


def test_tiles_keep_a_small_cache_warm():
    n = 4 * TILE + 37  # a set larger than the cache, as PolyU (1,480 prints) is for the biolock matcher
    i, j = np.triu_indices(n, k=1)
    pairs = np.stack([i, j], axis=1)
    tiled = CountingDecision(2 * TILE + 16)
    score_pairs(tiled, [None] * n, pairs, "x", progress=False)
    naive = CountingDecision(2 * TILE + 16)
    naive.compare(None, pairs)  # the old (i, j) order
    assert tiled.misses < 0.02 * naive.misses
    assert tiled.misses <= n * (n // TILE + 2)
