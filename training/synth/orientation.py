"""Orientation fields for synthetic fingerprints: the zero-pole model of Sherlock and Monro (1993).

Why this model: it places cores and deltas exactly where the pattern class needs them and needs no training
data. The ridge orientation at point z (complex, image coordinates: x right, y down) is

    theta(z) = theta_inf + 1/2 * (sum_k arg(z - core_k) - sum_k arg(z - delta_k))

which turns by +180 degrees around a core and -180 degrees around a delta (Poincare index +-1/2). The arch
class has no singular points, so its field is derived from a bump-shaped potential instead (ridges are its
level sets). A small low-frequency perturbation keeps two identities of the same class from sharing one field.
Loops get a smooth monotone warp of the angle around the core (a simple form of the Vizcaya-Gerhardt
correction) that rounds the loop's head.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

PATTERN_CLASSES = ("arch", "tented_arch", "left_loop", "right_loop", "whorl")


@dataclass(frozen=True)
class SingularPoints:
    """Cores and deltas as (x, y) pixel positions on the master canvas."""

    cores: tuple[tuple[float, float], ...]
    deltas: tuple[tuple[float, float], ...]


def place_singular_points(pattern: str, centre: tuple[float, float], rng: np.random.Generator,
                          scale: float = 1.0) -> SingularPoints:
    """Cores and deltas for one pattern class around ``centre`` (the finger's centre), at 500 dpi scaled by ``scale``.

    Distances follow typical prints at 500 dpi: a loop's delta lies 80-140 px below and 60-130 px to the side of
    its core; a whorl's two cores sit 10-40 px apart with a delta on each side.
    """
    cx, cy = centre
    jx, jy = rng.normal(0, 18 * scale), rng.normal(0, 22 * scale)
    if pattern == "arch":
        return SingularPoints((), ())
    if pattern == "tented_arch":
        core = (cx + jx, cy - 10 * scale + jy)
        gap = rng.uniform(50, 90) * scale
        return SingularPoints((core,), ((core[0] + rng.normal(0, 5 * scale), core[1] + gap),))
    if pattern in ("left_loop", "right_loop"):
        side = 1.0 if pattern == "left_loop" else -1.0  # a left loop opens to the left: its delta is on the right
        core = (cx + jx - side * 10 * scale, cy - 30 * scale + jy)
        delta = (core[0] + side * rng.uniform(60, 130) * scale, core[1] + rng.uniform(80, 140) * scale)
        return SingularPoints((core,), (delta,))
    if pattern == "whorl":
        sep = rng.uniform(8, 40) * scale
        tilt = rng.normal(0, 0.5)
        c1 = (cx + jx - 0.5 * sep * np.sin(tilt), cy - 25 * scale + jy - 0.5 * sep * np.cos(tilt))
        c2 = (cx + jx + 0.5 * sep * np.sin(tilt), cy - 25 * scale + jy + 0.5 * sep * np.cos(tilt))
        drop = rng.uniform(90, 140) * scale
        d1 = (cx + jx - rng.uniform(90, 140) * scale, cy + jy + drop * rng.uniform(0.8, 1.2))
        d2 = (cx + jx + rng.uniform(90, 140) * scale, cy + jy + drop * rng.uniform(0.8, 1.2))
        return SingularPoints((c1, c2), (d1, d2))
    raise ValueError(f"unknown pattern class {pattern!r}")


def zero_pole_field(shape: tuple[int, int], points: SingularPoints, theta_inf: float = 0.0,
                    core_warp: tuple[float, ...] | None = None) -> np.ndarray:
    """Ridge orientation in radians (mod pi) for every pixel of ``shape`` (rows, cols) by the zero-pole model."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    theta = np.full(shape, theta_inf, dtype=np.float64)
    for (cx, cy), warp in zip(points.cores, core_warp or (0.0,) * len(points.cores), strict=True):
        angle = np.arctan2(ys - cy, xs - cx)
        # Vizcaya-Gerhardt style correction, smooth form: a monotone warp of the angle rounds a loop's head.
        theta += 0.5 * (angle + warp * np.sin(angle + np.pi / 2))
    for dx, dy in points.deltas:
        theta -= 0.5 * np.arctan2(ys - dy, xs - dx)
    return np.mod(theta, np.pi)


def arch_field(shape: tuple[int, int], centre: tuple[float, float], rng: np.random.Generator,
               scale: float = 1.0) -> np.ndarray:
    """Plain-arch orientation: ridges are level sets of y - A(y) * exp(-(x - cx)^2 / 2 s^2) (a rising bump)."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    cx, cy = centre[0] + rng.normal(0, 15 * scale), centre[1] + rng.normal(0, 20 * scale)
    amp = rng.uniform(40, 80) * scale
    s = rng.uniform(60, 95) * scale
    # The bump is strongest at the print's centre line and fades above and below it.
    ay = amp / (1.0 + np.exp(-(ys - cy + 60 * scale) / (40 * scale)))
    bump = np.exp(-((xs - cx) ** 2) / (2 * s * s))
    phi = ys - ay * bump
    gy, gx = np.gradient(phi)
    return np.mod(np.arctan2(gy, gx) + np.pi / 2, np.pi)


def perturb(theta: np.ndarray, rng: np.random.Generator, amplitude: float = 0.12) -> np.ndarray:
    """Add a smooth random rotation (a few low-frequency waves) so fields of one class differ."""
    h, w = theta.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    out = theta.copy()
    for _ in range(3):
        kx, ky = rng.uniform(0.5, 2.0, size=2) * np.pi / max(h, w)
        phase = rng.uniform(0, 2 * np.pi)
        out += amplitude / 3 * np.sin(kx * xs + ky * ys + phase) * rng.uniform(0.5, 1.5)
    return np.mod(out, np.pi)


def orientation_field(pattern: str, shape: tuple[int, int], centre: tuple[float, float],
                      rng: np.random.Generator, scale: float = 1.0) -> tuple[np.ndarray, SingularPoints]:
    """The orientation field (radians mod pi, ridge direction) and singular points of one master print."""
    if pattern == "arch":
        return perturb(arch_field(shape, centre, rng, scale), rng), SingularPoints((), ())
    points = place_singular_points(pattern, centre, rng, scale)
    warp = tuple(rng.uniform(0.1, 0.5) for _ in points.cores) if pattern.endswith("loop") else None
    theta = zero_pole_field(shape, points, theta_inf=rng.normal(0, 0.06), core_warp=warp)
    return perturb(theta, rng, amplitude=0.08), points
