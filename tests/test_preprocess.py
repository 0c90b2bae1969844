"""Preprocessing: the contract (shapes, ids, ranges), each stage on images whose answer is known, and never a crash."""

from __future__ import annotations

import csv
import math

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from device import vein_ops
from device.errors import ImageError
from device.fingerprint_ops import bounding_box, orientation_field, segment
from device.preprocess import FINGERPRINT_INPUT, PREPROCESSING_IDS, VEIN_INPUT, Preprocessed, preprocess

# --- synthetic fixtures whose geometry we know ---------------------------------------------------------------------


def fingerprint(h=288, w=256, centre=None, axes=(95, 120), period=9.0, seed=0) -> np.ndarray:
    """Concentric ridges (a whorl) inside an ellipse on a light background, with sensor noise."""
    rng = np.random.default_rng(seed)
    cy, cx = centre if centre is not None else (h / 2, w / 2)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r = np.hypot(yy - cy - 10, xx - cx + 5)
    ridges = 128 + 90 * np.sin(2 * np.pi * r / period)
    inside = ((yy - cy) / axes[1]) ** 2 + ((xx - cx) / axes[0]) ** 2 <= 1.0
    img = np.where(inside, ridges, 215.0) + rng.normal(0, 6, (h, w))
    return np.clip(img, 0, 255).astype(np.uint8)


def stripes(angle_deg: float, size=96, period=8.0) -> np.ndarray:
    """Parallel ridges running at ``angle_deg`` counter-clockwise from horizontal, as seen on screen."""
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    a = math.radians(angle_deg)
    # distance across the ridges: the normal of a line at angle a (screen coords, y up) is (-sin a, cos a)
    across = -xx * math.sin(a) + (-yy) * math.cos(a)
    return (128 + 100 * np.sin(2 * np.pi * across / period)).astype(np.uint8)


def vein_frame(angle=0.0, h=240, w=320, half=50, tip=290, veins=True, seed=0) -> np.ndarray:
    """A raw NIR camera frame: a bright horizontal finger (rounded tip) on a dark background, tilted by angle."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    cy = h / 2
    across = np.clip(1 - ((yy - cy) / half) ** 2, 0, 1)
    img = 15 + 170 * np.sqrt(across) * (xx < tip)
    tip_round = (xx >= tip - half) & (((xx - (tip - half)) / half) ** 2 + ((yy - cy) / half) ** 2 > 1)
    img = np.where(tip_round, 15, img)
    if veins:
        for _ in range(5):
            y0, amp, phase = cy + rng.uniform(-0.6, 0.6) * half, rng.uniform(3, 10), rng.uniform(0, 6)
            line = y0 + amp * np.sin(xx / 40 + phase)
            img -= 45 * np.exp(-(((yy - line) / 3.0) ** 2)) * (img > 30)
    img = np.clip(img + rng.normal(0, 2, img.shape), 0, 255).astype(np.uint8)
    matrix = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
    return cv2.warpAffine(img, matrix, (w, h), borderValue=15)


def vein_crop(seed=0) -> np.ndarray:
    """An FV-USM-style ROI crop: portrait 300x100, finger fills the image, faint veins, uneven light."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:300, 0:100].astype(np.float32)
    img = 50 + 45 * np.exp(-(((yy - 170) / 90) ** 2)) + 10 * np.cos((xx - 50) / 60)
    for _ in range(4):
        x0, amp, phase = rng.uniform(15, 85), rng.uniform(3, 8), rng.uniform(0, 6)
        img -= 10 * np.exp(-(((xx - x0 - amp * np.sin(yy / 35 + phase)) / 3.0) ** 2))
    return np.clip(img + rng.normal(0, 1.5, img.shape), 0, 255).astype(np.uint8)


