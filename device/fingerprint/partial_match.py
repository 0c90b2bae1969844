"""Partial-print matcher: ORB keypoints on the enhanced ridge image, verified by one rigid motion.

Why keypoints: a 6.5 x 6.5 mm window (128x128 at 500 dpi) holds a handful of minutiae, and minutiae matchers
(NBIS, our MCC one) are close to guessing there; the enhanced ridge image (``partial.ridge_image``) still has
hundreds of corners (ridge endings, forks, sharp bends) with a distinctive neighbourhood. Why ORB: measured on
FVC windows cut to 160x160 (docs/partial-prints.md), FAST corners + binary BRIEF descriptors on the enhanced image
beat SIFT (DoG finds few extrema on a Gabor-smoothed image), SIFT at FAST corners, NCC over every shift and
rotation, and ORB on the raw capture; it is in opencv-python-headless and compares by Hamming distance (fast).
Why geometric verification: ridge patches repeat, so single descriptor matches are weak; genuine pairs share many
matches that agree on one rotation + translation (scale near 1: one sensor, one dpi), impostors few. The score is
the number of such matches (as in libfprint's SIGFM), found by letting every match propose a motion and keeping
the one most matches, positions and keypoint angles alike, agree with (``match_motion``).

Template (``encode``/``decode``): magic, version, count, descriptor bytes, then per keypoint x, y (uint16, 1/4
pixel), angle (uint8) and the first ``DESC_BYTES`` bytes of the ORB descriptor (ORB's bits are ordered by how
much they tell, so the head keeps most of it), then a CRC32. Anything else raises ``TemplateError``.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

from device.fingerprint.partial import RidgeImage
from device.minutiae.base import MinutiaeError

MAGIC = b"BLPK"
VERSION = 1
N_KEYPOINTS = 400  # strongest FAST corners kept per capture (fewer lose genuine matches: docs/partial-prints.md)
DESC_BYTES = 16  # of ORB's 32: EER 18.5 % vs 17.7 % on PolyU 128x128, half the template
MAX_HAMMING = 40  # bits (of 128): a descriptor match farther than this is noise
MATCH_PX = 6.0  # px at 500 dpi, about 2/3 of a ridge period: a match this close to the motion is consistent
VOTE_PX = 2 * MATCH_PX  # a one-match proposal's turn comes from ORB angles (a few degrees off): looser at first
VOTE_TURN = 20.0  # degrees: matches whose keypoint turn agrees with a proposal's
FIT_TURN = 15.0  # degrees: a consistent match's keypoints turn with the fitted motion
REFITS = 2  # similarity fits to the supporters, each followed by a recount
SCALE_RANGE = (0.85, 1.18)  # one sensor, one dpi: a fitted scale outside this is a chance alignment
MIN_KEYPOINTS = 12  # fewer corners than this: the touch shows too little ridge structure to decide
_HEAD = struct.Struct("<4sBHB")  # magic, version, count, descriptor bytes
_POINT = np.dtype([("x", "<u2"), ("y", "<u2"), ("angle", "u1")])
KEYPOINT_BYTES = _POINT.itemsize + DESC_BYTES  # 21: what one keypoint costs in a template
ENCODE_OVERHEAD = _HEAD.size + 4  # header and CRC32


class PartialTemplateError(MinutiaeError):
    """A partial-print template that is not one this version wrote (damaged, truncated, foreign): a
    ``MinutiaeError``, so every decision turns it into a score of 0 (a damaged template helps no one in)."""


@dataclass(frozen=True)
class Keypoints:
    """Keypoints of one capture at 500 dpi: ``xy`` (n, 2) float32 px, ``angle`` (n,) float32 degrees,
    ``desc`` (n, DESC_BYTES) uint8."""

    xy: np.ndarray
    angle: np.ndarray
    desc: np.ndarray

    def __len__(self) -> int:
        return int(self.xy.shape[0])


def keypoints(ridge: RidgeImage, n: int = N_KEYPOINTS) -> Keypoints:
    """The ``n`` strongest ORB keypoints inside the finger (mask eroded so no corner sits on its edge)."""
    orb = cv2.ORB_create(nfeatures=n, scaleFactor=1.2, nlevels=1, edgeThreshold=16, patchSize=31, fastThreshold=10)
    inner = cv2.erode(ridge.mask.astype(np.uint8) * 255, np.ones((5, 5), np.uint8))
    kps, desc = orb.detectAndCompute(ridge.image, inner)
    if desc is None or not kps:
        return Keypoints(np.zeros((0, 2), np.float32), np.zeros(0, np.float32), np.zeros((0, DESC_BYTES), np.uint8))
    order = np.argsort([-k.response for k in kps], kind="stable")  # strongest first: a budget keeps the head
    xy = np.array([k.pt for k in kps], np.float32)[order]
    angle = np.array([k.angle for k in kps], np.float32)[order]
    return Keypoints(xy, angle, np.ascontiguousarray(desc[order, :DESC_BYTES]))


def strongest(kp: Keypoints, n: int) -> Keypoints:
    """The first ``n`` keypoints (``keypoints`` orders them strongest first): how a byte budget is met."""
    return Keypoints(kp.xy[:n], kp.angle[:n], kp.desc[:n])


def match_count(a: Keypoints, b: Keypoints) -> int:
    """Matches of ``a`` and ``b`` consistent with one rotation + translation (0 when none is found)."""
    return match_motion(a, b)[0]


def match_motion(a: Keypoints, b: Keypoints) -> tuple[int, np.ndarray | None]:
    """(consistent matches, 2x3 motion taking ``a``'s pixels to ``b``'s) or (0, None) when none is found.

    Every descriptor match proposes one motion of its own (the turn between its two keypoints' angles and the
    shift that then lays one keypoint on the other); the proposal most other matches agree with (position within
    ``VOTE_PX``, turn within ``VOTE_TURN``) wins, a similarity fitted to its supporters is refined ``REFITS``
    times, and the score counts the matches within ``MATCH_PX`` of the fitted motion whose keypoints also turn
    with it (``FIT_TURN``). Why not RANSAC of point pairs alone: trying every proposal finds a genuine motion
    RANSAC's sampling misses, and requiring keypoint angles to agree removes chance alignments of impostors on
    parallel ridges (measured against RANSAC, docs/partial-prints.md). The fit (OpenCV's least median of squares)
    seeds its own sampling, so a pair always scores the same.
    """
    if len(a) < 3 or len(b) < 3:
        return 0, None
    ia, ib = _descriptor_matches(a, b)
    if ia.size < 3:
        return 0, None
    pa, pb = a.xy[ia].astype(np.float64), b.xy[ib].astype(np.float64)
    turn = np.radians(b.angle[ib].astype(np.float64) - a.angle[ia])
    chosen = _best_proposal(pa, pb, turn)
    motion = None
    for _ in range(REFITS):
        if chosen.sum() < 3:
            return 0, None
        motion, _ = cv2.estimateAffinePartial2D(pa[chosen], pb[chosen], method=cv2.LMEDS)
        if motion is None:
            return 0, None
        chosen = _consistent(motion, pa, pb, turn)
    scale = float(np.hypot(motion[0, 0], motion[1, 0]))
    if chosen.sum() < 3 or not SCALE_RANGE[0] < scale < SCALE_RANGE[1]:
        return 0, None
    return int(chosen.sum()), motion


def _descriptor_matches(a: Keypoints, b: Keypoints) -> tuple[np.ndarray, np.ndarray]:
    """Indices of cross-checked descriptor matches within ``MAX_HAMMING`` bits."""
    pairs = cv2.BFMatcher(cv2.NORM_HAMMING, crossCheck=True).match(a.desc, b.desc)
    ia = np.array([m.queryIdx for m in pairs if m.distance < MAX_HAMMING], np.int64)
    ib = np.array([m.trainIdx for m in pairs if m.distance < MAX_HAMMING], np.int64)
    return ia, ib


def _turn_gap(radians: np.ndarray) -> np.ndarray:
    """Absolute angle difference in degrees, wrapped to 0-180."""
    return np.abs(np.mod(np.degrees(radians) + 180.0, 360.0) - 180.0)


def _best_proposal(pa: np.ndarray, pb: np.ndarray, turn: np.ndarray) -> np.ndarray:
    """Supporters (boolean per match) of the one-match motion most matches agree with (the first such)."""
    c, s = np.cos(turn), np.sin(turn)
    shift = pb - np.stack([c * pa[:, 0] - s * pa[:, 1], s * pa[:, 0] + c * pa[:, 1]], 1)
    x = c[:, None] * pa[None, :, 0] - s[:, None] * pa[None, :, 1] + shift[:, :1]  # row: proposal, column: match
    y = s[:, None] * pa[None, :, 0] + c[:, None] * pa[None, :, 1] + shift[:, 1:]
    near = (x - pb[None, :, 0]) ** 2 + (y - pb[None, :, 1]) ** 2 <= VOTE_PX ** 2
    agree = near & (_turn_gap(turn[None, :] - turn[:, None]) <= VOTE_TURN)
    return agree[int(np.argmax(agree.sum(1)))]


def _consistent(motion: np.ndarray, pa: np.ndarray, pb: np.ndarray, turn: np.ndarray) -> np.ndarray:
    """Matches the 2x3 ``motion`` lays within ``MATCH_PX`` whose keypoints turn with it (``FIT_TURN``)."""
    moved = pa @ motion[:, :2].T + motion[:, 2]
    rotation = np.arctan2(motion[1, 0], motion[0, 0])
    return (((moved - pb) ** 2).sum(1) <= MATCH_PX ** 2) & (_turn_gap(turn - rotation) <= FIT_TURN)


def encode(kp: Keypoints) -> bytes:
    """Template bytes of ``kp`` (see the module docstring)."""
    n = len(kp)
    pts = np.zeros(n, _POINT)
    pts["x"] = np.clip(np.round(kp.xy[:, 0] * 4), 0, 65535)
    pts["y"] = np.clip(np.round(kp.xy[:, 1] * 4), 0, 65535)
    pts["angle"] = np.round(np.mod(kp.angle, 360.0) * 256 / 360) % 256
    body = _HEAD.pack(MAGIC, VERSION, n, DESC_BYTES) + pts.tobytes() + kp.desc.astype(np.uint8).tobytes()
    return body + struct.pack("<I", zlib.crc32(body))


def decode(data: bytes) -> Keypoints:
    """Keypoints of template bytes from ``encode``; PartialTemplateError for anything else."""
    raw = bytes(data)
    if len(raw) < _HEAD.size + 4:
        raise PartialTemplateError(f"partial-print template of {len(raw)} bytes is truncated")
    magic, version, n, dbytes = _HEAD.unpack_from(raw)
    if magic != MAGIC:
        raise PartialTemplateError("not a partial-print template (wrong magic): enrol the finger again")
    if version != VERSION:
        raise PartialTemplateError(f"partial-print template version {version} is not {VERSION}: enrol the finger "
                                   "again")
    if dbytes != DESC_BYTES:
        raise PartialTemplateError(f"partial-print template with {dbytes}-byte descriptors (expected {DESC_BYTES})")
    size = _HEAD.size + n * (_POINT.itemsize + dbytes) + 4
    if len(raw) != size:
        raise PartialTemplateError(f"partial-print template is {len(raw)} bytes, its header says {size}")
    (crc,) = struct.unpack_from("<I", raw, size - 4)
    if zlib.crc32(raw[:size - 4]) != crc:
        raise PartialTemplateError("partial-print template checksum mismatch (damaged): enrol the finger again")
    pts = np.frombuffer(raw, _POINT, n, _HEAD.size)
    desc = np.frombuffer(raw, np.uint8, n * dbytes, _HEAD.size + n * _POINT.itemsize).reshape(n, dbytes)
    xy = np.stack([pts["x"], pts["y"]], 1).astype(np.float32) / 4
    return Keypoints(xy, pts["angle"].astype(np.float32) * (360 / 256), desc.copy())
