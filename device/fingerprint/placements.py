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

The stored template of all placements fits ``budget`` bytes (default 16 KB): each placement keeps its strongest
keypoints, an equal share of the budget each. The live touch keeps all of its keypoints.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

import cv2
import numpy as np

from device.fingerprint.partial_match import (
    ENCODE_OVERHEAD,
    KEYPOINT_BYTES,
    Keypoints,
    PartialTemplateError,
    decode,
    encode,
    match_count,
    match_motion,
    strongest,
)

MAGIC = b"BLPE"
VERSION = 1
DEFAULT_PLACEMENTS = 10  # for a 192x192 sensor; 8-15 is what phones use
PLACEMENTS_RANGE = (1, 20)
LINK_SCORE = 12  # consistent matches a new touch needs with a stored placement (impostor pairs rarely reach 8)
SAME_PLACE = 0.85  # a touch whose window overlaps a stored one this much adds nothing: asked to move
FINGER_PX = 250 * 300  # a fingertip's contact area at 500 dpi (about 12.7 x 15 mm): 100 % coverage
BUDGET = 16 * 1024
_HEAD = struct.Struct("<4sBB")
_LEN = struct.Struct("<H")


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

    def template(self) -> bytes:
        """All placements in ``budget`` bytes: each keeps its strongest keypoints."""
        if not self.stored:
            raise PartialTemplateError("no placement enrolled")
        per = (self.budget - _HEAD.size - 4) // len(self.stored) - _LEN.size
        keep = max(0, (per - ENCODE_OVERHEAD) // KEYPOINT_BYTES)
        parts = [encode(strongest(kp, keep)) for kp in self.stored]
        body = _HEAD.pack(MAGIC, VERSION, len(parts)) + b"".join(_LEN.pack(len(p)) + p for p in parts)
        return body + struct.pack("<I", zlib.crc32(body))

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


def decode_placements(data: bytes) -> list[Keypoints]:
    """The placements of a ``template()``; PartialTemplateError for anything else."""
    raw = bytes(data)
    if len(raw) < _HEAD.size + 4 or raw[:4] != MAGIC:
        raise PartialTemplateError("not a small-sensor enrolment template: enrol the finger again")
    _, version, n = _HEAD.unpack_from(raw)
    if version != VERSION:
        raise PartialTemplateError(f"enrolment template version {version} is not {VERSION}: enrol the finger again")
    (crc,) = struct.unpack_from("<I", raw, len(raw) - 4)
    if zlib.crc32(raw[:-4]) != crc:
        raise PartialTemplateError("enrolment template checksum mismatch (damaged): enrol the finger again")
    out, pos = [], _HEAD.size
    for _ in range(n):
        if pos + _LEN.size > len(raw) - 4:
            raise PartialTemplateError("enrolment template is truncated")
        (size,) = _LEN.unpack_from(raw, pos)
        out.append(decode(raw[pos + _LEN.size:pos + _LEN.size + size]))
        pos += _LEN.size + size
    if pos != len(raw) - 4:
        raise PartialTemplateError("enrolment template length does not match its placements")
    return out


def verify_score(placements: list[Keypoints], touch: Keypoints) -> float:
    """A live touch against every stored placement: the best count of consistent matches."""
    return float(max((match_count(touch, p) for p in placements), default=0))
