"""Synthetic master fingerprints (the SFinGe approach of Cappelli, Maio and Maltoni) and their impressions.

A master print is what one finger *is*: pattern class, singular points, orientation field (zero-pole model),
ridge-period map, finger-shaped mask and the ridge pattern itself. Ridges are grown from sparse random seeds by
iterative Gabor filtering tuned, pixel by pixel, to the local orientation and period; minutiae (endings and
bifurcations) arise where the grown ridge flows collide, as in SFinGe. Everything is drawn from a
``numpy.random.Generator`` seeded by the identity seed, so a master is a pure function of that seed.

The master canvas is 500 dpi. Impressions (``render_impression``) distort, press, crop and re-sample it for a
sensor profile; see ``training.synth.fp_impression``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from training.synth.attributes import PERIOD_LIMITS_PX, FingerAttributes, sample_attributes
from training.synth.orientation import SingularPoints, orientation_field

MASTER_SHAPE = (448, 384)  # rows, cols at 500 dpi: about 22.8 mm x 19.5 mm, a fingertip's contact area
N_ORIENTATIONS = 16
PERIOD_STEP = 0.5  # px: the Gabor bank's period resolution
GROWTH_ITERATIONS = 5
TILE = 96  # px
GAIN = 2.5  # saturation after each pass: high gain settles the pattern into clean binary ridges sooner
SEED_DENSITY = 1.0 / 900  # random seed pixels per pixel; sparse seeds give long ridges and few minutiae


@dataclass(frozen=True)
class MasterPrint:
    """One synthetic finger at 500 dpi. ``ridges`` is float32 in [-1, 1], ridge (skin contact) positive."""

    attributes: FingerAttributes
    ridges: np.ndarray
    mask: np.ndarray  # float32 in [0, 1], 1 inside the finger outline
    orientation: np.ndarray  # radians mod pi
    period: np.ndarray  # px
    points: SingularPoints


def finger_mask(shape: tuple[int, int], centre: tuple[float, float], rng: np.random.Generator) -> np.ndarray:
    """A fingertip outline: a rounded top (ellipse) and a squarer base (superellipse), softly edged."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    a = rng.uniform(140, 172)  # half width
    b_top = rng.uniform(180, 215)
    b_bottom = rng.uniform(200, 260)
    dx = np.abs(xs - centre[0]) / a
    dy = (ys - centre[1]) / np.where(ys < centre[1], b_top, b_bottom)
    n = np.where(ys < centre[1], 2.0, 3.2)
    r = dx**n + np.abs(dy) ** n
    return np.clip((1.0 - r) * 12.0, 0.0, 1.0).astype(np.float32)


def period_map(shape: tuple[int, int], mean_period: float, centre: tuple[float, float],
               rng: np.random.Generator) -> np.ndarray:
    """Ridge period per pixel: finer towards the fingertip, coarser near the crease, plus smooth variation."""
    h, w = shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    gradient = 1.0 + 0.10 * (ys - centre[1]) / (h / 2)  # about +-10 % from tip to base
    wave = 1.0 + 0.04 * np.sin(xs * rng.uniform(0.01, 0.02) + rng.uniform(0, 6.3)) * np.cos(
        ys * rng.uniform(0.01, 0.02) + rng.uniform(0, 6.3))
    return np.clip(mean_period * gradient * wave, *PERIOD_LIMITS_PX).astype(np.float32)


@lru_cache(maxsize=256)
def _gabor(o_bin: int, period: float) -> np.ndarray:
    """Zero-mean Gabor kernel whose stripes run along orientation bin ``o_bin`` with the given period."""
    theta = o_bin * np.pi / N_ORIENTATIONS
    sigma = 0.5 * period
    half = int(np.ceil(2.6 * sigma))
    # cv2's theta is the direction across the stripes: ridge direction + 90 degrees.
    k = cv2.getGaborKernel((2 * half + 1, 2 * half + 1), sigma, theta + np.pi / 2, period, 1.0, 0.0)
    k = k - k.mean()
    return (k / np.abs(k).sum()).astype(np.float32)


