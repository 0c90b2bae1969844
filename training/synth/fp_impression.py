"""One impression of a master print: placement, elastic distortion, skin condition, contact and sensor noise.

Why each step (after Cappelli, Maio and Maltoni's SFinGe):
- placement: a finger lands shifted and turned (rotation kept within +-25 degrees);
- elastic distortion: skin near the contact centre sticks to the platen, skin further out is dragged; modelled as
  a smooth random displacement field that grows with distance from the contact centre (Cappelli et al. 2001);
- pressure and moisture: dry skin gives thin, broken ridges; wet skin or high pressure gives thick, merged ones;
- partial contact: only an elliptical part of the fingertip touches, shifted from the centre;
- sensor: background, grey levels, optical blur, noise, and the sensor's grey depth.
Every draw comes from the impression's own ``numpy.random.Generator``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from training.synth.fingerprint import MasterPrint
from training.synth.profiles import Profile, quantize

MAX_ROTATION_DEG = 25.0
PRESSURE = (0.45, 1.0)


@dataclass(frozen=True)
class Variability:
    """How much one impression of a finger differs from the next (placement, distortion, skin, contact area)."""

    rotation_sd: float  # degrees
    shift_sd: tuple[float, float]  # px at 500 dpi, (large sensors, small sensors)
    distortion_px: tuple[float, float]  # range of the elastic displacement amplitude
    moisture_sd: float
    contact_min: tuple[float, float]  # contact half-axes (x, y) in px at zero pressure; + (90, 110) at full pressure


VARIABILITY: dict[str, Variability] = {
    # tuned so that NBIS's EER on synthetic sets falls in the range it gives on the real FVC sets
    # (docs/synthetic-data.md): the honest yardstick for calibration and evaluation
    "calibrated": Variability(12.0, (28.0, 35.0), (8.0, 16.0), 0.6, (60.0, 90.0)),
    # the generator's settings before that calibration: networks trained on these transferred better to real
    # prints (docs/training.md), so the shipped fingerprint recipe mixes both
    "gentle": Variability(9.0, (22.0, 35.0), (3.0, 9.0), 0.35, (110.0, 150.0)),
}


@dataclass(frozen=True)
class Placement:
    """How the finger sits on the sensor for one impression."""

    rotation_deg: float
    shift: tuple[float, float]  # px at 500 dpi, of the finger centre from the sensor centre
    distortion_px: float
    moisture: float  # < 0 dry, > 0 wet
    pressure: float  # 0..1
    contact_min: tuple[float, float] = VARIABILITY["calibrated"].contact_min


def draw_placement(rng: np.random.Generator, profile: Profile) -> Placement:
    """Random placement and skin condition; small sensors see larger relative shifts."""
    var = VARIABILITY[profile.variability]
    rot = float(np.clip(rng.normal(0, var.rotation_sd), -MAX_ROTATION_DEG, MAX_ROTATION_DEG))
    spread = var.shift_sd[0] if profile.width * 500 / profile.dpi >= 250 else var.shift_sd[1]
    shift = (float(rng.normal(0, spread)), float(rng.normal(0, spread)))
    return Placement(rot, shift, float(rng.uniform(*var.distortion_px)), float(rng.normal(0, var.moisture_sd)),
                     float(rng.uniform(*PRESSURE)), var.contact_min)


def _smooth_field(shape: tuple[int, int], rng: np.random.Generator, cells: int = 4) -> np.ndarray:
    """A smooth random field in about [-1, 1]: a coarse random grid, upsampled bicubically."""
    grid = rng.normal(0, 1, (cells, cells)).astype(np.float32)
    return cv2.resize(grid, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def sampling_maps(master: MasterPrint, profile: Profile, place: Placement,
                  rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """For every sensor pixel, the master coordinates it sees (cv2.remap maps)."""
    h, w = profile.height, profile.width
    mh, mw = master.ridges.shape
    scale = 500.0 / profile.dpi
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    u = (u - (w - 1) / 2) * scale - place.shift[0]
    v = (v - (h - 1) / 2) * scale - place.shift[1]
    a = np.deg2rad(place.rotation_deg)
    x = np.cos(a) * u - np.sin(a) * v
    y = np.sin(a) * u + np.cos(a) * v
    # Elastic distortion: none within ~60 px of the contact centre, full strength beyond ~160 px.
    r = np.sqrt(x * x + y * y)
    brake = np.clip((r - 60.0) / 100.0, 0.0, 1.0)
    dx = _smooth_field((h, w), rng) * place.distortion_px * brake
    dy = _smooth_field((h, w), rng) * place.distortion_px * brake
    return (x + dx + mw / 2).astype(np.float32), (y + dy + mh / 2).astype(np.float32)


def contact_region(shape: tuple[int, int], place: Placement, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Where skin touches: an ellipse that shrinks with low pressure, off-centre, with a soft edge."""
    h, w = shape
    v, u = np.mgrid[0:h, 0:w].astype(np.float32)
    cu = (w - 1) / 2 + place.shift[0] / scale + rng.normal(0, 15) / scale
    cv_ = (h - 1) / 2 + place.shift[1] / scale + rng.normal(0, 15) / scale
    ru = (place.contact_min[0] + 90 * place.pressure) / scale * rng.uniform(0.85, 1.15)
    rv = (place.contact_min[1] + 110 * place.pressure) / scale * rng.uniform(0.85, 1.15)
    d = ((u - cu) / ru) ** 2 + ((v - cv_) / rv) ** 2
    return np.clip((1.0 - d) * 4.0, 0.0, 1.0)


