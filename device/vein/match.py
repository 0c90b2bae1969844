"""Shift-tolerant comparison of two vein line maps: Miura-style maximum normalized cross-correlation.

The centre of one map (``MARGIN`` rows and columns left out on each side) slides over the other within that
margin; the score is the highest Pearson correlation over the shifts (OpenCV's ``TM_CCOEFF_NORMED``, which uses
the FFT for large templates). Both directions are tried and the larger is kept, so ``compare(a, b) ==
compare(b, a)``. A finger placed again moves mostly along its axis, so the margin is wider along it.

Why correlation of continuous maps and not Miura's binary overlap: the continuous map keeps how strong each vessel
is and costs the same; on FV-USM it is the better of the two (docs/vein.md).
"""

from __future__ import annotations

import cv2
import numpy as np

MARGIN = (7, 20)  # (rows, columns) of shift tolerated either way on a 32 x 96 map (22 % and 21 %); docs/vein.md


def _one_way(template_map: np.ndarray, search: np.ndarray, margin: tuple[int, int]) -> float:
    mh, mw = margin
    h, w = template_map.shape
    centre = template_map[mh:h - mh, mw:w - mw]
    if float(centre.std()) < 1e-6 or float(search.std()) < 1e-6:
        return 0.0  # a blank map matches nothing
    return float(cv2.matchTemplate(search, centre, cv2.TM_CCOEFF_NORMED).max())


def compare(a: np.ndarray, b: np.ndarray, margin: tuple[int, int] = MARGIN) -> float:
    """Similarity in [-1, 1] of two maps of the same shape (higher = more alike); NaN-free."""
    a32, b32 = np.asarray(a, np.float32), np.asarray(b, np.float32)
    if a32.shape != b32.shape or a32.ndim != 2:
        raise ValueError(f"line maps differ in shape: {a32.shape} vs {b32.shape}")
    if a32.shape[0] <= 2 * margin[0] or a32.shape[1] <= 2 * margin[1]:
        raise ValueError(f"a {a32.shape} map is too small for a {margin} shift margin")
    score = max(_one_way(a32, b32, margin), _one_way(b32, a32, margin))
    return score if np.isfinite(score) else 0.0
