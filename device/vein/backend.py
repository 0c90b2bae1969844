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
        self._bulk: tuple[int, int, np.ndarray | None] = (0, 0, None)  # (key of template list, pairs seen, matrix)

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


    def compare_pairs(self, templates: list[bytes | None], pairs: np.ndarray) -> np.ndarray:
        """Scores of index ``pairs`` into ``templates`` (``biolock eval``); a missing or damaged template scores 0.

        Per pair at first; once more than ``BULK_AFTER`` pairs of the same template list were asked for (every
        cross-finger pair of FV-USM is 4.3 million), all pairs at once by FFT (``training.vein_lines``, same scores
        to ~1e-5), when that module and scipy are installed."""
        key = hash((len(templates), *(id(t) for t in templates[:: max(1, len(templates) // 16)])))  # same objects
        seen = (self._bulk[1] if self._bulk[0] == key else 0) + len(pairs)
        matrix = self._bulk[2] if self._bulk[0] == key else None
        if matrix is None and seen > BULK_AFTER:
            matrix = _all_pairs(templates)
        self._bulk = (key, seen, matrix)
        if matrix is not None:
            p = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
            return matrix[p[:, 0], p[:, 1]].astype(np.float64)
        out = np.zeros(len(pairs), dtype=np.float64)
        for k, (a, b) in enumerate(np.asarray(pairs).reshape(-1, 2)):
            if templates[a] is not None and templates[b] is not None:
                try:
                    out[k] = self.compare(templates[a], templates[b])
                except MinutiaeError:
                    pass
        return out


BULK_AFTER = 500_000


def _all_pairs(templates: list[bytes | None]) -> np.ndarray | None:
    """The symmetric score matrix of all templates (0 where one is missing or damaged); None without scipy."""
    try:
        import scipy.fft  # noqa: F401 - score_matrix imports it only when called

        from training.vein_lines import score_matrix
    except ImportError:
        return None
    maps = np.zeros((len(templates), *MAP_SIZE), np.float32)
    for k, t in enumerate(templates):
        if t is not None:
            try:
                maps[k] = template.decode(t)
            except template.TemplateError:
                pass  # a blank map scores 0 against everything, as a damaged template does per pair
    return score_matrix(maps)


def missing() -> str | None:
    """Nothing to install: numpy and OpenCV are device dependencies."""
    return None


def open_backend() -> LineMatcher:
    return LineMatcher()
