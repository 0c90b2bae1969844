"""Synthetic finger-vein networks (near-infrared transillumination) and their impressions.

A finger is a cylinder. A vessel is a polyline in finger coordinates: ``u`` in [0, 1] along the axis (0 at the
palm, 1 at the tip) and the angle ``alpha`` around the axis (0 faces the camera). The camera sees
``y = R sin(alpha)``, so when the finger rolls about its axis every vessel moves by a different amount: the
non-rigid change that makes finger-vein matching hard. The network per identity: 2-4 main veins running along
the finger, branches that leave them at an angle and either end or join a neighbour, each with a width and a
depth (deeper vessels are wider and fainter after scattering). Rendering is in ``training.synth.vein_render``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

N_POINTS = 48  # samples along a main vein
MAIN_VEINS = (3, 6)  # range (low inclusive, high exclusive)
BRANCHES = (5, 13)
WANDER = 0.22  # amplitude (rad) of a main vein's meander around the finger
TEXTURE_SD = 0.12  # relative brightness variation of the tissue


@dataclass(frozen=True)
class Vessel:
    """One vessel: ``u``, ``alpha`` arrays of equal length; width as a fraction of the finger radius; depth 0..1."""

    u: np.ndarray
    alpha: np.ndarray
    width: float
    depth: float


@dataclass(frozen=True)
class VeinNetwork:
    """One finger's vessels and the fixed anatomy the renderer needs (joint positions, finger thickness)."""

    vessels: tuple[Vessel, ...]
    main_veins: int
    branches: int
    joints: tuple[float, ...]  # u positions of the interphalangeal joints (bright bands)
    joint_strength: tuple[float, ...]
    radius_scale: float  # finger thickness relative to the profile's nominal one
    texture: np.ndarray  # small grid (across x along) of relative tissue brightness, smooth when upsampled


def _wander(u: np.ndarray, rng: np.random.Generator, amplitude: float) -> np.ndarray:
    """A smooth random curve over ``u``: a few sines of random phase and low frequency."""
    out = np.zeros_like(u)
    for k in range(1, 4):
        out += rng.normal(0, amplitude / k) * np.sin(np.pi * k * u * rng.uniform(0.6, 1.4) + rng.uniform(0, 6.3))
    return out


def make_network(identity_seed: int) -> VeinNetwork:
    """The vessel network of one finger: a pure function of ``identity_seed``."""
    rng = np.random.default_rng([int(identity_seed), 0xE1])
    n_main = int(rng.integers(*MAIN_VEINS))
    u = np.linspace(-0.05, 1.05, N_POINTS)
    starts = np.sort(rng.uniform(-0.75, 0.75, n_main)) + rng.normal(0, 0.08, n_main)
    mains = []
    for a0 in starts:
        alpha = a0 + _wander(u, rng, WANDER) + rng.normal(0, 0.25) * (u - 0.5)
        mains.append(Vessel(u, np.clip(alpha, -1.45, 1.45), float(rng.uniform(0.06, 0.12)), float(rng.beta(1.3, 2.0))))
    branches = []
    n_branch = int(rng.integers(*BRANCHES))
    for _ in range(n_branch):
        parent = mains[int(rng.integers(n_main))]
        i0 = int(rng.integers(4, N_POINTS - 8))
        length = rng.uniform(0.12, 0.45)
        direction = rng.choice([-1.0, 1.0])
        bu = parent.u[i0] + np.linspace(0, length, 16)
        slope = direction * rng.uniform(0.8, 3.0)
        balpha = parent.alpha[i0] + slope * (bu - bu[0]) * np.exp(-(bu - bu[0]) / (length * rng.uniform(0.6, 2.0)))
        balpha = balpha + _wander(bu - bu[0], rng, 0.08)
        others = [m for m in mains if m is not parent]
        if others and rng.random() < 0.5:  # join a neighbouring vein: bend the tail onto it
            target = others[int(rng.integers(len(others)))]
            goal = np.interp(bu[-1], target.u, target.alpha)
            t = np.linspace(0, 1, bu.size) ** 2
            balpha = balpha * (1 - t) + goal * t
        width = float(parent.width * rng.uniform(0.4, 0.8))
        branches.append(Vessel(bu, np.clip(balpha, -1.5, 1.5), width, float(np.clip(parent.depth + rng.normal(0, 0.2),
                                                                                     0, 1))))
    n_joints = int(rng.integers(1, 3))
    joints = tuple(float(j) for j in np.sort(rng.uniform(0.15, 0.85, n_joints)))
    strength = tuple(float(rng.uniform(0.3, 0.9)) for _ in joints)
    texture = (rng.normal(0, TEXTURE_SD, (5, 12))).astype(np.float32)
    return VeinNetwork(tuple(mains + branches), n_main, n_branch, joints, strength, float(rng.uniform(0.92, 1.08)),
                       texture)


@lru_cache(maxsize=4)
def cached_network(identity_seed: int) -> VeinNetwork:
    """``make_network`` with a small cache (a dataset renders all impressions of one finger in a row)."""
    return make_network(identity_seed)


def render_impression(identity_seed: int, impression: int, profile: str = "roi") -> np.ndarray:
    """Impression number ``impression`` of finger ``identity_seed`` as ``profile`` delivers it (uint8, H x W).

    A pure function of its arguments.
    """
    from training.synth.profiles import get_profile
    from training.synth.vein_render import render

    prof = get_profile(profile, "vein")
    rng = np.random.default_rng([int(identity_seed), 0xE2, int(impression)])
    return render(cached_network(int(identity_seed)), prof, rng)
