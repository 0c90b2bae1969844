"""Contact sheets: a grid of sample images, one row per set, labelled, for eyeballing real vs synthetic.

A sheet that contains real images must stay out of git (write it under out/); a synthetic-only sheet may be
committed to docs/.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

TILE_H = 160
LABEL_W = 200


def _row(name: str, images: list[np.ndarray], per_row: int) -> np.ndarray:
    tiles = []
    for img in images[:per_row]:
        w = max(1, int(round(img.shape[1] * TILE_H / img.shape[0])))
        tiles.append(cv2.resize(img, (min(w, 3 * TILE_H), TILE_H), interpolation=cv2.INTER_AREA))
    label = np.full((TILE_H, LABEL_W), 255, np.uint8)
    for i, part in enumerate([name[k:k + 24] for k in range(0, len(name), 24)][:4]):
        cv2.putText(label, part, (6, 30 + 26 * i), cv2.FONT_HERSHEY_SIMPLEX, 0.5, 0, 1, cv2.LINE_AA)
    gap = np.full((TILE_H, 4), 255, np.uint8)
    parts = [label]
    for t in tiles:
        parts += [t, gap]
    return np.hstack(parts)


def contact_sheet(modality: str, reals: list, synths: list, path: Path,
                  load: Callable[[Path, str], np.ndarray], per_row: int = 6) -> Path:
    """One row per set: the first impression of ``per_row`` different identities. Returns ``path``."""
    rows = []
    for s in [*reals, *synths]:
        firsts: dict[str, Path] = {}
        for p, label in zip(s.paths, s.labels, strict=True):
            firsts.setdefault(label, p)
        images = [load(p, modality) for p in list(firsts.values())[:per_row]]
        rows.append(_row(f"{s.kind}: {s.name}", images, per_row))
    width = max(r.shape[1] for r in rows)
    sheet = np.vstack([np.pad(r, ((0, 6), (0, width - r.shape[1])), constant_values=255) for r in rows])
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), sheet)
    return path
