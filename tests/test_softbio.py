"""Soft-biometric study: splits never share a person, bad input stops early, features measure what they claim,
and the tool finds a planted sex signal but nothing where sex was assigned at random."""

from __future__ import annotations

import numpy as np
import pytest

from device.errors import ConfigError, DatasetError
from training.softbio import dataset as ds
from training.softbio import planted
from training.softbio.features import FEATURE_NAMES, extract_features, extract_one
from training.softbio.models import Budget, balanced_accuracy, parse_models
from training.softbio.splits import (
    balance,
    check_splittable,
    image_split,
    shared_keys,
    subject_split,
)
from training.softbio.study import StudyRequest, load_checked, study_on

# --- splits -------------------------------------------------------------------------------------------------------


def _random_subjects(seed: int, n: int = 60):
    rng = np.random.default_rng(seed)
    subjects, y = [], []
    for i in range(n):
        sex = int(rng.random() < 0.3)  # imbalanced, as SOCOFing
        k = int(rng.integers(1, 11))
        subjects += [f"s{i}"] * k
        y += [sex] * k
    return np.array(subjects), np.array(y)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_subject_split_is_disjoint_complete_and_stratified(seed):
    subjects, y = _random_subjects(seed)
    split = subject_split(subjects, y, seed=seed)
    parts = [set(subjects[p]) for p in (split.train, split.val, split.test)]
    assert not (parts[0] & parts[1]) and not (parts[0] & parts[2]) and not (parts[1] & parts[2])
    everything = np.sort(np.concatenate([split.train, split.val, split.test]))
    assert np.array_equal(everything, np.arange(subjects.size))  # every image exactly once
    for k in (0, 1):  # each class: about 20 % of its subjects in test, and present in every part
        n_k = np.unique(subjects[y == k]).size
        n_test = np.unique(subjects[split.test][y[split.test] == k]).size
        assert abs(n_test - 0.2 * n_k) <= 1
        assert all((y[p] == k).any() for p in (split.train, split.val, split.test))


def test_subject_split_is_reproducible_and_seeded():
    subjects, y = _random_subjects(5)
    a, b, c = subject_split(subjects, y, 3), subject_split(subjects, y, 3), subject_split(subjects, y, 4)
    assert np.array_equal(a.test, b.test) and np.array_equal(a.train, b.train)
    assert not np.array_equal(a.test, c.test)


def _socofing(tmp_path, subjects=12, fingers=2, altered=2, seed=0):
    return planted.write_socofing_set(tmp_path / "SOCOFing", subjects, fingers, seed=seed, altered_per_print=altered,
                                      size=48)


def test_altered_images_follow_their_source_and_person(tmp_path):
    samples, skipped, layout = ds.label_samples(_socofing(tmp_path))
    assert layout == "socofing" and not skipped
    subjects = np.array([s.subject for s in samples])
    sources = np.array([s.source for s in samples])
    altered = np.array([s.alteration != "none" for s in samples])
    y = np.array([ds.CLASSES.index(s.sex) for s in samples])
    assert altered.sum() == 12 * 2 * 2 and (~altered).sum() == 12 * 2
    split = subject_split(subjects, y, seed=0)
    assert shared_keys(split, subjects) == set()
    assert shared_keys(split, sources) == set()
    where = {}
    for part, idx in split.parts().items():
        for i in idx:
            where[i] = part
    real_part = {sources[i]: where[i] for i in range(len(samples)) if not altered[i]}
    for i in np.flatnonzero(altered):
        assert where[i] == real_part[sources[i]]  # an altered copy sits beside its real print


def test_image_split_shares_people_between_parts(tmp_path):
    samples, _, _ = ds.label_samples(_socofing(tmp_path, subjects=20, fingers=3))
    subjects = np.array([s.subject for s in samples])
    y = np.array([ds.CLASSES.index(s.sex) for s in samples])
    split = image_split(y, seed=0)
    assert sorted(np.concatenate([split.train, split.val, split.test]).tolist()) == list(range(len(samples)))
    assert shared_keys(split, subjects)  # the leak the study measures


def test_balance_under_and_over():
    y = np.array([0] * 10 + [1] * 30)
    idx = np.arange(40)
    under = balance(idx, y, "under", np.random.default_rng(0))
    over = balance(idx, y, "over", np.random.default_rng(0))
    assert np.bincount(y[under]).tolist() == [10, 10] and len(set(under.tolist())) == 20
    assert np.bincount(y[over]).tolist() == [30, 30] and set(over.tolist()) == set(range(40))
    assert np.array_equal(balance(idx, y, "none", np.random.default_rng(0)), idx)
    with pytest.raises(DatasetError):
        balance(idx[:10], y, "over", np.random.default_rng(0))


