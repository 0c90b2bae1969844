"""Small-sensor enrolment (issue 18): linked placements, another finger refused, coverage feedback, budgeted
template, damaged template refused, a live touch scored against every placement."""

from __future__ import annotations

import numpy as np
import pytest

from device.fingerprint.partial_match import PartialTemplateError
from device.fingerprint.placements import (
    ENCODE_OVERHEAD,
    STITCHED_KEYPOINT_BYTES,
    SmallSensorEnrolment,
    decode_placements,
    stitch,
    verify_score,
)
from device.minutiae.partial_backend import PartialMatcher

SIZE = (192, 192)


@pytest.fixture(scope="module")
def touches():
    """Keypoints of 10 touches of finger A and one touch each of fingers B-F (192x192 capacitive profile)."""
    from training.synth.fingerprint import render_impression

    m = PartialMatcher()
    a = [m.keypoints(render_impression(100, i, "capacitive192")) for i in range(14)]
    others = [m.keypoints(render_impression(f, 0, "capacitive192")) for f in range(101, 106)]
    return a, others


def test_enrolment_links_placements_refuses_another_finger_and_reports_coverage(touches):
    a, others = touches
    e = SmallSensorEnrolment(placements=5)
    first = e.add(a[0], SIZE)
    assert first.accepted and first.placements == 1 and 0 < first.coverage < 1
    refused = [e.add(o, SIZE) for o in others]  # five other fingers offered mid-enrolment
    assert not any(r.accepted for r in refused) and e.placements == 5 and len(e.stored) == 1
    assert all("same finger" in r.message for r in refused)
    feedback = [e.add(kp, SIZE) for kp in a[1:10]]
    assert e.done and len(e.stored) == 5
    stored = [f for f in feedback if f.accepted]
    assert all("covered" in f.message and "move your finger" in f.message for f in stored)
    assert [f.coverage for f in stored] == sorted(f.coverage for f in stored) and stored[-1].coverage > first.coverage


def test_template_fits_the_budget_and_scores_genuine_above_impostor(touches):
    a, others = touches
    e = SmallSensorEnrolment(placements=5, budget=16 * 1024)
    for kp in a[:10]:
        e.add(kp, SIZE)
    t = e.template()
    assert len(t) <= 16 * 1024
    placements = decode_placements(t)
    assert len(placements) == 1  # one stitched set in the first placement's frame
    stitched = placements[0]
    assert len(stitched) == (len(t) - ENCODE_OVERHEAD) // STITCHED_KEYPOINT_BYTES
    assert len(stitched) > max(len(kp) for kp in e.stored)  # more distinct keypoints than any one touch has
    gen = [verify_score(placements, kp) for kp in a[10:14]]
    imp = [verify_score(placements, kp) for kp in others]
    assert min(gen) > max(imp)


def test_damaged_enrolment_template_and_bad_settings_are_refused(touches):
    a, _ = touches
    e = SmallSensorEnrolment(placements=2)
    e.add(a[0], SIZE)
    t = bytearray(e.template())
    t[20] ^= 1
    with pytest.raises(PartialTemplateError, match="damaged"):
        decode_placements(bytes(t))
    with pytest.raises(PartialTemplateError):
        decode_placements(b"BLPK" + bytes(t[4:]))
    with pytest.raises(PartialTemplateError):
        SmallSensorEnrolment().template()
    with pytest.raises(ValueError):
        SmallSensorEnrolment(placements=0)
    assert verify_score([], a[0]) == 0.0 and np.isfinite(verify_score(decode_placements(e.template()), a[1]))


def test_stitching_keeps_one_copy_of_a_spot_seen_twice_and_the_template_round_trips(touches):
    a, _ = touches
    kp = a[0]
    shifted = type(kp)(kp.xy + np.float32(1.5), kp.angle, kp.desc)  # the same spots, seen again 2 px away
    one = stitch([kp, shifted])
    assert len(one) == len(kp)
    far = type(kp)(kp.xy + np.float32(300), kp.angle, kp.desc)  # another region: kept
    assert len(stitch([kp, far])) == 2 * len(kp)
    assert len(stitch([kp, far], limit=50)) == 50
    e = SmallSensorEnrolment(placements=3)
    for touch in a[:8]:
        e.add(touch, SIZE)
    stitched = e.stitched()
    back = decode_placements(e.template())[0]
    n = len(back)
    assert np.array_equal(back.desc, stitched.desc[:n])
    assert np.abs(back.xy - stitched.xy[:n]).max() <= 0.5 + 1e-6  # 1 px grid
    turn = np.abs((back.angle - stitched.angle[:n] + 180) % 360 - 180)
    assert turn.max() <= 360 / 128 + 1e-3  # 6-bit angle


def test_older_version_and_foreign_bytes_are_refused(touches):
    a, _ = touches
    e = SmallSensorEnrolment(placements=1)
    e.add(a[0], SIZE)
    t = bytearray(e.template())
    older = bytearray(t)
    older[4] = 1
    with pytest.raises(PartialTemplateError, match="version"):
        decode_placements(bytes(older))
    for bad in (bytes(t[:-1]), bytes(t) + b"\0", b"", b"BLPE", bytes(t[:12])):
        with pytest.raises(PartialTemplateError):
            decode_placements(bad)
