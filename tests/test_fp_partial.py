"""Partial-print matcher (issue 18): genuine above impostor on small synthetic captures, typed template errors,
a reason for a touch that covers almost nothing, template size, and the backend registered for ``biolock eval``."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from device.fingerprint.partial_match import PartialTemplateError, decode, encode
from device.minutiae.base import BACKENDS, MinutiaeError, open_matcher
from device.minutiae.partial_backend import PartialMatcher


@pytest.fixture(scope="module")
def small_prints():
    """Five synthetic fingers x three touches of the 192x192 capacitive profile (an R503-sized sensor)."""
    from training.synth.fingerprint import render_impression

    return {(f, i): render_impression(100 + f, i, "capacitive192") for f in range(5) for i in range(3)}


@pytest.fixture(scope="module")
def templates(small_prints):
    m = PartialMatcher()
    return {k: m.extract(v) for k, v in small_prints.items()}


def test_genuine_touches_score_above_impostors(templates):
    m = PartialMatcher()
    gen = np.array([m.compare(templates[f, 0], templates[f, i]) for f in range(5) for i in (1, 2)])
    imp = np.array([m.compare(templates[f, 0], templates[h, 1]) for f in range(5) for h in range(5) if h != f])
    assert np.median(gen) > 2 * imp.max()
    assert np.mean(gen > imp.max()) >= 0.6  # some touch pairs hardly overlap: no matcher can tie those
    assert m.compare(templates[0, 0], templates[0, 0]) > np.max(gen)


def test_template_round_trip_and_size(templates):
    for t in templates.values():
        assert len(t) <= 16 * 1024
        assert encode(decode(t)) == t


def test_damaged_or_foreign_templates_are_typed_errors(templates):
    good = templates[0, 0]
    flipped = bytearray(good)
    flipped[40] ^= 0x10
    older = bytearray(good)
    older[4] = 0
    for bad, said in [(bytes(flipped), "checksum"), (good[:-7], "header says"), (good[:5], "truncated"),
                      (b"XXXX" + good[4:], "magic"), (bytes(older), "version")]:
        with pytest.raises(PartialTemplateError, match=said):
            decode(bad)
    with pytest.raises(MinutiaeError):  # what every decision turns into a score of 0
        PartialMatcher().compare(bytes(flipped), good)
    n = struct.unpack_from("<H", good, 5)[0]
    assert n >= 12


def test_a_touch_covering_almost_nothing_gets_a_reason(small_prints):
    m = PartialMatcher()
    sliver = np.full((192, 192), 230, np.uint8)
    sliver[:, :30] = small_prints[0, 0][:, :30]  # the finger touches one edge only
    with pytest.raises(MinutiaeError, match="covers only"):
        m.extract(sliver)
    with pytest.raises(MinutiaeError, match="blank"):
        m.extract(np.full((192, 192), 200, np.uint8))
    smudge = np.clip(np.random.default_rng(0).normal(128, 40, (192, 192)), 0, 255).astype(np.uint8)
    with pytest.raises(MinutiaeError):
        m.extract(smudge)


def test_registered_as_a_backend_and_a_decision():
    from device.evaluation.decisions import names

    assert "partial" in BACKENDS and "partial" in names()
    assert open_matcher("partial").template_id.startswith("biolock-partial-")


@pytest.mark.realdata
def test_real_polyu_prints_and_their_windows(shared_data):
    """Whole PolyU partial prints: genuine above impostor; their 128x128 windows are cut inside the finger, the
    same on every call."""
    import cv2

    from device.evaluation.crop import crop_image, foreground_mask

    folder = shared_data / "fingerprint" / "polyu_hrf_500dpi"
    grey = {(f, i): cv2.imread(str(p), cv2.IMREAD_GRAYSCALE)
            for f in ("001", "002", "003") for i, p in enumerate(sorted((folder / f).glob("*.png"))[:2])}
    m = PartialMatcher()
    t = {k: m.extract(v) for k, v in grey.items()}
    gen = [m.compare(t[f, 0], t[f, 1]) for f in ("001", "002", "003")]
    imp = [m.compare(t[a, 0], t[b, 1]) for a in ("001", "002", "003") for b in ("001", "002", "003") if a != b]
    assert min(gen) > max(imp)
    for g in grey.values():
        w = crop_image(g, (128, 128))
        assert w.shape == (128, 128) and np.array_equal(w, crop_image(g.copy(), (128, 128)))
        assert foreground_mask(w).mean() > 0.5


def _moved(kp, degrees: float, shift: tuple[float, float]):
    """``kp`` turned by ``degrees`` about the origin and shifted: positions and keypoint angles alike."""
    from device.fingerprint.partial_match import Keypoints

    t = np.radians(degrees)
    rot = np.array([[np.cos(t), -np.sin(t)], [np.sin(t), np.cos(t)]])
    return Keypoints((kp.xy @ rot.T + shift).astype(np.float32), np.mod(kp.angle + degrees, 360).astype(np.float32),
                     kp.desc)


def test_the_motion_most_matches_agree_on_wins_and_keypoints_must_turn_with_it():
    from device.fingerprint.partial_match import DESC_BYTES, Keypoints, match_motion

    rng = np.random.default_rng(5)
    n = 60
    a = Keypoints(rng.uniform(20, 170, (n, 2)).astype(np.float32), rng.uniform(0, 360, n).astype(np.float32),
                  rng.integers(0, 256, (n, DESC_BYTES), dtype=np.uint8))
    b = _moved(a, 25.0, (30.0, -12.0))
    count, motion = match_motion(a, b)
    assert count == n
    assert np.degrees(np.arctan2(motion[1, 0], motion[0, 0])) == pytest.approx(25.0, abs=0.5)
    assert motion[:, 2] == pytest.approx([30.0, -12.0], abs=0.5)
    assert match_motion(a, b)[0] == count  # no sampling: the same pair always scores the same

    # half the keypoints keep their place but their angles no longer turn with the motion: not counted
    odd = b.angle.copy()
    odd[::2] = np.mod(odd[::2] + 90.0, 360)
    assert match_motion(a, Keypoints(b.xy, odd, b.desc))[0] == n // 2

    # a third of the matches moved by another motion: the larger group decides, the smaller one is not counted
    c = _moved(a, -40.0, (5.0, 60.0))
    mixed = Keypoints(np.where(np.arange(n)[:, None] < n // 3, c.xy, b.xy),
                      np.where(np.arange(n) < n // 3, c.angle, b.angle).astype(np.float32), b.desc)
    count, motion = match_motion(a, mixed)
    assert count == n - n // 3
    assert np.degrees(np.arctan2(motion[1, 0], motion[0, 0])) == pytest.approx(25.0, abs=0.5)
