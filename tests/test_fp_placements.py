"""Small-sensor enrolment (issue 18): linked placements, another finger refused, coverage feedback, budgeted
template, damaged template refused, a live touch scored against every placement."""

from __future__ import annotations

import numpy as np
import pytest

from device.fingerprint.partial_match import PartialTemplateError
from device.fingerprint.placements import SmallSensorEnrolment, decode_placements, verify_score
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
    assert len(placements) == len(e.stored)
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
