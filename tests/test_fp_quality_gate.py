"""The fingerprint quality score and its gates (issue 15): reasons a person can act on, a stricter gate for
enrolment than for verify/identify, fail closed, and (realdata) the score predicting failures on real prints."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

import device.fingerprint.gate as gate
from device.fingerprint.extract import extract_with_quality
from device.fingerprint.matcher import BiolockMatcher
from device.fingerprint.quality import ADVICE, ENROL_MIN, REASONS, VERIFY_MIN, image_quality
from device.minutiae.base import MinutiaeError
from training.synth.dataset import identity_seed
from training.synth.fingerprint import render_impression


def r307(finger: int, impression: int) -> np.ndarray:
    return render_impression(identity_seed(5, finger, "fingerprint"), impression, "r307")


def test_the_gates_are_ordered_and_every_reason_has_advice():
    assert 0.0 < VERIFY_MIN < ENROL_MIN < 1.0
    assert set(ADVICE) == set(REASONS)
    assert "press more firmly" in ADVICE["small_area"] and "centre of the finger" in ADVICE["few_minutiae"]


@pytest.mark.parametrize("area,coherence,q,weakest", [
    (4000, 0.8, np.full(30, 0.9), "small_area"),
    (80000, 0.15, np.full(30, 0.9), "unclear_ridges"),
    (80000, 0.8, np.full(6, 0.4), "few_minutiae"),
])
def test_the_weakest_factor_is_the_reason(area, coherence, q, weakest):
    good = image_quality(80000, np.full(1000, 0.8, np.float32), 30, np.full(30, 0.9))
    bad = image_quality(area, np.full(1000, coherence, np.float32), len(q), q)
    assert good.score == pytest.approx(1.0) and good.reason is None
    assert bad.score < VERIFY_MIN and bad.reason == bad.weakest == weakest and bad.advice == ADVICE[weakest]


def test_a_smudged_tenth_of_the_finger_lowers_the_score_even_when_the_mean_is_high():
    clear = np.full(1000, 0.8, np.float32)
    smudged = clear.copy()
    smudged[:150] = 0.1  # mean still 0.70
    a = image_quality(80000, clear, 30, np.full(30, 0.9))
    b = image_quality(80000, smudged, 30, np.full(30, 0.9))
    assert b.coherence > 0.65 and b.score < a.score and b.weakest == "unclear_ridges"


def test_gate_refuses_below_the_minimum_with_advice_and_enrolment_is_stricter(monkeypatch):
    matcher = BiolockMatcher()
    grey = r307(1, 0)
    q = extract_with_quality(grey)[1].score
    assert q >= ENROL_MIN  # a good synthetic capture passes both gates as they ship
    assert gate.template(matcher, grey, enrol=True) == matcher.extract(grey)
    monkeypatch.setattr(gate, "VERIFY_MIN", q - 0.01)
    monkeypatch.setattr(gate, "ENROL_MIN", q + 0.01)
    assert gate.template(matcher, grey) == matcher.extract(grey)  # good enough for a touch ...
    with pytest.raises(MinutiaeError, match="enrolment needs") as err:  # ... not for enrolment
        gate.template(matcher, grey, enrol=True)
    assert any(advice.split(":")[0] in str(err.value) for advice in ADVICE.values())


def test_gate_fails_closed_and_leaves_other_backends_alone():
    matcher = BiolockMatcher()
    for bad in (np.zeros((200, 200), np.uint8), np.full((200, 200), 255, np.uint8),
                np.random.default_rng(0).integers(0, 256, (200, 200), dtype=np.uint8)):
        with pytest.raises(MinutiaeError):
            gate.template(matcher, bad)

    class Other:
        def extract(self, grey):
            return b"theirs"

    assert not gate.gated(Other()) and gate.template(Other(), r307(1, 0), enrol=True) == b"theirs"

    class OtherExtractor(BiolockMatcher):  # e.g. another segmentation: its own extractor, so not our score
        def extract_minutiae(self, grey):
            return super().extract_minutiae(grey)

    assert gate.gated(BiolockMatcher()) and not gate.gated(OtherExtractor())


def test_the_device_tells_why_a_capture_was_refused(tmp_path, monkeypatch):
    """With the shipped card (biolock decides), enrolment refuses captures under ENROL_MIN with the advice, and a
    verify touch under VERIFY_MIN is refused (not accepted, not counted as a failure) with the advice."""
    from device.config import Config, EnrolConfig, InferenceConfig
    from device.pipeline import Authenticator
    from models import default_card

    config = Config(inference=InferenceConfig(model=default_card("fingerprint")),
                    enrol=EnrolConfig(captures=3, max_attempts=4))
    with Authenticator.from_config(config, tmp_path / "state") as auth:
        monkeypatch.setattr(gate, "ENROL_MIN", 1.01)  # no capture is good enough to enrol
        result = auth.enroll("alice", "right-index", (r307(2, k) for k in range(10)))
        assert not result.ok and result.attempts == 4 and not auth.store.has_user("alice")
        assert all("enrolment needs 1.01" in why for _, why in result.rejected)
        monkeypatch.setattr(gate, "ENROL_MIN", ENROL_MIN)
        assert auth.enroll("alice", "right-index", (r307(2, k) for k in range(10))).ok
        assert auth.verify("alice", r307(2, 12)).accepted
        monkeypatch.setattr(gate, "VERIFY_MIN", 1.01)
        d = auth.verify("alice", r307(2, 12))
        assert not d.accepted and "capture quality" in d.reason and np.isnan(d.score)
        assert any(d.reason.startswith(advice.split(":")[0]) for advice in ADVICE.values())
        assert not auth.identify(r307(2, 13)).accepted


@pytest.mark.realdata
def test_on_real_prints_the_lowest_quality_pairs_fail_more(shared_data):
    """Error-versus-reject on FVC2000 DB3_B (280 genuine pairs, evaluation only): dropping the fifth of the pairs
    whose worse capture scores lowest lowers the FNMR at the shipped card's `balanced` threshold."""
    from training.fp_extract_bench import set_images
    from training.fp_quality_bench import card_threshold, extract_all, reject_curve, scorer
    from training.protocol import fvc_pairs

    paths, labels, imps = set_images(shared_data, "fingerprint/fvc2000", "DB3_B")
    found, q, _ = extract_all([cv2.imread(str(p), cv2.IMREAD_GRAYSCALE) for p in paths], 500)
    score = scorer(found)
    gen, _ = fvc_pairs(labels, imps)
    g = np.array([score(i, j) for i, j in gen])
    pair_q = np.array([min(q[i], q[j]) for i, j in gen])
    curve = reject_curve(g, pair_q, card_threshold())
    assert len(gen) == 280 and curve[-1] < curve[0] - 0.03  # measured 47.9 -> 41.1 %
