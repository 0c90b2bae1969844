"""Datasets as preprocessed arrays: load an index, read every image, run THE device preprocessing, cache.

Why here: training, evaluation and export all need ``(images, identity labels, impressions)`` prepared exactly
as the device prepares a capture (``device.preprocess.preprocess``), and decoding + preprocessing thousands of
images costs minutes on two cores, so the arrays are cached (``.npz``) keyed by the files, their sizes and
modification times, the modality, the input size and the preprocessing id.

Bad input is a ``DatasetError`` naming the file or the problem: unreadable images, fewer than two identities,
identities with fewer than two impressions (when ``min_impressions`` asks for them).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from device.errors import DatasetError, ImageError


@dataclass
class PreparedSet:
    """Preprocessed images of one or more datasets with their labels, in sample order."""

    images: np.ndarray  # float32 (N, H, W) in [0, 1]
    labels: list[str]  # identity key per image (dataset-qualified when several datasets)
    impressions: list[str]
    datasets: list[str]  # per-image subset name (sensor), e.g. "fingerprint/fvc2000/DB1_B"
    paths: list[str]
    quality_ok: np.ndarray  # bool (N,)
    preprocessing_id: str

    def __len__(self) -> int:
        return len(self.labels)

    def select(self, idx) -> PreparedSet:
        idx = np.asarray(idx, dtype=np.int64)
        pick = idx.tolist()
        return PreparedSet(
            self.images[idx],
            [self.labels[i] for i in pick],
            [self.impressions[i] for i in pick],
            [self.datasets[i] for i in pick],
            [self.paths[i] for i in pick],
            self.quality_ok[idx],
            self.preprocessing_id,
        )

    def subsets(self) -> dict[str, PreparedSet]:
        """One set per sensor subset, in first-seen order."""
        order: dict[str, list[int]] = {}
        for i, name in enumerate(self.datasets):
            order.setdefault(name, []).append(i)
        return {name: self.select(ix) for name, ix in order.items()}

    def identity_count(self) -> int:
        return len(set(self.labels))


def _prep_one(args: tuple[str, str, tuple[int, int], str]) -> tuple[np.ndarray | None, bool, str | None]:
    from device.imageio import read_image
    from device.preprocess import preprocess

    path, modality, size, prep_id = args
    try:
        grey = read_image(Path(path))
        out = preprocess(grey, modality, size, prep_id)
    except ImageError as exc:
        return None, False, str(exc)
    return out.image, bool(out.quality.ok), None


def _preprocessing_source() -> bytes:
    """The preprocessing code itself, so a cache never outlives a change that forgot to bump the id."""
    import device

    root = Path(device.__file__).parent
    names = ("preprocess.py", "fingerprint_ops.py", "vein_ops.py", "params.py", "quality.py", "imageio.py")
    return b"".join((root / n).read_bytes() for n in names if (root / n).is_file())


def _cache_key(paths: list[str], modality: str, size: tuple[int, int], prep_id: str) -> str:
    h = hashlib.sha256(f"{modality}|{size}|{prep_id}".encode())
    h.update(hashlib.sha256(_preprocessing_source()).digest())
    for p in paths:
        try:
            st = os.stat(p)
            h.update(f"{p}|{st.st_size}|{st.st_mtime_ns}\n".encode())
        except OSError:
            h.update(f"{p}|missing\n".encode())
    return h.hexdigest()[:20]


def load_index(data: str | Path, modality: str | None = None):
    """Load a dataset index (any layout); with ``modality`` keep only datasets that name it, when any do."""
    from training.data.loaders import load_dataset

    index = load_dataset(Path(data))
    if modality is not None:
        named = [s for s in index.samples if modality in s.dataset.lower()]
        if named:
            index = index.filter(lambda s: modality in s.dataset.lower())
    if not index.samples:
        raise DatasetError(f"{data}: no images found for {modality or 'any modality'}")
    return index


def prepare(
    data: str | Path,
    modality: str,
    size: tuple[int, int] | None = None,
    cache_dir: Path | None = None,
    workers: int = 2,
    min_identities: int = 2,
    min_impressions: int = 1,
    progress: bool = True,
    preprocessing_id: str | None = None,
) -> PreparedSet:
    """Load ``data`` (a folder or manifest), preprocess every image for ``modality`` and return arrays.

    ``preprocessing_id``: the version a model card names (default: the current one for ``modality``).
    """
    from device.preprocess import check_preprocessing_id, input_size

    size = tuple(size) if size else input_size(modality)
    prep_id = check_preprocessing_id(modality, preprocessing_id)
    index = load_index(data, modality)
    for path, reason in index.skipped:
        if "unreadable" in reason or "truncated" in reason or "corrupt" in reason:
            raise DatasetError(f"{path}: {reason}")
    subsets = index.subsets()
    several = len({s.dataset for s in index.samples}) > 1
    samples, names = [], []
    for name, sub in subsets.items():
        for s in sub.samples:
            samples.append(s)
            names.append(name)
    labels = [f"{s.dataset}/{s.identity}" if several else s.identity for s in samples]
    paths = [str(s.path) for s in samples]
    _check_counts(labels, data, min_identities, min_impressions)

    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"prep-{modality}-{_cache_key(paths, modality, size, prep_id)}.npz"
        if cache.is_file():
            z = np.load(cache)
            return PreparedSet(
                z["images"], labels, [s.impression for s in samples], names, paths, z["ok"], prep_id
            )
    jobs = [(p, modality, size, prep_id) for p in paths]
    results = _run(jobs, workers, progress, f"preprocess {modality}")
    images = np.zeros((len(jobs), *size), np.float32)
    ok = np.zeros(len(jobs), bool)
    for i, (img, good, err) in enumerate(results):
        if err is not None:
            raise DatasetError(f"{paths[i]}: unreadable image ({err})")
        images[i] = img
        ok[i] = good
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(".tmp.npz")
        np.savez(tmp, images=images, ok=ok)
        os.replace(tmp, cache)
        (cache.with_suffix(".json")).write_text(json.dumps({"data": str(data), "count": len(paths)}))
    return PreparedSet(images, labels, [s.impression for s in samples], names, paths, ok, prep_id)


def _run(jobs, workers: int, progress: bool, desc: str):
    from device.progress import tqdm

    if workers > 1 and len(jobs) > 64:
        with get_context("spawn").Pool(workers) as pool:
            it = pool.imap(_prep_one, jobs, chunksize=16)
            return list(tqdm(it, total=len(jobs), desc=desc, disable=not progress, leave=False))
    return [_prep_one(j) for j in tqdm(jobs, desc=desc, disable=not progress, leave=False)]


def _check_counts(labels: list[str], data, min_identities: int, min_impressions: int) -> None:
    counts: dict[str, int] = {}
    for label in labels:
        counts[label] = counts.get(label, 0) + 1
    if len(counts) < min_identities:
        raise DatasetError(f"{data}: {len(counts)} identit{'y' if len(counts) == 1 else 'ies'} found; "
                           f"need at least {min_identities} to tell people apart")
    few = sorted(k for k, v in counts.items() if v < min_impressions)
    if few:
        raise DatasetError(
            f"{data}: {len(few)} identit{'y has' if len(few) == 1 else 'ies have'} fewer than {min_impressions} "
            f"impressions (e.g. {few[0]!r}); genuine pairs need at least two per identity"
        )
