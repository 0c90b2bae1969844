"""Evaluation sets: a dataset folder or manifest.csv, one set per sensor, each with its genuine/impostor pairs.

Why one set per sensor: FVC's DB1_B, DB2_B, ... are different sensors inside one dataset folder and a threshold
means something only for one sensor, so each is scored on its own (the loaders' ``subsets``). Two impostor
protocols: ``fvc`` (first impression of each finger against the first of every other finger; comparable with
published FVC numbers) and ``all`` (every pair of images of two different fingers: the most impostors the set
can give, what an FMR of 1/10,000 needs). Genuine pairs are every pair of impressions of one finger in both.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from device.errors import DatasetError

PROTOCOLS = ("fvc", "all")
MODALITIES = ("fingerprint", "vein")


@dataclass(frozen=True)
class EvalSet:
    """The images of one sensor: paths with their finger (``labels``) and impression."""

    name: str
    paths: tuple[Path, ...]
    labels: tuple[str, ...]
    impressions: tuple[str, ...]

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def identities(self) -> int:
        return len(set(self.labels))


def modality_of(name: str) -> str | None:
    """The modality a dataset name says (``fingerprint/fvc2000/DB1_B`` -> fingerprint), else None."""
    head = name.split("/")[0].lower()
    return head if head in MODALITIES else None


def load_sets(data: str | Path, modality: str | None = None, only: tuple[str, ...] = ()) -> list[EvalSet]:
    """The sets under ``data`` (folder or manifest.csv), one per sensor; ``only`` keeps names starting with any.

    Sets whose name says another modality are left out; a set with fewer than two fingers that have two
    impressions cannot be scored and is an error naming it only when it was asked for by name.
    """
    from training.data.loaders import load_dataset, natural_key

    index = load_dataset(data)
    out: list[EvalSet] = []
    for name, sub in sorted(index.subsets().items()):
        said = modality_of(name)
        if modality is not None and said is not None and said != modality:
            continue
        if only and not any(name == o or name.startswith(o.rstrip("/") + "/") for o in only):
            continue
        samples = sorted(sub.samples, key=lambda s: (s.identity, natural_key(s.impression), str(s.path)))
        out.append(EvalSet(name, tuple(s.path for s in samples), tuple(s.identity for s in samples),
                           tuple(s.impression for s in samples)))
    if not out:
        raise DatasetError(f"{data}: no {modality or ''} sets found".replace("  ", " ")
                           + (f" matching {', '.join(only)}" if only else ""))
    return out


def genuine_pairs(labels: tuple[str, ...] | list[str]) -> np.ndarray:
    """(k, 2) int index pairs i < j of the same finger."""
    lab = np.asarray(labels)
    i, j = np.triu_indices(lab.size, k=1)
    keep = lab[i] == lab[j]
    return np.stack([i[keep], j[keep]], axis=1).astype(np.int64)


def impostor_pairs(labels, impressions, protocol: str) -> np.ndarray:
    """(k, 2) index pairs i < j of different fingers: ``fvc`` first impressions only, ``all`` every such pair."""
    if protocol not in PROTOCOLS:
        raise DatasetError(f"unknown protocol {protocol!r}; choose {', '.join(PROTOCOLS)}")
    lab = np.asarray(labels)
    if protocol == "fvc":
        from training.protocol import fvc_pairs

        _, imp = fvc_pairs(list(labels), list(impressions))
        return np.asarray(imp, dtype=np.int64).reshape(-1, 2)
    n = lab.size
    codes = np.unique(lab, return_inverse=True)[1]
    rows = []
    for a in range(n - 1):  # one row at a time keeps memory at the pair list itself (4.3 M pairs for FV-USM)
        b = np.arange(a + 1, n)
        b = b[codes[b] != codes[a]]
        rows.append(np.stack([np.full(b.size, a), b], axis=1))
    return np.concatenate(rows).astype(np.int64) if rows else np.zeros((0, 2), dtype=np.int64)


def usable_pairs(pairs: np.ndarray, ok: np.ndarray) -> np.ndarray:
    """The pairs whose both images were acquired (failures to acquire are counted, not scored)."""
    if pairs.size == 0:
        return pairs
    return pairs[ok[pairs[:, 0]] & ok[pairs[:, 1]]]
