"""Miura's maximum-curvature finger-vein extractor and Miura matching: a training-free yardstick.

N. Miura, A. Nagasaka, T. Miyatake, "Extraction of finger-vein patterns using maximum curvature points in image
profiles", IEICE Trans. Inf. & Syst. E90-D(8), 2007; matching as in Miura et al., MVA 15(4), 2004 (and as
re-implemented by bob.bio.vein's MaximumCurvature / MiuraMatch).

Parameters (defaults chosen for 100 x 300 ROI crops, finger axis horizontal):
- ``sigma`` = 3 px: scale of the Gaussian derivative kernels (kernel radius ceil(4 sigma)); vessels in FV-USM ROI
  crops are roughly 6-15 px wide.
- curvature in four directions (horizontal, vertical, two diagonals); in each profile every run of positive
  curvature scores its maximum curvature times its width at the position of the maximum;
- connection: a centre pixel keeps min(max(two neighbours on one side), max(two on the other)) per direction;
- binarization: positive connected scores at or above their median are vein.
- matching: ``ch`` = 10 rows and ``cw`` = 30 columns of margin; the cropped enrolled pattern slides over the probe
  (cross-correlation, all shifts within the margins); score = Nm / (|R crop| + |I window|), in [0, 0.5].
"""

from __future__ import annotations

import cv2
import numpy as np

SIGMA = 3.0
CH, CW = 10, 30


def _kernels(sigma: float) -> dict[str, np.ndarray]:
    r = int(np.ceil(4 * sigma))
    y, x = np.mgrid[-r:r + 1, -r:r + 1].astype(np.float64)
    h = np.exp(-(x * x + y * y) / (2 * sigma * sigma)) / (2 * np.pi * sigma * sigma)
    return {
        "x": -x / sigma**2 * h,
        "y": -y / sigma**2 * h,
        "xx": (x * x - sigma**2) / sigma**4 * h,
        "yy": (y * y - sigma**2) / sigma**4 * h,
        "xy": x * y / sigma**4 * h,
    }


def curvatures(image: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """Curvature of the grey profile in 4 directions: array (4, H, W) for horizontal, vertical, diag, anti-diag."""
    img = image.astype(np.float64)
    f = {k: cv2.filter2D(img, -1, v, borderType=cv2.BORDER_REPLICATE) for k, v in _kernels(sigma).items()}
    s = np.sqrt(0.5)
    f1, f2 = s * (f["x"] + f["y"]), s * (f["x"] - f["y"])
    f11 = 0.5 * f["xx"] + f["xy"] + 0.5 * f["yy"]
    f22 = 0.5 * f["xx"] - f["xy"] + 0.5 * f["yy"]
    return np.stack([
        f["xx"] / (1 + f["x"] ** 2) ** 1.5,
        f["yy"] / (1 + f["y"] ** 2) ** 1.5,
        f11 / (1 + f1**2) ** 1.5,
        f22 / (1 + f2**2) ** 1.5,
    ])


def _row_scores(k: np.ndarray) -> np.ndarray:
    """For each row: each run of k > 0 adds (max k in the run) * (run width) at the run's maximum."""
    rows, cols = k.shape
    padded = np.full((rows, cols + 1), -1.0)
    padded[:, :cols] = np.nan_to_num(k, nan=-1.0)
    flat = padded.ravel()
    pos = flat > 0
    edges = np.diff(np.r_[0, pos.astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    out = np.zeros(flat.size)
    if starts.size == 0:
        return out.reshape(rows, cols + 1)[:, :cols]
    peak = np.maximum.reduceat(flat, starts)
    run_id = np.cumsum(edges[:-1] == 1) - 1
    inside = np.flatnonzero(pos)
    is_peak = flat[inside] == peak[run_id[inside]]
    first = np.unique(run_id[inside][is_peak], return_index=True)[1]
    where = inside[is_peak][first]
    out[where] = peak * (ends - starts)
    return out.reshape(rows, cols + 1)[:, :cols]


def _diagonal_index(h: int, w: int, anti: bool) -> tuple[np.ndarray, np.ndarray]:
    """Row/col of each pixel in a sheared array whose columns are the image's (anti-)diagonals."""
    r, c = np.mgrid[0:h, 0:w]
    return r, (c + r if anti else c - r + h - 1)


def _direction_scores(k: np.ndarray, direction: int) -> np.ndarray:
    h, w = k.shape
    if direction == 0:
        return _row_scores(k)
    if direction == 1:
        return _row_scores(k.T).T
    r, c = _diagonal_index(h, w, anti=direction == 3)
    sheared = np.full((h, w + h - 1), np.nan)
    sheared[r, c] = k
    scores = _row_scores(sheared.T).T
    return scores[r, c]


def _connect(v: np.ndarray) -> np.ndarray:
    """Miura's connection step: keep a pixel's score only where both sides along a direction are strong."""
    p = np.pad(v, 2)
    h, w = v.shape

    def at(dy: int, dx: int) -> np.ndarray:
        return p[2 + dy:2 + dy + h, 2 + dx:2 + dx + w]

    out = np.zeros_like(v)
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        fwd = np.maximum(at(dy, dx), at(2 * dy, 2 * dx))
        back = np.maximum(at(-dy, -dx), at(-2 * dy, -2 * dx))
        out = np.maximum(out, np.minimum(fwd, back))
    return out


def maximum_curvature(image: np.ndarray, sigma: float = SIGMA) -> np.ndarray:
    """Binary vein pattern (uint8 0/1, same shape) of a grey finger-vein image."""
    if image.ndim != 2 or min(image.shape) < 8:
        raise ValueError(f"need a 2-D grey image of at least 8x8, got shape {image.shape}")
    k = curvatures(image, sigma)
    margin = int(np.ceil(sigma))
    v = np.zeros(image.shape)
    for d in range(4):
        kd = k[d].copy()
        kd[:margin], kd[-margin:], kd[:, :margin], kd[:, -margin:] = 0, 0, 0, 0
        v += _direction_scores(kd, d)
    g = _connect(v)
    positive = g[g > 0]
    if positive.size == 0:
        return np.zeros(image.shape, np.uint8)
    return ((g > 0) & (g >= np.median(positive))).astype(np.uint8)


def miura_match(enrolled: np.ndarray, probe: np.ndarray, ch: int = CH, cw: int = CW) -> float:
    """Miura matching score in [0, 0.5] (higher = more alike) of two binary patterns of the same shape."""
    if enrolled.shape != probe.shape:
        raise ValueError(f"patterns differ in shape: {enrolled.shape} vs {probe.shape}")
    h, w = enrolled.shape
    if h <= 2 * ch or w <= 2 * cw:
        raise ValueError(f"margins ch={ch}, cw={cw} leave nothing of a {h}x{w} pattern")
    crop = enrolled[ch:h - ch, cw:w - cw].astype(np.float32)
    probe_f = probe.astype(np.float32)
    nm = cv2.matchTemplate(probe_f, crop, cv2.TM_CCORR)
    t0, s0 = np.unravel_index(int(np.argmax(nm)), nm.shape)
    denom = float(crop.sum() + probe_f[t0:t0 + h - 2 * ch, s0:s0 + w - 2 * cw].sum())
    return float(nm[t0, s0]) / denom if denom > 0 else 0.0
