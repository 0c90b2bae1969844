"""Global consolidation: from local cylinder similarities to one score that rewards a large consistent set.

Why: two different fingers share many locally similar neighbourhoods (ridges look alike everywhere), so the best
local similarities alone leave a long impostor tail. A genuine pair's candidate correspondences agree with each
other: the distance between two minutiae, the turn between them and the direction of the line joining them are
the same in both prints. Relaxation (MCC's LSS-R) lets each candidate pair be supported by the pairs compatible
with it for a few rounds; impostor candidates support each other little, so their similarities fade.

Steps: take the ``n_r`` best local similarities (at most one per minutia of either print, greedy on a sorted
list of a few times that many), relax them ``ROUNDS`` times, keep the ``n_p`` pairs that gained the most, and
take the mean of their relaxed similarities. ``n_p`` grows with the smaller print's minutiae (few minutiae: few
pairs asked for). Then a global check: the placements (turn + shift) of the ``ANCHORS`` best of those pairs are
tried on the whole print, and the score is multiplied by the share of both prints the best one explains
(``aligned / sqrt(nA * nB)``). Measured on the six FVC sets (biolock eval, every cross-identity pair): mean EER
2.92 -> 2.58 %, FNMR at FMR 1e-3 10.1 -> 9.8 % (docs/fingerprint.md).
"""

from __future__ import annotations

import functools
import math

import numpy as np

from device.fingerprint.mcc import Cylinders, wrap, wrap_difference

ROUNDS = 5
W_R = 0.5  # weight of a pair's own similarity in each relaxation round
MU_1, TAU_1 = 5.0, -8.0 / 5.0  # distance disagreement (500 dpi pixels)
MU_2, TAU_2 = np.pi / 12.0, -30.0  # turn disagreement
MU_3, TAU_3 = np.pi / 12.0, -30.0  # disagreement of the joining line's direction
MIN_NP, MAX_NP = 4, 12
ALIGN_DIST, ALIGN_TURN = 10.0, np.pi / 12  # a minutia placed this close (500 dpi px) and turned this little matches
ANCHORS = 4  # placements tried: those of the consolidated pairs that gained most in relaxation
MU_P, TAU_P = 20.0, 2.0 / 5.0
_COS_ALIGN_TURN = np.cos(ALIGN_TURN)


_COUNT = np.arange(4 * 160 * 160)  # 0, 1, 2, ...: positions among at most every pair of two prints
_MU = np.array([MU_1, MU_2, MU_3])[:, None]
_NEG_TAU = -np.array([TAU_1, TAU_2, TAU_3])[:, None]


def _z(v: np.ndarray, mu: float | np.ndarray, neg_tau: float | np.ndarray) -> np.ndarray:
    """MCC's sigmoid, 1 / (1 + exp(-tau (v - mu))), with ``-tau`` given; computed in ``v``'s memory."""
    v -= mu
    v *= neg_tau
    np.exp(np.clip(v, -60.0, 60.0, out=v), out=v)
    v += 1.0
    return np.divide(1.0, v, out=v)


@functools.lru_cache(maxsize=512)
def pairs_wanted(n_a: int, n_b: int) -> int:
    """How many consolidated pairs the score averages (MCC's sigmoid in the smaller minutiae count)."""
    s = 1.0 / (1.0 + np.exp(-TAU_P * (min(n_a, n_b) - MU_P)))
    return int(MIN_NP + round(s * (MAX_NP - MIN_NP)))


def best_pairs(sim: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray]:
    """Up to ``count`` (row, col) pairs of high similarity, each row and column used once (greedy, best first)."""
    rows, cols, _ = _best_pairs(sim, count)
    return rows, cols


