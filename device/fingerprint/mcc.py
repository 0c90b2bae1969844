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

    values: np.ndarray  # uint8 (n, N_CELLS) in 1/255, cell order (space, direction): 4x less memory when cached
    valid: np.ndarray  # float32 (n, N_CELLS / ND), 1 where the spatial cell is valid (all its directions are)
    squares: np.ndarray  # float32 (n, N_CELLS / ND), values ** 2 summed over the directions of each spatial cell
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
    signed = points @ normal.T - (hull * normal).sum(axis=1)  # (..., edges) distance inside each edge
    return signed.min(axis=-1) >= -margin


def cylinders(m: Minutiae) -> Cylinders:
    """The usable cylinders of a print (vectorized over minutiae, cells and neighbours)."""
    scale = 500.0 / float(m.dpi or 500)
    xy = np.asarray(m.xy, np.float64) * scale
    ang = np.asarray(m.angle, np.float64)
    n = len(ang)
    if n == 0:
        empty = np.zeros((0, N_CELLS // ND), np.float32)
        return Cylinders(np.zeros((0, N_CELLS), np.uint8), empty, empty, np.zeros((0, 2), np.float32),
                         np.zeros(0, np.float32), np.zeros(0, np.uint8), 0)
    cos, sin = np.cos(ang), np.sin(ang)
    # cell centres in image coordinates: the grid turned by each minutia's direction (y points down).
    cx = xy[:, None, 0] + CELL_XY[None, :, 0] * cos[:, None] + CELL_XY[None, :, 1] * sin[:, None]
    cy = xy[:, None, 1] - CELL_XY[None, :, 0] * sin[:, None] + CELL_XY[None, :, 1] * cos[:, None]
    valid_space = _inside_hull(np.stack([cx, cy], axis=-1), xy, HULL_MARGIN)  # (n, C)
    # neighbours in each minutia's own frame; the spatial Gaussian is separable on the square grid, so the
    # cylinder is one batched product of (grid x neighbours) by (neighbours x grid x directions).
    dx, dy = xy[None, :, 0] - xy[:, None, 0], xy[None, :, 1] - xy[:, None, 1]  # (i, j)
    u = dx * cos[:, None] - dy * sin[:, None]
    v = dx * sin[:, None] + dy * cos[:, None]
    near = (np.hypot(dx, dy) <= R + 3.0 * SIGMA_S) & ~np.eye(n, dtype=bool)
    g = 1.0 / (2.0 * SIGMA_S ** 2)
    eu = np.exp(-g * (_grid[None, None, :] - u[:, :, None]) ** 2) * near[:, :, None]  # (i, j, NS) along u
    ev = np.exp(-g * (_grid[None, None, :] - v[:, :, None]) ** 2)  # (i, j, NS) along v
    rel = wrap(ang[None, :] - ang[:, None])  # (i, j) neighbour's direction relative to the centre's
    dd = wrap(CELL_DIR[None, None, :] - rel[:, :, None])  # (i, j, ND)
    # the integral of the direction Gaussian over one cell, approximated by its value times the cell width
    directional = np.exp(-dd ** 2 / (2.0 * SIGMA_D ** 2)) * ((2.0 * np.pi / ND) / (SIGMA_D * np.sqrt(2.0 * np.pi)))
    right = (ev[:, :, :, None] * directional[:, :, None, :]).reshape(n, n, NS * ND)
    raw = np.matmul(eu.transpose(0, 2, 1), right).reshape(n, NS, NS, ND)  # (i, u cell, v cell, direction)
    raw = raw.transpose(0, 2, 1, 3)[:, _DISC] / (SIGMA_S * np.sqrt(2.0 * np.pi))  # rows follow v (the grid's y)
    values = 1.0 / (1.0 + np.exp(-TAU_PSI * (raw - MU_PSI)))
    values = np.where(valid_space[:, :, None], values, 0.0)
    usable = (valid_space.mean(axis=1) >= MIN_VALID_CELLS) & (near.sum(axis=1) >= MIN_NEIGHBOURS)
    v = np.round(values[usable] * 255.0).astype(np.uint8)
    f = v.astype(np.float32)
    # explicit width: a print with no usable cylinder gives a (0, N_CELLS) array, not a reshape error
    return Cylinders(v.reshape(len(v), N_CELLS), valid_space[usable].astype(np.float32), (f * f).sum(axis=2),
                     xy[usable].astype(np.float32),
                     ang[usable].astype(np.float32), np.asarray(m.kind)[usable], n)


def local_similarity(a: Cylinders, b: Cylinders) -> np.ndarray:
    """(len(a), len(b)) cylinder similarities in [0, 1]: 1 - |ca - cb| / (|ca| + |cb|) over cells valid in both."""
    if len(a) == 0 or len(b) == 0:
        return np.zeros((len(a), len(b)), np.float32)
    aa = a.squares @ b.valid.T  # |ca restricted to b's valid cells|^2
    bb = a.valid @ b.squares.T
    ab = a.values.astype(np.float32) @ b.values.T.astype(np.float32)
    common = (a.valid @ b.valid.T) * ND
    diff = np.sqrt(np.maximum(aa + bb - 2.0 * ab, 0.0))
    norm = np.sqrt(aa) + np.sqrt(bb)
    sim = np.where(norm > 0, 1.0 - diff / np.maximum(norm, 1e-9), 0.0)
    turn = np.abs(wrap(a.angle[:, None] - b.angle[None, :]))
    ok = (common >= MIN_COMMON_CELLS * N_CELLS) & (turn <= MAX_TURN)
    return np.where(ok, sim, 0.0).astype(np.float32)
