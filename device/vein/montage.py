"""A montage of the finger region found on every frame of a folder: the frame with the edges drawn, the normalized
region under it, and the reason where no region was found (what ``biolock vein regions`` writes).

Why a picture: "the region is right" is judged by eye first; the montage shows at a glance whether the edges sit
on the finger or on the housing, for every posture at once.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from device.errors import ImageError
from device.imageio import read_image
from device.vein.region import Region, RegionError, find_region

TILE_WIDTH = 320
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".pgm")


@dataclass(frozen=True)
class FrameResult:
    name: str
    region: Region | None
    reason: str | None  # why there is no region (None when found)


def frames_in(folder: Path) -> list[Path]:
    """Image files under ``folder`` (recursively), sorted by path."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)


def find_all(paths: Sequence[Path], root: Path) -> list[tuple[FrameResult, np.ndarray | None]]:
    """The region (or the reason there is none) of every frame, with the grey frame for drawing."""
    out = []
    for path in paths:
        name = str(path.relative_to(root)) if path.is_relative_to(root) else path.name
        try:
            grey = read_image(path)
        except ImageError as exc:
            out.append((FrameResult(name, None, str(exc)), None))
            continue
        try:
            out.append((FrameResult(name, find_region(grey), None), grey))
        except RegionError as exc:
            out.append((FrameResult(name, None, str(exc)), grey))
    return out


def _tile(result: FrameResult, grey: np.ndarray | None) -> np.ndarray:
    """One tile: the frame (edges in red) scaled to ``TILE_WIDTH``, the region below it, the name on top."""
    frame_h = TILE_WIDTH * 3 // 4
    roi_h = TILE_WIDTH // 3
    tile = np.zeros((frame_h + roi_h + 18, TILE_WIDTH, 3), np.uint8)
    if grey is not None:
        g = grey if grey.shape[0] <= grey.shape[1] else cv2.rotate(grey, cv2.ROTATE_90_COUNTERCLOCKWISE)
        sx, sy = TILE_WIDTH / g.shape[1], frame_h / g.shape[0]
        colour = cv2.cvtColor(cv2.resize(g, (TILE_WIDTH, frame_h), interpolation=cv2.INTER_AREA), cv2.COLOR_GRAY2BGR)
        if result.region is not None and not result.region.is_crop:
            for edge in (result.region.upper, result.region.lower):
                pts = np.round(edge * np.array([sx, sy])).astype(np.int32)
                cv2.polylines(colour, [pts], False, (0, 0, 255), 2, cv2.LINE_AA)
        tile[18:18 + frame_h] = colour
    if result.region is not None:
        roi = cv2.resize(result.region.roi, (TILE_WIDTH, roi_h), interpolation=cv2.INTER_AREA)
        tile[18 + frame_h:] = cv2.cvtColor(roi, cv2.COLOR_GRAY2BGR)
        label = f"{result.name}  {result.region.angle_deg:+.1f} deg"
    else:
        label = f"{result.name}: {result.reason}"
        cv2.putText(tile, (result.reason or "")[:40], (6, 18 + frame_h + roi_h // 2), cv2.FONT_HERSHEY_SIMPLEX,
                    0.45, (0, 200, 255), 1, cv2.LINE_AA)
    cv2.putText(tile, label[:48], (4, 13), cv2.FONT_HERSHEY_SIMPLEX, 0.4, (255, 255, 255), 1, cv2.LINE_AA)
    return tile


def montage(results: Sequence[tuple[FrameResult, np.ndarray | None]], columns: int = 6) -> np.ndarray:
    """All tiles in a grid, ``columns`` wide (BGR uint8)."""
    if not results:
        raise ImageError("no frames to show")
    tiles = [_tile(r, g) for r, g in results]
    columns = max(1, min(columns, len(tiles)))
    blank = np.zeros_like(tiles[0])
    tiles += [blank] * (-len(tiles) % columns)
    rows = [np.hstack(tiles[k:k + columns]) for k in range(0, len(tiles), columns)]
    return np.vstack(rows)