def _best_pairs(sim: np.ndarray, count: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``best_pairs`` and the pairs' positions in ``sim.ravel()``."""
    flat = sim.ravel()
    k = min(flat.size, 4 * count)
    if k == 0:
        return np.zeros(0, np.intp), np.zeros(0, np.intp), np.zeros(0, np.intp)
    neg = -flat
    top = np.argpartition(neg, k - 1)[:k]
    value = neg[top]
    order = np.argsort(value, kind="stable")
    top = top[order[:np.searchsorted(value[order], 0.0)]]  # best first; the positive ones are a prefix
    n = len(top)
    ids = np.concatenate(np.divmod(top, sim.shape[1]))  # rows, then columns numbered after the rows
    ids[n:] += sim.shape[0]
    # a pair is kept when neither of its minutiae appeared in a better pair before it: writing positions in
    # reverse order leaves each row's (column's) first position (numpy assigns repeated indices in order)
    position = np.concatenate([_COUNT[:n], _COUNT[:n]])
    first = np.empty(sum(sim.shape), np.intp)
    first[ids[::-1]] = position[::-1]
    first_seen = first[ids] == position
    keep = np.flatnonzero(first_seen[:n] & first_seen[n:])[:count]
    return ids[keep], ids[n + keep] - sim.shape[0], top[keep]


def compatibility(a: Cylinders, b: Cylinders, ra: np.ndarray, cb: np.ndarray) -> np.ndarray:
    """(k, k) how well candidate pairs (ra[t], cb[t]) agree with each other geometrically (1 = perfectly): the
    distance between two minutiae, their relative turn and the direction of the line joining them (relative to the
    first minutia) should be the same in both prints. The per-print terms are ``Cylinders.geometry``."""
    k = len(ra)
    d = np.take(np.take(a.geometry, ra, axis=1), ra, axis=2).reshape(3, k * k)  # the candidates' (i, j) terms
    d -= np.take(np.take(b.geometry, cb, axis=1), cb, axis=2).reshape(3, k * k)
    wrap_difference(d[1:], out=d[1:])
    z = _z(np.abs(d, out=d), _MU, _NEG_TAU)
    rho = (z[0] * z[1] * z[2]).reshape(k, k)
    np.fill_diagonal(rho, 0.0)
    return rho


def relax(lam0: np.ndarray, rho: np.ndarray) -> np.ndarray:
    """Similarities after ``ROUNDS`` rounds of support from compatible pairs."""
    lam = lam0.astype(np.float64)
    k = len(lam)
    if k < 2:
        return lam
    if W_R == 0.5:  # halving is exact, so 0.5 * (lam + y / (k - 1)) gives the same numbers in fewer steps
        for _ in range(ROUNDS):
            y = rho @ lam
            y /= k - 1
            y += lam
            y *= 0.5
            lam = y
        return lam
    for _ in range(ROUNDS):
        lam = W_R * lam + (1.0 - W_R) * (rho @ lam) / (k - 1)
    return lam


def score(a: Cylinders, b: Cylinders, sim: np.ndarray) -> float:
    """LSS-R score in [0, 1] of two prints from their cylinder similarity matrix."""
    if len(a) == 0 or len(b) == 0:
        return 0.0
    n_r = min(len(a), len(b))
    ra, cb, at = _best_pairs(sim, n_r)
    if len(ra) == 0:
        return 0.0
    lam0 = sim.ravel()[at].astype(np.float64)
    lam = relax(lam0, compatibility(a, b, ra, cb))
    n_p = pairs_wanted(a.total, b.total)
    gain = lam / np.maximum(lam0, 1e-9)
    chosen = np.argsort(-gain, kind="stable")[:n_p]
    aligned = aligned_count(a, b, ra[chosen[:ANCHORS]], cb[chosen[:ANCHORS]])
    return float(lam[chosen].sum() / n_p) * aligned / math.sqrt(len(a) * len(b))


def aligned_count(a: Cylinders, b: Cylinders, anchors_a: np.ndarray, anchors_b: np.ndarray) -> int:
    """The most minutiae that one rigid placement (each anchor pair's) brings within ``ALIGN_DIST`` and
    ``ALIGN_TURN`` of a minutia of the other print (one-to-one bound: the smaller of both sides' counts).

    Why: relaxation judges pairs against each other; this asks how much of both prints one placement explains, so
    two prints that share only a few look-alike neighbourhoods (impostors) score low however alike those are.
    The distance test runs on every (placement, a, b) triple; the turn test only where the distance one passed."""
    k, n_a, n_b = len(anchors_a), len(a), len(b)
    if k == 0:
        return 0
    phi = wrap(b.angle64[anchors_b] - a.angle[anchors_a])  # (k,) turn of each placement
    cos, sin = np.cos(phi)[:, None], np.sin(phi)[:, None]
    # a's minutiae placed by each anchor pair (k, nA): turned about the anchor like the angles (y down), moved
    dx, dy = a.x64 - a.x64[anchors_a][:, None], a.y64 - a.y64[anchors_a][:, None]
    tx = b.x64[anchors_b][:, None] + dx * cos + dy * sin
    ty = b.y64[anchors_b][:, None] - dx * sin + dy * cos
    # squared distances to b's minutiae, (k, nA, nB) along x first: x^2 <= x^2 + y^2, so the pairs close
    # enough along x are all the candidates, and x^2 + y^2 is then formed for those alone
    near = tx[:, :, None] - b.x64
    near *= near
    at = np.flatnonzero(near <= ALIGN_DIST ** 2)
    pi, j = np.divmod(at, n_b)  # pi = placement * nA + minutia of a
    off = ty.ravel()[pi] - b.y64[j]
    close = near.ravel()[at] + off * off <= ALIGN_DIST ** 2
    pi, j = pi[close], j[close]
    if len(pi) == 0:
        return 0
    turned = (a.angle64 + phi[:, None]).ravel()[pi]  # cos of the turn left, without wrapping:
    ok = np.cos(turned) * b.cos64[j] + np.sin(turned) * b.sin64[j] >= _COS_ALIGN_TURN
    pi, j = pi[ok], j[ok]
    hit_a = np.zeros(k * n_a, bool)
    hit_a[pi] = True
    hit_b = np.zeros(k * n_b, bool)
    hit_b[pi // n_a * n_b + j] = True
    return int(np.minimum(hit_a.reshape(k, n_a).sum(axis=1), hit_b.reshape(k, n_b).sum(axis=1)).max())
