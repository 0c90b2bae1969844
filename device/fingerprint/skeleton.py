"""Binarize the enhanced image and thin its ridges to one-pixel, 8-connected lines, with lookup tables.

Why this thinning: OpenCV's core has none (it is in contrib). Rosenfeld's directional parallel thinning deletes, in
four passes per iteration (north, south, east, west borders), every pixel that is *simple* (deleting it changes no
connectivity: Yokoi's 8-connectivity number is 1) and is not an end point. Each pass is one 3x3 filter (the 8
neighbours packed into a byte) and one table lookup, so it is vectorized and fast; the result has no removable
pixel left, which the crossing number needs to be exact.

Neighbour byte: bit i is ring position i+1 counter-clockwise from east: E, NE, N, NW, W, SW, S, SE.
"""

from __future__ import annotations

import cv2
import numpy as np

# (dy, dx) of ring positions 1..8 (E, NE, N, NW, W, SW, S, SE)
RING = np.array([(0, 1), (-1, 1), (-1, 0), (-1, -1), (0, -1), (1, -1), (1, 0), (1, 1)], dtype=np.intp)
CODE_KERNEL = np.zeros((3, 3), np.float32)
for _bit, (_dy, _dx) in enumerate(RING):
    CODE_KERNEL[_dy + 1, _dx + 1] = float(1 << _bit)


def _bits() -> np.ndarray:
    codes = np.arange(256)
    return ((codes[:, None] >> np.arange(8)[None, :]) & 1).astype(np.int32)  # (256, 8): x1..x8


def _tables() -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    x = _bits()
    xb = 1 - x
    x9 = np.concatenate([xb, xb[:, :2]], axis=1)
    yokoi = sum(x9[:, k] - x9[:, k] * x9[:, k + 1] * x9[:, k + 2] for k in (0, 2, 4, 6))
    count = x.sum(axis=1)
    crossing = np.abs(x - np.roll(x, -1, axis=1)).sum(axis=1) // 2
    simple = (yokoi == 1) & (count >= 2)
    passes = [(simple & (x[:, d] == 0)).astype(np.uint8) for d in (2, 6, 0, 4)]  # N, S, E, W borders
    return crossing.astype(np.uint8), count.astype(np.uint8), passes


CROSSING, COUNT, _PASSES = _tables()


def neighbour_code(binary: np.ndarray) -> np.ndarray:
    """uint8 byte of each pixel's 8 neighbours of a 0/1 uint8 image (outside counts as 0)."""
    return cv2.filter2D(binary, cv2.CV_8U, CODE_KERNEL, borderType=cv2.BORDER_CONSTANT)


def binarize(enhanced: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """0/1 uint8 ridge map: positive enhanced response inside the foreground."""
    return ((enhanced > 0) & mask).astype(np.uint8)


def thin(binary: np.ndarray, max_iter: int = 30) -> np.ndarray:
    """One-pixel-wide 8-connected skeleton (0/1 uint8) of a 0/1 uint8 image."""
    skel = binary.copy()
    for _ in range(max_iter):
        changed = False
        for table in _PASSES:
            delete = cv2.LUT(neighbour_code(skel), table) & skel
            if delete.any():
                skel -= delete
                changed = True
        if not changed:
            break
    return skel


def crossing_number(skel: np.ndarray) -> np.ndarray:
    """Crossing number of every pixel (0 where ``skel`` is 0): 1 ridge ending, 2 ridge, 3+ bifurcation."""
    return cv2.LUT(neighbour_code(skel), CROSSING) * skel
