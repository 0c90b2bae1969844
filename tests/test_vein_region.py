"""The finger region of whole NIR frames (device/vein/region.py): every posture, every reason to refuse."""

from __future__ import annotations

import numpy as np
import pytest

from device.vein import region as R
from device.vein.region import FrozenFrameCheck, RegionError, find_region
from training.synth.dataset import identity_seed
from training.synth.vein import render_impression
from training.synth.vein_frame import POSTURES, render_frame, render_postures


@pytest.fixture(scope="module")
def fingers() -> list[dict[str, np.ndarray]]:
    return [render_postures(identity_seed(5, i, "vein"), 0) for i in range(2)]


def _reason(frame: np.ndarray) -> str:
    with pytest.raises(RegionError) as info:
        find_region(frame)
    return info.value.reason


@pytest.mark.parametrize("posture", POSTURES)
def test_every_posture_gives_a_region_inside_the_finger(fingers, posture):
    for frames in fingers:
        region = find_region(frames[posture])
        assert region.roi.shape == R.ROI_SIZE and region.roi.dtype == np.uint8
        assert not region.is_crop
        # the region is finger, not housing: lit everywhere (the synthetic housing is 2-50 or a dim lit panel)
        assert np.percentile(region.roi, 5) > 90, posture
        # the edges found lie on the finger's outline: the upper edge above the lower one by a finger width
        assert 0.4 * 240 < region.width_px < 0.7 * 240


def test_tilt_is_measured_and_straightened(fingers):
    tilted = find_region(fingers[0]["inplane_tilt"])
    assert abs(tilted.angle_deg) > 4.0
    straight = find_region(fingers[0]["normal"])
    assert abs(straight.angle_deg) < 3.0


def test_postures_of_one_finger_match_better_than_another_finger(fingers):
    from device.vein.lines import vein_map
    from device.vein.match import compare

    a = {p: vein_map(find_region(f).roi) for p, f in fingers[0].items()}
    b = vein_map(find_region(fingers[1]["normal"]).roi)
    genuine = [compare(a["normal"], a[p]) for p in POSTURES if p != "normal"]
    assert min(genuine) > compare(a["normal"], b)


def test_a_ready_crop_passes_through_turned_horizontal():
    crop = render_impression(identity_seed(5, 0, "vein"), 0, "roi")
    region = find_region(crop.T.copy())  # portrait, like FV-USM's 100 x 300 files
    assert region.is_crop and region.roi.shape == R.ROI_SIZE


def test_black_and_white_frames():
    assert _reason(np.zeros((240, 320), np.uint8)) == R.BLACK
    assert _reason(np.full((240, 320), 250, np.uint8)) == R.WHITE


def test_housing_without_a_finger_is_no_finger():
    from training.synth.vein_frame import _housing

    empty = np.clip(_housing(np.random.default_rng(1), 0.0), 0, 255).astype(np.uint8)
    assert _reason(empty) == R.NO_FINGER


def test_two_fingers_are_refused(fingers):
    frame = fingers[0]["normal"].copy()
    frame[:, :] = 2
    band = fingers[0]["normal"][60:180]
    frame[5:65] = band[::2][:60]  # two narrower bright bands with a dark gap between them
    frame[150:210] = band[::2][:60]
    assert _reason(frame) == R.TWO_FINGERS


def test_a_finger_at_the_frame_edge_is_refused():
    roi = render_impression(identity_seed(5, 1, "vein"), 0, "roi")
    frame = render_frame(roi, "normal", seed=3)
    shifted = np.vstack([frame[75:], np.full((75, 320), 2, np.uint8)])  # the finger runs off the top
    assert _reason(shifted) == R.AT_EDGE


def test_an_overexposed_finger_is_refused(fingers):
    frame = fingers[0]["normal"].astype(np.int32)
    lit = frame > 120
    frame[lit] = 255
    assert _reason(frame.astype(np.uint8)) == R.SATURATED_REASON


def test_frozen_camera_is_detected(fingers):
    check = FrozenFrameCheck()
    check.check(fingers[0]["normal"])
    check.check(fingers[0]["tense"])
    with pytest.raises(RegionError) as info:
        check.check(fingers[0]["tense"].copy())
    assert info.value.reason == R.FROZEN


def test_garbage_never_raises_anything_but_typed_errors():
    from device.errors import ImageError

    rng = np.random.default_rng(3)
    for _ in range(30):
        h, w = int(rng.integers(16, 300)), int(rng.integers(16, 400))
        img = (rng.random((h, w)) * rng.integers(1, 256)).astype(np.uint8)
        try:
            region = find_region(img)
        except ImageError:
            continue
        assert np.isfinite(region.roi).all()


@pytest.mark.realdata
def test_real_capture_box_frames_all_give_a_region(shared_data, tmp_path):
    from device.vein.montage import find_all, frames_in, montage

    folder = shared_data / "vein" / "nir_raw_frames"
    if not folder.is_dir():
        pytest.skip("vein/nir_raw_frames not present")
    results = find_all(frames_in(folder), folder)
    assert len(results) == 18
    missing = [r.name for r, _ in results if r.region is None]
    assert not missing
    assert montage(results).shape[2] == 3


def test_a_frame_lit_in_every_row_by_a_side_posture_is_not_taken_for_a_crop():
    for identity in range(3):  # these fingers' side postures light the housing in every row
        ident = identity_seed(7, identity, "vein")
        for posture in ("side_1", "side_2"):
            frame = render_frame(render_impression(ident, 10, "roi"), posture, seed=ident + 10)
            region = find_region(frame)
            assert not region.is_crop and region.width_px < 0.7 * 240