def _filter_bins(theta: np.ndarray, period: np.ndarray) -> list[tuple[np.ndarray, tuple[slice, slice], np.ndarray]]:
    """Group pixels by tile and (orientation bin, period bin); per group: kernel, bounding box, mask in the box.

    Why tiles: near a singular point one orientation bin is a long wedge whose bounding box spans the canvas;
    filtering per tile keeps every convolution small.
    """
    o_bin = np.round(theta / (np.pi / N_ORIENTATIONS)).astype(np.int64) % N_ORIENTATIONS
    p_bin = np.round(period / PERIOD_STEP).astype(np.int64)
    h, w = theta.shape
    ys, xs = np.mgrid[0:h, 0:w]
    tile = (ys // TILE) * 1000 + xs // TILE
    key = (tile * 100 + o_bin) * 1000 + p_bin
    order = np.argsort(key, axis=None, kind="stable")
    flat = key.ravel()[order]
    starts = np.flatnonzero(np.r_[True, flat[1:] != flat[:-1]])
    ends = np.r_[starts[1:], flat.size]
    groups = []
    for s, e in zip(starts, ends, strict=True):
        k = int(flat[s])
        idx = order[s:e]
        r, c = idx // w, idx % w
        r0, c0 = int(r.min()), int(c.min())
        sel = np.zeros((int(r.max()) - r0 + 1, int(c.max()) - c0 + 1), bool)
        sel[r - r0, c - c0] = True
        box = (slice(r0, r0 + sel.shape[0]), slice(c0, c0 + sel.shape[1]))
        groups.append((_gabor((k // 1000) % 100, (k % 1000) * PERIOD_STEP), box, sel))
    return groups


def grow_ridges(theta: np.ndarray, period: np.ndarray, rng: np.random.Generator,
                iterations: int = GROWTH_ITERATIONS) -> np.ndarray:
    """Grow a ridge pattern from sparse random seeds by iterated, locally tuned Gabor filtering."""
    h, w = theta.shape
    img = np.zeros((h, w), np.float32)
    n_seeds = max(8, int(h * w * SEED_DENSITY))
    img[rng.integers(0, h, n_seeds), rng.integers(0, w, n_seeds)] = rng.choice([-1.0, 1.0], n_seeds)
    groups = _filter_bins(theta, period)
    pad = max(g[0].shape[0] for g in groups) // 2 + 1
    for _ in range(iterations):
        padded = cv2.copyMakeBorder(img, pad, pad, pad, pad, cv2.BORDER_REFLECT)
        out = np.empty_like(img)
        for kernel, (ys, xs), sel in groups:
            crop = padded[ys.start:ys.stop + 2 * pad, xs.start:xs.stop + 2 * pad]
            resp = cv2.filter2D(crop, -1, kernel, borderType=cv2.BORDER_CONSTANT)[pad:-pad, pad:-pad]
            out[ys, xs][sel] = resp[sel]
        # Local gain: weak regions (far from any seed) catch up instead of staying grey.
        env = np.sqrt(cv2.GaussianBlur(out * out, (0, 0), 6.0)) + 0.02 * float(np.std(out)) + 1e-9
        img = np.clip(GAIN * out / env, -1.0, 1.0)
    return img


def make_master(identity_seed: int) -> MasterPrint:
    """The master print of one identity: a pure function of ``identity_seed``."""
    rng = np.random.default_rng([int(identity_seed), 0xF1])
    attrs = sample_attributes(rng)
    h, w = MASTER_SHAPE
    centre = (w / 2 + rng.normal(0, 6), h / 2 + 10 + rng.normal(0, 8))
    theta, points = orientation_field(attrs.pattern_class, MASTER_SHAPE, centre, rng)
    period = period_map(MASTER_SHAPE, attrs.ridge_period, centre, rng)
    ridges = grow_ridges(theta, period, rng)
    mask = finger_mask(MASTER_SHAPE, centre, rng)
    ridges = add_creases(ridges, np.random.default_rng([int(identity_seed), 0xF3]))
    return MasterPrint(attrs, ridges, mask, theta.astype(np.float32), period, points)


def add_creases(ridges: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Draw a few permanent creases and scars (thin lines without ridge contact) into a ridge pattern.

    Real fingertips carry them (more with age and manual work); they cut ridges and create false minutiae, which
    makes matching harder in the same way as on the real sets.
    """
    h, w = ridges.shape
    lines = np.zeros((h, w), np.uint8)
    for _ in range(int(rng.poisson(2.5))):
        x0, y0 = rng.uniform(0, w), rng.uniform(0.2 * h, h)
        angle = rng.normal(0, 0.5) + (0 if rng.random() < 0.7 else np.pi / 2)
        length = rng.uniform(40, 220)
        x1, y1 = x0 + length * np.cos(angle), y0 + length * np.sin(angle)
        bend = rng.normal(0, 0.08 * length)
        t = np.linspace(0, 1, 24)
        xs = x0 + (x1 - x0) * t - bend * np.sin(angle) * 4 * t * (1 - t)
        ys = y0 + (y1 - y0) * t + bend * np.cos(angle) * 4 * t * (1 - t)
        pts = (np.stack([xs, ys], axis=1) * 16).astype(np.int32)
        cv2.polylines(lines, [pts], False, 255, int(rng.integers(2, 5)), cv2.LINE_AA, 4)
    cut = cv2.GaussianBlur(lines.astype(np.float32) / 255.0, (0, 0), 0.8)
    return (ridges * (1 - cut) - cut).astype(np.float32)


@lru_cache(maxsize=8)
def cached_master(identity_seed: int) -> MasterPrint:
    """``make_master`` with a small cache: a dataset renders all impressions of one finger in a row."""
    return make_master(identity_seed)


def render_impression(identity_seed: int, impression: int, profile: str = "r307") -> np.ndarray:
    """Impression number ``impression`` of the finger ``identity_seed`` as sensor ``profile`` delivers it (uint8).

    A pure function of its arguments: the same call always gives the same pixels.
    """
    from training.synth.fp_impression import impression_image
    from training.synth.profiles import get_profile

    prof = get_profile(profile, "fingerprint")
    rng = np.random.default_rng([int(identity_seed), 0xF2, int(impression)])
    return impression_image(cached_master(int(identity_seed)), prof, rng)
