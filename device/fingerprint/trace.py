"""Follow skeleton lines from many starting points at once (one numpy step for all of them).

Why: spurious minutiae are recognised by what their ridge runs into (a spur ends at a bifurcation one ridge period
away, a bridge joins two bifurcations), and a minutia's direction is where its ridge goes. Each step looks up the
current pixel's neighbour byte, masks out the way back (the previous pixel and the cells next to it, so a tracer
never turns back or cuts a corner into another branch) and takes the first remaining neighbour, 4-neighbours first.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from device.fingerprint.skeleton import RING

_PREFERENCE = (0, 2, 4, 6, 1, 3, 5, 7)  # E, N, W, S, then diagonals


def _tables() -> tuple[np.ndarray, np.ndarray]:
    back = np.zeros(9, np.uint8)  # allowed-move mask given the ring position of the previous pixel (8: none)
    for q in range(8):
        spread = (-2, -1, 0, 1, 2) if q % 2 == 0 else (-1, 0, 1)
        excluded = sum(1 << ((q + s) % 8) for s in spread)
        back[q] = 0xFF & ~excluded
    back[8] = 0xFF
    choose = np.full(256, -1, np.int8)
    for code in range(256):
        for bit in _PREFERENCE:
            if code >> bit & 1:
                choose[code] = bit
                break
    return back, choose


_BACK, _CHOOSE = _tables()


@dataclass(frozen=True)
class Traces:
    path: np.ndarray  # (M, steps + 1, 2) int: (row, col) after each step; frozen where the tracer stopped
    length: np.ndarray  # (M,) steps taken
    hit: np.ndarray  # (M,) id in ``labels`` the tracer ran into (another minutia), or -1


def trace(code: np.ndarray, labels: np.ndarray, start: np.ndarray, first: np.ndarray, owner: np.ndarray,
          steps: int) -> Traces:
    """Trace from ``start`` (M, 2) rows/cols, moving first in ring direction ``first`` (M,).

    ``code`` is the skeleton's neighbour byte map (0 off the skeleton), ``labels`` the minutia id of every minutia
    pixel (-1 elsewhere); a tracer stops when it lands on a pixel labelled other than ``owner`` (its own minutia),
    when the line ends, or after ``steps`` steps.
    """
    m = len(start)
    path = np.zeros((m, steps + 1, 2), np.intp)
    path[:, 0] = start
    cur = start.astype(np.intp).copy()
    move = first.astype(np.intp)
    alive = np.ones(m, bool)
    length = np.zeros(m, np.intp)
    hit = np.full(m, -1, np.intp)
    h, w = code.shape
    for s in range(1, steps + 1):
        if s > 1:
            allowed = code[cur[:, 0], cur[:, 1]] & _BACK[(move + 4) % 8]
            move = _CHOOSE[allowed].astype(np.intp)
            alive &= move >= 0
        nxt = cur + RING[np.maximum(move, 0)]
        inside = (nxt[:, 0] >= 0) & (nxt[:, 0] < h) & (nxt[:, 1] >= 0) & (nxt[:, 1] < w)
        alive &= inside
        cur = np.where(alive[:, None], nxt, cur)
        length += alive
        lab = labels[cur[:, 0], cur[:, 1]]
        ran_into = alive & (lab >= 0) & (lab != owner)
        hit[ran_into] = lab[ran_into]
        alive &= ~ran_into
        path[:, s] = cur
        if not alive.any():
            path[:, s + 1:] = cur[:, None, :]
            break
    return Traces(path, length, hit)