# --- the contract ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("modality", "image", "shape"),
    [
        ("fingerprint", fingerprint(), FINGERPRINT_INPUT),
        ("vein", vein_frame(), VEIN_INPUT),
        ("vein", vein_crop(), VEIN_INPUT),
    ],
)
def test_contract_shapes_ids_and_range(modality, image, shape):
    out = preprocess(image, modality)
    assert isinstance(out, Preprocessed)
    assert out.image.dtype == np.float32 and out.image.shape == shape
    assert 0.0 <= float(out.image.min()) and float(out.image.max()) <= 1.0
    assert out.preprocessing_id == PREPROCESSING_IDS[modality]
    assert out.quality.ok, out.quality.reason
    assert out.quality.reason is None and 0.0 < out.quality.score <= 1.0
    assert float(out.image.std()) > 0.05  # it carries the pattern, not a flat field


def test_size_override_and_colour_input():
    colour = cv2.cvtColor(fingerprint(), cv2.COLOR_GRAY2BGR)
    out = preprocess(colour, "fingerprint", size=(64, 48))
    assert out.image.shape == (64, 48) and out.quality.ok
    assert preprocess(vein_frame(), "vein", size=(32, 96)).image.shape == (32, 96)


def test_unusable_arrays_and_arguments_raise_image_error():
    with pytest.raises(ImageError, match="modality"):
        preprocess(fingerprint(), "iris")
    with pytest.raises(ImageError, match="shape"):
        preprocess(np.zeros((2, 3, 4, 5), np.uint8), "fingerprint")
    with pytest.raises(ImageError, match="size"):
        preprocess(fingerprint(), "fingerprint", size=(0, 10))


# --- fingerprint stages ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("angle", [0, 30, 45, 90, 135, 160])
def test_orientation_field_finds_ridge_direction(angle):
    field = orientation_field(stripes(angle), block=16)
    inner = field.angles[1:-1, 1:-1]
    # circular difference on the half circle
    diff = np.abs((inner - math.radians(angle) + np.pi / 2) % np.pi - np.pi / 2)
    assert np.median(diff) < math.radians(4)
    assert float(field.coherence[1:-1, 1:-1].mean()) > 0.8


def test_orientation_coherence_is_low_on_noise():
    noise = np.random.default_rng(3).integers(0, 256, (96, 96)).astype(np.uint8)
    assert float(orientation_field(noise, 16).coherence.mean()) < 0.3


def test_segmentation_covers_the_finger_not_the_background():
    image = fingerprint(centre=(140, 120), axes=(70, 95))
    yy, xx = np.mgrid[0:288, 0:256]
    truth = ((yy - 140) / 95) ** 2 + ((xx - 120) / 70) ** 2 <= 1.0
    mask = segment(image).mask
    iou = (mask & truth).sum() / (mask | truth).sum()
    assert iou > 0.8


def test_crop_follows_a_finger_in_a_corner():
    canvas = np.full((400, 400), 215, np.uint8)
    canvas[:200, 250:] = fingerprint(200, 150, axes=(65, 90))
    top, bottom, left, right = bounding_box(segment(canvas).mask)
    assert top < 30 and bottom < 230 and left > 220
    out = preprocess(canvas, "fingerprint")
    assert out.quality.ok
    textured = np.abs(out.image - 0.5) > 0.05
    assert textured.mean() > 0.35  # the finger fills the model input, not a corner of it


def test_normalization_evens_out_pressure():
    image = fingerprint().astype(np.float32)
    ramp = np.linspace(0.3, 1.0, image.shape[1])[None, :]  # left side pressed lightly: faint ridges
    faint = (215 - (215 - image) * ramp).astype(np.uint8)
    out = preprocess(faint, "fingerprint").image
    left, right = out[30:66, 20:40], out[30:66, 56:76]
    assert left.std() > 0.6 * right.std()


# --- vein stages ----------------------------------------------------------------------------------------------------


def test_portrait_roi_crop_is_turned_and_used_whole():
    crop = vein_crop()
    turned = vein_ops.orient_horizontal(crop)
    assert turned.shape == (100, 300)
    work, _ = vein_ops.working_copy(turned)
    region = vein_ops.find_finger(work)
    assert region.is_crop and region.area == 1.0


