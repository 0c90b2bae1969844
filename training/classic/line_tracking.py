"""Repeated line tracking (Miura, Nagasaka & Miyatake 2004): vein pattern from many short random walks.

Parameters (as in the paper / bob.bio.vein, scaled for a 64 x 192 ROI):
- ``iterations`` = 1000 tracking starts (the paper uses 3000 on a 240 x 320 image; about the same starts per pixel);
- ``r`` = 1: distance from the current point to the cross-section that is evaluated;
- ``profile_width`` W = 17 (odd): length of the cross-section profile; its two ends are W/2 px either side;
- ``p_lr`` = 0.5, ``p_ud`` = 0.25: probabilities of moving only left/right or only up/down (finger axis horizontal).

Each walk starts at a random point, picks random horizontal and vertical senses, then moves repeatedly to the
neighbour whose cross-section is the deepest valley (dark vein centre), V = I(p + n) - 2 I(p) + I(p - n) with n
the perpendicular of half-width W/2, and stops when no candidate has V > 0 or all were visited. The locus space
counts visits; veins = locus > median of the non-zero loci (bob.bio.vein's binarization). Deterministic for a
given ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

_NEIGHBOURS = [(dy, dx) for dy in (-1, 0, 1) for dx in (-1, 0, 1) if (dy, dx) != (0, 0)]


@dataclass(frozen=True)
class LineTrackingParams:
    iterations: int = 1000
    r: int = 1
    profile_width: int = 17
    p_lr: float = 0.5
    p_ud: float = 0.25
    size: tuple[int, int] | None = (64, 192)  # working size (H, W); None keeps the input size
    seed: int = 0


def _grey(image: np.ndarray, size: tuple[int, int] | None) -> np.ndarray:
    arr = np.asarray(image)
    if arr.ndim != 2 or min(arr.shape) < 8:
        raise ValueError(f"expected a 2-D grey image at least 8x8, got shape {arr.shape}")
    arr = arr.astype(np.float32)
    if arr.max(initial=0) > 1.0:
        arr = arr / 255.0
    if size is not None and arr.shape != tuple(size):
        arr = cv2.resize(arr, (size[1], size[0]), interpolation=cv2.INTER_AREA)
    return cv2.GaussianBlur(arr, (0, 0), 1.0)


def locus_space(image: np.ndarray, params: LineTrackingParams = LineTrackingParams(),
                mask: np.ndarray | None = None) -> np.ndarray:
    """Visit counts (int32, working size) of the repeated line tracking walks."""
    img = _grey(image, params.size)
    h, w = img.shape
    fmask = np.ones((h, w), bool) if mask is None else cv2.resize(mask.astype(np.uint8), (w, h)) > 0
    hw = params.profile_width // 2
    border = params.r + hw + 1
    inner = np.zeros_like(fmask)
    inner[border:h - border, border:w - border] = True
    allowed = fmask & inner
    ys, xs = np.nonzero(allowed)
    locus = np.zeros((h, w), np.int32)
    if ys.size == 0:
        return locus
    rng = np.random.default_rng(params.seed)
    # candidate geometry, rounded once: step (dy, dx) -> integer offsets of the profile centre and its two ends
    geo = {}
    for dy, dx in _NEIGHBOURS:
        norm = float(np.hypot(dy, dx))
        uy, ux = dy / norm, dx / norm
        cy, cx = params.r * uy, params.r * ux
        py, px = -ux * hw, uy * hw  # perpendicular of length hw
        geo[(dy, dx)] = (int(round(cy + py)), int(round(cx + px)), int(round(cy)), int(round(cx)),
                         int(round(cy - py)), int(round(cx - px)))
    pix, ok = img.tolist(), allowed.tolist()  # nested lists: scalar indexing is ~5x faster than on arrays
    starts = rng.integers(0, ys.size, params.iterations)
    senses = rng.choice([-1, 1], size=(params.iterations, 2))
    moves = rng.random((params.iterations, 4096))
    for it in range(params.iterations):
        y, x = int(ys[starts[it]]), int(xs[starts[it]])
        dlr, dud = int(senses[it, 0]), int(senses[it, 1])
        row = moves[it].tolist()
        visited = set()
        for step in range(4096):
            u = row[step]
            if u < params.p_lr:
                cands = [(dy, dlr) for dy in (-1, 0, 1)]
            elif u < params.p_lr + params.p_ud:
                cands = [(dud, dx) for dx in (-1, 0, 1)]
            else:
                cands = _NEIGHBOURS
            best, best_v = None, 0.0
            for dy, dx in cands:
                ny, nx = y + dy, x + dx
                if (ny, nx) in visited or not ok[ny][nx]:
                    continue
                ay, ax, cy, cx, by, bx = geo[(dy, dx)]
                v = pix[y + ay][x + ax] - 2.0 * pix[y + cy][x + cx] + pix[y + by][x + bx]
                if v > best_v:
                    best, best_v = (ny, nx), float(v)
            visited.add((y, x))
            if best is None:
                break
            y, x = best
        for vy, vx in visited:
            locus[vy, vx] += 1
    return locus


def extract_line_tracking(image: np.ndarray, params: LineTrackingParams = LineTrackingParams(),
                          mask: np.ndarray | None = None) -> np.ndarray:
    """Binary vein map (bool, working size): locus above the median of its non-zero values."""
    locus = locus_space(image, params, mask)
    nonzero = locus[locus > 0]
    if nonzero.size == 0:
        return np.zeros(locus.shape, bool)
    return locus > np.median(nonzero)
