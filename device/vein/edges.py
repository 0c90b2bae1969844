"""The finger's two long edges in a whole frame: the best smooth paths of "dark on one side, lit on the other".

Why paths and not per-column steps: a dark vein just inside a dim finger rim, a reflection on the housing or the
bright housing post each make a strong step in some columns; the finger's outline is the one step that runs
smoothly across the whole frame. Dynamic programming finds, per edge, the path that moves at most one row per
column with the highest summed score; scores weigh the grey step by the brightness of its lit side (the finger is
the brightest thing in the frame). Used by ``device.vein.region``.
"""

from __future__ import annotations

import numpy as np

EDGE_REACH = 2  # work pixels either side of an edge
PATH_COLUMNS = 80  # edges are searched on this many columns (an edge moves at most one work row per column)
MIN_WIDTH = 0.35  # the finger is at least this fraction of the frame height wide


def _edge_scores(work: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """How much each pixel looks like the finger's upper edge (dark above, lit below) and lower edge (lit above,
    dark below): the grey step across it times the brightness of its lit side (the finger is the brightest thing
    in the frame, a lit housing panel is dimmer)."""
    r = EDGE_REACH
    img = work.astype(np.float32)
    up, lo = np.zeros_like(img), np.zeros_like(img)
    above, below = img[: -2 * r], img[2 * r :]
    up[r:-r] = np.maximum(below - above, 0.0) * below / 255.0
    lo[r:-r] = np.maximum(above - below, 0.0) * above / 255.0
    return up, lo


def _best_path(score: np.ndarray, allowed: np.ndarray) -> tuple[np.ndarray, float]:
    """The row per column, and the summed score, of the best path that moves at most one row per column (dynamic
    programming, one vectorized step per column): the finger edge is long and smooth, the reflections and housing
    corners that also have strong steps are short."""
    h, w = score.shape
    s = np.where(allowed, score, -1e6).astype(np.float64)
    acc = np.empty((h, w))
    acc[:, 0] = s[:, 0]
    buf = np.full(h + 2, -np.inf)
    for x in range(1, w):  # acc[:, x] = best of the three neighbours in column x - 1, plus this score
        buf[1:-1] = acc[:, x - 1]
        best = np.maximum(buf[:-2], buf[2:])
        np.maximum(best, buf[1:-1], out=best)
        np.add(best, s[:, x], out=acc[:, x])
    path = np.zeros(w, np.int64)
    path[-1] = int(np.argmax(acc[:, -1]))
    for x in range(w - 1, 0, -1):
        y = path[x]
        lo = max(0, y - 1)
        path[x - 1] = lo + int(np.argmax(acc[lo:y + 2, x - 1]))
    return path, float(acc[:, -1].max())


def edges(work: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Upper and lower finger edge rows per column of a work image, at least ``MIN_WIDTH`` apart.

    Searched both ways (upper first, then the lower below it; lower first, then the upper above it) and the pair
    with the higher summed score kept: a lit housing panel beside the finger can win one edge, rarely both.
    """
    h, full_w = work.shape
    step = max(1, full_w // PATH_COLUMNS)  # the path is searched on every ``step``-th column (speed), then spread
    up_score, lo_score = (s[:, ::step] for s in _edge_scores(work))
    w = up_score.shape[1]
    rows = np.arange(h)[:, None]
    gap = MIN_WIDTH * h
    upper, s1 = _best_path(up_score, np.broadcast_to(rows < h - gap, (h, w)))
    lower, s2 = _best_path(lo_score, rows >= upper[None, :] + gap)
    lower_b, s3 = _best_path(lo_score, np.broadcast_to(rows >= gap, (h, w)))
    upper_b, s4 = _best_path(up_score, rows <= lower_b[None, :] - gap)
    if s3 + s4 > s1 + s2:
        upper, lower = upper_b, lower_b
    xs, full = np.arange(w) * step, np.arange(full_w)
    return np.interp(full, xs, upper.astype(np.float64)), np.interp(full, xs, lower.astype(np.float64))
