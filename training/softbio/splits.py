"""Train / validation / test splits: by subject (the honest one) and by image (the leaky one, for comparison).

Subject split: the *subjects* of each sex are shuffled with a fixed seed and dealt 80/20 into train+validation
and test, then 80/20 again into train and validation. Every image of a person -- all fingers, real and altered
copies -- goes where the person goes, so altered images always follow their source print and no person is seen
in training and judged in test. Stratifying per sex keeps the class ratio of every part close to the whole.

Image split: the same proportions dealt over single images, as the study appears to have done. The same person
(and the altered copies of one print) then lands on both sides; the gap between the two splits' accuracies is
what that leak is worth. Use it only to measure the leak.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from device.errors import DatasetError
from training.softbio.dataset import CLASSES

SPLIT_KINDS = ("subject", "image")
TEST_FRACTION = 0.2
VAL_FRACTION = 0.2  # of what is left after the test part
MIN_UNITS_PER_CLASS = 5  # subjects (subject split) or images (image split) per class: 3 train, 1 val, 1 test


@dataclass(frozen=True)
class Split:
    """Image indices of each part."""

    kind: str
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray

    def parts(self) -> dict[str, np.ndarray]:
        return {"train": self.train, "val": self.val, "test": self.test}

    def counts(self, y: np.ndarray, subjects: np.ndarray) -> dict[str, dict[str, int]]:
        """Images and subjects per part and class."""
        out = {}
        for name, idx in self.parts().items():
            row = {"images": int(idx.size), "subjects": int(np.unique(subjects[idx]).size)}
            for k, c in enumerate(CLASSES):
                row[f"images_{c}"] = int((y[idx] == k).sum())
            out[name] = row
        return out


def _deal(units: np.ndarray, rng: np.random.Generator, test_frac: float, val_frac: float) -> tuple[list, list, list]:
    """Shuffle ``units`` and cut them into (train, val, test) with at least one unit in each part."""
    units = rng.permutation(units)
    n = units.size
    n_test = min(max(1, round(n * test_frac)), n - 2)
    n_val = min(max(1, round((n - n_test) * val_frac)), n - n_test - 1)
    return list(units[n_test + n_val:]), list(units[n_test:n_test + n_val]), list(units[:n_test])


def check_splittable(subjects: np.ndarray, y: np.ndarray, kinds: tuple[str, ...] | list[str]) -> None:
    """Raise DatasetError (before any training) if a class has too few subjects/images for the splits asked for."""
    subjects, y = np.asarray(subjects), np.asarray(y)
    for kind in kinds:
        if kind not in SPLIT_KINDS:
            raise DatasetError(f"unknown split {kind!r}; choose subject, image or both")
        for k, c in enumerate(CLASSES):
            sel = y == k
            n = int(np.unique(subjects[sel]).size) if kind == "subject" else int(sel.sum())
            if n < MIN_UNITS_PER_CLASS:
                unit = "subjects" if kind == "subject" else "images"
                raise DatasetError(
                    f"too few {unit} for the {kind} split: class {c} has {n}, need at least {MIN_UNITS_PER_CLASS} "
                    f"(train, validation and test each need both classes)")


def subject_split(subjects: np.ndarray, y: np.ndarray, seed: int = 0, test_frac: float = TEST_FRACTION,
                  val_frac: float = VAL_FRACTION) -> Split:
    """Stratified by sex, disjoint by subject (see the module docstring)."""
    subjects, y = np.asarray(subjects), np.asarray(y)
    check_splittable(subjects, y, ["subject"])
    rng = np.random.default_rng([int(seed), 0x5B])
    assign: dict[str, str] = {}
    for k in range(len(CLASSES)):
        units = np.unique(subjects[y == k])
        for part, members in zip(("train", "val", "test"), _deal(units, rng, test_frac, val_frac), strict=True):
            assign.update(dict.fromkeys(members, part))
    where = np.array([assign[s] for s in subjects])
    split = Split("subject", *(np.flatnonzero(where == p) for p in ("train", "val", "test")))
    assert_disjoint(split, subjects)
    return split


def image_split(y: np.ndarray, seed: int = 0, test_frac: float = TEST_FRACTION,
                val_frac: float = VAL_FRACTION) -> Split:
    """Stratified by sex over single images: leaky on purpose (the same person on both sides)."""
    y = np.asarray(y)
    check_splittable(np.arange(y.size).astype(str), y, ["image"])
    rng = np.random.default_rng([int(seed), 0x1A])
    parts: dict[str, list] = {"train": [], "val": [], "test": []}
    for k in range(len(CLASSES)):
        for part, members in zip(parts, _deal(np.flatnonzero(y == k), rng, test_frac, val_frac), strict=True):
            parts[part].extend(members)
    return Split("image", *(np.sort(np.array(parts[p], np.int64)) for p in ("train", "val", "test")))


def make_split(kind: str, subjects: np.ndarray, y: np.ndarray, seed: int = 0) -> Split:
    if kind == "subject":
        return subject_split(subjects, y, seed)
    if kind == "image":
        return image_split(y, seed)
    raise DatasetError(f"unknown split {kind!r}; choose subject, image or both")


def shared_keys(split: Split, keys: np.ndarray) -> set[str]:
    """Keys (subjects, source prints) that occur in more than one part of ``split``."""
    keys = np.asarray(keys)
    sets = [set(keys[idx].tolist()) for idx in split.parts().values()]
    return (sets[0] & sets[1]) | (sets[0] & sets[2]) | (sets[1] & sets[2])


def assert_disjoint(split: Split, subjects: np.ndarray) -> None:
    """Fail closed: a subject split that shares a person between parts is a bug, never a result."""
    both = shared_keys(split, subjects)
    if both:
        raise AssertionError(f"subject split is not disjoint: {sorted(both)[:5]} in more than one part")


def balance(indices: np.ndarray, y: np.ndarray, mode: str, rng: np.random.Generator) -> np.ndarray:
    """Balance the classes of a training part: ``under`` drops, ``over`` repeats at random, ``none`` keeps.

    Only the training part is ever balanced; validation and test keep their real class ratio.
    """
    indices = np.asarray(indices)
    if mode == "none":
        return indices
    groups = [indices[y[indices] == k] for k in range(len(CLASSES))]
    sizes = [g.size for g in groups]
    if min(sizes) == 0:
        raise DatasetError("cannot balance a training part that holds only one class")
    if mode == "under":
        target = min(sizes)
        picked = [rng.choice(g, size=target, replace=False) for g in groups]
    elif mode == "over":
        target = max(sizes)
        picked = [np.concatenate([g, rng.choice(g, size=target - g.size, replace=True)]) for g in groups]
    else:
        raise DatasetError(f"unknown balancing {mode!r}; choose under, over or none")
    return rng.permutation(np.concatenate(picked))
