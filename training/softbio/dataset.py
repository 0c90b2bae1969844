"""Load a sex-labelled fingerprint set: SOCOFing folders or a manifest.csv with a ``sex`` column.

Why labels are read (and checked) before any pixel is decoded: a set with one class, or too few subjects for the
splits, must stop with a clear message in a second, not after minutes of decoding. Files whose names or rows do
not give a sex are listed in ``skipped`` with the reason and left out; nothing else is lost.

Every image becomes ``size`` x ``size`` uint8 grey (resized, then contrast-stretched between its 1st and 99th
percentile); models divide by 255. The resize changes the pixel pitch, so each sample keeps its *effective* dpi
(native dpi x scale) for the features that are measured in millimetres.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from device.errors import DatasetError, ImageError

CLASSES = ("F", "M")  # label index = position; ROC scores are for "M"
DEFAULT_SIZE = 128
DEFAULT_DPI = 500.0  # SOCOFing and most optical scanners
_SEX_WORDS = {"f": "F", "female": "F", "woman": "F", "w": "F", "m": "M", "male": "M", "man": "M"}


@dataclass(frozen=True)
class LabelledSample:
    """One image with what the study needs to know about it (no pixels yet)."""

    path: Path
    sex: str  # "F" or "M"
    subject: str  # the person: never in two splits
    source: str  # the real print an altered image was made from (itself for a real image)
    hand: str  # left, right or unknown
    finger: str  # thumb, index, middle, ring, little or unknown
    alteration: str  # none for a real print, else the alteration kind
    dpi: float  # native resolution


@dataclass
class SoftbioSet:
    """Decoded images and per-image metadata as parallel arrays (index i describes ``images[i]``)."""

    images: np.ndarray  # uint8 (N, size, size)
    y: np.ndarray  # int64 (N,), index into CLASSES
    subjects: np.ndarray  # str (N,)
    sources: np.ndarray  # str (N,)
    hands: np.ndarray  # str (N,)
    fingers: np.ndarray  # str (N,)
    alterations: np.ndarray  # str (N,)
    dpi: np.ndarray  # float64 (N,): effective dpi at ``size``
    paths: list[Path]
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    layout: str = "manifest"

    def __len__(self) -> int:
        return len(self.paths)

    @property
    def altered(self) -> np.ndarray:
        return self.alterations != "none"

    def summary(self) -> dict:
        """Counts per class (images and subjects), real/altered, skipped."""
        out: dict = {"images": len(self), "subjects": int(np.unique(self.subjects).size), "skipped": len(self.skipped),
                     "altered_images": int(self.altered.sum()), "layout": self.layout}
        for k, name in enumerate(CLASSES):
            sel = self.y == k
            out[f"images_{name}"] = int(sel.sum())
            out[f"subjects_{name}"] = int(np.unique(self.subjects[sel]).size)
        return out


def parse_sex(value: str) -> str | None:
    """"M"/"F" for the usual spellings (M, male, man, F, female, woman, W), None otherwise."""
    return _SEX_WORDS.get(str(value).strip().lower())


def label_samples(path: str | Path, default_dpi: float = DEFAULT_DPI) -> tuple[list[LabelledSample], list, str]:
    """Index ``path`` (any layout the loaders know) and label every sample; returns (samples, skipped, layout)."""
    from training.data.loaders import load_dataset

    index = load_dataset(path)
    skipped = list(index.skipped)
    samples: list[LabelledSample] = []
    for s in index.samples:
        a = s.attributes
        raw = a.get("sex")
        if raw is None:
            skipped.append((s.path, "no sex given (SOCOFing name {subject}__{M|F}_... or a manifest 'sex' column)"))
            continue
        sex = parse_sex(raw)
        if sex is None:
            skipped.append((s.path, f"sex {raw!r} is not one of M, F, male, female"))
            continue
        if index.layout == "socofing":
            subject = f"{s.dataset}/{a['subject']}"
            source = f"{subject}/{a['hand']}/{a['finger']}"
        else:
            subject = f"{s.dataset}/{a['subject']}" if a.get("subject") else f"{s.dataset}/{s.identity}"
            source = f"{s.dataset}/{a['source']}" if a.get("source") else f"{s.dataset}/{s.identity}/{s.impression}"
        samples.append(LabelledSample(
            path=s.path, sex=sex, subject=subject, source=source,
            hand=a.get("hand", "unknown").lower(), finger=a.get("finger", "unknown").lower(),
            alteration=_alteration(a), dpi=_dpi(a, default_dpi, s.path)))
    if not samples:
        first = f" (first skipped: {skipped[0][0]}: {skipped[0][1]})" if skipped else ""
        raise DatasetError(f"{path}: no image carries a sex label{first}")
    check_consistent(samples)
    return samples, skipped, index.layout


def _alteration(a: dict[str, str]) -> str:
    kind = a.get("alteration", "none") or "none"
    level = a.get("level", "")
    if kind.lower() == "none":
        return "none"
    return f"{level}-{kind}" if level and level not in ("real", "altered") else kind


def _dpi(a: dict[str, str], default: float, path: Path) -> float:
    if a.get("dpi"):
        try:
            value = float(a["dpi"])
        except ValueError as exc:
            raise DatasetError(f"{path}: dpi {a['dpi']!r} is not a number") from exc
        if not 50 <= value <= 5000:
            raise DatasetError(f"{path}: dpi {value} is outside 50..5000")
        return value
    if a.get("profile"):
        from training.synth.profiles import PROFILES

        prof = PROFILES.get(a["profile"])
        if prof is not None and prof.dpi > 0:
            return float(prof.dpi)
    return float(default)


def check_consistent(samples: Iterable[LabelledSample]) -> None:
    """A subject must have one sex; two labels for one person means the subject key or the labels are wrong."""
    seen: dict[str, LabelledSample] = {}
    for s in samples:
        first = seen.setdefault(s.subject, s)
        if first.sex != s.sex:
            raise DatasetError(f"subject {s.subject} is labelled both {first.sex} ({first.path}) and {s.sex} "
                               f"({s.path}); fix the labels or the subject column")


def check_classes(sexes: Iterable[str]) -> None:
    """Both classes must be present: a classifier of one class has nothing to learn."""
    present = sorted(set(sexes))
    if len(present) < 2:
        only = present[0] if present else "none"
        raise DatasetError(f"only one class in the data ({only}); sex classification needs both F and M images")


def limit_subjects(samples: list[LabelledSample], max_subjects: int | None, seed: int) -> list[LabelledSample]:
    """Keep a random ``max_subjects`` subjects (all their images), for quick runs; order preserved."""
    subjects = sorted({s.subject for s in samples})
    if max_subjects is None or max_subjects >= len(subjects):
        return samples
    if max_subjects < 1:
        raise DatasetError(f"max subjects must be at least 1, got {max_subjects}")
    keep = set(np.random.default_rng(seed).choice(subjects, size=max_subjects, replace=False).tolist())
    return [s for s in samples if s.subject in keep]


def permute_sex(samples: list[LabelledSample], seed: int) -> list[LabelledSample]:
    """Shuffle the sex labels across *subjects* (each keeps one label): the null case, where nothing is learnable.

    A classifier that still beats chance after this has leaked something (the permutation test for leakage).
    """
    subjects = sorted({s.subject for s in samples})
    sex = {s.subject: s.sex for s in samples}
    shuffled = np.random.default_rng(seed).permutation([sex[k] for k in subjects])
    new = dict(zip(subjects, shuffled.tolist(), strict=True))
    return [replace(s, sex=new[s.subject]) for s in samples]


def normalize_image(grey: np.ndarray, size: int) -> np.ndarray:
    """Resize to ``size`` x ``size`` and stretch the 1st..99th percentile to 0..255 (uint8)."""
    import cv2

    h, w = grey.shape
    interp = cv2.INTER_AREA if h * w > size * size else cv2.INTER_LINEAR
    img = cv2.resize(grey, (size, size), interpolation=interp).astype(np.float32)
    lo, hi = np.percentile(img, [1, 99])
    if hi - lo < 1e-3:
        return np.full((size, size), 128, np.uint8)
    return np.clip((img - lo) * (255.0 / (hi - lo)), 0, 255).astype(np.uint8)


def decode(samples: list[LabelledSample], size: int = DEFAULT_SIZE, skipped: list | None = None,
           layout: str = "manifest", progress: bool = True) -> SoftbioSet:
    """Read and normalize every image; unreadable files are added to ``skipped`` and left out."""
    from device.imageio import read_image
    from device.progress import tqdm

    skipped = list(skipped or [])
    images, kept, eff_dpi = [], [], []
    for s in tqdm(samples, desc="softbio images", unit="img", disable=not progress):
        try:
            grey = read_image(s.path)
        except ImageError as exc:
            skipped.append((s.path, str(exc)))
            continue
        if min(grey.shape) < 16:
            skipped.append((s.path, f"image {grey.shape[1]}x{grey.shape[0]} is too small (need 16 px)"))
            continue
        images.append(normalize_image(grey, size))
        kept.append(s)
        eff_dpi.append(s.dpi * np.sqrt(size * size / (grey.shape[0] * grey.shape[1])))
    if not kept:
        raise DatasetError("no image could be read (see the skipped list)")

    def column(name: str) -> np.ndarray:
        return np.array([getattr(s, name) for s in kept], dtype=object).astype(str)

    return SoftbioSet(
        images=np.stack(images), y=np.array([CLASSES.index(s.sex) for s in kept], np.int64),
        subjects=column("subject"), sources=column("source"), hands=column("hand"), fingers=column("finger"),
        alterations=column("alteration"), dpi=np.array(eff_dpi, np.float64), paths=[s.path for s in kept],
        skipped=skipped, layout=layout)
