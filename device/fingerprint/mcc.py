"""Minutia Cylinder-Code (Cappelli, Ferrara, Maltoni, TPAMI 2010): a local descriptor around every minutia.

Why MCC: a cylinder describes where the neighbouring minutiae are and how they are turned, in the minutia's own
frame, so it is invariant to where the finger lies and how it is turned, and tolerant of skin distortion (each
neighbour is a Gaussian blob, not a point). Comparing all cylinders of two prints is three matrix products,
which is what makes a comparison fast in numpy.

A cylinder is ``NS x NS`` spatial cells (radius ``R``) times ``ND`` direction cells. Cell value: the sum over
neighbours of a spatial Gaussian (distance to the cell centre) times a directional Gaussian (neighbour's
direction relative to the minutia, against the cell's direction), squashed by a sigmoid. A cell is *valid* when
it lies inside the circle and inside the print's area (the minutiae's convex hull, grown by ``HULL_MARGIN``);
a cylinder with too few valid cells or too few neighbours is not used. Distances are in 500 dpi pixels.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from device.fingerprint.minutia import Minutiae

R = 70.0  # cylinder radius (500 dpi pixels)
NS = 16  # spatial cells across the diameter
ND = 6  # direction cells
SIGMA_S = 28.0 / 3.0  # spatial Gaussian
SIGMA_D = 2.0 * np.pi / 9.0  # directional Gaussian
MU_PSI, TAU_PSI = 0.01, 400.0  # the sigmoid that turns a cell's sum into [0, 1]
HULL_MARGIN = 50.0  # cells this far outside the minutiae's convex hull still count as inside the print
MIN_VALID_CELLS = 0.75  # share of the disc's cells that must be valid
MIN_NEIGHBOURS = 2  # minutiae within R + 3 sigma besides the centre
MIN_COMMON_CELLS = 0.6  # share of the disc's cells two cylinders must both have valid to be compared
MAX_TURN = np.pi / 2  # two minutiae turned more than this against each other cannot correspond

_DS = 2.0 * R / NS
_grid = (np.arange(NS) - (NS - 1) / 2.0) * _DS
_gx, _gy = np.meshgrid(_grid, _grid)
_DISC = np.hypot(_gx, _gy) <= R
CELL_XY = np.stack([_gx[_DISC], _gy[_DISC]], axis=1)  # (C, 2) cell centres in the minutia's frame
N_CELLS = CELL_XY.shape[0] * ND
CELL_DIR = -np.pi + (np.arange(ND) + 0.5) * (2.0 * np.pi / ND)


@dataclass(frozen=True)
class Cylinders:
    """The usable cylinders of one print: values (n, C*ND) with invalid cells 0, validity, and their minutiae."""

    values: np.ndarray  # float32 (n, N_CELLS)
    valid: np.ndarray  # float32 (n, N_CELLS), 1 where the cell is valid
    squares: np.ndarray  # float32 (n, N_CELLS), values ** 2
    xy: np.ndarray  # (n, 2) float32 in 500 dpi pixels
    angle: np.ndarray  # (n,) float32
    kind: np.ndarray  # (n,) uint8
    total: int  # minutiae in the print (before unusable cylinders were dropped)

    def __len__(self) -> int:
        return len(self.angle)


def wrap(a: np.ndarray) -> np.ndarray:
    """Angles wrapped into [-pi, pi)."""
    return (a + np.pi) % (2.0 * np.pi) - np.pi


def _inside_hull(points: np.ndarray, xy: np.ndarray, margin: float) -> np.ndarray:
    """Which ``points`` (..., 2) lie inside the convex hull of ``xy`` grown by ``margin`` (mitred corners)."""
    import cv2

    if len(xy) < 3:
        return np.ones(points.shape[:-1], dtype=bool)
    hull = cv2.convexHull(xy.astype(np.float32)).reshape(-1, 2).astype(np.float64)
    if len(hull) < 3:
        return np.ones(points.shape[:-1], dtype=bool)
    edge = np.roll(hull, -1, axis=0) - hull
    normal = np.stack([edge[:, 1], -edge[:, 0]], axis=1)
    normal /= np.maximum(np.linalg.norm(normal, axis=1, keepdims=True), 1e-9)
    centre = hull.mean(axis=0)
    normal *= np.sign(((centre - hull) * normal).sum(axis=1, keepdims=True) + 1e-12)  # inward normals
    signed = np.einsum("...d,ed->...e", points, normal) - (hull * normal).sum(axis=1)
    return np.all(signed >= -margin, axis=-1)


def cylinders(m: Minutiae) -> Cylinders:
    """The usable cylinders of a print (vectorized over minutiae, cells and neighbours)."""
    scale = 500.0 / float(m.dpi or 500)
    xy = np.asarray(m.xy, np.float64) * scale
    ang = np.asarray(m.angle, np.float64)
    n = len(ang)
    if n == 0:
        empty = np.zeros((0, N_CELLS), np.float32)
        return Cylinders(empty, empty, empty, np.zeros((0, 2), np.float32), np.zeros(0, np.float32),
                         np.zeros(0, np.uint8), 0)
    cos, sin = np.cos(ang), np.sin(ang)
    # cell centres in image coordinates: rotate the grid by each minutia's direction (y points down).
    cx = xy[:, None, 0] + CELL_XY[None, :, 0] * cos[:, None] + CELL_XY[None, :, 1] * sin[:, None]
    cy = xy[:, None, 1] - CELL_XY[None, :, 0] * sin[:, None] + CELL_XY[None, :, 1] * cos[:, None]
    centres = np.stack([cx, cy], axis=-1)  # (n, C, 2)
    valid_space = _inside_hull(centres, xy, HULL_MARGIN)  # (n, C)
    d2 = (centres[:, :, None, :] - xy[None, None, :, :]) ** 2  # (n, C, n, 2)
    spatial = np.exp(-d2.sum(-1) / (2.0 * SIGMA_S ** 2)) / (SIGMA_S * np.sqrt(2.0 * np.pi))  # (n, C, n)
    dist = np.hypot(xy[:, None, 0] - xy[None, :, 0], xy[:, None, 1] - xy[None, :, 1])
    near = (dist <= R + 3.0 * SIGMA_S) & ~np.eye(n, dtype=bool)
    spatial *= near[:, None, :]
    rel = wrap(ang[None, :] - ang[:, None])  # (n, n) neighbour's direction relative to the centre's
    dd = wrap(CELL_DIR[None, :, None] - rel[:, None, :])  # (n, ND, n)
    # the integral of the direction Gaussian over one cell, approximated by its value times the cell width
    directional = np.exp(-dd ** 2 / (2.0 * SIGMA_D ** 2)) * ((2.0 * np.pi / ND) / (SIGMA_D * np.sqrt(2.0 * np.pi)))
    raw = np.einsum("icj,idj->icd", spatial, directional)  # (n, C, ND)
    values = 1.0 / (1.0 + np.exp(-TAU_PSI * (raw - MU_PSI)))
    valid = np.repeat(valid_space[:, :, None], ND, axis=2)
    values = np.where(valid, values, 0.0).reshape(n, -1)
    valid = valid.reshape(n, -1)
    usable = (valid_space.mean(axis=1) >= MIN_VALID_CELLS) & (near.sum(axis=1) >= MIN_NEIGHBOURS)
    v = values[usable].astype(np.float32)
    return Cylinders(v, valid[usable].astype(np.float32), v * v, xy[usable].astype(np.float32),
                     ang[usable].astype(np.float32), np.asarray(m.kind)[usable], n)


def local_similarity(a: Cylinders, b: Cylinders) -> np.ndarray:
    """(len(a), len(b)) cylinder similarities in [0, 1]: 1 - |ca - cb| / (|ca| + |cb|) over cells valid in both."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    aa = a.squares @ b.valid.T  # |ca restricted to b's valid cells|^2
    bb = a.valid @ b.squares.T
    ab = a.values @ b.values.T
    common = a.valid @ b.valid.T
    diff = np.sqrt(np.maximum(aa + bb - 2.0 * ab, 0.0))
    norm = np.sqrt(aa) + np.sqrt(bb)
    sim = np.where(norm > 0, 1.0 - diff / np.maximum(norm, 1e-9), 0.0)
    turn = np.abs(wrap(a.angle[:, None] - b.angle[None, :]))
    ok = (common >= MIN_COMMON_CELLS * N_CELLS) & (turn <= MAX_TURN)
    return np.where(ok, sim, 0.0).astype(np.float32)
