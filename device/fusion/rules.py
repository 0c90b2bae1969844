"""Fusion rules over normalized scores: weighted sum (learned weights), sum (mean), max, min.

Inputs are arrays (n_pairs, n_matchers) of *normalized* scores, columns in the card's matcher order. ``sum`` is
the plain mean (the weighted sum with equal weights, so thresholds stay on the same scale); ``max`` accepts when
any matcher is confident (raises FMR), ``min`` only when all are (raises FNMR).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

RULES = ("weighted_sum", "sum", "max", "min")


def combine(normalized: np.ndarray, rule: str, weights: Sequence[float] | None = None) -> np.ndarray:
    """Fused score per row of ``normalized`` (n, m) -> (n,). NaN anywhere in a row gives NaN (fail closed)."""
    x = np.atleast_2d(np.asarray(normalized, dtype=np.float64))
    if rule == "weighted_sum":
        if weights is None or len(weights) != x.shape[1]:
            got = None if weights is None else len(weights)
            raise ValueError(f"weighted_sum needs {x.shape[1]} weights, got {got}")
        return x @ np.asarray(weights, dtype=np.float64)
    if rule == "sum":
        return x.mean(axis=1)
    if rule == "max":
        out = x.max(axis=1)
    elif rule == "min":
        out = x.min(axis=1)
    else:
        raise ValueError(f"unknown fusion rule {rule!r} (known: {', '.join(RULES)})")
    out[np.isnan(x).any(axis=1)] = np.nan  # max/min would otherwise skip NaN silently on some paths
    return out
