"""Small-sensor enrolment: many placements of one finger, each linked to the ones before, with coverage feedback.

Why many placements: a 192x192 (or smaller) sensor sees a patch of the finger, and a later touch overlaps any
single enrolled patch only partly; phones enrol 8-15 touches and match each new touch against all of them.
Why every touch after the first must match a stored one (``LINK_SCORE``, far above impostor scores): that is
the only evidence that it is the same finger. A touch that matches none is refused with what to do; it is
never stored, so a template can never mix two fingers (fail closed: a far-away patch of the right finger is
refused too, and the user is asked to touch nearer the enrolled area).
Coverage: each placement's window is drawn into the frame of the first one through the rigid motions found by
the matcher; the share of a typical fingertip (``FINGER_PX``) covered, and the side that is least covered,
become the feedback ("covered 70 % of the finger", "move your finger up a little").

The stored template of all placements fits ``budget`` bytes (default 16 KB) and is stitched: every placement's
keypoints are drawn into the first placement's frame through the same motions, a keypoint within ``DEDUP_PX`` of
one already kept from another placement is the same spot of the finger seen again and is dropped, and the
placements take turns (strongest first) until the budget is full. Placements overlap a lot (10 windows of
128x128 cover about 57 % of a fingertip, i.e. the same area about 3.8 times), so one copy of each region holds
several times more distinct keypoints than an equal share per placement (measured on PolyU 128x128 windows, per
touch FNMR at FMR 1e-3: 35 % -> 16 %, at 1e-4: 40.5 % -> 19.5 %; docs/partial-prints.md). Each keypoint costs
19 bytes: x and y (9 bits each, 1 px, relative to the stitched frame's corner), angle (6 bits), the 16-byte
descriptor. A live touch keeps all of its keypoints and is matched once against the stitched set (one rigid
motion, as for two touches).
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import cv2
import numpy as np

from device.fingerprint.partial_match import (
    DESC_BYTES,
    Keypoints,
    PartialTemplateError,
    match_count,
    match_motion,
)

MAGIC = b"BLPE"
VERSION = 2  # 2: one stitched, de-duplicated keypoint set (1: one keypoint list per placement, refused now)
DEFAULT_PLACEMENTS = 10  # for a 192x192 sensor; 8-15 is what phones use
PLACEMENTS_RANGE = (1, 20)
LINK_SCORE = 12  # consistent matches a new touch needs with a stored placement (impostor pairs rarely reach 8)
SAME_PLACE = 0.85  # a touch whose window overlaps a stored one this much adds nothing: asked to move
FINGER_PX = 250 * 300  # a fingertip's contact area at 500 dpi (about 12.7 x 15 mm): 100 % coverage
BUDGET = 16 * 1024
DEDUP_PX = 4.0  # px at 500 dpi: another placement's keypoint this close is the same spot (3 and 5-6 px measured worse)
_HEAD = struct.Struct("<4sBBHhhB")  # magic, version, placements, keypoints, origin x, origin y, descriptor bytes
COORD_MAX = 511  # x, y: 9 bits each at 1 px relative to the origin (a fingertip is about 250 x 300 px)
STITCHED_KEYPOINT_BYTES = 3 + DESC_BYTES  # 19: x 9 bits, y 9 bits, angle 6 bits, descriptor
ENCODE_OVERHEAD = _HEAD.size + 4  # header and CRC32


@dataclass(frozen=True)
class Feedback:
    """What one touch did: ``accepted``, a one-line ``message`` for the user, placements so far, coverage."""

    accepted: bool
    message: str
    placements: int
    coverage: float
    done: bool


@dataclass
class SmallSensorEnrolment:
    """Collects ``placements`` linked touches of one finger; ``template()`` packs them within ``budget`` bytes."""

    placements: int = DEFAULT_PLACEMENTS
    budget: int = BUDGET
    stored: list[Keypoints] = field(default_factory=list)
    motions: list[np.ndarray] = field(default_factory=list)  # 2x3: placement pixels -> first placement's pixels
    window: tuple[int, int] = (0, 0)  # (h, w) of a touch at 500 dpi

    def __post_init__(self) -> None:
        if not PLACEMENTS_RANGE[0] <= self.placements <= PLACEMENTS_RANGE[1]:
            raise ValueError(f"placements must be {PLACEMENTS_RANGE[0]}-{PLACEMENTS_RANGE[1]}, got {self.placements}")

    def add(self, kp: Keypoints, window: tuple[int, int]) -> Feedback:
        """Offer one touch (keypoints of a capture whose 500-dpi size is ``window``); stored only when linked."""
        if self.done:
            return self._feedback(False, "enrolment is complete")
        if not self.stored:
            self.window = window
            self.stored.append(kp)
            self.motions.append(np.array([[1.0, 0, 0], [0, 1.0, 0]]))
            return self._feedback(True, "first placement stored: lift and touch again, slightly shifted")
        links = [match_motion(kp, s) for s in self.stored]
        best = int(np.argmax([c for c, _ in links]))
        count, motion = links[best]
        if count < LINK_SCORE or motion is None:
            return self._feedback(False, "this touch does not overlap what is enrolled: use the same finger and touch "
                                         "closer to where you touched before")
        to_first = _compose(self.motions[best], motion)
        if self._overlap(to_first) >= SAME_PLACE:
            return self._feedback(False, "same place as before: " + self._direction())
        self.stored.append(kp)
        self.motions.append(to_first)
        return self._feedback(True, f"placement {len(self.stored)} stored: " + self._direction())

    @property
    def done(self) -> bool:
        return len(self.stored) >= self.placements

    def coverage(self) -> float:
        """Share of a typical fingertip covered by the stored placements (0-1)."""
        return float(min(1.0, self._canvas()[0].sum() / FINGER_PX))

    def stitched(self, limit: int | None = None) -> Keypoints:
        """All placements' keypoints in the first placement's frame, one copy of each spot, at most ``limit``."""
        if not self.stored:
            raise PartialTemplateError("no placement enrolled")
        return stitch([_to_frame(kp, m) for kp, m in zip(self.stored, self.motions, strict=True)], limit)

    def template(self) -> bytes:
        """All placements, stitched (see the module docstring), in ``budget`` bytes."""
        limit = max(0, (self.budget - ENCODE_OVERHEAD) // STITCHED_KEYPOINT_BYTES)
        return encode_stitched(self.stitched(limit), len(self.stored))

    def _overlap(self, motion: np.ndarray) -> float:
        """Largest share of a touch at ``motion`` that one stored placement already covers."""
        h, w = self.window
        corners = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float64)
        new = cv2.transform(corners[None], motion)[0]
        best = 0.0
        for m in self.motions:
            old = cv2.transform(corners[None], m)[0]
            area, _ = cv2.intersectConvexConvex(new.astype(np.float32), old.astype(np.float32))
            best = max(best, float(area) / (h * w))
        return best

    def _canvas(self) -> tuple[np.ndarray, tuple[float, float]]:
        """Union mask of the placements in the first one's frame (canvas offset by one window each side)."""
        h, w = self.window
        canvas = np.zeros((3 * h, 3 * w), np.uint8)
        shift = np.array([[0, 0, w], [0, 0, h]], np.float64)
        for m in self.motions:
            cv2.warpAffine(np.ones((h, w), np.uint8), m + shift, (3 * w, 3 * h), dst=canvas,
                           borderMode=cv2.BORDER_TRANSPARENT, flags=cv2.INTER_NEAREST)
        return canvas.astype(bool), (float(w), float(h))

    def _direction(self) -> str:
        """Which way to move next: towards the side of a fingertip-sized area least covered so far."""
        canvas, (w, h) = self._canvas()
        ys, xs = np.nonzero(canvas)
        cy, cx = ys.mean(), xs.mean()
        span = {"up": cy - ys.min(), "down": ys.max() - cy, "left": cx - xs.min(), "right": xs.max() - cx}
        side = min(span, key=span.get)
        return f"move your finger {side} a little (covered {100 * self.coverage():.0f} % of the finger)"

    def _feedback(self, accepted: bool, message: str) -> Feedback:
        cov = self.coverage() if self.stored else 0.0
        return Feedback(accepted, message, len(self.stored), cov, self.done)