# --- bad input ----------------------------------------------------------------------------------------------------


def _manifest(tmp_path, rows, header="dataset,relpath,identity,impression,sex"):
    import cv2

    (tmp_path / "d").mkdir(exist_ok=True)
    for row in rows:
        cv2.imwrite(str(tmp_path / "d" / row.split(",")[1]), np.full((40, 40), 128, np.uint8))
    (tmp_path / "manifest.csv").write_text("\n".join([header, *rows]) + "\n")
    return tmp_path / "manifest.csv"


def test_one_class_stops_before_any_image_is_decoded(tmp_path, monkeypatch):
    m = _manifest(tmp_path, [f"d,{i}.png,{i},1,male" for i in range(12)])
    monkeypatch.setattr(ds, "decode", lambda *a, **k: pytest.fail("decoded images before checking classes"))
    with pytest.raises(DatasetError, match="only one class"):
        load_checked(StudyRequest(m, tmp_path / "out", progress=False))


def test_too_few_subjects_for_the_splits(tmp_path, monkeypatch):
    rows = [f"d,{i}.png,{i},1,{'female' if i < 3 else 'male'}" for i in range(12)]
    m = _manifest(tmp_path, rows)
    monkeypatch.setattr(ds, "decode", lambda *a, **k: pytest.fail("decoded images before checking the splits"))
    with pytest.raises(DatasetError, match="too few subjects for the subject split: class F has 3"):
        load_checked(StudyRequest(m, tmp_path / "out", progress=False))
    with pytest.raises(DatasetError, match="too few images"):
        check_splittable(np.arange(6).astype(str), np.array([0, 0, 0, 1, 1, 1]), ["image"])


def test_names_that_do_not_parse_are_listed_and_skipped(tmp_path):
    root = _socofing(tmp_path, subjects=6, fingers=1, altered=0)
    (root / "Real" / "holiday_photo.bmp").write_bytes(next((root / "Real").iterdir()).read_bytes())
    (root / "Real" / "7__M_Left_index_finger.bmp").write_bytes(b"")  # parses, but cannot be read
    samples, skipped, _ = ds.label_samples(root)
    reasons = {p.name: r for p, r in skipped}
    assert "holiday_photo.bmp" in reasons and "SOCOFing" in reasons["holiday_photo.bmp"]
    data = ds.decode(samples, 32, skipped, progress=False)
    reasons = {p.name: r for p, r in data.skipped}
    assert "7__M_Left_index_finger.bmp" in reasons
    assert len(data) == 6 and data.images.shape == (6, 32, 32) and data.images.dtype == np.uint8


def test_manifest_sex_values_and_consistency(tmp_path):
    rows = ["d,a.png,a,1,F", "d,b.png,b,1,male", "d,c.png,c,1,unknown", "d,e.png,e,1,"]
    samples, skipped, _ = ds.label_samples(_manifest(tmp_path, rows))
    assert [s.sex for s in samples] == ["F", "M"]
    assert any("'unknown'" in r for _, r in skipped) and any("no sex" in r for _, r in skipped)
    with pytest.raises(DatasetError, match="labelled both"):
        ds.label_samples(_manifest(tmp_path, ["d,a.png,a,1,F", "d,b.png,a,2,M"]))
    no_sex = _manifest(tmp_path, ["d,a.png,a,1"], header="dataset,relpath,identity,impression")
    with pytest.raises(DatasetError, match="no image carries a sex label"):
        ds.label_samples(no_sex)


def test_unknown_model_and_split_names():
    with pytest.raises(ConfigError, match="unknown model"):
        parse_models("svm,vgg")
    assert parse_models("svm, cnn,svm") == ["svm", "cnn"]
    with pytest.raises(DatasetError, match="unknown split"):
        check_splittable(np.array(["a"]), np.array([0]), ["person"])


def test_permute_sex_keeps_one_label_per_subject_and_the_class_counts(tmp_path):
    samples, _, _ = ds.label_samples(_socofing(tmp_path, subjects=20, fingers=2, altered=1))
    permuted = ds.permute_sex(samples, seed=3)
    by_subject = {}
    for s in permuted:
        by_subject.setdefault(s.subject, set()).add(s.sex)
    assert all(len(v) == 1 for v in by_subject.values())
    assert sorted(s.sex for s in permuted) == sorted(s.sex for s in samples)
    assert [s.sex for s in permuted] != [s.sex for s in samples]


# --- features -----------------------------------------------------------------------------------------------------


