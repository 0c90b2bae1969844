"""The image sets the fusion report measures: synthetic (generated here), real (../shared/data), and multimodal
pairings of a fingerprint set with a vein set.

Multimodal pairing (no real set here holds both modalities of the same people):
- synthetic: identity k of the synthetic fingerprint set and identity k of the synthetic vein set are declared
  the same person (each identity "gets both"); impression n is paired with impression n;
- real: as the paper does, identities are paired *across sets by index*: the k-th finger (natural order) of an
  FVC DB_B set with the k-th finger of FV-USM; impression n with impression n (FVC has 8, FV-USM 6: 6 are used).
  These chimeric people are independent by construction, which is the assumption score fusion makes anyway.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from device.errors import DatasetError


@dataclass
class ImageSet:
    name: str
    modality: str  # fingerprint | vein | multimodal
    images: list[np.ndarray]
    labels: list[str]
    impressions: list[str]
    note: str = ""
    parts: dict[str, tuple[str, list[int]]] = field(default_factory=dict)  # multimodal: part -> (set name, rows)

    @property
    def identities(self) -> int:
        return len(set(self.labels))

    def describe(self) -> str:
        per = len(self.labels) // max(self.identities, 1)
        return f"{self.identities} identities x {per} impressions"


def _read(paths: list[Path]) -> list[np.ndarray]:
    from device.imageio import read_image

    return [read_image(p) for p in paths]


def from_index(name: str, modality: str, samples: list, note: str = "") -> ImageSet:
    """An ``ImageSet`` from loader samples (reads every image now)."""
    return ImageSet(name, modality, _read([s.path for s in samples]), [s.identity for s in samples],
                    [s.impression for s in samples], note)


def real_sets(root: Path, vein_identities: int = 40) -> list[ImageSet]:
    """One set per FVC DB_B sensor and the first ``vein_identities`` fingers of FV-USM ROI (natural order)."""
    from training.data.loaders import load_dataset, natural_key

    manifest = Path(root) / "manifest.csv"
    if not manifest.is_file():
        raise DatasetError(f"no manifest.csv under {root}")
    index = load_dataset(manifest)
    out: list[ImageSet] = []
    for ds_name, ds in sorted(index.datasets().items()):
        if ds_name.startswith("fingerprint/"):
            by_db: dict[str, list] = {}
            for s in ds.samples:
                by_db.setdefault(s.identity.split("/")[0], []).append(s)
            for db, samples in sorted(by_db.items()):
                samples.sort(key=lambda s: (natural_key(s.identity), natural_key(s.impression)))
                year = ds_name.split("/")[-1].upper()
                out.append(from_index(f"{year} {db}", "fingerprint", samples))
        elif ds_name.startswith("vein/"):
            groups = ds.identities()
            keep = sorted(groups, key=natural_key)[:vein_identities]
            samples = [s for k in keep for s in groups[k]]
            note = f"first {len(keep)} of {len(groups)} fingers (natural order)" if len(keep) < len(groups) else ""
            out.append(from_index("FV-USM ROI", "vein", samples, note))
    return out


def synthetic_set(modality: str, identities: int, impressions: int, seed: int, cache: Path) -> ImageSet:
    """Generate (or reuse from ``cache``) a synthetic set: r307 fingerprints or roi vein crops."""
    from training.data.loaders import load_dataset
    from training.synth import generate_dataset

    profile = "r307" if modality == "fingerprint" else "roi"
    folder = Path(cache) / f"{modality}-{profile}-{identities}x{impressions}-s{seed}"
    manifest = folder / "manifest.csv"
    if not manifest.is_file():
        manifest = generate_dataset(modality, identities, impressions, profile, seed, folder, force=True)
    index = load_dataset(manifest)
    groups = index.identities()
    samples = [s for k in groups for s in groups[k]]
    return from_index(f"synthetic {modality} ({profile})", modality, samples,
                      f"training.synth profile {profile}, seed {seed}")


def pair_multimodal(fp: ImageSet, vein: ImageSet, name: str, note: str) -> ImageSet:
    """Pair identities by index and impressions by order (see the module docstring); rows hold both images."""
    from training.data.loaders import natural_key

    def groups(s: ImageSet) -> list[list[int]]:
        by: dict[str, list[int]] = {}
        for i, lab in enumerate(s.labels):
            by.setdefault(lab, []).append(i)
        return [sorted(by[k], key=lambda i: natural_key(s.impressions[i])) for k in sorted(by, key=natural_key)]

    fg, vg = groups(fp), groups(vein)
    n_id = min(len(fg), len(vg))
    per = min(min(len(g) for g in fg[:n_id]), min(len(g) for g in vg[:n_id]))
    if n_id < 4 or per < 2:
        raise DatasetError(f"cannot pair {fp.name} with {vein.name}: {n_id} identities x {per} impressions")
    fp_rows = [fg[k][n] for k in range(n_id) for n in range(per)]
    vein_rows = [vg[k][n] for k in range(n_id) for n in range(per)]
    labels = [f"p{k}" for k in range(n_id) for _ in range(per)]
    impressions = [str(n + 1) for _ in range(n_id) for n in range(per)]
    return ImageSet(name, "multimodal", [], labels, impressions, note,
                    parts={"fp": (fp.name, fp_rows), "vein": (vein.name, vein_rows)})
