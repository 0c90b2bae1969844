"""Vein line map, shift-tolerant comparison, the 4-bit template, and the batched all-pairs scorer."""

from __future__ import annotations

import numpy as np
import pytest

from device.vein import template
from device.vein.lines import MAP_SIZE, vein_map
from device.vein.match import MARGIN, compare
from device.vein.region import find_region
from training.synth.dataset import identity_seed
from training.synth.vein import render_impression


def _roi(identity: int, impression: int) -> np.ndarray:
    return find_region(render_impression(identity_seed(9, identity, "vein"), impression, "roi")).roi


@pytest.fixture(scope="module")
def maps() -> np.ndarray:
    return np.stack([vein_map(_roi(i, k)) for i in range(4) for k in range(3)])


def test_a_dark_line_lights_up_the_map_there():
    img = np.full((96, 288), 180, np.uint8)
    img[44:52, :] = 120  # a horizontal vessel 8 px wide
    m = vein_map(img)
    assert m.shape == MAP_SIZE and m.dtype == np.float32 and (m >= 0).all()
    row = int(np.argmax(m[:, MAP_SIZE[1] // 2]))
    assert abs(row - 48 * MAP_SIZE[0] / 96) <= 1.5
    assert m[row].mean() > 5 * m[2].mean() + 1e-6


def test_bright_lines_and_flat_images_give_no_veins():
    flat = vein_map(np.full((96, 288), 150, np.uint8))
    assert float(flat.max()) == 0.0
    ridge = np.full((96, 288), 120, np.uint8)
    ridge[44:52] = 180  # a bright line is not a vessel
    centre = 16  # row 48 of 96
    assert float(vein_map(ridge)[centre].max()) < 0.1 * float(vein_map(255 - ridge)[centre].min())


def test_compare_is_symmetric_one_for_itself_and_shift_tolerant(maps):
    a, b = maps[0], maps[5]
    assert compare(a, a) == pytest.approx(1.0, abs=1e-5)
    assert compare(a, b) == pytest.approx(compare(b, a), abs=1e-6)
    shifted = np.roll(a, (2, 9), axis=(0, 1))  # inside the margin
    assert compare(a, shifted) > 0.9


def test_same_finger_scores_above_other_fingers(maps):
    labels = np.repeat(np.arange(4), 3)
    genuine, impostor = [], []
    for i in range(len(maps)):
        for j in range(i + 1, len(maps)):
            (genuine if labels[i] == labels[j] else impostor).append(compare(maps[i], maps[j]))
    assert np.mean(genuine) > np.mean(impostor) + 0.2
    assert np.median(genuine) > np.max(impostor) - 0.05


def test_blank_maps_match_nothing_and_bad_shapes_are_errors(maps):
    blank = np.zeros(MAP_SIZE, np.float32)
    assert compare(blank, maps[0]) == 0.0
    with pytest.raises(ValueError):
        compare(maps[0], maps[0][:, :50])
    with pytest.raises(ValueError):
        compare(np.zeros((8, 8), np.float32), np.zeros((8, 8), np.float32))


def test_template_round_trip_is_small_exact_and_keeps_the_score(maps):
    t = template.encode(maps[0])
    assert len(t) == template.HEADER + MAP_SIZE[0] * MAP_SIZE[1] // 2 < 2047
    q = template.decode(t)
    assert q.shape == MAP_SIZE and q.min() >= 0 and q.max() <= template.LEVELS
    assert template.encode(q) == t  # a quantized map re-encodes to the same bytes
    assert compare(q, template.decode(template.encode(maps[1]))) == pytest.approx(compare(maps[0], maps[1]), abs=0.03)


@pytest.mark.parametrize("bad", [b"", b"XX\x01\x20\x60", b"VL\x09\x20\x60" + bytes(1536), b"VL\x01\x20\x60" + bytes(3)])
def test_damaged_templates_are_typed_errors(bad):
    with pytest.raises(template.TemplateError):
        template.decode(bad)


def test_batched_scores_equal_the_device_comparison(maps):
    from training.vein_lines import score_matrix

    q = np.stack([template.decode(template.encode(m)) for m in maps])
    s = score_matrix(q, MARGIN)
    direct = np.array([[compare(q[a], q[b]) for b in range(len(q))] for a in range(len(q))])
    assert np.abs(s - direct).max() < 1e-4


def test_eval_pairs_switch_to_the_batched_scores_without_changing_them(maps, monkeypatch):
    from device.vein import backend
    from device.vein.backend import LineMatcher

    templates = [template.encode(m) for m in maps] + [None]
    pairs = np.array([(a, b) for a in range(len(templates)) for b in range(a + 1, len(templates))])
    slow = LineMatcher().compare_pairs(templates, pairs)
    monkeypatch.setattr(backend, "BULK_AFTER", 10)
    m = LineMatcher()
    first = m.compare_pairs(templates, pairs[:5])  # under the limit: per pair
    rest = m.compare_pairs(list(templates), pairs[5:])  # a new list of the same templates: batched from here
    assert m._bulk[2] is not None
    assert np.abs(np.concatenate([first, rest]) - slow).max() < 1e-4
    assert (slow[pairs[:, 1] == len(templates) - 1] == 0).all()  # a missing template scores 0
