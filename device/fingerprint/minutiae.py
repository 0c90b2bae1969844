"""Minutiae from a skeleton: crossing-number detection, removal of spurious ones, direction of each.

Detection: a skeleton pixel with crossing number 1 is a ridge ending, 3 or more a bifurcation (adjacent junction
pixels count once). Every minutia's ridge (three for a bifurcation) is traced a few ridge periods
(``device.fingerprint.trace``); what the traces run into finds the classic artefacts of noisy ridges (Ratha et al.
1995; Maltoni et al., Handbook of Fingerprint Recognition, 3.8): spurs (an ending that meets a bifurcation within a
period), short pieces (two endings), bridges and holes (two bifurcations), broken ridges (two endings facing each
other across a small gap), clusters (many minutiae packed together: noise) and anything next to the foreground edge.

Directions follow ``device.fingerprint.minutia``: an ending points into its ridge, a bifurcation towards its two
branches; the traced direction picks the sense and the (smoother) orientation field the exact angle.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from device.fingerprint import params
from device.fingerprint.minutia import BIFURCATION, ENDING
from device.fingerprint.skeleton import CROSSING, neighbour_code
from device.fingerprint.trace import trace

_RUN_START = np.zeros((256, 8), bool)  # ring positions that start a run of set neighbours, per neighbour byte
for _c in range(256):
    _b = [(_c >> k) & 1 for k in range(8)]
    for _k in range(8):
        _RUN_START[_c, _k] = _b[_k] == 1 and _b[_k - 1] == 0


@dataclass(frozen=True)
class Candidates:
    """Raw minutiae (image coordinates) with their traced ridges, before cleaning."""

    yx: np.ndarray  # (N, 2) int rows, cols
    kind: np.ndarray  # (N,) uint8
    vec: np.ndarray  # (N, 2) float (dy, dx): traced direction (ending into the ridge, bifurcation to its branches)
    spurious: np.ndarray  # (N,) bool: condemned by what its traces ran into


def detect(skel: np.ndarray, period: float) -> Candidates:
    """Find minutiae on a 0/1 skeleton and mark the trace-detectable artefacts."""
    code = neighbour_code(skel)
    cn = cv2.LUT(code, CROSSING) * skel
    ey, ex = np.nonzero(cn == 1)
    n_comp, comp = cv2.connectedComponents((cn >= 3).astype(np.uint8), connectivity=8)
    flat = comp.ravel()
    nz = np.flatnonzero(flat)
    _, first = np.unique(flat[nz], return_index=True)  # nz is sorted, so this is each component's first pixel
    rep = nz[first]
    by, bx = np.divmod(rep, skel.shape[1])
    ne, nb = len(ey), len(by)
    labels = np.full(skel.shape, -1, np.intp)
    labels[ey, ex] = np.arange(ne)
    labels[comp > 0] = ne + flat[flat > 0] - 1
    yx = np.concatenate([np.stack([ey, ex], 1), np.stack([by, bx], 1)]).astype(np.intp)
    kind = np.concatenate([np.full(ne, ENDING, np.uint8), np.full(nb, BIFURCATION, np.uint8)])
    if ne + nb == 0:
        return Candidates(yx, kind, np.zeros((0, 2)), np.zeros(0, bool))
    # branches: every ring run of every minutia (endings have one, bifurcations three or more)
    runs = _RUN_START[code[yx[:, 0], yx[:, 1]]]
    owner, first_dir = np.nonzero(runs)
    steps = max(params.TRACE_STEPS, int(round(params.SHORT_LEN * period)) + 1)
    tr = trace(code, labels, yx[owner], first_dir, owner, steps)
    lim = {ENDING: {ENDING: params.SHORT_LEN, BIFURCATION: params.SPUR_LEN},
           BIFURCATION: {ENDING: params.SPUR_LEN, BIFURCATION: params.BRIDGE_LEN}}
    spurious = np.zeros(ne + nb, bool)
    hit = tr.hit >= 0
    for ka in (ENDING, BIFURCATION):
        for kb in (ENDING, BIFURCATION):
            sel = hit & (kind[owner] == ka)
            sel[sel] &= kind[tr.hit[sel]] == kb
            sel &= tr.length <= lim[ka][kb] * period
            spurious[owner[sel]] = True
            spurious[tr.hit[sel]] = True
    # junctions with more than three branches are crossings or noise
    n_runs = np.bincount(owner, minlength=ne + nb)
    spurious |= (kind == BIFURCATION) & (n_runs != 3)
    d = min(params.DIR_STEPS, steps)
    vec_branch = (tr.path[:, d] - tr.path[:, 0]).astype(np.float64)
    vec = np.zeros((ne + nb, 2))
    end_rows = np.flatnonzero(kind[owner] == ENDING)
    vec[owner[end_rows]] = vec_branch[end_rows]
    bif = np.flatnonzero(n_runs[ne:] == 3) + ne
    if len(bif):
        rows = np.flatnonzero(np.isin(owner, bif))
        v = vec_branch[rows].reshape(-1, 3, 2)
        u = v / np.maximum(np.linalg.norm(v, axis=2, keepdims=True), 1e-9)
        cos = np.stack([(u[:, 0] * u[:, 1]).sum(1), (u[:, 1] * u[:, 2]).sum(1), (u[:, 0] * u[:, 2]).sum(1)], 1)
        pair = np.argmax(cos, axis=1)  # the two branches closest in direction (not the stem)
        ia = np.array([0, 1, 0])[pair]
        ib = np.array([1, 2, 2])[pair]
        idx = np.arange(len(u))
        vec[owner[rows].reshape(-1, 3)[:, 0]] = u[idx, ia] + u[idx, ib]
    return Candidates(yx, kind, vec, spurious)


def facing_breaks(yx: np.ndarray, ang: np.ndarray, kind: np.ndarray, period: float) -> np.ndarray:
    """Boolean: endings that face another ending across a gap (a broken ridge). ``ang`` image angles."""
    ends = np.flatnonzero(kind == ENDING)
    out = np.zeros(len(yx), bool)
    if len(ends) < 2:
        return out
    p = yx[ends].astype(np.float64)
    dyx = p[None, :, :] - p[:, None, :]  # a -> b
    dist = np.hypot(dyx[..., 0], dyx[..., 1])
    a = ang[ends]
    link = np.arctan2(dyx[..., 0], dyx[..., 1])  # direction a -> b
    opposite = np.abs(np.angle(np.exp(1j * (a[:, None] - a[None, :] - np.pi)))) < params.BREAK_ANGLE
    facing = np.abs(np.angle(np.exp(1j * (link - a[:, None] - np.pi)))) < params.BREAK_ANGLE
    pair = (dist < params.BREAK_DIST * period) & opposite & facing & facing.T
    np.fill_diagonal(pair, False)
    out[ends] = pair.any(axis=1)
    return out


def clustered(yx: np.ndarray, period: float) -> np.ndarray:
    """Boolean: minutiae with more than CLUSTER_MAX others within CLUSTER_RADIUS periods."""
    if len(yx) == 0:
        return np.zeros(0, bool)
    p = yx.astype(np.float64)
    d2 = ((p[:, None, :] - p[None, :, :]) ** 2).sum(-1)
    near = (d2 < (params.CLUSTER_RADIUS * period) ** 2).sum(1) - 1
    return near > params.CLUSTER_MAX


def directions(vec: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """Image angles: the orientation field's axis at each minutia, in the sense of its traced vector."""
    traced = np.arctan2(vec[:, 0], vec[:, 1])
    diff = np.angle(np.exp(1j * (traced - theta)))
    return np.where(np.abs(diff) <= np.pi / 2, theta, theta + np.pi)
