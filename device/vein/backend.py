"""``LineMatcher``: the vein line matcher behind the same small interface as a minutiae backend.

Why that interface: the device already fuses a second matcher with the embedding for fingerprints
(``device.minutiae.MinutiaeCheck``: extract a byte template from the grey capture, compare two templates, store the
templates beside the embeddings in the same transaction, fuse through a fusion card). The vein line matcher fits
it exactly, so vein mode gets fusion, enrolment agreement, the duplicate check and the store with no second copy.

The region step runs once per capture: ``model_input`` (what the embedding model sees: the normalized finger
region, never the housing) and ``extract`` (the line template) share it through a one-frame memo keyed by the
frame's bytes. A frame without a usable finger region raises ``MinutiaeError`` with the region's reason, which
the pipeline reports as the decision's reason (nothing unlocks).
"""

from __future__ import annotations

import hashlib

import numpy as np

from device.imageio import to_grey_u8
from device.minutiae.base import MinutiaeError
from device.vein import template
from device.vein.lines import MAP_SIZE, vein_map
from device.vein.match import MARGIN, compare
from device.vein.region import Region, RegionError, find_region

KIND = "vein-lines"
TEMPLATE_ID = (f"vein-lines/{template.VERSION} hessian-2-4 {MAP_SIZE[0]}x{MAP_SIZE[1]} q4 "
               f"ncc-{MARGIN[0]}-{MARGIN[1]}")


class LineMatcher:
    """Region -> Hessian line map -> 4-bit template; max normalized cross-correlation over small shifts."""

    kind = KIND
    template_id = TEMPLATE_ID

    def __init__(self) -> None:
        self._memo: tuple[bytes, Region | RegionError] | None = None

    def region(self, grey: np.ndarray) -> Region:
        """The finger region of a frame (RegionError with the reason when there is none), computed once per frame."""
        g = to_grey_u8(np.asarray(grey))
        key = hashlib.blake2b(g.tobytes(), digest_size=16, person=str(g.shape).encode()[:16]).digest()
        if self._memo is None or self._memo[0] != key:
            try:
                found: Region | RegionError = find_region(g)
            except RegionError as exc:
                found = exc
            self._memo = (key, found)
        result = self._memo[1]
        if isinstance(result, RegionError):
            raise result
        return result

    def model_input(self, grey: np.ndarray) -> np.ndarray:
        """What the embedding model gets: the finger region (a ready crop for its preprocessing), or the frame
        itself when there is no region (the line template then fails with the reason, so nothing is accepted)."""
        try:
            return self.region(grey).roi
        except RegionError:
            return to_grey_u8(np.asarray(grey))

    def extract(self, grey: np.ndarray) -> bytes:
        try:
            return template.encode(vein_map(self.region(grey).roi))
        except RegionError as exc:
            raise MinutiaeError(str(exc)) from exc

    def compare(self, a: bytes, b: bytes) -> float:
        try:
            ma, mb = template.decode(a), template.decode(b)
        except template.TemplateError as exc:
            raise MinutiaeError(str(exc)) from exc
        if ma.shape != mb.shape:
            raise MinutiaeError(f"vein line templates of different sizes: {ma.shape} vs {mb.shape}")
        return compare(ma, mb)


def missing() -> str | None:
    """Nothing to install: numpy and OpenCV are device dependencies."""
    return None


def open_backend() -> LineMatcher:
    return LineMatcher()
