"""Miura maximum curvature and Miura matching on patterns with known answers."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from training.classic.miura import _direction_scores, _row_scores, maximum_curvature, miura_match


def _line_image(shape=(100, 300), rows=(50,), width=5, angle=None) -> np.ndarray:
    img = np.full(shape, 140, np.uint8)
    if angle is None:
        for r in rows:
            img[r - width // 2:r + width // 2 + 1] = 60
    else:
        cv2.line(img, (0, 0), (shape[0] - 1, shape[0] - 1), 60, width)
    return cv2.GaussianBlur(img, (0, 0), 1.5)


def test_row_scores_known_answer():
    k = np.array([[0, 1, 2, 1, 0, -1, 3, 0]], dtype=float)
    s = _row_scores(k)
    assert s.tolist() == [[0, 0, 6, 0, 0, 0, 3, 0]]  # run (1, 2, 1): max 2 x width 3 at its peak; run (3): 3 x 1


def test_diagonal_scores_follow_diagonals():
    k = -np.ones((5, 5))
    k[1, 1] = k[2, 2] = k[3, 3] = 1.0
    s = _direction_scores(k, 2)
    assert s[1, 1] == 3.0 and s.sum() == 3.0  # one run of width 3 along the main diagonal
    s_anti = _direction_scores(k, 3)
    assert s_anti[1, 1] == s_anti[2, 2] == s_anti[3, 3] == 1.0  # across it, each pixel is its own run


def test_dark_line_is_found_where_it_is():
    pat = maximum_curvature(_line_image(rows=(50,)))
    hits = np.flatnonzero(pat[:, 20:280].any(axis=1))
    assert hits.size > 0 and np.all(np.abs(hits - 50) <= 4)
    assert pat[47:54, 20:280].any(axis=0).mean() > 0.9  # a centre line along the whole vessel


def test_diagonal_line_is_found():
    pat = maximum_curvature(_line_image(shape=(120, 120), angle=45))
    on = np.argwhere(pat > 0)
    assert on.size and np.median(np.abs(on[:, 0] - on[:, 1])) <= 3


def test_uniform_image_has_no_veins():
    assert maximum_curvature(np.full((60, 90), 100, np.uint8)).sum() == 0


def test_match_scores():
    a = maximum_curvature(_line_image(rows=(30, 70)))
    b = np.roll(a, (4, 10), axis=(0, 1))  # same pattern moved within the margins
    other = maximum_curvature(_line_image(rows=(15,)))
    assert miura_match(a, a) == pytest.approx(0.5)
    assert miura_match(a, b) > 0.45
    assert miura_match(a, other) < 0.25
    with pytest.raises(ValueError):
        miura_match(a, a[:50])
    with pytest.raises(ValueError):
        maximum_curvature(np.zeros((4, 4), np.uint8))


@pytest.mark.realdata
def test_real_fv_usm_genuine_beats_impostor(shared_data):
    base = shared_data / "vein" / "fvusm_roi" / "test_data"
    if not base.is_dir():
        pytest.skip("FV-USM ROI not present")

    def load(name: str) -> np.ndarray:
        img = cv2.imread(str(base / name.split("_")[0] / f"{name}.jpg"), cv2.IMREAD_GRAYSCALE)
        return maximum_curvature(cv2.rotate(img, cv2.ROTATE_90_CLOCKWISE))

    a, b, c = load("1_1_2"), load("1_1_4"), load("1_2_2")
    assert miura_match(a, b) > miura_match(a, c)