def skin_ink(ridges: np.ndarray, place: Placement, rng: np.random.Generator, scale: float) -> np.ndarray:
    """Ridge contact strength in [0, 1] from the ridge pattern, moisture and pressure."""
    h, w = ridges.shape
    bias = 0.45 * place.moisture + 0.25 * (place.pressure - 0.7)  # wet / pressed: thicker ridges
    local = 0.25 * _smooth_field((h, w), rng, cells=6)  # uneven moisture across the finger
    ink = 1.0 / (1.0 + np.exp(-4.0 * (ridges + bias + local)))
    if place.moisture < -0.25:  # dry: ridges break into pieces (pores and gaps along the ridge)
        grain = cv2.GaussianBlur(rng.normal(0, 1, (h, w)).astype(np.float32), (0, 0), 2.4 / scale)
        grain /= float(grain.std()) + 1e-6
        dryness = min(1.0, (-place.moisture - 0.25) / 0.5)
        ink *= np.clip(2.2 - 1.4 * dryness + grain, 0.0, 1.0)
    return ink


def render_on_sensor(ink: np.ndarray, contact: np.ndarray, profile: Profile, rng: np.random.Generator) -> np.ndarray:
    """Grey image on the sensor: background, ridge contrast, illumination, blur, noise, grey depth."""
    h, w = ink.shape
    fg = profile.foreground + rng.normal(0, 12)
    bg = profile.background + rng.normal(0, 8)
    light = 1.0 + 0.06 * _smooth_field((h, w), rng, cells=3)
    img = (bg - (bg - fg) * ink * contact) * light
    if profile.blur > 0:
        img = cv2.GaussianBlur(img.astype(np.float32), (0, 0), profile.blur)
    img = img + rng.normal(0, profile.noise, (h, w))
    return quantize(img, profile.bits)


def impression_with_contact(master: MasterPrint, profile: Profile,
                            rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """One impression (uint8) and where skin touched the sensor (float32 in [0, 1]: finger outline x contact
    region): the ground truth a learned segmentation is trained on."""
    place = draw_placement(rng, profile)
    mapx, mapy = sampling_maps(master, profile, place, rng)
    ridges = cv2.remap(master.ridges, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=-1.0)
    mask = cv2.remap(master.mask, mapx, mapy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0.0)
    scale = 500.0 / profile.dpi
    contact = mask * contact_region(ridges.shape, place, rng, scale)
    ink = skin_ink(ridges, place, rng, scale)
    return render_on_sensor(ink, contact, profile, rng), contact.astype(np.float32)


def impression_image(master: MasterPrint, profile: Profile, rng: np.random.Generator) -> np.ndarray:
    """Render one impression of ``master`` as ``profile`` delivers it (uint8, height x width)."""
    return impression_with_contact(master, profile, rng)[0]
