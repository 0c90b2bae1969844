"""Synthetic finger veins: deterministic, profiles, identity stability under the Miura yardstick, roll physics."""

from __future__ import annotations

import csv

import numpy as np
import pytest

from device.errors import ConfigError
from training.classic.miura import maximum_curvature, miura_match
from training.synth import generate_dataset
from training.synth.profiles import PROFILES, get_profile
from training.synth.vein import make_network, render_impression
from training.synth.vein_render import project


def test_render_is_deterministic_and_varies_by_identity_and_impression():
    a = render_impression(11, 1, "roi")
    assert np.array_equal(a, render_impression(11, 1, "roi"))
    assert not np.array_equal(a, render_impression(11, 2, "roi"))
    assert not np.array_equal(a, render_impression(12, 1, "roi"))


@pytest.mark.parametrize("name", [p.name for p in PROFILES.values() if p.modality == "vein"])
def test_every_vein_profile_writes_its_size(name):
    prof = get_profile(name, "vein")
    img = render_impression(4, 1, name)
    assert img.dtype == np.uint8 and img.shape == (prof.height, prof.width)
    assert np.unique(img).size > 30


def test_roi_is_landscape_and_grey_levels_resemble_fv_usm():
    img = render_impression(2, 1, "roi")
    assert img.shape == (100, 300)  # finger axis horizontal
    assert 35 < img.mean() < 110 and 8 < img.std() < 45  # FV-USM ROI crops: mean ~62, std ~22


def test_camera_frames_have_dark_background_around_a_bright_finger():
    img = render_impression(2, 1, "camera320").astype(float)
    assert img[:20].mean() < 25 and img[-20:].mean() < 25
    assert img[100:140, 40:200].mean() > img[:20].mean() + 20


def test_network_has_main_veins_and_branches():
    net = make_network(9)
    assert 3 <= net.main_veins <= 5 and net.branches >= 4
    assert len(net.vessels) == net.main_veins + net.branches
    assert all(0 <= v.depth <= 1 and v.width > 0 for v in net.vessels)


def test_roll_moves_central_vessels_more_than_edge_ones():
    y0, _ = project(np.array([0.0, 1.2]), 0.0, 50.0, 50.0)
    y1, facing = project(np.array([0.0, 1.2]), 0.2, 50.0, 50.0)
    moved = np.abs(y1 - y0)
    assert moved[0] > 2 * moved[1]  # non-rigid: not a plain shift
    assert facing[0] > facing[1]


def test_impressions_of_one_finger_match_better_than_other_fingers():
    ids = range(4)
    pats = {i: [maximum_curvature(render_impression(200 + i, k, "roi")) for k in (1, 2)] for i in ids}
    genuine = [miura_match(pats[i][0], pats[i][1]) for i in ids]
    impostor = [miura_match(pats[i][0], pats[j][0]) for i in ids for j in ids if i != j]
    assert min(genuine) > np.median(impostor)
    assert np.mean(genuine) > np.mean(impostor) + 0.03


def test_vein_dataset_manifest(tmp_path):
    m = generate_dataset("vein", 2, 2, "roi", 3, tmp_path / "v", workers=1, progress=False)
    rows = list(csv.DictReader(m.open()))
    assert len(rows) == 4 and {"veins", "branches", "profile"} <= set(rows[0])
    assert all(r["dataset"] == "synth-vein-roi" for r in rows)
    assert all((m.parent / r["dataset"] / r["relpath"]).is_file() for r in rows)


def test_fingerprint_profile_is_not_a_vein_profile():
    with pytest.raises(ConfigError, match="roi"):
        render_impression(1, 1, "r307")
