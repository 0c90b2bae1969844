"""Render a finger-vein network as an NIR transillumination image (ROI crop or raw camera frame).

Physics, simplified: light from LEDs above the finger passes through it to the camera below. Tissue scatters,
so the finger body glows, brightest where it is thin and at the joints (the synovial gap transmits more);
haemoglobin absorbs at ~850 nm, so vessels are dark; deeper vessels are blurred more and absorb less of what
reaches the camera. Per capture: finger roll about its axis (non-rigid vessel shift), shift along and across,
small in-plane rotation, LED brightness pattern, exposure, focus blur and sensor noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from training.synth.profiles import Profile, quantize
from training.synth.vein import VeinNetwork

SUBPIXEL = 4  # cv2 drawing shift bits


@dataclass(frozen=True)
class Capture:
    """How one image of the finger was taken."""

    roll: float  # radians about the finger axis
    shift_u: float  # along the finger, fraction of its visible length
    shift_y: float  # across, fraction of the radius
    rotation_deg: float
    exposure: float
    blur: float  # extra scattering / focus blur, fraction of the radius
    leds: tuple[tuple[float, float, float], ...]  # (u position, width, gain)


# Capture variability (standard deviations), tuned so that Miura's EER on synthetic ROI sets falls in the range
# it gives on FV-USM (see docs/synthetic-data.md).
ROLL_SD = 0.07  # rad
SHIFT_U_SD = 0.02  # fraction of the visible length
SHIFT_Y_SD = 0.05  # fraction of the radius
ROTATION_SD = 1.0  # degrees: Miura matching has no rotation search, so this matters most
LED_POSITIONS = (0.2, 0.5, 0.8)  # the device's LED bar (fixed); each LED's gain varies per capture
LED_GAIN_SD = 0.08
SCATTER_BLUR = (0.06, 0.09)  # range, fraction of the radius
VESSEL_ABSORPTION = 0.45  # of the shallowest layer


def draw_capture(rng: np.random.Generator) -> Capture:
    """Random capture conditions (a cooperative user on a finger guide: small shifts, some roll)."""
    leds = tuple((p, 0.3, float(np.clip(rng.normal(0.55, LED_GAIN_SD), 0.2, 0.9))) for p in LED_POSITIONS)
    return Capture(float(rng.normal(0, ROLL_SD)), float(rng.normal(0, SHIFT_U_SD)), float(rng.normal(0, SHIFT_Y_SD)),
                   float(rng.normal(0, ROTATION_SD)), float(rng.normal(1.0, 0.08)), float(rng.uniform(*SCATTER_BLUR)),
                   leds)


def _geometry(profile: Profile, net: VeinNetwork) -> tuple[float, float, float, float]:
    """(centre row, radius px, x of u=0, px per unit u) of the finger in this profile's frame."""
    h, w = profile.height, profile.width
    if profile.kind == "roi":
        return (h - 1) / 2, 0.54 * h * net.radius_scale, 0.0, float(w)
    return (h - 1) / 2, 0.21 * h * net.radius_scale, -0.05 * w, 0.92 * w


def _body(profile: Profile, net: VeinNetwork, cap: Capture, cy: float, radius: float, x0: float,
          length: float) -> np.ndarray:
    """Brightness of the finger without vessels (0 outside it)."""
    h, w = profile.height, profile.width
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (xs - x0) / length - cap.shift_u
    yn = (ys - cy) / radius - cap.shift_y
    across = np.sqrt(np.clip(1.0 - yn * yn, 0.0, 1.0)) ** 0.8
    along = 0.55 + sum(g * np.exp(-(((u - p) / s) ** 2)) for p, s, g in cap.leds)
    joints = 1.0 + sum(s * np.exp(-(((u - j) / 0.12) ** 2)) for j, s in zip(net.joints, net.joint_strength,
                                                                            strict=True))
    body = across * along * joints * _texture(net, u, yn)
    if profile.kind == "camera":  # rounded fingertip inside the frame, dark background beyond it
        tip = 1.0 + cap.shift_u
        body *= np.clip((tip - u) * length / (0.6 * radius) + 1 - np.sqrt(np.clip(yn * yn, 0, 1)), 0, 1)
    return body