def _grating(period: float, size: int = 96, duty: float = 0.5, angle: float = 0.4) -> np.ndarray:
    ys, xs = np.mgrid[0:size, 0:size]
    phase = ((xs * np.cos(angle) + ys * np.sin(angle)) / period) % 1.0
    return np.where(phase < duty, 40, 220).astype(np.uint8)  # dark ridges


def test_ridge_density_matches_a_known_grating_and_scales_with_dpi():
    f = dict(zip(FEATURE_NAMES, extract_one(_grating(6.0), 500.0), strict=True))
    expected = 500 / 25.4 / 6.0 * 5 * np.sqrt(2)  # ridges along the 5 mm square's diagonal
    assert f["ridges_per_25mm2"] == pytest.approx(expected, rel=0.04)
    assert f["ridges_per_25mm2_distal"] == pytest.approx(expected, rel=0.06)
    coarse = dict(zip(FEATURE_NAMES, extract_one(_grating(6.0), 250.0), strict=True))  # same pixels, 2x the mm
    assert coarse["ridges_per_25mm2"] == pytest.approx(f["ridges_per_25mm2"] / 2, rel=0.03)
    shares = [v for k, v in f.items() if k.startswith("energy_")]
    assert sum(shares) == pytest.approx(1.0) and max(shares) > 0.5


def test_ridge_valley_ratio_follows_the_duty_cycle():
    thin = dict(zip(FEATURE_NAMES, extract_one(_grating(10.0, duty=0.3), 500.0), strict=True))
    thick = dict(zip(FEATURE_NAMES, extract_one(_grating(10.0, duty=0.6), 500.0), strict=True))
    assert thin["ridge_valley_ratio"] == pytest.approx(0.3 / 0.7, abs=0.1)
    assert thick["ridge_valley_ratio"] == pytest.approx(0.6 / 0.4, abs=0.25)
    assert thin["ridge_width_mm"] < thick["ridge_width_mm"]


def test_features_are_finite_on_blank_images():
    x = extract_features(np.stack([np.full((64, 64), 200, np.uint8), _grating(7.0, 64)]), np.array([500.0, 500.0]),
                         progress=False)
    assert x.shape == (2, len(FEATURE_NAMES)) and np.isfinite(x).all()


# --- the planted signal, found; the random one, not -----------------------------------------------------------


@pytest.fixture(scope="module")
def planted_data():
    data = planted.planted_set(300, impressions=2, seed=11, signal=True)
    return data, extract_features(data.images, data.dpi, progress=False)


def _svm_subject(data, features, seed=0):
    req = StudyRequest(data=None, out=None, splits=("subject",), models=("svm",), budget=Budget(seed=seed),
                       progress=False)
    return study_on(data, req, features=features, log=lambda m: None)["evaluations"][0]


def _mean_over_splits(data, features, seeds=range(5)):
    """Balanced accuracy averaged over five subject-disjoint splits (one split of 60 test subjects is noisy)."""
    return float(np.mean([_svm_subject(data, features, seed)["balanced_accuracy"] for seed in seeds]))


def test_planted_signal_is_found_with_subject_disjoint_splits(planted_data):
    data, features = planted_data
    ev = _svm_subject(data, features)
    assert ev["test_subjects"] == 60
    assert ev["balanced_accuracy"] >= 0.65, ev["balanced_accuracy"]
    assert ev["auc"] >= 0.7
    assert _mean_over_splits(data, features) >= 0.65
    j = FEATURE_NAMES.index("ridges_per_25mm2")  # the generator's model: women about 15.8, men 13.7
    assert features[data.y == 0, j].mean() == pytest.approx(15.84, abs=0.6)
    assert features[data.y == 1, j].mean() == pytest.approx(13.67, abs=0.6)


def test_nothing_is_found_when_sex_is_shuffled_across_subjects(planted_data):
    data, features = planted_data
    rng = np.random.default_rng(5)
    subjects = np.unique(data.subjects)
    new = dict(zip(subjects, rng.permutation([data.y[data.subjects == s][0] for s in subjects]), strict=True))
    shuffled = ds.SoftbioSet(**{**data.__dict__, "y": np.array([new[s] for s in data.subjects])})
    mean = _mean_over_splits(shuffled, features)
    assert abs(mean - 0.5) <= 0.12, mean


def test_nothing_is_found_when_sex_is_independent_of_ridge_density():
    data = planted.planted_set(300, impressions=2, seed=12, signal=False)
    mean = _mean_over_splits(data, extract_features(data.images, data.dpi, progress=False))
    assert abs(mean - 0.5) <= 0.12, mean


def test_balanced_accuracy_is_chance_for_a_constant_guess():
    y = np.array([0] * 10 + [1] * 90)
    assert balanced_accuracy(y, np.ones_like(y)) == 0.5
    assert balanced_accuracy(y, y) == 1.0
