"""Quality scores: reasons in the documented order, scores that agree with ``ok``, monotone in what they measure."""

from __future__ import annotations

import numpy as np
import pytest

from device import params
from device.quality import Quality, basic_checks, fingerprint_quality, reject, vein_quality

GOOD_VEIN = {"area": 0.4, "contrast": 3.0, "saturated": 0.0, "noise": 0.6, "p95": 120.0}


def test_reject_keeps_score_below_the_pass_mark():
    q = reject("too dark", score=0.9, ceiling=0.25)
    assert not q.ok and q.reason == "too dark" and q.score < 0.25
    assert reject("x", score=-3).score == 0.0


@pytest.mark.parametrize(
    ("area", "coherence", "reason"),
    [
        (0.0, 0.9, "no finger found"),
        (0.05, 0.9, "too little finger area"),
        (0.6, 0.1, "smudged or unclear ridges"),
        (0.6, 0.9, None),
    ],
)
def test_fingerprint_reasons(area, coherence, reason):
    q = fingerprint_quality(area, coherence)
    assert q.ok == (reason is None)
    if reason:
        assert q.reason.startswith(reason) and q.score < params.FP_QUALITY_OK
    else:
        assert q.reason is None and q.score >= params.FP_QUALITY_OK


def test_fingerprint_score_grows_with_area_and_clarity():
    areas = [fingerprint_quality(a, 0.6).score for a in (0.15, 0.25, 0.35, 0.45)]
    clarity = [fingerprint_quality(0.5, c).score for c in (0.3, 0.4, 0.5, 0.6)]
    assert areas == sorted(areas) and areas[0] < areas[-1]
    assert clarity == sorted(clarity) and clarity[0] < clarity[-1]


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"area": 0.0}, "no finger found"),
        ({"noise": 30.0}, "no finger found"),
        ({"p95": 12.0}, "too dark"),
        ({"saturated": 0.5}, "overexposed"),
        ({"area": 0.05}, "too little finger area"),
        ({"background": 0.6}, "too little finger area"),
        ({"contrast": 0.2, "noise": 0.5}, "too little contrast"),
        ({}, None),
    ],
)
def test_vein_reasons(change, reason):
    q = vein_quality(**{**GOOD_VEIN, **change})
    assert q.ok == (reason is None)
    if reason:
        assert q.reason.startswith(reason) and q.score < params.VEIN_QUALITY_OK


def test_small_noise_on_a_veinless_finger_is_low_contrast_not_no_finger():
    q = vein_quality(**{**GOOD_VEIN, "contrast": 0.3, "noise": 1.5})
    assert q.reason.startswith("too little contrast")


def test_basic_checks():
    assert basic_checks(np.zeros((10, 10), np.uint8), "too bright").reason.startswith("image too small")
    assert basic_checks(np.full((50, 50), 3, np.uint8), "too bright").reason.startswith("too dark")
    assert basic_checks(np.full((50, 50), 254, np.uint8), "overexposed").reason.startswith("overexposed")
    assert basic_checks(np.full((50, 50), 128, np.uint8), "too bright").reason.startswith("no finger found")
    dim = np.random.default_rng(0).integers(0, 30, (50, 50)).astype(np.uint8)  # textured but dark overall
    assert basic_checks(dim, "too bright").reason.startswith("too dark")
    assert basic_checks(dim, "overexposed", whole_frame_exposure=False) is None
    fine = np.random.default_rng(0).integers(60, 200, (50, 50)).astype(np.uint8)
    assert basic_checks(fine, "too bright") is None


def test_quality_is_a_value():
    assert Quality(0.5, True) == Quality(0.5, True, None)
