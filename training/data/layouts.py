"""The folder layouts ``load_dataset`` understands, and how it tells them apart.

Each loader walks names only (no decoding) and returns a ``DatasetIndex``; a file it cannot place is added to
``skipped`` with a reason a person can act on ("name does not match ...", "manifest line 7: file not found").
"""

from __future__ import annotations

import csv
import os
import re
from collections.abc import Callable, Iterator
from pathlib import Path

from device.errors import DatasetError
from training.data.loaders import DatasetIndex, Sample

IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm", ".ppm", ".webp"})
# files that live beside images in real sets and are not worth a "skipped" line
_IGNORED_SUFFIXES = frozenset({".md", ".txt", ".csv", ".json", ".pdf", ".db", ".ini", ".html", ".xml", ".zip"})

FVC_NAME = re.compile(r"^(\d+)_(\d+)\.(tif|tiff|bmp|png)$", re.IGNORECASE)
SOCOFING_NAME = re.compile(
    r"^(\d+)__([MF])_(Left|Right)_(thumb|index|middle|ring|little)_finger(?:_(CR|Obl|Zcut))?\.bmp$", re.IGNORECASE
)
SDUMLA_NAME = re.compile(r"^(index|middle|ring)_(\d+)\.bmp$", re.IGNORECASE)
REQUIRED_COLUMNS = ("dataset", "relpath", "identity", "impression")


def walk_files(root: Path) -> Iterator[Path]:
    """Every regular file under ``root`` in a stable (sorted) order, hidden files and folders left out."""
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith("."))
        for name in sorted(files):
            if not name.startswith("."):
                yield Path(folder) / name