@pytest.mark.parametrize("angle", [-15.0, -6.0, 0.0, 10.0, 20.0])
def test_raw_frame_tilt_is_measured_and_removed(angle):
    frame = vein_frame(angle)
    work, _ = vein_ops.working_copy(frame)
    region = vein_ops.find_finger(work)
    assert not region.is_crop
    # rotating by the measured angle undoes the tilt (sign per OpenCV: positive = counter-clockwise)
    assert region.angle_deg == pytest.approx(-angle, abs=2.5)
    straight, again, _ = vein_ops.straighten(frame)
    assert abs(again.angle_deg) < 1.0


def test_roi_of_a_raw_frame_excludes_background_and_matches_the_level_finger():
    level = preprocess(vein_frame(0.0), "vein")
    tilted = preprocess(vein_frame(12.0), "vein")
    assert level.quality.ok and tilted.quality.ok
    roi = vein_ops.crop_roi(*vein_ops.straighten(vein_frame(0.0)))
    assert roi is not None and roi.min() > 20  # background is 15: none of it inside the ROI
    corr = np.corrcoef(level.image.ravel(), tilted.image.ravel())[0, 1]
    assert corr > 0.6


def test_vein_clahe_and_flattening_raise_vein_contrast():
    out = preprocess(vein_crop(), "vein").image
    assert out.std() > 0.15  # faint veins (10 grey levels) spread over the output range


# --- quality rejections with the right reason -----------------------------------------------------------------------

RNG = np.random.default_rng(7)
BAD = {
    "black": (np.zeros((288, 256), np.uint8), "too dark", "too dark"),
    "white": (np.full((288, 256), 255, np.uint8), "too bright", "overexposed"),
    "uniform": (np.full((288, 256), 128, np.uint8), "no finger", "no finger"),
    "tiny": (np.full((3, 3), 100, np.uint8), "too small", "too small"),
    "empty": (np.zeros((0, 0), np.uint8), "too small", "too small"),
    "one-row": (np.full((1, 300), 100, np.uint8), "too small", "too small"),
    "noise": (RNG.integers(0, 256, (288, 256)).astype(np.uint8), "unclear ridges", "no finger"),
}


@pytest.mark.parametrize("modality", ["fingerprint", "vein"])
@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_images_are_rejected_with_a_reason(case, modality):
    image, fp_reason, vein_reason = BAD[case]
    out = preprocess(image, modality)
    assert not out.quality.ok
    assert (fp_reason if modality == "fingerprint" else vein_reason) in out.quality.reason
    assert out.image.shape == (FINGERPRINT_INPUT if modality == "fingerprint" else VEIN_INPUT)
    assert np.isfinite(out.image).all()


def test_small_finger_area_is_reported():
    canvas = np.full((300, 300), 215, np.uint8)
    canvas[120:180, 120:170] = fingerprint(60, 50, axes=(22, 28))
    out = preprocess(canvas, "fingerprint")
    assert not out.quality.ok and "too little finger area" in out.quality.reason


