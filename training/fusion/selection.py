"""Feature normalization and entropy-based selection of the most informative dimensions.

Criterion (documented in docs/fusion.md): each dimension x_j is quantized into ``bins`` (8) equal-frequency bins
using quantiles of the *training* samples, giving Q_j. Its information about the identity Y is the mutual
information I(Q_j; Y) = H(Q_j) - H(Q_j | Y), with entropies in bits from the empirical counts. Dimensions are
ranked by I (ties by index) and the top ``k`` are kept. A constant dimension has H(Q_j) = 0 and so I = 0; a
dimension that takes the same bin for every sample of an identity but differs between identities scores highest.
Equal-frequency bins make H(Q_j) about log2(bins) for every non-degenerate dimension, so the ranking is driven by
H(Q_j | Y): how *consistent* the dimension is within an identity. With few samples per identity, I is biased
upwards by the same amount for every dimension (same bins, same n), so the ranking stays fair.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ZScore:
    """Per-dimension standardization fitted on training rows (std floor 1e-6 so constant dims stay finite)."""

    mean: np.ndarray
    std: np.ndarray

    @classmethod
    def fit(cls, x: np.ndarray) -> ZScore:
        x = np.asarray(x, dtype=np.float64)
        return cls(x.mean(axis=0), np.maximum(x.std(axis=0), 1e-6))

    def __call__(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float64) - self.mean) / self.std).astype(np.float32)


def quantize(x: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Bin index per value, per dimension: x (n, d), edges (bins-1, d) inner quantile edges -> (n, d) ints."""
    return np.sum(x[:, None, :] > edges[None, :, :], axis=1)


def _entropy_bits(counts: np.ndarray, axis: int = -1) -> np.ndarray:
    total = counts.sum(axis=axis, keepdims=True)
    p = np.divide(counts, total, out=np.zeros_like(counts, dtype=np.float64), where=total > 0)
    with np.errstate(divide="ignore", invalid="ignore"):
        terms = np.where(p > 0, -p * np.log2(p), 0.0)
    return terms.sum(axis=axis)


def mutual_information(x: np.ndarray, labels: list[str] | np.ndarray, bins: int = 8) -> np.ndarray:
    """I(Q_j; Y) in bits for every column of ``x`` (see the module docstring)."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"need a 2-D feature matrix with at least two rows, got shape {x.shape}")
    _, y = np.unique(np.asarray(labels), return_inverse=True)
    qs = np.linspace(0, 1, bins + 1)[1:-1]
    edges = np.quantile(x, qs, axis=0)
    q = quantize(x, edges)  # (n, d)
    n, d = q.shape
    n_id = int(y.max()) + 1
    joint = np.zeros((n_id, bins, d))
    np.add.at(joint, (y[:, None], q, np.arange(d)[None, :]), 1.0)
    h_q = _entropy_bits(joint.sum(axis=0), axis=0)  # (d,)
    p_y = np.bincount(y, minlength=n_id) / n
    h_q_given_y = np.einsum("i,id->d", p_y, _entropy_bits(joint, axis=1))
    return np.maximum(h_q - h_q_given_y, 0.0)


def select_informative(x: np.ndarray, labels: list[str] | np.ndarray, k: int, bins: int = 8) -> np.ndarray:
    """Indices of the ``k`` most informative columns (by mutual information with the identity), best first."""
    mi = mutual_information(x, labels, bins)
    k = max(1, min(int(k), mi.size))
    order = np.lexsort((np.arange(mi.size), -mi))  # descending MI, ties by index
    return order[:k]


@dataclass(frozen=True)
class FeatureFusion:
    """Feature-level fusion fitted on training rows: per-block z-score, concatenation, entropy selection.

    Each block (e.g. Log-Gabor, DoG, deep) is standardized per dimension and then scaled by 1/sqrt(its width) so a
    1,152-dimensional block does not drown a 128-dimensional one in a cosine; then the ``k`` most informative
    dimensions of the concatenation are kept.
    """

    names: tuple[str, ...]
    scalers: tuple[ZScore, ...]
    selected: np.ndarray

    @classmethod
    def fit(cls, blocks: dict[str, np.ndarray], labels: list[str], k: int = 256, bins: int = 8) -> FeatureFusion:
        names = tuple(blocks)
        scalers = tuple(ZScore.fit(blocks[n]) for n in names)
        joined = cls._join(names, scalers, blocks)
        return cls(names, scalers, select_informative(joined, labels, k, bins))

    @staticmethod
    def _join(names, scalers, blocks) -> np.ndarray:
        parts = [s(blocks[n]) / np.sqrt(blocks[n].shape[1]) for n, s in zip(names, scalers, strict=True)]
        return np.concatenate(parts, axis=1)

    def __call__(self, blocks: dict[str, np.ndarray]) -> np.ndarray:
        missing = [n for n in self.names if n not in blocks]
        if missing:
            raise ValueError(f"feature blocks {', '.join(missing)} missing")
        return self._join(self.names, self.scalers, blocks)[:, self.selected]
