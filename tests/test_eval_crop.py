"""``biolock eval --crop``: one window per impression, the same for every decision, inside the finger."""

from __future__ import annotations

import numpy as np
import pytest

from device.errors import ConfigError
from device.evaluation.crop import CroppedDecision, choose_window, crop_image, foreground_mask, parse_crop


def finger_on_background(seed: int = 0, size: tuple[int, int] = (300, 360)) -> tuple[np.ndarray, np.ndarray]:
    """Ridges inside an off-centre ellipse on a flat, lightly noisy background; returns (grey, true finger mask)."""
    rng = np.random.default_rng(seed)
    h, w = size
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float64)
    finger = ((xs - 0.62 * w) / (0.3 * w)) ** 2 + ((ys - 0.45 * h) / (0.38 * h)) ** 2 <= 1.0
    ridges = 128 - 80 * np.cos(2 * np.pi * (0.8 * ys + 0.6 * xs) / 9.0 + 0.002 * xs * ys / 9)
    grey = np.where(finger, ridges, 225.0) + rng.normal(0, 3, (h, w))
    return np.clip(grey, 0, 255).astype(np.uint8), finger


def test_window_lies_inside_the_finger():
    grey, finger = finger_on_background()
    mask = foreground_mask(grey)
    assert mask[finger].mean() > 0.9 and mask[~finger].mean() < 0.2
    for seed in range(5):
        x, y = choose_window(grey, (128, 128), seed)
        assert finger[y:y + 128, x:x + 128].mean() > 0.75 and finger[y + 64, x + 64]


def test_same_image_same_window_other_image_or_seed_other_window():
    grey, _ = finger_on_background(0)
    other, _ = finger_on_background(1)
    first = choose_window(grey, (128, 128))
    assert choose_window(grey.copy(), (128, 128)) == first
    assert crop_image(grey, (128, 128)).shape == (128, 128)
    others = {choose_window(other, (128, 128))} | {choose_window(grey, (128, 128), s) for s in range(1, 6)}
    assert others - {first}


def test_bad_crop_sizes_are_config_errors():
    assert parse_crop("160x160") == (160, 160) and parse_crop("192X128") == (192, 128)
    for text in ("160", "axb", "32x32", ""):
        with pytest.raises(ConfigError):
            parse_crop(text)
    grey, _ = finger_on_background()
    with pytest.raises(ConfigError, match="larger than"):
        choose_window(grey, (400, 128))


def test_cropped_decision_feeds_the_window_and_keeps_the_scale():
    class Shapes:
        name, modality, matcher_id, thresholds, card_path = "probe", "fingerprint", "probe/1", {"1e-3": 0.5}, None

        def extract(self, image):
            return image.shape

        def compare(self, templates, pairs):
            return np.ones(len(pairs))

        def close(self):
            pass

    d = CroppedDecision(Shapes(), (160, 128))
    grey, _ = finger_on_background()
    assert d.extract(grey) == (128, 160) and d.name == "probe@160x128" and d.thresholds == {"1e-3": 0.5}
    assert d.compare([None, None], np.array([[0, 1]])).tolist() == [1.0]


def test_centred_placement_lands_near_the_finger_centre_with_a_seeded_jitter():
    from device.evaluation.crop import CENTRED_JITTER

    grey, finger = finger_on_background()
    ys, xs = np.nonzero(foreground_mask(grey))
    centre = np.array([xs.mean(), ys.mean()])
    spots = {choose_window(grey, (128, 128), s, "centred") for s in range(8)}
    assert len(spots) > 1  # the jitter moves it
    for x, y in spots:
        assert np.all(np.abs(np.array([x + 64, y + 64]) - centre) <= CENTRED_JITTER + 1)
        assert finger[y + 64, x + 64]
    assert choose_window(grey, (128, 128), 3, "centred") == choose_window(grey.copy(), (128, 128), 3, "centred")
    assert choose_window(grey, (128, 128)) == choose_window(grey, (128, 128), placement="uniform")
    with pytest.raises(ConfigError, match="placement"):
        choose_window(grey, (128, 128), placement="corner")
