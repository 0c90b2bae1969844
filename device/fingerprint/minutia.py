"""The one data type the extractor hands to the matcher.

Conventions (ISO/IEC 19794-2 style, so templates can be exported): ``xy`` in pixels of the image the minutiae were
found in, origin top-left, x to the right, y down; ``angle`` in radians in [0, 2*pi), measured counter-clockwise
from the x axis (so with y pointing down, a positive angle points up the image); for a ridge ending it points
along the ridge away from its end (into the ridge), for a bifurcation along the valley between the two branches...
i.e. the same convention NBIS/ISO use. ``kind``: 0 ridge ending, 1 bifurcation, 2 unknown. ``quality`` in [0, 1].
``dpi`` lets a matcher scale distances to millimetres when sensors differ.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

ENDING, BIFURCATION, UNKNOWN = 0, 1, 2


@dataclass(frozen=True)
class Minutiae:
    """A set of minutiae found in one image of ``shape`` (rows, cols) at ``dpi``."""

    xy: np.ndarray  # (N, 2) float32, pixels
    angle: np.ndarray  # (N,) float32, radians in [0, 2*pi)
    kind: np.ndarray  # (N,) uint8
    quality: np.ndarray  # (N,) float32 in [0, 1]
    shape: tuple[int, int]
    dpi: int = 500

    def __post_init__(self) -> None:
        n = len(self.angle)
        if self.xy.shape != (n, 2) or self.kind.shape != (n,) or self.quality.shape != (n,):
            raise ValueError(f"inconsistent minutiae arrays: xy {self.xy.shape}, angle {self.angle.shape}, "
                             f"kind {self.kind.shape}, quality {self.quality.shape}")

    def __len__(self) -> int:
        return len(self.angle)

    @classmethod
    def empty(cls, shape: tuple[int, int], dpi: int = 500) -> Minutiae:
        return cls(np.zeros((0, 2), np.float32), np.zeros(0, np.float32), np.zeros(0, np.uint8),
                   np.zeros(0, np.float32), shape, dpi)
