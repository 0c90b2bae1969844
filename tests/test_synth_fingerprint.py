"""Synthetic fingerprints: deterministic, stable per identity, attribute effects, profiles write what they claim."""

from __future__ import annotations

import csv
from collections import Counter

import cv2
import numpy as np
import pytest

from device.errors import ConfigError, DatasetError
from training.synth import generate_dataset
from training.synth.alterations import ALTERATIONS, alter
from training.synth.attributes import CLASS_PROPORTIONS, ridges_to_period_px, sample_attributes
from training.synth.fingerprint import make_master, render_impression
from training.synth.orientation import SingularPoints, zero_pole_field
from training.synth.profiles import PROFILES, get_profile, quantize


def _ridge_orientation(img: np.ndarray) -> np.ndarray:
    """Doubled-angle orientation vectors from smoothed gradients (a simple, matcher-free similarity)."""
    f = img.astype(np.float32)
    gx, gy = cv2.Sobel(f, cv2.CV_32F, 1, 0), cv2.Sobel(f, cv2.CV_32F, 0, 1)
    c = cv2.GaussianBlur(gx * gx - gy * gy, (0, 0), 8)
    s = cv2.GaussianBlur(2 * gx * gy, (0, 0), 8)
    return np.arctan2(s, c)


def _similarity(a: np.ndarray, b: np.ndarray) -> float:
    """Best mean orientation agreement over small shifts (impressions move between captures)."""
    oa, ob = _ridge_orientation(a)[::4, ::4], _ridge_orientation(b)[::4, ::4]  # smooth anyway: subsample
    best = -1.0
    for dy in range(-10, 11, 2):
        for dx in range(-10, 11, 2):
            sa = oa[max(0, dy):oa.shape[0] + min(0, dy), max(0, dx):oa.shape[1] + min(0, dx)]
            sb = ob[max(0, -dy):ob.shape[0] + min(0, -dy), max(0, -dx):ob.shape[1] + min(0, -dx)]
            best = max(best, float(np.mean(np.cos(sa - sb))))
    return best


def test_render_is_deterministic_and_depends_on_identity_and_impression():
    a = render_impression(7, 1, "r307")
    assert np.array_equal(a, render_impression(7, 1, "r307"))
    assert not np.array_equal(a, render_impression(7, 2, "r307"))
    assert not np.array_equal(a, render_impression(8, 1, "r307"))


@pytest.mark.parametrize("name", [p.name for p in PROFILES.values() if p.modality == "fingerprint"])
def test_every_fingerprint_profile_writes_its_size_and_grey_depth(name):
    prof = get_profile(name, "fingerprint")
    img = render_impression(7, 3, name)
    assert img.dtype == np.uint8
    assert img.shape == (prof.height, prof.width)
    levels = np.unique(img)
    if prof.bits == 4:
        assert set(levels.tolist()) <= {17 * k for k in range(16)}
    else:
        assert levels.size > 16  # a real 8-bit image, not a secretly quantized one
    assert img.std() > 10  # ridges are visible


def test_r307_profile_matches_the_module():
    prof = get_profile("r307")
    assert (prof.width, prof.height, prof.dpi, prof.bits) == (256, 288, 500, 4)
    q = quantize(np.arange(256), 4)
    assert set(np.unique(q).tolist()) == {17 * k for k in range(16)}


def test_unknown_profile_is_a_config_error_naming_the_choices():
    with pytest.raises(ConfigError, match="r307"):
        get_profile("nope", "fingerprint")
    with pytest.raises(ConfigError):
        get_profile("roi", "fingerprint")  # a vein profile is not a fingerprint profile


def test_impressions_of_one_finger_are_more_alike_than_different_fingers():
    ids = range(4)
    imgs = {i: [render_impression(100 + i, k, "r307") for k in (1, 2)] for i in ids}
    genuine = [_similarity(imgs[i][0], imgs[i][1]) for i in ids]
    impostor = [_similarity(imgs[i][0], imgs[j][0]) for i in ids for j in ids if i < j]
    assert np.mean(genuine) > np.mean(impostor) + 0.1
    assert np.median(genuine) > np.max(impostor) - 0.05


def test_women_have_finer_ridges_on_average():
    rng = np.random.default_rng(0)
    draws = [sample_attributes(rng) for _ in range(1000)]
    f = [a.ridge_period for a in draws if a.sex == "female"]
    m = [a.ridge_period for a in draws if a.sex == "male"]
    assert np.mean(f) < np.mean(m) - 0.8
    assert 8.8 < np.mean(f + m) < 10.0  # about 9-10 px at 500 dpi overall
    assert ridges_to_period_px(15.02) == pytest.approx(9.27, abs=0.01)


def test_female_masters_have_measurably_shorter_ridge_periods():
    """Measure the period in the rendered ridges (FFT peak), not just the attribute."""

    def measured_period(seed: int) -> tuple[str, float]:
        m = make_master(seed)
        patch = m.ridges[150:278, 120:248]
        spec = np.abs(np.fft.fftshift(np.fft.fft2(patch - patch.mean())))
        yy, xx = np.mgrid[-64:64, -64:64]
        r = np.hypot(yy, xx)
        radial = np.bincount(r.astype(int).ravel(), spec.ravel())[4:40]
        return m.attributes.sex, 128 / (4 + int(np.argmax(radial)))

    sexes = {s: sample_attributes(np.random.default_rng([s, 0xF1])).sex for s in range(40)}  # as make_master draws
    seeds = [s for s in sexes if sexes[s] == "female"][:3] + [s for s in sexes if sexes[s] == "male"][:3]
    pairs = [measured_period(s) for s in seeds]
    f = [p for s, p in pairs if s == "female"]
    m = [p for s, p in pairs if s == "male"]
    assert f and m
    assert np.mean(f) < np.mean(m)