def test_vein_frame_problems():
    flat = preprocess(vein_frame(veins=False), "vein")
    assert not flat.quality.ok and "too little contrast" in flat.quality.reason
    burnt = np.clip(vein_frame().astype(np.int32) * 3, 0, 255).astype(np.uint8)
    over = preprocess(burnt, "vein")
    assert not over.quality.ok and "overexposed" in over.quality.reason
    dim = (vein_frame() // 8).astype(np.uint8) + 2
    dark = preprocess(dim, "vein")
    assert not dark.quality.ok and "too dark" in dark.quality.reason
    sliver = preprocess(vein_frame(half=12), "vein")
    assert not sliver.quality.ok and "too little finger area" in sliver.quality.reason


@settings(max_examples=40, deadline=None)
@given(
    hnp.arrays(
        dtype=st.sampled_from([np.uint8, np.uint16, np.float32]),
        shape=st.tuples(st.integers(0, 40), st.integers(0, 40)),
        elements=st.integers(0, 255),
    ),
    st.sampled_from(["fingerprint", "vein"]),
)
def test_never_raises_on_content(image, modality):
    out = preprocess(image, modality)
    assert np.isfinite(out.image).all() and out.image.dtype == np.float32
    assert 0.0 <= out.quality.score <= 1.0
    assert out.quality.ok == (out.quality.reason is None)


def test_nan_and_inf_floats_are_handled():
    image = fingerprint().astype(np.float32) / 255.0
    image[10:20, 10:20] = np.nan
    image[30, 30] = np.inf
    out = preprocess(image, "fingerprint")
    assert np.isfinite(out.image).all()


# --- real images (skipped without ../shared/data) ------------------------------------------------------------------


@pytest.mark.realdata
def test_real_images_pass_quality(shared_data):
    from device.imageio import read_image

    with open(shared_data / "manifest.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    passed: dict[str, list[bool]] = {}
    for row in rows[::25]:  # a spread-out sample keeps this fast; docs/data.md has the full pass rates
        modality = "vein" if row["dataset"].startswith("vein") else "fingerprint"
        out = preprocess(read_image(shared_data / row["dataset"] / row["relpath"]), modality)
        passed.setdefault(row["dataset"], []).append(out.quality.ok)
    assert passed
    for dataset, oks in passed.items():
        assert np.mean(oks) >= 0.95, (dataset, np.mean(oks))


def test_a_dark_vein_near_a_dim_edge_does_not_cut_the_finger():
    frame = vein_frame(veins=False).astype(np.float32)
    yy, xx = np.mgrid[0 : frame.shape[0], 0 : frame.shape[1]]
    frame[:, :160] *= 0.6  # the left half of the finger is dimly lit
    frame -= 80 * np.exp(-(((yy - (120 - 38)) / 3.0) ** 2)) * (xx < 200) * (frame > 25)  # vein near the top
    work, scale = vein_ops.working_copy(np.clip(frame, 0, 255).astype(np.uint8))
    region = vein_ops.find_finger(work)
    true_top = (120 - 50) * scale
    left = region.upper[10:70]
    assert np.median(np.abs(left - true_top)) <= 3  # the finger edge, not the vein 12 px further in


def test_a_finger_lying_across_the_frame_is_rejected():
    frame = np.transpose(vein_frame(h=320, w=240, half=45, tip=300))  # finger vertical in a landscape frame
    frame = np.ascontiguousarray(frame)
    assert frame.shape == (240, 320)
    out = preprocess(frame, "vein")
    assert not out.quality.ok and out.quality.reason.startswith("finger not along the window")


def test_ramps_blobs_and_edges_are_not_ridges():
    ramp = np.tile(np.linspace(0, 255, 60), (80, 1)).astype(np.uint8)  # steep: every block has texture
    blobs = cv2.GaussianBlur(np.random.default_rng(2).random((288, 256)).astype(np.float32), (0, 0), 6)
    blobs = cv2.normalize(blobs, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    for image in (ramp, blobs):
        out = preprocess(image, "fingerprint")
        assert not out.quality.ok
        assert out.quality.reason.startswith(("smudged or unclear ridges", "no finger found", "too little"))


@pytest.mark.parametrize("angle", [-9.0, 14.0])
def test_direct_roi_warp_matches_rotate_then_crop(angle):
    frame = vein_frame(angle)
    rotated, region, scale = vein_ops.straighten(frame)
    expected = vein_ops.crop_roi(rotated, region, scale)
    turn, region2, scale2 = vein_ops.locate(frame)
    assert turn != 0.0
    got = vein_ops.cut_roi(frame, turn, region2, scale2)
    assert got.shape == expected.shape
    diff = np.abs(got.astype(int) - expected)
    assert diff.max() <= 4 and diff.mean() < 0.2  # OpenCV samples on a 1/32-pixel grid


def test_a_thin_steep_band_is_not_taken_for_a_finger():
    yy, xx = np.mgrid[0:230, 0:423]
    band = np.full((230, 423), 15, np.uint8)
    band[np.abs(yy - 115 + 0.31 * (xx - 211)) < 21] = 192  # a bright bar, 21 degrees steep, no veins
    out = preprocess(band, "vein")
    assert not out.quality.ok and out.quality.reason.startswith("too little")


# --- fingerprint-v2: fixed ridge scale, window on the finger ---------------------------------------------------------


@pytest.mark.parametrize("period", [6.5, 9.0, 12.0])
def test_ridge_period_is_measured(period):
    from device.fingerprint_ops import ridge_period

    image = fingerprint(period=period)
    assert ridge_period(image, segment(image).mask) == pytest.approx(period, rel=0.06)


def _mean_ridge_period(picture: np.ndarray) -> float:
    from device.fingerprint_ops import ridge_period

    return ridge_period(picture * 255.0, np.abs(picture - 0.5) > 0.02)


@pytest.mark.parametrize("period", [7.0, 9.0, 12.0])
def test_v2_puts_ridges_at_a_fixed_spacing_whatever_the_sensor_resolution(period):
    from device import params

    out = preprocess(fingerprint(period=period), "fingerprint")
    assert out.preprocessing_id == "fingerprint-v2" and out.quality.ok
    assert _mean_ridge_period(out.image) == pytest.approx(params.FP2_RIDGE_PERIOD, rel=0.1)


def test_v1_squeezes_the_whole_finger_so_its_ridges_are_finer():
    from device import params

    out = preprocess(fingerprint(), "fingerprint", preprocessing_id="fingerprint-v1")
    assert out.preprocessing_id == "fingerprint-v1"
    assert _mean_ridge_period(out.image) < 0.8 * params.FP2_RIDGE_PERIOD


def test_v2_window_is_centred_on_a_finger_in_a_corner():
    canvas = np.full((400, 400), 215, np.uint8)
    canvas[:200, 250:] = fingerprint(200, 150, axes=(65, 90))
    out = preprocess(canvas, "fingerprint")
    textured = np.abs(out.image - 0.5) > 0.05
    assert out.quality.ok and textured.mean() > 0.4  # a 130x180 px finger at half scale: ~half the window
    rows, cols = np.nonzero(textured)
    assert abs(rows.mean() - 48) < 12 and abs(cols.mean() - 48) < 12


def test_crop_centred_pads_outside_the_image():
    from device.fingerprint_ops import crop_centred

    image = np.arange(100, dtype=np.float32).reshape(10, 10)
    out = crop_centred(image, (0.0, 0.0), (4, 4), -1.0)
    assert out[2:, 2:].tolist() == image[:2, :2].tolist()
    assert (out[:2] == -1).all() and (out[:, :2] == -1).all()


def test_unknown_or_foreign_preprocessing_id_is_refused():
    with pytest.raises(ImageError, match="fingerprint-v9"):
        preprocess(fingerprint(), "fingerprint", preprocessing_id="fingerprint-v9")
    with pytest.raises(ImageError, match="vein-v1"):
        preprocess(fingerprint(), "fingerprint", preprocessing_id="vein-v1")


def test_training_sets_are_prepared_and_cached_per_preprocessing_version(tmp_path):
    from training.prepared import prepare

    for ident in ("a", "b"):
        (tmp_path / "data" / ident).mkdir(parents=True)
        for k in range(2):
            cv2.imwrite(str(tmp_path / "data" / ident / f"{k}.png"), fingerprint(period=8 + k, seed=k))
    v1 = prepare(tmp_path / "data", "fingerprint", cache_dir=tmp_path / "cache", workers=1, progress=False,
                 preprocessing_id="fingerprint-v1")
    v2 = prepare(tmp_path / "data", "fingerprint", cache_dir=tmp_path / "cache", workers=1, progress=False)
    assert (v1.preprocessing_id, v2.preprocessing_id) == ("fingerprint-v1", "fingerprint-v2")
    assert len(list((tmp_path / "cache").glob("*.npz"))) == 2
    assert not np.allclose(v1.images, v2.images)
    again = prepare(tmp_path / "data", "fingerprint", cache_dir=tmp_path / "cache", workers=1, progress=False,
                    preprocessing_id="fingerprint-v1")
    np.testing.assert_array_equal(again.images, v1.images)