def _compose(first: np.ndarray, second: np.ndarray) -> np.ndarray:
    """2x3 motion ``first`` after ``second`` (apply ``second``, then ``first``)."""
    a = np.vstack([first, [0, 0, 1]])
    b = np.vstack([second, [0, 0, 1]])
    return (a @ b)[:2]


def _to_frame(kp: Keypoints, motion: np.ndarray) -> Keypoints:
    """``kp`` moved by the 2x3 ``motion`` (positions and angles)."""
    xy = cv2.transform(kp.xy[None].astype(np.float64), motion)[0].astype(np.float32)
    turn = float(np.degrees(np.arctan2(motion[1, 0], motion[0, 0])))
    return Keypoints(xy, np.mod(kp.angle + turn, 360.0).astype(np.float32), kp.desc)


def stitch(placed: list[Keypoints], limit: int | None = None) -> Keypoints:
    """One keypoint set from placements already in one frame: they take turns, strongest first; a keypoint
    within ``DEDUP_PX`` of one kept from another placement is dropped (the same spot seen again)."""
    limit = sum(len(p) for p in placed) if limit is None else int(limit)
    keep: list[tuple[int, int]] = []
    cells: dict[tuple[int, int], list[tuple[int, int]]] = {}
    r2 = DEDUP_PX * DEDUP_PX
    for rank in range(max((len(p) for p in placed), default=0)):
        for j, p in enumerate(placed):
            if len(keep) >= limit:
                break
            if rank >= len(p):
                continue
            x, y = (float(v) for v in p.xy[rank])
            gx, gy = int(x // DEDUP_PX), int(y // DEDUP_PX)
            near = (q for dx in (-1, 0, 1) for dy in (-1, 0, 1) for q in cells.get((gx + dx, gy + dy), ()))
            if any(jj != j and float(((placed[jj].xy[rr] - (x, y)) ** 2).sum()) <= r2 for jj, rr in near):
                continue
            cells.setdefault((gx, gy), []).append((j, rank))
            keep.append((j, rank))
    if not keep:
        return Keypoints(np.zeros((0, 2), np.float32), np.zeros(0, np.float32), np.zeros((0, DESC_BYTES), np.uint8))
    return Keypoints(np.array([placed[j].xy[r] for j, r in keep], np.float32),
                     np.array([placed[j].angle[r] for j, r in keep], np.float32),
                     np.array([placed[j].desc[r] for j, r in keep], np.uint8))


def encode_stitched(kp: Keypoints, placements: int) -> bytes:
    """Template bytes of a stitched set (keypoints beyond ``COORD_MAX`` px of its corner are dropped)."""
    q = np.round(kp.xy).astype(np.int64)
    origin = q.min(0) if len(kp) else np.zeros(2, np.int64)
    rel = q - origin
    ok = (rel <= COORD_MAX).all(1)
    rel, angle, desc = rel[ok], kp.angle[ok], kp.desc[ok]
    a6 = np.round(np.mod(angle, 360.0) * 64 / 360).astype(np.int64) % 64
    packed = (rel[:, 0] | (rel[:, 1] << 9) | (a6 << 18)).astype("<u4")
    pos = np.frombuffer(packed.tobytes(), np.uint8).reshape(-1, 4)[:, :3]
    body = (_HEAD.pack(MAGIC, VERSION, placements, len(rel), int(origin[0]), int(origin[1]), DESC_BYTES)
            + pos.tobytes() + desc.astype(np.uint8).tobytes())
    return body + struct.pack("<I", zlib.crc32(body))


def decode_placements(data: bytes) -> list[Keypoints]:
    """The enrolled keypoints of a ``template()`` (one stitched set, in a list: ``verify_score`` takes it as is);
    PartialTemplateError for anything else (damaged, truncated, foreign, another version)."""
    raw = bytes(data)
    if len(raw) < 6 or raw[:4] != MAGIC:
        raise PartialTemplateError("not a small-sensor enrolment template: enrol the finger again")
    if raw[4] != VERSION:
        raise PartialTemplateError(f"enrolment template version {raw[4]} is not {VERSION}: enrol the finger again")
    if len(raw) < ENCODE_OVERHEAD:
        raise PartialTemplateError("enrolment template is truncated")
    _, _, _, n, ox, oy, dbytes = _HEAD.unpack_from(raw)
    size = ENCODE_OVERHEAD + n * (3 + dbytes)
    if dbytes != DESC_BYTES or len(raw) != size:
        raise PartialTemplateError(f"enrolment template is {len(raw)} bytes, its header says {size}")
    (crc,) = struct.unpack_from("<I", raw, size - 4)
    if zlib.crc32(raw[:size - 4]) != crc:
        raise PartialTemplateError("enrolment template checksum mismatch (damaged): enrol the finger again")
    pos = np.zeros((n, 4), np.uint8)
    pos[:, :3] = np.frombuffer(raw, np.uint8, 3 * n, _HEAD.size).reshape(n, 3)
    packed = pos.view("<u4")[:, 0].astype(np.int64)
    xy = np.stack([(packed & 511) + ox, ((packed >> 9) & 511) + oy], 1).astype(np.float32)
    angle = ((packed >> 18) & 63).astype(np.float32) * (360 / 64)
    desc = np.frombuffer(raw, np.uint8, n * dbytes, _HEAD.size + 3 * n).reshape(n, dbytes).copy()
    return [Keypoints(xy, angle, desc)]


def verify_score(placements: list[Keypoints], touch: Keypoints) -> float:
    """A live touch against the enrolled keypoints (``decode_placements``' stitched set, or any list of
    placements): the best count of matches consistent with one rigid motion."""
    return float(max((match_count(touch, p) for p in placements), default=0))
