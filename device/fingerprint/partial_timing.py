"""Timings of the small-sensor path for ``biolock bench`` (issue 18's numbers: <= 5 ms per comparison on one
thread, the template of all placements <= 16 KB per finger).

Why a bench row and not a timed test: time targets are met (or missed) on the board, printed, never asserted.
What is timed is what the device does per touch in small-sensor mode (``device.small_sensor``): keypoints of a
192x192 touch, one touch against another, one touch against a finger's stitched placements template as it is
stored (decoded once, as the device's cache keeps it), and identification against ``FINGERS`` enrolled fingers
(one comparison each: the small-sensor gallery has no shortlist).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

FINGERS = 20  # enrolled fingers in the identification row (a door's worth; the cost grows linearly)
MAX_OFFERED = 40  # touches offered per enrolment before the bench gives up on reaching all placements


def partial_stages(render: Callable[[int, int], np.ndarray], timed: Callable[..., dict[str, float]],
                   repeat: int) -> tuple[dict[str, dict[str, float]], dict[str, Any]]:
    """(stage timings, facts: template bytes and placements) on touches from ``render(finger, impression)``;
    ({}, {"error": ...}) when the touches cannot be enrolled (nothing to time)."""
    from device.fingerprint.placements import SmallSensorEnrolment, decode_placements, verify_score
    from device.minutiae.base import MinutiaeError
    from device.minutiae.partial_backend import PartialMatcher

    m = PartialMatcher()

    def enrol(finger: int) -> tuple[bytes, int]:
        e = SmallSensorEnrolment()
        for impression in range(MAX_OFFERED):
            if e.done:
                break
            touch = render(finger, impression)
            try:
                e.add(m.keypoints(touch), touch.shape)
            except MinutiaeError:
                continue
        if not e.stored:
            raise MinutiaeError(f"no touch of bench finger {finger} could be enrolled")
        return e.template(), len(e.stored)

    try:
        template, placements = enrol(0)
        gallery = [decode_placements(template)] + [decode_placements(enrol(f)[0]) for f in range(1, FINGERS)]
        probe_img = render(0, 100)
        probe = m.keypoints(probe_img)
        other = m.keypoints(render(0, 101))
    except MinutiaeError as exc:
        return {}, {"error": str(exc)}
    own = gallery[0]
    stages = {"partial_extract": timed(lambda: m.keypoints(probe_img), repeat),
              "partial_compare": timed(lambda: verify_score([other], probe), repeat * 5),
              "partial_verify_16kb": timed(lambda: verify_score(own, probe), repeat * 5),
              f"partial_identify_{FINGERS}": timed(lambda: [verify_score(g, probe) for g in gallery],
                                                   max(3, repeat // 4))}
    facts = {"template_bytes": len(template), "placements": placements, "fingers": FINGERS,
             "genuine_score": verify_score(own, probe)}
    return stages, facts
