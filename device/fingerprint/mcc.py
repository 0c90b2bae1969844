"""Minutia Cylinder-Code (Cappelli, Ferrara, Maltoni, TPAMI 2010): a local descriptor around every minutia.

Why MCC: a cylinder describes where the neighbouring minutiae are and how they are turned, in the minutia's own
frame, so it is invariant to where the finger lies and how it is turned, and tolerant of skin distortion (each
neighbour is a Gaussian blob, not a point). Comparing all cylinders of two prints is two matrix products,
which is what makes a comparison fast in numpy.

A cylinder is ``NS x NS`` spatial cells (radius ``R``) times ``ND`` direction cells. Cell value: the sum over
neighbours of a spatial Gaussian (distance to the cell centre) times a directional Gaussian (neighbour's
direction relative to the minutia, against the cell's direction), squashed by a sigmoid. A cell is *valid* when
it lies inside the circle and inside the print's area (the minutiae's convex hull, grown by ``HULL_MARGIN``);
a cylinder with too few valid cells or too few neighbours is not used. Distances are in 500 dpi pixels.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from device.fingerprint.minutia import Minutiae
from device.fingerprint.template import ANGLE_UNIT

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
_v_cell, _u_cell = np.nonzero(_DISC)
_DISC_UV = _u_cell * NS + _v_cell  # the disc's cells (rows follow v) in a (u cell, v cell) grid, flattened
N_CELLS = CELL_XY.shape[0] * ND
CELL_DIR = -np.pi + (np.arange(ND) + 0.5) * (2.0 * np.pi / ND)


@dataclass(frozen=True)
class Cylinders:
    """The usable cylinders of one print, with what every comparison needs precomputed once per print.

    Why precomputed: a comparison is a few dozen numpy calls on small arrays, so what does not depend on the other
    print (float32 cell values, pairwise geometry, cosines) is computed when the cylinders are built and cached
    with them, not again in every comparison. The numbers are the same as computing them per comparison."""

    values: np.ndarray  # float32 (n, N_CELLS): whole numbers 0..255 (1/255 units), invalid cells 0; (space, direction)
    valid: np.ndarray  # float32 (n, N_CELLS / ND), 1 where the spatial cell is valid (all its directions are)
    squares: np.ndarray  # float32 (n, N_CELLS / ND), values ** 2 summed over the directions of each spatial cell
    xy: np.ndarray  # (n, 2) float32 in 500 dpi pixels
    angle: np.ndarray  # (n,) float32
    kind: np.ndarray  # (n,) uint8
    total: int  # minutiae in the print (before unusable cylinders were dropped)
    # The arrays the products read, stored cell-major ((cells, n) C-contiguous: OpenBLAS multiplies small matrices
    # stored so about 15 % faster); ``values``, ``squares`` and ``valid`` are transposed views of them.
    # ``stacked_t`` is [squares; valid] (N_CELLS / ND, 2n): one product of two prints' stacks gives all three sums
    # over spatial cells (squares x valid both ways, valid x valid).
    values_t: np.ndarray
    stacked_t: np.ndarray
    # (3, n, n) float64 for consolidation, [:, i, j]: distance from minutia i to j, wrap(angle_i - angle_j), and
    # wrap(angle_i - direction of the line from i to j) (counter-clockwise, y down).
    geometry: np.ndarray
    x64: np.ndarray  # (n,) float64 of xy[:, 0], contiguous
    y64: np.ndarray
    angle64: np.ndarray  # (n,) float64 of angle
    cos64: np.ndarray  # (n,) float64 of np.cos(angle) in float32, as the placement check uses it
    sin64: np.ndarray
    # When every angle is a whole number of template units (``template.ANGLE_UNIT``; always, for cylinders of a
    # template): the units, and each cylinder's row of the turn table (which units it may be compared with).
    units: np.ndarray | None
    turn_rows: np.ndarray | None

    def __len__(self) -> int:
        return len(self.angle)


def _describe(values: np.ndarray, valid: np.ndarray, xy: np.ndarray, angle: np.ndarray, kind: np.ndarray,
              total: int) -> Cylinders:
    """Cylinders with their per-print precomputations; ``values`` (n, C, ND) uint8, ``valid`` (n, C) bool."""
    n = len(angle)
    f = values.astype(np.float32).reshape(n, N_CELLS)
    values_t = np.ascontiguousarray(f.T)
    stacked_t = np.empty((N_CELLS // ND, 2 * n), np.float32)
    f = f * f  # whole numbers below 2^24 however summed: exact, so a product with ones sums the 6 directions
    stacked_t[:, :n] = (f.reshape(n * N_CELLS // ND, ND) @ np.ones(ND, np.float32)).reshape(n, N_CELLS // ND).T
    stacked_t[:, n:] = valid.T
    xy32, ang32 = xy.astype(np.float32), angle.astype(np.float32)
    p, t = xy32.astype(np.float64), ang32.astype(np.float64)
    d = p[None, :, :] - p[:, None, :]  # [i, j] = p_j - p_i
    geometry = np.empty((3, n, n), np.float64)
    geometry[0] = np.hypot(d[..., 0], d[..., 1])
    geometry[1] = wrap(t[:, None] - t[None, :])
    geometry[2] = wrap(t[:, None] - np.arctan2(-d[..., 1], d[..., 0]))
    units = np.rint(t / float(ANGLE_UNIT))
    on_grid = np.all((units >= 0) & (units < 256) & (units.astype(np.float32) * ANGLE_UNIT == ang32))
    units = units.astype(np.intp) if on_grid else None
    return Cylinders(values_t.T, stacked_t[:, n:].T, stacked_t[:, :n].T, xy32, ang32, np.asarray(kind), total,
                     values_t, stacked_t, geometry, p[:, 0].copy(), p[:, 1].copy(), t,
                     np.cos(ang32).astype(np.float64),
                     np.sin(ang32).astype(np.float64), units,
                     None if units is None else _turn_table()[units])


@functools.cache
def _turn_table() -> np.ndarray:
    """(256, 256) bool: may minutiae with directions of these template units correspond (turn <= MAX_TURN)?
    The same float32 arithmetic as for any two angles, done once for every pair of units."""
    grid = np.arange(256).astype(np.float32) * ANGLE_UNIT
    return np.abs(wrap(grid[:, None] - grid[None, :])) <= MAX_TURN


def wrap(a: np.ndarray) -> np.ndarray:
    """Angles wrapped into [-pi, pi): the numbers of ``(a + pi) % (2 pi) - pi``, in a's float type.

    Why not that expression: numpy's float remainder costs about 25 ns an element (a division and an fmod), more
    than the rest of a comparison's element-wise work. For ``y = a + pi`` in [-2 pi, 4 pi), which covers
    differences of angles, the remainder is exactly ``y + 2 pi`` (y < 0), ``y`` or ``y - 2 pi`` (an exact
    subtraction there, as fmod's is), so comparisons give the same numbers; other input takes the remainder."""
    y = a + np.pi
    period = np.asarray(2.0 * np.pi, y.dtype)
    if y.size < 64 or not (float(y.min()) >= -float(period) and float(y.max()) < 2.0 * float(period)):
        return y % (2.0 * np.pi) - np.pi  # (a few elements: the remainder costs less than the checks)
    return _wrap_shifted(y, period)


def wrap_difference(a: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    """``wrap`` of a difference of two wrapped angles (each in [-pi, pi], so no range check is needed)."""
    y = a + np.pi
    return _wrap_shifted(y, np.asarray(2.0 * np.pi, y.dtype), out)


def _wrap_shifted(y: np.ndarray, period: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
    return np.subtract(np.where(y < 0, y + period, np.where(y < period, y, y - period)), np.pi, out=out)


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
    # (edges, points) distance inside each edge; edges first: numpy is slow on a short last axis (~20x here)
    signed = normal @ points.reshape(-1, 2).T
    signed -= (hull * normal).sum(axis=1)[:, None]
    return (signed.min(axis=0) >= -margin).reshape(points.shape[:-1])


def cylinders(m: Minutiae) -> Cylinders:
    """The usable cylinders of a print (vectorized over minutiae, cells and neighbours)."""
    scale = 500.0 / float(m.dpi or 500)
    xy = np.asarray(m.xy, np.float64) * scale
    ang = np.asarray(m.angle, np.float64)
    n = len(ang)
    if n == 0:
        return _describe(np.zeros((0, N_CELLS // ND, ND), np.uint8), np.zeros((0, N_CELLS // ND), bool),
                         np.zeros((0, 2)), np.zeros(0), np.zeros(0, np.uint8), 0)
    cos, sin = np.cos(ang), np.sin(ang)
    # cell centres in image coordinates: the grid turned by each minutia's direction (y points down).
    cx = xy[:, None, 0] + CELL_XY[None, :, 0] * cos[:, None] + CELL_XY[None, :, 1] * sin[:, None]
    cy = xy[:, None, 1] - CELL_XY[None, :, 0] * sin[:, None] + CELL_XY[None, :, 1] * cos[:, None]
    valid_space = _inside_hull(np.stack([cx, cy], axis=-1), xy, HULL_MARGIN)  # (n, C)
    # neighbours in each minutia's own frame; the spatial Gaussian is separable on the square grid, so the
    # cylinder is one batched product of (grid x neighbours) by (neighbours x grid x directions).
    dx, dy = xy[None, :, 0] - xy[:, None, 0], xy[None, :, 1] - xy[:, None, 1]  # (i, j)
    near = (np.hypot(dx, dy) <= R + 3.0 * SIGMA_S) & ~np.eye(n, dtype=bool)
    usable = (valid_space.mean(axis=1) >= MIN_VALID_CELLS) & (near.sum(axis=1) >= MIN_NEIGHBOURS)
    # only the usable cylinders are built (each cylinder's numbers depend on its own row alone)
    dx, dy, near, cos, sin, valid_space = dx[usable], dy[usable], near[usable], cos[usable], sin[usable], \
        valid_space[usable]
    k = len(cos)
    u = dx * cos[:, None] - dy * sin[:, None]
    v = dx * sin[:, None] + dy * cos[:, None]
    g = 1.0 / (2.0 * SIGMA_S ** 2)
    eu = np.exp(-g * (_grid[None, None, :] - u[:, :, None]) ** 2) * near[:, :, None]  # (i, j, NS) along u
    ev = np.exp(-g * (_grid[None, None, :] - v[:, :, None]) ** 2)  # (i, j, NS) along v
    rel = wrap(ang[None, :] - ang[usable][:, None])  # (i, j) neighbour's direction relative to the centre's
    dd = wrap(CELL_DIR[:, None, None] - rel[None, :, :])  # (direction, i, j): long rows, fast in numpy
    # the integral of the direction Gaussian over one cell, approximated by its value times the cell width
    directional = np.exp(-dd ** 2 / (2.0 * SIGMA_D ** 2)) * ((2.0 * np.pi / ND) / (SIGMA_D * np.sqrt(2.0 * np.pi)))
    right = np.einsum("ijv,dij->ijvd", ev, directional).reshape(k, n, NS * ND)  # products, no sums
    raw = np.matmul(eu.transpose(0, 2, 1), right).reshape(k, NS * NS, ND)  # (i, u cell * NS + v cell, direction)
    raw = np.take(raw, _DISC_UV, axis=1)  # the disc's cells, rows following v (the grid's y)
    raw /= SIGMA_S * np.sqrt(2.0 * np.pi)
    raw -= MU_PSI  # the sigmoid, in place
    raw *= -TAU_PSI
    np.exp(raw, out=raw)
    raw += 1.0
    values = np.divide(1.0, raw, out=raw).reshape(k, N_CELLS)
    values *= 255.0
    np.round(values, out=values)
    values *= np.repeat(valid_space, ND, axis=1)  # invalid cells 0
    # explicit width: a print with no usable cylinder gives a (0, N_CELLS) array, not a reshape error
    return _describe(values.astype(np.uint8).reshape(k, N_CELLS // ND, ND), valid_space, xy[usable], ang[usable],
                     np.asarray(m.kind)[usable], n)


def local_similarity(a: Cylinders, b: Cylinders) -> np.ndarray:
    """(len(a), len(b)) cylinder similarities in [0, 1]: 1 - |ca - cb| / (|ca| + |cb|) over cells valid in both.

    Two matrix products: the cell values, and the stacked squares/validity (whose blocks are |ca|^2 restricted to
    b's valid cells, |cb|^2 restricted to a's, and the count of cells valid in both)."""
    n, m = len(a), len(b)
    if n == 0 or m == 0:
        return np.zeros((n, m), np.float32)
    ab = a.values_t.T @ b.values_t
    sums = a.stacked_t.T @ b.stacked_t  # [[sq.sq, sq.valid], [valid.sq, valid.valid]]
    aa, bb, common = sums[:n, m:], sums[n:, :m], sums[n:, m:]
    norm = np.sqrt(aa)
    norm += np.sqrt(bb)
    diff = aa + bb
    ab *= 2.0
    diff -= ab
    np.sqrt(np.maximum(diff, 0.0, out=diff), out=diff)
    # common cells are whole numbers: ``count * ND >= MIN_COMMON_CELLS * N_CELLS`` as a count
    ok = common >= MIN_COMMON_CELLS * N_CELLS / ND
    ok &= np.take(a.turn_rows, b.units, axis=1) if a.turn_rows is not None and b.units is not None else \
        np.abs(wrap(a.angle[:, None] - b.angle[None, :])) <= MAX_TURN
    if MIN_COMMON_CELLS <= 0:  # otherwise implied: a valid cell's value is at least 5, so norm > 0
        ok &= norm > 0
    diff /= np.maximum(norm, 1e-9, out=norm)
    return np.where(ok, np.subtract(1.0, diff, out=diff), 0.0)