def test_pattern_class_proportions_follow_the_published_figures():
    rng = np.random.default_rng(1)
    n = 3000
    counts = Counter(sample_attributes(rng).pattern_class for _ in range(n))
    for cls, p in CLASS_PROPORTIONS.items():
        assert abs(counts[cls] / n - p) < 0.03, (cls, counts[cls] / n, p)  # about 3.5 sigma for loops


def test_zero_pole_field_turns_half_a_turn_around_a_core():
    theta = zero_pole_field((101, 101), SingularPoints(((50.0, 50.0),), ()))
    angles = np.linspace(0, 2 * np.pi, 64, endpoint=False)
    ring = [theta[int(50 + 20 * np.sin(a)), int(50 + 20 * np.cos(a))] for a in angles]
    steps = np.diff(np.r_[ring, ring[0]])
    steps = (steps + np.pi / 2) % np.pi - np.pi / 2  # orientation differences mod pi
    assert np.sum(steps) == pytest.approx(np.pi, abs=0.2)


@pytest.mark.parametrize("kind", ALTERATIONS)
def test_alterations_change_the_print_but_keep_its_shape(kind):
    img = render_impression(7, 1, "r307")
    out = alter(img, kind, np.random.default_rng(0))
    assert out.shape == img.shape and out.dtype == np.uint8
    assert np.mean(out != img) > 0.02


def test_dataset_is_byte_identical_for_a_seed_and_independent_of_workers(tmp_path):
    a = generate_dataset("fingerprint", 2, 2, "capacitive96", 5, tmp_path / "a", workers=1, progress=False)
    b = generate_dataset("fingerprint", 2, 2, "capacitive96", 5, tmp_path / "b", workers=2, progress=False)
    c = generate_dataset("fingerprint", 2, 2, "capacitive96", 6, tmp_path / "c", workers=1, progress=False)
    assert a.read_bytes() == b.read_bytes()
    rows = list(csv.DictReader(a.open()))
    assert len(rows) == 4 and {r["impression"] for r in rows} == {"1", "2"}
    for r in rows:
        pa = a.parent / r["dataset"] / r["relpath"]
        assert pa.read_bytes() == (b.parent / r["dataset"] / r["relpath"]).read_bytes()
    differs = [(a.parent / r["dataset"] / r["relpath"]).read_bytes() != (c.parent / r["dataset"] / r["relpath"])
               .read_bytes() for r in rows]
    assert all(differs)


def test_manifest_records_attributes_and_alterations(tmp_path):
    m = generate_dataset("fingerprint", 1, 3, "capacitive96", 5, tmp_path / "d", workers=1, altered=1.0,
                         progress=False)
    rows = list(csv.DictReader(m.open()))
    assert {"pattern_class", "sex", "ridge_period", "alteration"} <= set(rows[0])
    assert all(r["alteration"] in ALTERATIONS for r in rows)
    assert all(r["sex"] in ("female", "male") for r in rows)
    img = cv2.imread(str(m.parent / rows[0]["dataset"] / rows[0]["relpath"]), cv2.IMREAD_UNCHANGED)
    assert img.shape == (96, 96) and img.dtype == np.uint8


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"identities": 0}, "identities"),
        ({"impressions": 0}, "impressions"),
        ({"profile": "nope"}, "profile"),
        ({"modality": "iris"}, "modality"),
    ],
)
def test_bad_arguments_write_nothing(tmp_path, kwargs, match):
    args = {"modality": "fingerprint", "identities": 2, "impressions": 2, "profile": "r307", "seed": 1,
            "out": tmp_path / "out"}
    args.update(kwargs)
    with pytest.raises((DatasetError, ConfigError), match=match):
        generate_dataset(**args, progress=False)
    assert not (tmp_path / "out").exists()


def test_non_empty_folder_needs_force_and_unwritable_places_are_refused(tmp_path):
    out = tmp_path / "busy"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    with pytest.raises(DatasetError, match="--force"):
        generate_dataset("fingerprint", 1, 1, "capacitive96", 1, out, progress=False)
    assert sorted(p.name for p in out.iterdir()) == ["keep.txt"]
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(DatasetError, match="not a folder"):
        generate_dataset("fingerprint", 1, 1, "capacitive96", 1, blocker / "sub", progress=False)
    m = generate_dataset("fingerprint", 1, 1, "capacitive96", 1, out, force=True, workers=1, progress=False)
    assert m.is_file() and (out / "keep.txt").read_text() == "mine"


def test_gentle_training_profile_gives_more_contact_and_agreement_than_the_calibrated_one():
    from device.fingerprint_ops import segment, shrink_for_work

    def area(img: np.ndarray) -> float:
        return float(segment(shrink_for_work(img)).mask.mean())

    fingers = range(40, 46)
    calibrated = [render_impression(f, k, "r307") for f in fingers for k in (1, 2)]
    gentle = [render_impression(f, k, "r307-gentle") for f in fingers for k in (1, 2)]
    assert np.mean([area(i) for i in gentle]) > np.mean([area(i) for i in calibrated]) + 0.05
    agree_g = np.mean([_similarity(gentle[2 * i], gentle[2 * i + 1]) for i in range(len(fingers))])
    agree_c = np.mean([_similarity(calibrated[2 * i], calibrated[2 * i + 1]) for i in range(len(fingers))])
    assert agree_g > agree_c
    assert get_profile("r307-gentle").variability == "gentle" and get_profile("r307").variability == "calibrated"
