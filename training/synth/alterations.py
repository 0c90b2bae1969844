"""SOCOFing-style alterations of a fingerprint impression, for later alteration-detection work.

SOCOFing (Shehu et al. 2018) altered real prints with the STRANGE toolbox in three ways, reproduced here:
- obliteration: a scar-like patch wipes the ridges out;
- central rotation: a disc around the centre is turned by a large angle, breaking ridge continuity at its rim;
- z-cut: a Z-shaped incision; the two triangular flaps either side of its diagonal are swapped.
"""

from __future__ import annotations

import cv2
import numpy as np

ALTERATIONS = ("obliteration", "central_rotation", "z_cut")


def obliterate(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Replace an irregular blob with a smooth, bright scar texture."""
    h, w = img.shape
    mask = np.zeros((h, w), np.float32)
    cx, cy = rng.uniform(0.3, 0.7) * w, rng.uniform(0.3, 0.7) * h
    for _ in range(4):
        centre = (int(cx + rng.normal(0, 0.08 * w)), int(cy + rng.normal(0, 0.08 * h)))
        axes = (int(rng.uniform(0.08, 0.18) * w) + 1, int(rng.uniform(0.08, 0.18) * h) + 1)
        cv2.ellipse(mask, centre, axes, float(rng.uniform(0, 180)), 0, 360, 1.0, -1)
    mask = cv2.GaussianBlur(mask, (0, 0), max(1.0, 0.02 * w))
    scar = cv2.GaussianBlur(img.astype(np.float32), (0, 0), max(2.0, 0.03 * w))
    scar = scar * 0.4 + 0.6 * float(np.percentile(img, 90)) + rng.normal(0, 6, (h, w))
    return np.clip(img * (1 - mask) + scar * mask, 0, 255).astype(np.uint8)


def rotate_centre(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Turn a central disc by 45-135 degrees (either way)."""
    h, w = img.shape
    radius = rng.uniform(0.2, 0.3) * min(h, w)
    centre = (w / 2 + rng.normal(0, 0.05 * w), h / 2 + rng.normal(0, 0.05 * h))
    angle = float(rng.uniform(45, 135) * rng.choice([-1, 1]))
    turned = cv2.warpAffine(img, cv2.getRotationMatrix2D(centre, angle, 1.0), (w, h), borderMode=cv2.BORDER_REFLECT)
    ys, xs = np.mgrid[0:h, 0:w]
    disc = (xs - centre[0]) ** 2 + (ys - centre[1]) ** 2 <= radius**2
    return np.where(disc, turned, img).astype(np.uint8)


def z_cut(img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Cut a Z (top bar, diagonal, bottom bar) and swap the two triangles either side of the diagonal."""
    h, w = img.shape
    x0, x1 = int(rng.uniform(0.15, 0.3) * w), int(rng.uniform(0.7, 0.85) * w)
    y0, y1 = int(rng.uniform(0.2, 0.35) * h), int(rng.uniform(0.65, 0.8) * h)
    ys, xs = np.mgrid[0:h, 0:w]
    inside = (xs >= x0) & (xs < x1) & (ys >= y0) & (ys < y1)
    # The diagonal runs from the top bar's right end (x1, y0) to the bottom bar's left end (x0, y1).
    side = (xs - x1) * (y1 - y0) + (ys - y0) * (x1 - x0)
    upper, lower = inside & (side < 0), inside & (side >= 0)
    out = img.copy()
    flipped = img[::-1, ::-1]  # point reflection maps one triangle of the box onto the other
    off_y, off_x = (h - y1) - y0, (w - x1) - x0
    shifted = np.roll(np.roll(flipped, -off_y, axis=0), -off_x, axis=1)
    out[upper] = shifted[upper]
    out[lower] = shifted[lower]
    line = int(np.percentile(img, 95))
    pts = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.int32)
    cv2.polylines(out, [pts], False, line, thickness=max(1, w // 120), lineType=cv2.LINE_AA)
    return out


def alter(img: np.ndarray, kind: str, rng: np.random.Generator) -> np.ndarray:
    """Apply alteration ``kind`` (one of ALTERATIONS)."""
    return {"obliteration": obliterate, "central_rotation": rotate_centre, "z_cut": z_cut}[kind](img, rng)


def maybe_alter(img: np.ndarray, rng: np.random.Generator, fraction: float) -> tuple[np.ndarray, str]:
    """With probability ``fraction`` apply one random alteration; returns (image, alteration name or 'none')."""
    if rng.random() >= fraction:
        return img, "none"
    kind = ALTERATIONS[int(rng.integers(len(ALTERATIONS)))]
    return alter(img, kind, rng), kind
