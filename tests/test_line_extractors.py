"""Classic vein extractors: repeated line tracking and the wide line detector (training/classic)."""

from __future__ import annotations

import numpy as np
import pytest
from fusion_fixtures import vein_image

from training.classic.line_tracking import LineTrackingParams, extract_line_tracking, locus_space
from training.classic.wide_line import WideLineParams, disk_offsets, extract_wide_line, neighbour_counts


def one_vessel(row: int = 30, width: float = 2.0, seed: int = 0) -> np.ndarray:
    """64 x 192 bright finger with one dark horizontal vessel centred on ``row``."""
    yy, xx = np.mgrid[:64, :192].astype(np.float32)
    img = 170 - 0.2 * xx - 60 * np.exp(-((yy - row) ** 2) / (2 * width**2))
    img += np.random.default_rng(seed).normal(0, 1.5, img.shape)
    return np.clip(img, 0, 255).astype(np.uint8)


def near_vessel_fraction(veins: np.ndarray, row: int, reach: int = 3) -> float:
    ys, _ = np.nonzero(veins)
    return float(np.mean(np.abs(ys - row) <= reach)) if ys.size else 0.0


def test_disk_has_81_offsets_for_radius_5():
    assert len(disk_offsets(5)) == 81 and (0, 0) in disk_offsets(5)


def test_wide_line_counts_known_answers():
    img = np.full((32, 32), 200, np.uint8)
    img[16, 16] = 100  # one dark pixel: all 80 neighbours are brighter
    counts = neighbour_counts(img, WideLineParams(size=None, smooth_sigma=0))
    assert counts[16, 16] == 80
    assert counts[5, 5] == 0  # flat area: nobody brighter by more than t
    assert counts[16, 18] == 0  # the dark pixel is darker, not brighter


def test_wide_line_finds_the_vessel_and_keeps_its_width():
    veins = extract_wide_line(one_vessel(width=2.5), WideLineParams(size=None))
    assert near_vessel_fraction(veins, 30) > 0.95
    columns = veins[:, 20:170]
    assert columns.any(axis=0).mean() > 0.9  # found along the whole vessel
    assert columns.sum(axis=0).mean() >= 3  # several pixels wide, not a 1-px skeleton


def test_wide_line_mask_excludes_background():
    mask = np.zeros((64, 192), bool)
    mask[:, :96] = True
    veins = extract_wide_line(one_vessel(), WideLineParams(size=None), mask=mask)
    assert veins[:, 96:].sum() == 0 and veins[:, :96].sum() > 0


def test_line_tracking_follows_the_vessel_and_is_deterministic():
    params = LineTrackingParams(iterations=300, size=None, seed=3)
    img = one_vessel(row=40)
    veins = extract_line_tracking(img, params)
    assert veins.sum() > 20
    assert near_vessel_fraction(veins, 40) > 0.5  # chance (7 of 44 trackable rows) is 0.16
    np.testing.assert_array_equal(veins, extract_line_tracking(img, params))
    other = extract_line_tracking(img, LineTrackingParams(iterations=300, size=None, seed=4))
    assert not np.array_equal(other, veins)  # the seed matters (random starts)


def test_line_tracking_locus_empty_when_mask_excludes_everything():
    locus = locus_space(one_vessel(), LineTrackingParams(iterations=10, size=None), mask=np.zeros((64, 192), bool))
    assert locus.sum() == 0
    assert not extract_line_tracking(one_vessel(), LineTrackingParams(iterations=10, size=None),
                                     mask=np.zeros((64, 192), bool)).any()


def test_extractors_agree_more_within_a_finger_than_across():
    def overlap(a: np.ndarray, b: np.ndarray) -> float:
        return float((a & b).sum() / max(1, min(a.sum(), b.sum())))

    for extract in (lambda i: extract_wide_line(i), lambda i: extract_line_tracking(i, LineTrackingParams(300))):
        maps = {(s, k): extract(vein_image(s, impression=k)) for s in range(2) for k in range(2)}
        genuine = np.mean([overlap(maps[(s, 0)], maps[(s, 1)]) for s in range(2)])
        impostor = np.mean([overlap(maps[(0, k)], maps[(1, j)]) for k in range(2) for j in range(2)])
        assert genuine > impostor


@pytest.mark.parametrize("bad", [np.zeros((3, 3), np.uint8), np.zeros((4, 64, 64), np.uint8)])
def test_bad_shapes_are_rejected(bad):
    with pytest.raises(ValueError):
        extract_wide_line(bad, WideLineParams(size=None))
    with pytest.raises(ValueError):
        extract_line_tracking(bad)
