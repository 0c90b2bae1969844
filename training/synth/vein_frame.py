"""Whole NIR camera frames of a synthetic finger: housing, background and the postures of a real capture box.

Why: a camera on a door never gives a neat crop. The real frames in ``vein/nir_raw_frames`` (a USB capture box,
320 x 240) show the finger as a bright band across the frame between two dark housing panels (speckled plastic,
lit by light that leaks around the finger), a bright vertical post at one end, black above and below. This module
puts a synthetic finger (its vein texture is the ``roi`` profile's rendering of the same vein network, so
identities are the generator's) into such a frame, in one of the postures of that set:

``normal``, ``side_1`` / ``side_2`` (pressed against one side; the uncovered panel on the other side is lit, with
saturated reflections), ``inplane_tilt`` (rotated in the image plane), ``rotation`` (rolled about its axis: the
veins shift across), ``outplane_tilt`` (tip higher than the base: the width changes along the finger), ``bent``
(the axis curves), ``tense`` (narrower, brighter), ``after_shaking`` (blur and exposure change).

A pure function of its arguments; used by the tests (region finding under every posture) and the vein demo.
"""

from __future__ import annotations

import cv2
import numpy as np

POSTURES = ("normal", "side_1", "side_2", "inplane_tilt", "rotation", "outplane_tilt", "bent", "tense",
            "after_shaking")
FRAME = (240, 320)  # (height, width) like the real capture box
PANEL = 0.19  # housing panels: this fraction of the height at the top and at the bottom
POST_X = (0.9, 0.95)  # the housing post, as fractions of the width


def _posture(name: str, rng: np.random.Generator) -> dict[str, float]:
    """Geometry of one posture: centre offset, tilt, width, taper, bend, roll shift, blur, gain, lit panel."""
    p = {"dy": 0.0, "tilt": 0.0, "width": 0.56, "taper": 0.0, "bend": 0.0, "roll": 0.0, "blur": 0.0,
         "gain": 1.0, "lit": 0.0}
    j = lambda sd: float(rng.normal(0.0, sd))  # noqa: E731 - small jitter per capture
    p["dy"], p["tilt"] = j(0.02), j(0.8)
    if name == "side_1":
        p.update(dy=-0.14 + j(0.01), lit=1.0)
    elif name == "side_2":
        p.update(dy=0.14 + j(0.01), lit=-1.0)
    elif name == "inplane_tilt":
        p["tilt"] = float(rng.choice([-1.0, 1.0])) * (6.0 + abs(j(1.0)))
    elif name == "rotation":
        p["roll"] = float(rng.choice([-1.0, 1.0])) * 0.06
    elif name == "outplane_tilt":
        p["taper"] = float(rng.choice([-1.0, 1.0])) * 0.18
    elif name == "bent":
        p["bend"] = float(rng.choice([-1.0, 1.0])) * 0.12
    elif name == "tense":
        p.update(width=0.5, gain=1.12)
    elif name == "after_shaking":
        p.update(blur=1.2, gain=0.9)
    elif name != "normal":
        raise ValueError(f"unknown posture {name!r}; choose one of: {', '.join(POSTURES)}")
    return p


def _housing(rng: np.random.Generator, lit: float) -> np.ndarray:
    """The empty box: black, two speckled grey panels, the bright post; a lit panel where the finger left a gap."""
    h, w = FRAME
    frame = np.full(FRAME, 2.0, np.float32)
    speckle = cv2.GaussianBlur(rng.normal(0.0, 1.0, FRAME).astype(np.float32), (0, 0), 0.8) * 10.0
    top, bottom = int(PANEL * h), int((1 - PANEL) * h)
    frame[8:top] = 45.0 + speckle[8:top]
    frame[bottom:h - 6] = 45.0 + speckle[bottom:h - 6]
    x0, x1 = int(POST_X[0] * w), int(POST_X[1] * w)
    frame[:, x0:x1] = 150.0
    if lit:  # light leaks through the gap onto the far panel: brighter, with blotchy saturated reflections
        rows = slice(bottom - 35, h - 6) if lit > 0 else slice(8, top + 35)
        blobs = cv2.GaussianBlur(rng.uniform(0, 1, FRAME).astype(np.float32), (0, 0), 6.0)
        blobs = (blobs - blobs.mean()) / max(float(blobs.std()), 1e-6)
        spots = cv2.GaussianBlur((rng.uniform(0, 1, FRAME) > 0.997).astype(np.float32), (0, 0), 3.0) * 2000.0
        frame[rows] = 105.0 + 20.0 * blobs[rows] + speckle[rows] + spots[rows]
    return frame


def render_frame(roi: np.ndarray, posture: str = "normal", seed: int = 0) -> np.ndarray:
    """A whole 320 x 240 uint8 frame with the finger whose ROI rendering is ``roi`` (rows across, finger axis
    along the columns, as the ``roi`` profile gives it), in ``posture``."""
    rng = np.random.default_rng([int(seed), 0x19, POSTURES.index(posture) if posture in POSTURES else 99])
    p = _posture(posture, rng)
    h, w = FRAME
    finger = roi.astype(np.float32)
    if p["roll"]:  # rolling the finger moves the veins across it, not the finger's outline
        shift = p["roll"] * finger.shape[0]
        finger = cv2.warpAffine(finger, np.float32([[1, 0, 0], [0, 1, shift]]), finger.shape[::-1],
                                borderMode=cv2.BORDER_REFLECT)
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    cx, cy = w / 2.0, h / 2.0 + p["dy"] * h
    u = (xs - cx) / w  # -0.5 .. 0.5 along the frame
    slope = np.tan(np.radians(p["tilt"]))
    mid = cy + slope * (xs - cx) + p["bend"] * h * (4 * u * u - 1.0 / 3.0)
    half = 0.5 * p["width"] * h * (1.0 + p["taper"] * 2 * u)
    v = (ys - mid) / half  # -1 .. 1 across the finger
    map_x = ((u + 0.5) * (finger.shape[1] - 1)).astype(np.float32)
    map_y = ((v * 0.92 + 1.0) * 0.5 * (finger.shape[0] - 1)).astype(np.float32)
    tex = cv2.remap(finger, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    inside = np.abs(v) < 1.0
    # transillumination: the finger glows, brightest at its thin rim; its texture carries the veins
    rim = np.clip((np.abs(v) - 0.75) / 0.25, 0.0, 1.0) ** 2
    body = (45.0 + 1.3 * tex) * p["gain"] + 80.0 * rim
    frame = _housing(rng, p["lit"])
    edge = np.clip((1.0 - np.abs(v)) * half / 1.5, 0.0, 1.0)  # a 1.5 px soft edge
    frame = np.where(inside, edge * body + (1 - edge) * frame, frame)
    if p["blur"]:
        frame = cv2.GaussianBlur(frame, (0, 0), p["blur"])
    frame += rng.normal(0.0, 1.5, FRAME).astype(np.float32)
    return np.clip(frame, 0, 255).astype(np.uint8)


def render_postures(identity_seed: int, impression: int = 0) -> dict[str, np.ndarray]:
    """All postures of one synthetic finger (from ``training.synth.vein``), keyed by posture name."""
    from training.synth.vein import render_impression

    roi = render_impression(identity_seed, impression, "roi")
    return {name: render_frame(roi, name, seed=identity_seed * 31 + impression) for name in POSTURES}
