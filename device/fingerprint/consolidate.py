"""Global consolidation: from local cylinder similarities to one score that rewards a large consistent set.

Why: two different fingers share many locally similar neighbourhoods (ridges look alike everywhere), so the best
local similarities alone leave a long impostor tail. A genuine pair's candidate correspondences agree with each
other: the distance between two minutiae, the turn between them and the direction of the line joining them are
the same in both prints. Relaxation (MCC's LSS-R) lets each candidate pair be supported by the pairs compatible
with it for a few rounds; impostor candidates support each other little, so their similarities fade.

Steps: take the ``n_r`` best local similarities (at most one per minutia of either print, greedy on a sorted
list of a few times that many), relax them ``ROUNDS`` times, keep the ``n_p`` pairs that gained the most, and
score the mean of their relaxed similarities. ``n_p`` grows with the smaller print's minutiae (few minutiae:
few pairs asked for).
"""

from __future__ import annotations

import numpy as np

from device.fingerprint.mcc import Cylinders, wrap

ROUNDS = 5
W_R = 0.5  # weight of a pair's own similarity in each relaxation round
MU_1, TAU_1 = 5.0, -8.0 / 5.0  # distance disagreement (500 dpi pixels)
MU_2, TAU_2 = np.pi / 12.0, -30.0  # turn disagreement
MU_3, TAU_3 = np.pi / 12.0, -30.0  # disagreement of the joining line's direction
MIN_NP, MAX_NP = 4, 12
MU_P, TAU_P = 20.0, 2.0 / 5.0


def _z(v: np.ndarray, mu: float, tau: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(np.clip(-tau * (v - mu), -60.0, 60.0)))


def pairs_wanted(n_a: int, n_b: int) -> int:
    """How many consolidated pairs the score averages (MCC's sigmoid in the smaller minutiae count)."""
    s = 1.0 / (1.0 + np.exp(-TAU_P * (min(n_a, n_b) - MU_P)))
    return int(MIN_NP + round(s * (MAX_NP - MIN_NP)))


def best_pairs(sim: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``count`` (row, col) pairs of high similarity, each row and column used once (greedy, best first)."""
    flat = sim.ravel()
    k = min(flat.size, 4 * count)
    if k == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp)
    top = np.argpartition(-flat, k - 1)[:k]
    top = top[np.argsort(-flat[top], kind="stable")]
    top = top[flat[top] > 0]
    rows, cols = np.divmod(top, sim.shape[1])
    # a pair is kept when neither of its minutiae appeared in a better pair before it
    first_row = np.zeros(len(top), bool)
    first_col = np.zeros(len(top), bool)
    first_row[np.unique(rows, return_index=True)[1]] = True
    first_col[np.unique(cols, return_index=True)[1]] = True
    keep = first_row & first_col
    return rows[keep][:count], cols[keep][:count]


def compatibility(a: Cylinders, b: Cylinders, ra: np.ndarray, cb: np.ndarray) -> np.ndarray:
    """(k, k) how well candidate pairs (ra[t], cb[t]) agree with each other geometrically (1 = perfectly)."""
    pa, pb = a.xy[ra].astype(np.float64), b.xy[cb].astype(np.float64)
    ta, tb = a.angle[ra].astype(np.float64), b.angle[cb].astype(np.float64)
    da = pa[None, :, :] - pa[:, None, :]
    db = pb[None, :, :] - pb[:, None, :]
    d1 = np.abs(np.hypot(da[..., 0], da[..., 1]) - np.hypot(db[..., 0], db[..., 1]))
    d2 = np.abs(wrap(wrap(ta[:, None] - ta[None, :]) - wrap(tb[:, None] - tb[None, :])))
    la = np.arctan2(-da[..., 1], da[..., 0])  # direction of the joining line, counter-clockwise like the angles
    lb = np.arctan2(-db[..., 1], db[..., 0])
    d3 = np.abs(wrap(wrap(ta[:, None] - la) - wrap(tb[:, None] - lb)))
    rho = _z(d1, MU_1, TAU_1) * _z(d2, MU_2, TAU_2) * _z(d3, MU_3, TAU_3)
    np.fill_diagonal(rho, 0.0)
    return rho


def relax(lam0: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Similarities after ``ROUNDS`` rounds of support from compatible pairs."""
    lam = lam0.astype(np.float64)
    k = len(lam)
    if k < 2:
        return lam
    for _ in range(ROUNDS):
        lam = W_R * lam + (1.0 - W_R) * (rho @ lam) / (k - 1)
    return lam


def score(a: Cylinders, b: Cylinders, sim: np.ndarray) -> float:
    """LSS-R score in [0, 1] of two prints from their cylinder similarity matrix."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    n_r = min(len(a), len(b))
    ra, cb = best_pairs(sim, n_r)
    if len(ra) == 0:
        return 0.0
    lam0 = sim[ra, cb].astype(np.float64)
    lam = relax(lam0, compatibility(a, b, ra, cb))
    n_p = pairs_wanted(a.total, b.total)
    gain = lam / np.maximum(lam0, 1e-9)
    chosen = np.argsort(-gain, kind="stable")[:n_p]
    return float(lam[chosen].sum() / n_p)
