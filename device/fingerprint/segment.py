"""Foreground segmentation: where the finger touched the sensor, as a pixel mask.

Why block energy *and* coherence: the background of optical sensors is smooth (low gradient energy) but capacitive
ones show noise with plenty of energy and no direction; ridges have both. Blocks are then cleaned (closing, opening,
largest component, holes filled) so minutiae near a ragged edge can be dropped by their distance to it.
"""

from __future__ import annotations

import cv2
import numpy as np

from device.fingerprint import params


def block_foreground(energy: np.ndarray, coherence: np.ndarray) -> np.ndarray:
    """Boolean block mask from block gradient energy and coherence."""
    ref = float(np.percentile(energy, 95))
    if ref <= 0:
        return np.zeros(energy.shape, bool)
    return clean_blocks((energy > params.SEG_ENERGY_FRACTION * ref) & (coherence > params.SEG_MIN_COHERENCE))


def clean_blocks(fg: np.ndarray) -> np.ndarray:
    """Closing, opening, the largest 4-connected component, holes filled."""
    fg = fg.astype(np.uint8)
    r = params.SEG_CLOSE_BLOCKS
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
    fg = cv2.morphologyEx(fg, cv2.MORPH_CLOSE, kernel)
    fg = cv2.morphologyEx(fg, cv2.MORPH_OPEN, kernel)
    n, labels, stats, _ = cv2.connectedComponentsWithStats(fg, connectivity=4)
    if n <= 1:
        return np.zeros(fg.shape, bool)
    biggest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    fg = (labels == biggest).astype(np.uint8)
    # fill holes: background not reachable from the border
    pad = np.pad(1 - fg, 1, constant_values=1)
    _, bg_labels = cv2.connectedComponents(pad, connectivity=4)
    outside = bg_labels == bg_labels[0, 0]
    return ~outside[1:-1, 1:-1]


def pixel_mask(block_mask: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Block mask to a smooth-edged boolean pixel mask of ``shape``."""
    up = cv2.resize(block_mask.astype(np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_LINEAR)
    return up > 0.5
