"""Sensor profiles: what a synthetic image looks like when it leaves a given sensor (size, dpi, grey depth, look).

Sizes are width x height as the sensor delivers them. ``bits`` is the grey depth the sensor really has; the PNG is
always 8-bit, with values on the sensor's grid (4 bits -> multiples of 17, as the R307 upload expands them).
"""

from __future__ import annotations

from dataclasses import dataclass

from device.errors import ConfigError


@dataclass(frozen=True)
class Profile:
    """One sensor look. ``background``/``foreground`` are the grey levels of no-contact and full ridge contact."""

    name: str
    modality: str
    width: int
    height: int
    dpi: int
    bits: int
    kind: str  # optical, capacitive (fingerprint); roi, camera (vein)
    background: float
    foreground: float
    noise: float  # sd of additive sensor noise, grey levels
    blur: float  # Gaussian sigma in px of the optics / skin contact spread
    description: str
    variability: str = "calibrated"  # fingerprints: impression variability, a key of fp_impression.VARIABILITY


PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (
        Profile("r307", "fingerprint", 256, 288, 500, 4, "optical", 225.0, 70.0, 14.0, 1.1,  # noise: NBIS calibration
                "ZhianTec R307 / AS608 optical module: 256x288, 500 dpi, 4 bits per pixel as uploaded"),
        Profile("r307-gentle", "fingerprint", 256, 288, 500, 4, "optical", 225.0, 40.0, 6.0, 0.8,
                "R307 look before the NBIS calibration (cleaner sensor, gentler impressions): a training profile",
                "gentle"),
        Profile("optical500", "fingerprint", 400, 400, 500, 8, "optical", 215.0, 35.0, 5.0, 0.9,
                "generic 500 dpi optical (FTIR) scanner, 400x400 (FVC-like)"),
        Profile("capacitive192", "fingerprint", 192, 192, 508, 8, "capacitive", 235.0, 70.0, 4.0, 0.7,
                "small capacitive area sensor (R503 / FPC1020 class): 192x192 at 508 dpi"),
        Profile("capacitive96", "fingerprint", 96, 96, 363, 8, "capacitive", 235.0, 70.0, 4.0, 0.6,
                "tiny capacitive area sensor: 96x96 at 363 dpi (about 6.7 mm square)"),
        Profile("roi", "vein", 300, 100, 0, 8, "roi", 0.0, 0.0, 2.0, 0.0,
                "finger-vein region of interest, 100 rows x 300 columns, finger axis horizontal (FV-USM-like)"),
        Profile("camera320", "vein", 320, 240, 0, 8, "camera", 0.0, 0.0, 3.0, 0.0,
                "raw NIR camera frame 320x240 with the finger across it and dark background"),
        Profile("camera640", "vein", 640, 480, 0, 8, "camera", 0.0, 0.0, 3.0, 0.0,
                "raw NIR camera frame 640x480 with the finger across it and dark background"),
    )
}


def get_profile(name: str, modality: str | None = None) -> Profile:
    """The profile called ``name`` (for ``modality`` if given); ConfigError naming the choices otherwise."""
    profile = PROFILES.get(name)
    if profile is None or (modality is not None and profile.modality != modality):
        choices = sorted(p.name for p in PROFILES.values() if modality is None or p.modality == modality)
        raise ConfigError(f"unknown {modality or 'sensor'} profile {name!r}; choose one of: {', '.join(choices)}")
    return profile


def quantize(image, bits: int):
    """Round an 8-bit image onto a ``bits``-deep grey grid, expanded back to 0..255 (4 bits -> value * 17)."""
    import numpy as np

    img = np.clip(np.asarray(image, dtype=np.float32), 0, 255)
    if bits >= 8:
        return np.rint(img).astype(np.uint8)
    levels = (1 << bits) - 1
    step = 255.0 / levels
    return (np.rint(img / step) * step).round().astype(np.uint8)
