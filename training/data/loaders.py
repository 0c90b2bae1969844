"""Dataset loaders: every supported layout becomes one in-memory index of (identity, impression, path, attributes).

Why an index and not arrays: loading must be cheap (no image is decoded here), a bad file must cost one
skipped entry (with its path and reason) and not the whole set, and training, evaluation and ``biolock data
info`` all want the same view. TensorFlow-free: the device and the CLI import this.

Layouts (``layout="auto"`` detects them in this order): ``manifest`` (manifest.csv), ``socofing``,
``sdumla`` (SDUMLA-HMT finger vein), ``fvc``, ``folder`` (one folder per identity). See ``layouts``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from device.errors import DatasetError

LAYOUTS = ("auto", "manifest", "fvc", "socofing", "sdumla", "folder")


@dataclass(frozen=True)
class Sample:
    """One image: which dataset and finger (``identity``) it shows, which impression, and where it is."""

    dataset: str
    identity: str
    impression: str
    path: Path
    attributes: dict[str, str] = field(default_factory=dict)


@dataclass
class DatasetIndex:
    """Samples found under ``root`` plus the files that were skipped, each with its reason."""

    root: Path
    samples: list[Sample] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    layout: str = "auto"

    def __len__(self) -> int:
        return len(self.samples)

    def identities(self) -> dict[str, list[Sample]]:
        """Samples grouped by finger, in first-seen order, impressions sorted naturally.

        Keys are the ``identity`` when the index holds one dataset; with several datasets they are
        ``"<dataset>/<identity>"`` so that finger 101 of two different sets never merges.
        """
        several = len({s.dataset for s in self.samples}) > 1
        groups: dict[str, list[Sample]] = {}
        for sample in self.samples:
            key = f"{sample.dataset}/{sample.identity}" if several else sample.identity
            groups.setdefault(key, []).append(sample)
        for members in groups.values():
            members.sort(key=lambda s: natural_key(s.impression))
        return groups

    def datasets(self) -> dict[str, DatasetIndex]:
        """One index per ``dataset`` name (skipped files go to the dataset their path lies in, else to all)."""
        return self.group_by(lambda s: s.dataset)

    def subsets(self) -> dict[str, DatasetIndex]:
        """One index per sensor: the dataset, split further by an identity prefix such as ``DB1_B/``.

        FVC's DB1_B, DB2_B, ... are different sensors inside one dataset folder; evaluate each on its own.
        """
        return self.group_by(lambda s: f"{s.dataset}/{s.identity.split('/')[0]}" if "/" in s.identity else s.dataset)

    def group_by(self, key: Callable[[Sample], str]) -> dict[str, DatasetIndex]:
        """Split into indexes by ``key(sample)``; skipped files are attributed by path where possible."""
        out: dict[str, DatasetIndex] = {}
        for sample in self.samples:
            name = key(sample)
            if name not in out:
                out[name] = DatasetIndex(self.root, [], [], self.layout)
            out[name].samples.append(sample)
        for path, reason in self.skipped:
            if out:
                _nearest(out, path).skipped.append((path, reason))
        return out

    def filter(self, keep: Callable[[Sample], bool]) -> DatasetIndex:
        """A new index with the samples for which ``keep`` is true (skipped list kept)."""
        return DatasetIndex(self.root, [s for s in self.samples if keep(s)], list(self.skipped), self.layout)

    def labels(self) -> tuple[list[str], list[str]]:
        """(identity keys, impressions) per sample, as ``training.protocol.fvc_pairs`` takes them."""
        several = len({s.dataset for s in self.samples}) > 1
        ids = [f"{s.dataset}/{s.identity}" if several else s.identity for s in self.samples]
        return ids, [s.impression for s in self.samples]


def _nearest(groups: dict[str, DatasetIndex], path: Path) -> DatasetIndex:
    """The group whose first sample's folder shares the longest path prefix with ``path``."""

    def shared(idx: DatasetIndex) -> int:
        a, b = Path(path).parts, idx.samples[0].path.parent.parts
        return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))

    return max(groups.values(), key=shared)


def natural_key(text: str) -> tuple:
    """Sort key that orders ``2`` before ``10`` (impressions and identities are often numbers)."""
    return tuple(int(part) if part.isdigit() else part.lower() for part in re.split(r"(\d+)", text))


def load_dataset(path: str | Path, layout: str = "auto") -> DatasetIndex:
    """Index the dataset at ``path`` (a folder, or a manifest.csv file) without decoding any image.

    ``layout`` forces one of ``LAYOUTS``; ``auto`` detects it. Raises DatasetError if the path does not exist,
    holds nothing usable, or the forced layout does not fit at all; single bad files are skipped and listed in
    ``index.skipped``.
    """
    from training.data import layouts

    root = Path(path)
    if layout not in LAYOUTS:
        raise DatasetError(f"unknown layout {layout!r}; choose one of: {', '.join(LAYOUTS)}")
    if not root.exists():
        raise DatasetError(f"{root}: no such file or folder")
    if root.is_file() and root.suffix.lower() != ".csv":
        raise DatasetError(f"{root}: expected a dataset folder or a manifest .csv file")
    chosen = layouts.detect(root) if layout == "auto" else layout
    index = layouts.LOADERS[chosen](root)
    index.layout = chosen
    if not index.samples:
        detail = f" ({len(index.skipped)} files skipped, first: {index.skipped[0][0]}: {index.skipped[0][1]})" if (
            index.skipped) else ""
        raise DatasetError(f"{root}: no images found in the {chosen} layout{detail}")
    return index
