"""Handcrafted features (device/features): Log-Gabor bank, DoG, validation of bad images."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from fusion_fixtures import ridge_image, vein_image
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from device.errors import ImageError
from device.features import (
    DogParams,
    FeatureRejection,
    LogGaborParams,
    extract_dog,
    extract_loggabor,
    loggabor_bank,
    validate_image,
)
from device.features.dog import dog_responses, dog_sigmas
from device.features.loggabor import centre_frequencies, loggabor_responses
from device.features.spectrum import block_means, dominant_frequency, radial_frequency_grid

LG = LogGaborParams(size=(96, 96))


def _cos(a: np.ndarray, b: np.ndarray) -> float:
    a = a - a.mean()
    b = b - b.mean()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def grating(freq: float, angle_deg: float, size: int = 96) -> np.ndarray:
    yy, xx = np.mgrid[:size, :size].astype(np.float32)
    t = np.deg2rad(angle_deg)
    return (0.5 + 0.4 * np.cos(2 * np.pi * freq * (xx * np.cos(t) - yy * np.sin(t)))).astype(np.float32)


def test_bank_has_4_scales_6_orientations_zero_dc_and_peaks_where_designed():
    params = LogGaborParams(adaptive=False, centre_frequency=0.12)
    bank = loggabor_bank((64, 64), params)
    assert bank.shape == (4, 6, 64, 64)
    assert np.all(bank[:, :, 0, 0] == 0)
    radius, angle = radial_frequency_grid((64, 64))
    freqs = centre_frequencies(params, None)
    assert freqs[1] < 0.12 < freqs[2]  # geometric centre of the ladder
    for s in range(4):
        for o in range(6):
            peak = np.unravel_index(np.argmax(bank[s, o]), bank.shape[2:])
            assert radius[peak] == pytest.approx(freqs[s], abs=1.5 / 64)
            d = np.angle(np.exp(1j * (angle[peak] - o * np.pi / 6)))
            assert abs(d) < np.deg2rad(8)


@pytest.mark.parametrize("angle", [0, 30, 60, 90, 120, 150])
def test_grating_excites_the_filter_of_its_orientation(angle):
    resp = loggabor_responses(grating(0.12, angle), LG)
    energy = np.abs(resp).mean(axis=(0, 2, 3))
    assert int(np.argmax(energy)) == angle // 30


@pytest.mark.parametrize("freq", [0.06, 0.1, 0.18])
def test_dominant_frequency_is_measured_and_adaptive_bank_follows_it(freq):
    img = grating(freq, 20)
    assert dominant_frequency(img) == pytest.approx(freq, abs=0.025)
    freqs = centre_frequencies(LogGaborParams(), dominant_frequency(img))
    assert np.exp(np.mean(np.log(freqs))) == pytest.approx(dominant_frequency(img), rel=1e-6)


def test_loggabor_features_fixed_length_finite_deterministic():
    a = extract_loggabor(ridge_image(1), LG)
    assert a.shape == (4 * 6 * 16 * 3,)
    assert a.dtype == np.float32 and np.isfinite(a).all()
    np.testing.assert_array_equal(a, extract_loggabor(ridge_image(1), LG))
    big = extract_loggabor(ridge_image(1, size=200), LG)  # any input size -> same length
    assert big.shape == a.shape


def test_same_finger_closer_than_different_finger_loggabor_and_dog():
    base = [ridge_image(s, noise=0.03) for s in range(4)]
    again = [np.roll(ridge_image(s, noise=0.08), 1, axis=1) for s in range(4)]
    for extract in (lambda i: extract_loggabor(i, LG), extract_dog):
        f0 = [extract(i) for i in base]
        f1 = [extract(i) for i in again]
        genuine = [_cos(f0[i], f1[i]) for i in range(4)]
        impostor = [_cos(f0[i], f1[j]) for i in range(4) for j in range(4) if i != j]
        assert min(genuine) > max(impostor)


def test_vein_features_separate_identities():
    params = LogGaborParams(size=(64, 192), grid=(2, 6), band=(0.015, 0.3))
    f = {(s, k): extract_loggabor(vein_image(s, impression=k), params) for s in range(3) for k in range(2)}
    genuine = [_cos(f[(s, 0)], f[(s, 1)]) for s in range(3)]
    impostor = [_cos(f[(s, 0)], f[(t, 1)]) for s in range(3) for t in range(3) if s != t]
    assert np.mean(genuine) > np.mean(impostor)


def test_dog_sigma_adapts_to_period_and_dark_line_is_positive():
    fine = dog_sigmas(DogParams(), period=6.0)
    coarse = dog_sigmas(DogParams(), period=12.0)
    assert coarse[1] == pytest.approx(2 * fine[1])
    img = np.full((64, 64), 0.7, np.float32)
    img[:, 30:34] = 0.3  # a dark vertical line
    img += np.random.default_rng(0).normal(0, 0.01, img.shape).astype(np.float32)
    resp = dog_responses(img, DogParams(size=None, adaptive=False, sigma=2.0))
    assert resp[:, 20:44, 31:33].mean() > 0
    assert resp[:, 20:44, 31:33].mean() > resp[:, 20:44, 10:20].mean()
    feats = extract_dog(img, DogParams(size=None, adaptive=False))
    assert feats.shape == (4 * 16 * 3,) and np.isfinite(feats).all()


def test_block_means_match_direct_means():
    x = np.random.default_rng(0).random((2, 10, 13))
    bm = block_means(x, (2, 3))
    np.testing.assert_allclose(bm[..., 0], x[:, :5, :4].mean(axis=(1, 2)))
    np.testing.assert_allclose(bm[..., 5], x[:, 5:, 8:].mean(axis=(1, 2)))


_NOISE = (np.random.default_rng(3).random((96, 96)) * 255).astype(np.uint8)
_RAMP = np.tile(np.linspace(0, 255, 96), (96, 1)).astype(np.uint8)


@pytest.mark.parametrize(
    "image, reason",
    [
        (np.full((96, 96), 128, np.uint8), "blank"),
        (np.zeros((3, 3), np.uint8), "tiny"),
        (np.zeros((0, 0), np.uint8), "tiny"),
        (np.full((96, 96), 255, np.uint8), "saturated"),
        (np.zeros((96, 96), np.uint8), "saturated"),
        (_NOISE, "noise"),
        (_RAMP, "no-texture"),
        (np.full((96, 96), np.nan, np.float32), "non-finite"),
        (np.full((96, 96), 3.0, np.float32), "not-an-image"),
        (np.zeros((4, 96, 96), np.uint8), "not-an-image"),
        ([[1, 2], [3, 4]], "not-an-image"),
    ],
)
def test_bad_images_are_rejected_with_a_reason(image, reason):
    for extract in (validate_image, extract_loggabor, extract_dog):
        with pytest.raises(FeatureRejection) as info:
            extract(image)
        assert info.value.reason == reason
        assert isinstance(info.value, ImageError) and str(info.value)


def test_colour_and_16bit_images_are_accepted():
    grey = ridge_image(2)
    colour = np.dstack([grey] * 3)
    np.testing.assert_allclose(extract_loggabor(colour, LG), extract_loggabor(grey, LG), atol=1e-5)
    wide = grey.astype(np.uint16) * 257
    np.testing.assert_allclose(extract_dog(wide), extract_dog(grey), atol=1e-4)


@settings(max_examples=30, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 48), st.integers(1, 48))))
def test_any_uint8_image_gives_finite_features_or_a_rejection(image):
    try:
        feats = extract_loggabor(image, LogGaborParams(size=(32, 32), grid=(2, 2)))
    except FeatureRejection:
        return
    assert np.isfinite(feats).all()


def test_real_images_pass_validation(shared_data):
    rows = list(csv.DictReader(open(shared_data / "manifest.csv", newline="")))
    import cv2

    picked = rows[::40]
    for r in picked:
        img = cv2.imread(str(shared_data / r["dataset"] / r["relpath"]), cv2.IMREAD_GRAYSCALE)
        validate_image(img)  # raises FeatureRejection if a real image were rejected
    feats = extract_loggabor(img, LG)
    assert np.isfinite(feats).all()
