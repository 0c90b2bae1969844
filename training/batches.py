"""Identity-disjoint splits and P x K batch sampling.

Why identity-disjoint: a verification model must work on fingers it never saw, so validation and test
identities are never used in training (every impression of an identity goes to exactly one split).
Why P x K batches: each batch holds P identities with K impressions each, which gives every anchor positives
and negatives inside the batch (needed by the online triplet, pair and EER losses).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from device.errors import DatasetError
from training.augment import AugmentParams, augment_batch


@dataclass(frozen=True)
class Split:
    """Sample indices of each split; identity sets are disjoint."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def as_dict(self, labels: list[str]) -> dict[str, list[str]]:
        return {
            name: sorted({labels[i] for i in getattr(self, name)}) for name in ("train", "val", "test")
        }


def split_identities(labels: list[str], val_fraction: float, test_fraction: float, seed: int) -> Split:
    """Shuffle identities with ``seed`` and cut them into train / val / test (each non-empty when asked for)."""
    ids = sorted(set(labels))
    if len(ids) < 2:
        raise DatasetError(f"need at least 2 identities to split, got {len(ids)}")
    rng = np.random.default_rng(seed)
    order = [ids[i] for i in rng.permutation(len(ids))]
    n = len(order)
    n_val = max(1 if val_fraction > 0 else 0, int(round(n * val_fraction)))
    n_test = max(1 if test_fraction > 0 else 0, int(round(n * test_fraction)))
    if n - n_val - n_test < 2:
        raise DatasetError(f"{n} identities are too few for a {val_fraction:.0%}/{test_fraction:.0%} val/test split")
    val_ids = set(order[:n_val])
    test_ids = set(order[n_val : n_val + n_test])
    lab = np.asarray(labels)
    idx = np.arange(len(labels))
    is_val = np.isin(lab, list(val_ids))
    is_test = np.isin(lab, list(test_ids))
    return Split(train=idx[~is_val & ~is_test], val=idx[is_val], test=idx[is_test])


def group_by_label(labels: list[str]) -> tuple[list[str], list[np.ndarray]]:
    """Identity names (sorted) and the sample indices of each."""
    groups: dict[str, list[int]] = {}
    for i, label in enumerate(labels):
        groups.setdefault(label, []).append(i)
    names = sorted(groups)
    return names, [np.asarray(groups[n]) for n in names]


class PKSampler:
    """Endless P identities x K impressions batches with augmentation; labels are integer identity ids.

    Identities with fewer than K impressions are sampled with replacement (augmentation makes the copies
    differ). Identities are drawn without replacement within an epoch-like cycle so every one is seen.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: list[str],
        p: int,
        k: int,
        seed: int,
        augment: AugmentParams | None = AugmentParams(),
    ):
        self.images = images
        self.names, self.groups = group_by_label(labels)
        if len(self.names) < 2:
            raise DatasetError("training needs at least 2 identities")
        self.groups = [g for g in self.groups]
        self.p = min(p, len(self.names))
        self.k = k
        self.augment = augment
        self.rng = np.random.default_rng(seed)
        self._queue: list[int] = []

    def _next_ids(self) -> list[int]:
        out: list[int] = []
        while len(out) < self.p:
            if not self._queue:
                self._queue = self.rng.permutation(len(self.names)).tolist()
            nxt = self._queue.pop()
            if nxt not in out:
                out.append(nxt)
        return out

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        idx, lab = [], []
        for ident in self._next_ids():
            members = self.groups[ident]
            pick = self.rng.choice(members, self.k, replace=len(members) < self.k)
            idx.extend(pick.tolist())
            lab.extend([ident] * self.k)
        x = self.images[np.asarray(idx)]
        if self.augment is not None:
            x = augment_batch(x, self.rng, self.augment)
        return x[..., None].astype(np.float32), np.asarray(lab, np.int32)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        while True:
            yield self.batch()


class TripletSampler:
    """Batches of offline-mined triplets ``[a0, p0, n0, a1, ...]`` (see ``training.mining``)."""

    def __init__(self, images: np.ndarray, triplets: np.ndarray, per_batch: int, seed: int,
                 augment: AugmentParams | None = AugmentParams()):
        self.images = images
        self.triplets = np.asarray(triplets, dtype=np.int64).reshape(-1, 3)
        self.per_batch = per_batch
        self.augment = augment
        self.rng = np.random.default_rng(seed)
        self._pos = 0
        self._order = self.rng.permutation(len(self.triplets))

    def set_triplets(self, triplets: np.ndarray) -> None:
        self.triplets = np.asarray(triplets, dtype=np.int64).reshape(-1, 3)
        self._order = self.rng.permutation(len(self.triplets))
        self._pos = 0

    def batch(self) -> tuple[np.ndarray, np.ndarray]:
        if self._pos + self.per_batch > len(self._order):
            self._order = self.rng.permutation(len(self.triplets))
            self._pos = 0
        rows = self.triplets[self._order[self._pos : self._pos + self.per_batch]]
        self._pos += self.per_batch
        flat = rows.reshape(-1)
        x = self.images[flat]
        if self.augment is not None:
            x = augment_batch(x, self.rng, self.augment)
        return x[..., None].astype(np.float32), flat.astype(np.int32)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        while True:
            yield self.batch()