def _texture(net: VeinNetwork, u: np.ndarray, yn: np.ndarray) -> np.ndarray:
    """The finger's own tissue texture (fat, bone, capillaries): a smooth multiplicative field fixed to it."""
    grid = net.texture
    gh, gw = grid.shape
    mapx = np.clip(u, 0, 1).astype(np.float32) * (gw - 1)
    mapy = np.clip((yn + 1) / 2, 0, 1).astype(np.float32) * (gh - 1)
    return 1.0 + cv2.remap(grid, mapx, mapy, cv2.INTER_CUBIC, borderMode=cv2.BORDER_REFLECT)


def project(alpha: np.ndarray, roll: float, radius: float, centre: float, shift_y: float = 0.0
            ) -> tuple[np.ndarray, np.ndarray]:
    """Image row of a vessel point at angle ``alpha`` on a finger rolled by ``roll``, and how much it faces the camera.

    Rolling moves a vessel by radius * (sin(alpha + roll) - sin(alpha)): most in the middle, least at the edges,
    which is the non-rigid change between captures.
    """
    a = np.asarray(alpha, dtype=np.float64) + roll
    return centre + radius * (np.sin(a) + shift_y), np.cos(a)


def _vessel_map(net: VeinNetwork, cap: Capture, shape: tuple[int, int], cy: float, radius: float, x0: float,
                length: float) -> np.ndarray:
    """Absorption in [0, 1): vessels drawn in three depth layers, each blurred by its depth."""
    h, w = shape
    layers = [np.zeros((h, w), np.uint8) for _ in range(3)]
    for v in net.vessels:
        y, facing = project(v.alpha, cap.roll, radius, cy, cap.shift_y)
        x = x0 + (v.u + cap.shift_u) * length
        layer = min(2, int(v.depth * 3))
        thick = max(1, int(round(2 * v.width * radius)))
        pts = np.stack([x, y], axis=1) * (1 << SUBPIXEL)
        visible = facing > 0.15
        runs = np.split(np.arange(len(x)), np.flatnonzero(np.diff(visible.astype(int))) + 1)
        for run in runs:
            if len(run) >= 2 and visible[run[0]]:
                cv2.polylines(layers[layer], [pts[run].astype(np.int32)], False, 255, thick, cv2.LINE_AA, SUBPIXEL)
    out = np.zeros((h, w), np.float32)
    for i, layer in enumerate(layers):
        sigma = radius * (0.05 + 0.06 * i)
        strength = VESSEL_ABSORPTION * np.exp(-0.7 * i)
        blurred = cv2.GaussianBlur(layer.astype(np.float32) / 255.0, (0, 0), sigma)
        out = 1.0 - (1.0 - out) * (1.0 - strength * np.clip(blurred * 1.3, 0, 1))
    return out


def render(net: VeinNetwork, profile: Profile, rng: np.random.Generator) -> np.ndarray:
    """One NIR image of ``net`` as ``profile`` delivers it (uint8, height x width)."""
    cap = draw_capture(rng)
    cy, radius, x0, length = _geometry(profile, net)
    shape = (profile.height, profile.width)
    body = _body(profile, net, cap, cy, radius, x0, length)
    absorb = _vessel_map(net, cap, shape, cy, radius, x0, length)
    floor = 26.0 if profile.kind == "roi" else 12.0  # ROI edges are dim finger; raw frames show dark background
    img = floor + 42.0 * cap.exposure * body * (1.0 - absorb)
    img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), cap.blur * radius)
    centre = (profile.width / 2, profile.height / 2)
    rot = cv2.getRotationMatrix2D(centre, cap.rotation_deg, 1.0)
    img = cv2.warpAffine(img, rot, (profile.width, profile.height), borderMode=cv2.BORDER_REPLICATE)
    img = img + rng.normal(0, profile.noise, shape)
    return quantize(img, profile.bits)
