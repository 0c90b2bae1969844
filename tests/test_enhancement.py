"""Enhancement study (training/enhancement.py): methods and quality measures with known answers."""

from __future__ import annotations

import numpy as np
import pytest
from fusion_fixtures import ridge_image, vein_image

from training import enhancement as en


def low_contrast(seed: int = 0) -> np.ndarray:
    img = vein_image(seed).astype(np.float32)
    return (60 + (img - img.min()) * 0.25).astype(np.uint8)  # squeezed into ~60..100


def test_measures_on_identical_images():
    img = ridge_image(0)
    m = en.measure(img, img)
    assert m["psnr"] == 100.0 and m["ssim"] == pytest.approx(1.0) and m["epi"] == pytest.approx(1.0)
    assert m["contrast_gain"] == pytest.approx(1.0) and m["mean"] == pytest.approx(img.mean())


def test_psnr_known_value_and_ssim_drops_with_noise():
    a = np.full((32, 32), 100, np.uint8)
    b = a.copy()
    b[0, :] = 110  # MSE = 100 * 32 / 1024 = 3.125
    assert en.psnr(a, b) == pytest.approx(10 * np.log10(255**2 / 3.125))
    img = ridge_image(1)
    rng = np.random.default_rng(0)
    noisy = [np.clip(img + rng.normal(0, s, img.shape), 0, 255).astype(np.uint8) for s in (10, 40)]
    assert en.ssim(img, noisy[1]) < en.ssim(img, noisy[0]) < 0.999 < en.ssim(img, img)


def test_contrast_methods_raise_contrast_and_smoothing_lowers_edges():
    img = low_contrast()
    rows = {r["method"]: r for r in en.compare_enhancements([img, low_contrast(1)])}
    assert rows["none"]["contrast_gain"] == pytest.approx(1.0)
    for m in ("clahe", "histeq", "stretch"):
        assert rows[m]["contrast_gain"] > 1.5, m
        assert rows[m]["psnr"] < rows["none"]["psnr"]
    assert rows["smooth"]["epi"] < rows["stretch"]["epi"]
    assert rows["stretch"]["epi"] > 0.9  # a linear stretch keeps edges (up to clipping/rounding)
    assert all(r["n"] == 2 for r in rows.values())


def test_histogram_equalization_flattens_the_histogram():
    out = en.histogram_equalization(low_contrast())
    assert out.min() < 20 and out.max() > 235


def test_stretch_on_flat_image_and_float_input():
    flat = np.full((20, 20), 7, np.uint8)
    assert np.array_equal(en.contrast_stretch(flat), flat)
    assert en.edge_preservation_index(flat, flat) == 0.0
    as_float = ridge_image(2).astype(np.float32) / 255.0
    assert en.clahe(as_float).dtype == np.uint8


def test_bad_input_and_unknown_method():
    with pytest.raises(ValueError, match="2-D"):
        en.clahe(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match="unknown enhancement"):
        en.compare_enhancements([ridge_image(0)], ["sharpen"])
    with pytest.raises(ValueError, match="at least one"):
        en.compare_enhancements([])


def test_table_formats_every_row():
    rows = en.compare_enhancements([ridge_image(0)], ["none", "clahe"])
    rows[1]["eer"] = 0.05
    table = en.format_table(rows)
    assert table.count("\n") == 3 and "clahe" in table and "5.00 %" in table
