"""Cheap fingerprint-like images with a known, planted sex signal (or none), for tests and smoke runs.

Why not the full generator: a synthetic master print takes 1-2 s of CPU; a study needs hundreds of subjects, so
the tests would take minutes. These images keep exactly the property under study -- the generator's ridge-density
model (``training.synth.attributes.RIDGES_PER_25MM2``: women about 15.8, men 13.7 ridges per 25 mm^2, with the
published spreads) -- and draw the rest cheaply: arched/whorled ridges around a random centre with smooth phase
noise, pressure (period jitter), shifts, contrast, blur and sensor noise. With ``signal=False`` the ridge count is
drawn from one pooled distribution and the sex is a coin flip: nothing is learnable (the null case).

Two layouts: ``manifest`` (PNGs + manifest.csv with ``sex`` and ``dpi`` columns, one finger per subject) and
``socofing`` (SOCOFing names, several fingers per subject, ``Real/`` plus ``Altered/Altered-Easy/`` copies made with
the generator's SOCOFing-style alterations).
"""

from __future__ import annotations

import csv
from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from training.synth.attributes import RIDGES_PER_25MM2, ridges_to_period_px

SOCOFING_FINGERS = (("Left", "index"), ("Right", "index"), ("Left", "thumb"), ("Right", "thumb"),
                    ("Left", "middle"), ("Right", "middle"), ("Left", "ring"), ("Right", "ring"),
                    ("Left", "little"), ("Right", "little"))
SOCOFING_CODES = {"obliteration": "Obl", "central_rotation": "CR", "z_cut": "Zcut"}


def draw_subject(rng: np.random.Generator, signal: bool = True) -> tuple[str, float]:
    """(sex "F"/"M", ridges per 25 mm^2) of one subject; without ``signal`` the two are independent."""
    sex = "F" if rng.random() < 0.5 else "M"
    key = ("female" if sex == "F" else "male") if signal else ("female" if rng.random() < 0.5 else "male")
    mean, sd = RIDGES_PER_25MM2[key]
    return sex, float(max(8.0, rng.normal(mean, sd)))


@lru_cache(maxsize=8)
def _coords(size: int) -> tuple[np.ndarray, np.ndarray]:
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float32)
    return ys, xs


def render(ridge_count: float, rng: np.random.Generator, size: int = 96, dpi: float = 500.0,
           centre: tuple[float, float] | None = None) -> np.ndarray:
    """One uint8 print: dark ridges of the given density around ``centre`` (px; random if None)."""
    period = ridges_to_period_px(ridge_count, dpi) * rng.normal(1.0, 0.03)  # pressure stretches a little
    cx, cy = centre if centre is not None else (rng.uniform(-1, 2) * size, rng.uniform(-0.5, 1.5) * size)
    cx, cy = cx + rng.normal(0, 0.08 * size), cy + rng.normal(0, 0.08 * size)
    ys, xs = _coords(size)
    noise = cv2.resize(rng.normal(0, 1, (4, 4)).astype(np.float32), (size, size), interpolation=cv2.INTER_CUBIC)
    ridges = np.cos(2 * np.pi * np.hypot(xs - cx, ys - cy) / period + noise)  # smooth phase noise bends ridges
    contact = 0.5 * (1 + np.tanh(rng.uniform(1.5, 4.0) * ridges))
    fg, bg = rng.uniform(30, 90), rng.uniform(190, 240)
    img = bg + (fg - bg) * contact
    img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.5, 1.0)) + rng.normal(0, rng.uniform(2, 8), img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def write_planted_set(out: str | Path, subjects: int, impressions: int = 2, seed: int = 0, signal: bool = True,
                      size: int = 96, dpi: float = 500.0) -> Path:
    """PNGs + manifest.csv (``sex``, ``dpi`` columns), one finger per subject; returns the manifest path."""
    out = Path(out)
    rng = np.random.default_rng([int(seed), 0x5E])
    rows = []
    for i in range(subjects):
        sex, count = draw_subject(rng, signal)
        ident = f"{i:05d}"
        (out / "planted" / ident).mkdir(parents=True, exist_ok=True)
        centre = (rng.uniform(-1, 2) * size, rng.uniform(-0.5, 1.5) * size)
        for imp in range(1, impressions + 1):
            rel = f"{ident}/{ident}_{imp}.png"
            cv2.imwrite(str(out / "planted" / rel), render(count, rng, size, dpi, centre))
            rows.append(["planted", rel, ident, str(imp), "female" if sex == "F" else "male", f"{dpi:g}"])
    manifest = out / "manifest.csv"
    with open(manifest, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, lineterminator="\n")
        writer.writerow(["dataset", "relpath", "identity", "impression", "sex", "dpi"])
        writer.writerows(rows)
    return manifest


def write_socofing_set(out: str | Path, subjects: int, fingers: int = 2, seed: int = 0, signal: bool = True,
                       altered_per_print: int = 1, size: int = 96) -> Path:
    """A SOCOFing-layout folder (``Real/``, ``Altered/Altered-Easy/``; 500 dpi names); returns its root."""
    from training.synth.alterations import ALTERATIONS, alter

    out = Path(out)
    real, altered = out / "Real", out / "Altered" / "Altered-Easy"
    real.mkdir(parents=True, exist_ok=True)
    altered.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng([int(seed), 0x50])
    for i in range(1, subjects + 1):
        sex, count = draw_subject(rng, signal)
        for hand, finger in SOCOFING_FINGERS[:fingers]:
            finger_count = count * rng.normal(1.0, 0.03)  # fingers of one person differ a little
            img = render(finger_count, rng, size)
            stem = f"{i}__{sex}_{hand}_{finger}_finger"
            cv2.imwrite(str(real / f"{stem}.bmp"), img)
            for kind in rng.choice(ALTERATIONS, size=min(altered_per_print, len(ALTERATIONS)), replace=False):
                cv2.imwrite(str(altered / f"{stem}_{SOCOFING_CODES[str(kind)]}.bmp"), alter(img, str(kind), rng))
    return out


def planted_set(subjects: int, impressions: int = 2, seed: int = 0, signal: bool = True, size: int = 64,
                dpi: float = 333.0):
    """The same kind of prints as ``write_planted_set``, in memory as a ``SoftbioSet`` (no files; for tests)."""
    from training.softbio.dataset import CLASSES, SoftbioSet

    rng = np.random.default_rng([int(seed), 0x5E])
    images, y, subj = [], [], []
    for i in range(subjects):
        sex, count = draw_subject(rng, signal)
        centre = (rng.uniform(-1, 2) * size, rng.uniform(-0.5, 1.5) * size)
        for _ in range(impressions):
            images.append(render(count, rng, size, dpi, centre))
            y.append(CLASSES.index(sex))
            subj.append(f"planted/{i:05d}")
    n = len(images)
    subjects_arr = np.array(subj)
    return SoftbioSet(images=np.stack(images), y=np.array(y, np.int64), subjects=subjects_arr,
                      sources=np.array([f"{s}/{k}" for k, s in enumerate(subj)]), hands=np.full(n, "unknown"),
                      fingers=np.full(n, "unknown"), alterations=np.full(n, "none"), dpi=np.full(n, float(dpi)),
                      paths=[Path(f"<planted {k}>") for k in range(n)], layout="planted")
