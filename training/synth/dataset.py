"""Write a synthetic dataset (PNGs + manifest.csv in the loader format) using a pool of worker processes.

Determinism: identity ``i`` of a run with seed ``s`` gets the identity seed ``SeedSequence([s, i, modality])``, and
each of its impressions draws from its own generator, so the bytes of every PNG depend only on (seed, i, impression,
profile) -- never on the number of workers or the order in which they finish.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from collections.abc import Iterator
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np

from device.errors import DatasetError
from training.synth.profiles import get_profile

MODALITY_CODES = {"fingerprint": 1, "vein": 2}
MAX_IDENTITIES = 1_000_000
MAX_IMPRESSIONS = 1_000


def identity_seed(seed: int, index: int, modality: str) -> int:
    """The seed of identity ``index`` in a run with ``seed`` (stable across versions of numpy's SeedSequence)."""
    return int(np.random.SeedSequence([int(seed), int(index), MODALITY_CODES[modality]]).generate_state(1)[0])


def dataset_name(modality: str, profile: str) -> str:
    """The ``dataset`` column (and sub-folder) of a synthetic set."""
    return f"synth-{modality}-{profile}"


def validate_request(modality: str, identities: int, impressions: int, profile: str, out: Path, force: bool) -> None:
    """Reject bad arguments before anything is written."""
    if modality not in MODALITY_CODES:
        raise DatasetError(f"unknown modality {modality!r}; choose fingerprint or vein")
    get_profile(profile, modality)
    if not 1 <= int(identities) <= MAX_IDENTITIES:
        raise DatasetError(f"identities must be between 1 and {MAX_IDENTITIES}, got {identities}")
    if not 1 <= int(impressions) <= MAX_IMPRESSIONS:
        raise DatasetError(f"impressions must be between 1 and {MAX_IMPRESSIONS}, got {impressions}")
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise DatasetError(f"output {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not force:
        raise DatasetError(f"output folder {out} is not empty; pass --force to replace its synthetic set")
    parent = out
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise DatasetError(f"cannot create {out}: {parent} is not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DatasetError(f"output folder {parent} is not writable")


def _render(modality: str, seed: int, impression: int, profile: str) -> np.ndarray:
    if modality == "fingerprint":
        from training.synth.fingerprint import render_impression
    else:
        from training.synth.vein import render_impression
    return render_impression(seed, impression, profile)


def _attributes(modality: str, seed: int) -> dict[str, str]:
    if modality == "fingerprint":
        from training.synth.fingerprint import cached_master

        a = cached_master(seed).attributes
        return {"pattern_class": a.pattern_class, "sex": a.sex, "ridge_period": f"{a.ridge_period:.3f}"}
    from training.synth.vein import cached_network

    net = cached_network(seed)
    return {"veins": str(net.main_veins), "branches": str(net.branches)}


def _work(job: tuple) -> list[list[str]]:
    """Render every impression of one identity; returns its manifest rows (runs in a worker)."""
    cv2.setNumThreads(1)
    modality, seed, index, impressions, profile, folder, name, altered = job
    from training.synth.alterations import maybe_alter

    ident = f"{index:05d}"
    sid = identity_seed(seed, index, modality)
    attrs = _attributes(modality, sid)
    (folder / ident).mkdir(parents=True, exist_ok=True)
    rows = []
    for imp in range(1, impressions + 1):
        img = _render(modality, sid, imp, profile)
        alteration = "none"
        if modality == "fingerprint" and altered > 0:
            img, alteration = maybe_alter(img, np.random.default_rng([sid, 0xA1, imp]), altered)
        rel = f"{ident}/{ident}_{imp}.png"
        ok, buf = cv2.imencode(".png", img, [cv2.IMWRITE_PNG_COMPRESSION, 6])
        if not ok:
            raise DatasetError(f"could not encode {rel}")
        (folder / rel).write_bytes(buf.tobytes())
        extra = {**attrs, "profile": profile, "height": str(img.shape[0]), "width": str(img.shape[1])}
        if modality == "fingerprint":
            extra["alteration"] = alteration
        rows.append([name, rel, ident, str(imp), *(f"{k}={v}" for k, v in extra.items())])
    return rows


def _jobs(modality, seed, identities, impressions, profile, folder, name, altered) -> Iterator[tuple]:
    for i in range(identities):
        yield (modality, seed, i, impressions, profile, folder, name, altered)


def generate_dataset(modality: str, identities: int, impressions: int, profile: str, seed: int, out: Path | str,
                     force: bool = False, workers: int | None = None, altered: float = 0.0,
                     progress: bool = True) -> Path:
    """Write ``identities`` x ``impressions`` synthetic images and a manifest.csv under ``out``; returns the manifest.

    Files: ``out/manifest.csv`` and ``out/synth-<modality>-<profile>/<identity>/<identity>_<impression>.png``.
    ``altered`` is the fraction of fingerprint impressions given a SOCOFing-style alteration (default none).
    """
    out = Path(out)
    validate_request(modality, identities, impressions, profile, out, force)
    if not 0.0 <= altered <= 1.0:
        raise DatasetError(f"altered must be a fraction between 0 and 1, got {altered}")
    name = dataset_name(modality, profile)
    folder = out / name
    if force and folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True, exist_ok=True)
    workers = workers or min(2, os.cpu_count() or 1)
    jobs = _jobs(modality, int(seed), int(identities), int(impressions), profile, folder, name, float(altered))
    rows: list[list[str]] = []
    from device.progress import tqdm

    bar = tqdm(total=identities, unit="id", desc=f"synth {modality} {profile}", disable=not progress)
    try:
        if workers <= 1:
            for r in map(_work, jobs):
                rows.extend(r)
                bar.update()
        else:
            with get_context("fork" if hasattr(os, "fork") else "spawn").Pool(workers) as pool:
                for r in pool.imap(_work, jobs, chunksize=1):
                    rows.extend(r)
                    bar.update()
    finally:
        bar.close()
    return _write_manifest(out, rows)


def _write_manifest(out: Path, rows: list[list[str]]) -> Path:
    """manifest.csv with the loader's four columns plus one column per attribute, written atomically."""
    keys: list[str] = []
    for row in rows[:1]:
        keys = [kv.split("=", 1)[0] for kv in row[4:]]
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(["dataset", "relpath", "identity", "impression", *keys])
    for row in rows:
        writer.writerow([*row[:4], *(kv.split("=", 1)[1] for kv in row[4:])])
    manifest = out / "manifest.csv"
    tmp = out / ".manifest.csv.tmp"
    tmp.write_text(buf.getvalue(), encoding="utf-8")
    os.replace(tmp, manifest)
    return manifest