def is_image_name(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES


def _is_ignored(path: Path) -> bool:
    return path.suffix.lower() in _IGNORED_SUFFIXES or path.name.lower() in {"thumbs.db", "desktop.ini"}


def unusable(path: Path) -> str | None:
    """Why a file cannot be an image, from its metadata alone (no decoding), or None."""
    try:
        size = path.stat().st_size
    except OSError as exc:
        return f"cannot read: {exc.strerror or exc}"
    if size == 0:
        return "empty file (0 bytes)"
    if not os.access(path, os.R_OK):
        return "cannot read: permission denied"
    return None


def _candidates(root: Path, index: DatasetIndex) -> Iterator[Path]:
    """Image files under root; other files are skipped with a reason (documentation files silently)."""
    for path in walk_files(root):
        if is_image_name(path):
            problem = unusable(path)
            if problem:
                index.skipped.append((path, problem))
            else:
                yield path
        elif not _is_ignored(path):
            index.skipped.append((path, f"not an image file (extension {path.suffix or 'none'!r})"))


# --- detection --------------------------------------------------------------------------------------------------


def detect(root: Path) -> str:
    """Guess the layout of ``root`` from names alone."""
    if root.is_file() or (root / "manifest.csv").is_file():
        return "manifest"
    subdirs = {p.name.lower(): p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")}
    images = [p for p in walk_files(root) if is_image_name(p)]
    if not images:
        raise DatasetError(f"{root}: no image files found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
    names = [p.name for p in images]
    if ("real" in subdirs or "altered" in subdirs) and _share(names, SOCOFING_NAME) > 0.5:
        return "socofing"
    if _share(names, SOCOFING_NAME) > 0.5:
        return "socofing"
    if any((d / "left").is_dir() or (d / "right").is_dir() for d in subdirs.values()) and _share(
        names, SDUMLA_NAME
    ) > 0.5:
        return "sdumla"
    if _share(names, FVC_NAME) > 0.5:
        return "fvc"
    if subdirs:
        return "folder"
    raise DatasetError(
        f"{root}: cannot tell the layout (images directly in the folder, names not like FVC's 101_1.tif); "
        "put each identity's images in its own sub-folder or write a manifest.csv"
    )


def _share(names: list[str], pattern: re.Pattern[str]) -> float:
    return sum(1 for n in names if pattern.match(n)) / max(len(names), 1)


# --- loaders ----------------------------------------------------------------------------------------------------


def load_manifest(root: Path) -> DatasetIndex:
    """``dataset,relpath,identity,impression[,extra...]``; relpath is relative to ``<manifest dir>/<dataset>``."""
    manifest = root if root.is_file() else root / "manifest.csv"
    base = manifest.parent
    index = DatasetIndex(base)
    try:
        with open(manifest, newline="", encoding="utf-8-sig") as fh:
            reader = csv.DictReader(fh)
            columns = [c.strip() for c in (reader.fieldnames or [])]
            missing = [c for c in REQUIRED_COLUMNS if c not in columns]
            if missing:
                raise DatasetError(
                    f"{manifest}: missing column(s) {', '.join(missing)}; need {','.join(REQUIRED_COLUMNS)}"
                )
            seen: set[Path] = set()
            for line, row in enumerate(reader, start=2):
                _manifest_row(index, manifest, base, line, row, seen)
    except UnicodeDecodeError as exc:
        raise DatasetError(f"{manifest}: not a UTF-8 text file") from exc
    except csv.Error as exc:
        raise DatasetError(f"{manifest}: not a valid CSV file: {exc}") from exc
    except OSError as exc:
        raise DatasetError(f"{manifest}: cannot read: {exc.strerror or exc}") from exc
    return index


def _manifest_row(index: DatasetIndex, manifest: Path, base: Path, line: int, row: dict, seen: set[Path]) -> None:
    row = {(k or "").strip(): (v or "").strip() if isinstance(v, str) else "" for k, v in row.items()}
    where = f"{manifest} line {line}"
    if not all(row.get(c) for c in REQUIRED_COLUMNS):
        empty = [c for c in REQUIRED_COLUMNS if not row.get(c)]
        index.skipped.append((manifest, f"{where}: empty {', '.join(empty)}"))
        return
    path = base / row["dataset"] / row["relpath"]
    if path in seen:
        index.skipped.append((path, f"{where}: duplicate of an earlier row"))
        return
    if not path.is_file():
        index.skipped.append((path, f"{where}: file not found"))
        return
    problem = unusable(path)
    if problem:
        index.skipped.append((path, f"{where}: {problem}"))
        return
    seen.add(path)
    extra = {k: v for k, v in row.items() if k and k not in REQUIRED_COLUMNS and v}
    index.samples.append(Sample(row["dataset"], row["identity"], row["impression"], path, extra))


def _dataset_name(root: Path, folder: Path) -> str:
    rel = folder.relative_to(root)
    return root.name if rel == Path(".") else f"{root.name}/{rel.as_posix()}"


def load_fvc(root: Path) -> DatasetIndex:
    """FVC: ``{finger}_{impression}.tif|bmp|png``; each folder holding such files is its own dataset (sensor)."""
    index = DatasetIndex(root)
    for path in _candidates(root, index):
        match = FVC_NAME.match(path.name)
        if not match:
            index.skipped.append((path, "name does not match the FVC pattern {finger}_{impression}.tif|bmp|png"))
            continue
        finger, impression = match.group(1), match.group(2)
        index.samples.append(Sample(_dataset_name(root, path.parent), finger, impression, path, {}))
    return index


def load_socofing(root: Path) -> DatasetIndex:
    """SOCOFing: ``Real/`` and ``Altered/Altered-{Easy,Medium,Hard}/``; identity = subject + hand + finger."""
    index = DatasetIndex(root)
    for path in _candidates(root, index):
        match = SOCOFING_NAME.match(path.name)
        if not match:
            index.skipped.append((path, "name does not match SOCOFing's {subject}__{M|F}_{Left|Right}_{finger}_finger"))
            continue
        subject, sex, hand, finger, alteration = match.groups()
        level = _socofing_level(path.relative_to(root))
        alteration = alteration or "none"
        impression = "real" if level == "real" else f"{level}-{alteration}"
        attributes = {
            "subject": subject,
            "sex": sex.upper(),
            "hand": hand.lower(),
            "finger": finger.lower(),
            "alteration": alteration,
            "level": level,
        }
        identity = f"{subject}_{hand.lower()}_{finger.lower()}"
        index.samples.append(Sample(root.name, identity, impression, path, attributes))
    return index


def _socofing_level(rel: Path) -> str:
    for part in rel.parts[:-1]:
        low = part.lower()
        if low == "real":
            return "real"
        if low.startswith("altered-"):
            return low.split("-", 1)[1]
    return "real" if not SOCOFING_NAME.match(rel.name).group(5) else "altered"  # type: ignore[union-attr]


def load_sdumla(root: Path) -> DatasetIndex:
    """SDUMLA-HMT finger vein: ``{subject}/{left|right}/{index|middle|ring}_{k}.bmp``."""
    index = DatasetIndex(root)
    for path in _candidates(root, index):
        rel = path.relative_to(root)
        match = SDUMLA_NAME.match(path.name)
        if not match or len(rel.parts) != 3 or rel.parts[1].lower() not in ("left", "right"):
            reason = "not in the SDUMLA-HMT form {subject}/{left|right}/{index|middle|ring}_{k}.bmp"
            index.skipped.append((path, reason))
            continue
        subject, hand = rel.parts[0], rel.parts[1].lower()
        finger, k = match.group(1).lower(), match.group(2)
        attributes = {"subject": subject, "hand": hand, "finger": finger}
        index.samples.append(Sample(root.name, f"{subject}_{hand}_{finger}", k, path, attributes))
    return index


def load_folder(root: Path) -> DatasetIndex:
    """One folder per identity (nested folders give ``a/b`` identities); impression = file name without suffix."""
    index = DatasetIndex(root)
    for path in _candidates(root, index):
        rel = path.relative_to(root)
        if len(rel.parts) < 2:
            index.skipped.append((path, "image directly in the dataset folder; put it in its identity's folder"))
            continue
        identity = Path(*rel.parts[:-1]).as_posix()
        index.samples.append(Sample(root.name, identity, path.stem, path, {}))
    return index


LOADERS: dict[str, Callable[[Path], DatasetIndex]] = {
    "manifest": load_manifest,
    "fvc": load_fvc,
    "socofing": load_socofing,
    "sdumla": load_sdumla,
    "folder": load_folder,
}
