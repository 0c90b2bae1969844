"""Training: config, batches, augmentation, mining, and a tiny run (with --resume) on a real synthetic set."""

import json

import numpy as np
import pytest

from device.errors import ConfigError, DatasetError
from training.augment import AugmentParams, augment
from training.batches import PKSampler, split_identities
from training.mining import mine_triplets
from training.train_config import build_config, load_train_config

pytest.importorskip("tensorflow")

from training_fixtures import *  # noqa: E402,F403 - fixtures


def test_config_presets_and_strictness(tmp_path):
    tiny = build_config(preset="tiny")
    assert tiny.optim.epochs == 2 and tiny.preset == "tiny"
    f = tmp_path / "t.toml"
    f.write_text('preset = "tiny"\n[loss]\nname = "eer"\ntarget_fmr = 0.001\n')
    cfg = load_train_config(f)
    assert cfg.loss.name == "eer" and cfg.loss.target_fmr == 0.001 and cfg.optim.epochs == 2
    f.write_text("[loss]\nnmae = 'eer'\n")
    with pytest.raises(ConfigError, match="loss.nmae"):
        load_train_config(f)
    with pytest.raises(ConfigError, match="preset"):
        build_config(preset="huge")
    with pytest.raises(ConfigError, match="out of range"):
        build_config({"optim": {"batch_k": 1}})


def test_split_is_identity_disjoint_and_seeded():
    labels = [f"id{i // 4}" for i in range(80)]
    s = split_identities(labels, 0.2, 0.2, seed=5)
    groups = [{labels[i] for i in part} for part in (s.train, s.val, s.test)]
    assert not (groups[0] & groups[1]) and not (groups[0] & groups[2]) and not (groups[1] & groups[2])
    assert sum(len(g) for g in groups) == 20 and len(groups[1]) == 4
    assert split_identities(labels, 0.2, 0.2, seed=5).as_dict(labels) == s.as_dict(labels)
    with pytest.raises(DatasetError):
        split_identities(["a"] * 5, 0.2, 0.2, seed=1)


def test_pk_sampler_batches_have_p_identities_with_k_each():
    rng = np.random.default_rng(0)
    images = rng.random((30, 16, 16), dtype=np.float32)
    labels = [f"id{i // 3}" for i in range(30)]
    x, y = PKSampler(images, labels, p=4, k=2, seed=1, augment=None).batch()
    assert x.shape == (8, 16, 16, 1)
    _, counts = np.unique(y, return_counts=True)
    assert len(counts) == 4 and set(counts) == {2}


def test_augment_keeps_shape_range_and_is_seeded():
    img = np.random.default_rng(0).random((64, 192), dtype=np.float32)
    a = augment(img, np.random.default_rng(7))
    b = augment(img, np.random.default_rng(7))
    assert a.shape == img.shape and a.dtype == np.float32
    assert 0.0 <= a.min() and a.max() <= 1.0
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, img)
    np.testing.assert_array_equal(augment(img, np.random.default_rng(1), AugmentParams(strength=0)), img)


def test_mining_hard_triplets_pick_farthest_genuine_and_closest_impostor():
    # identity a: 0, 1, 2 degrees... arranged so the answer is known
    ang = np.deg2rad([0, 10, 80, 15, 90, 100])
    emb = np.stack([np.cos(ang), np.sin(ang)], 1)
    labels = ["a", "a", "a", "b", "b", "b"]
    trip = mine_triplets(emb, labels, 200, np.random.default_rng(0), hard_fraction=1.0)
    for a, p, n in trip:
        assert labels[a] == labels[p] != labels[n] and a != p
        if a == 0:
            assert p == 2 and n == 3  # farthest genuine (80 deg), closest impostor (15 deg)
    easy = mine_triplets(None, labels, 50, np.random.default_rng(0))
    assert all(labels[a] == labels[p] != labels[n] for a, p, n in easy)


def test_tiny_config_trains_and_writes_outputs(tiny_run):
    out = tiny_run.out_dir
    for name in ("best.keras", "curves.png", "history.json", "split.json", "summary.json", "config.json"):
        assert (out / name).is_file(), name
    hist = json.loads((out / "history.json").read_text())
    assert [r["epoch"] for r in hist] == [1, 2]
    assert all(0.0 <= r["val_eer"] <= 1.0 and np.isfinite(r["loss"]) for r in hist)
    split = json.loads((out / "split.json").read_text())
    assert not set(split["train"]) & set(split["val"])
    assert tiny_run.best_epoch in (1, 2)
    from training.embed import KerasEmbedder, run_preprocessing

    assert run_preprocessing(out) == "vein-v1"  # export and eval read it back from the run
    assert KerasEmbedder.load(out / "best.keras").preprocessing_id == "vein-v1"


def test_resume_continues_from_last_checkpoint(tiny_prepared, tmp_path):
    from training.fit import fit

    cfg = build_config({"optim": {"epochs": 1}}, preset="tiny")
    fit(cfg, tiny_prepared, tmp_path / "r", progress=False)
    more = build_config({"optim": {"epochs": 2}}, preset="tiny")
    res = fit(more, tiny_prepared, tmp_path / "r", resume=True, progress=False)
    assert [r["epoch"] for r in res.history] == [1, 2]
    with pytest.raises(ConfigError, match="no checkpoint"):
        fit(cfg, tiny_prepared, tmp_path / "empty", resume=True, progress=False)


def test_eer_loss_and_offline_triplets_run(tiny_prepared, tmp_path):
    from training.fit import fit

    for loss in ("eer", "triplet"):
        cfg = build_config({"loss": {"name": loss, "triplets_per_batch": 4}, "optim": {"epochs": 1}}, preset="tiny")
        res = fit(cfg, tiny_prepared, tmp_path / loss, progress=False)
        assert np.isfinite(res.history[0]["loss"])


def test_cosface_trains_and_resumes_with_its_proxies(tiny_prepared, tmp_path):
    from training.fit import fit

    cfg = build_config({"loss": {"name": "cosface", "margin": 0.2, "scale": 16.0}, "optim": {"epochs": 1}},
                       preset="tiny")
    first = fit(cfg, tiny_prepared, tmp_path / "cf", progress=False)
    assert np.isfinite(first.history[0]["loss"]) and first.history[0]["loss"] > 0
    more = build_config({"loss": {"name": "cosface", "margin": 0.2, "scale": 16.0}, "optim": {"epochs": 2}},
                        preset="tiny")
    res = fit(more, tiny_prepared, tmp_path / "cf", resume=True, progress=False)
    assert [r["epoch"] for r in res.history] == [1, 2]
    assert (tmp_path / "cf" / "best.keras").is_file()


def test_select_on_fmr100_picks_the_epoch_with_the_lowest_validation_fnmr_at_fmr_1_percent(tiny_prepared, tmp_path):
    from training.fit import fit

    cfg = build_config({"optim": {"epochs": 3, "select_on": "fmr100", "patience": 5}}, preset="tiny")
    res = fit(cfg, tiny_prepared, tmp_path / "sel", progress=False)
    scores = [r["val_fmr100"] for r in res.history]
    assert res.best_epoch == 1 + int(np.argmin(scores))  # first epoch wins ties
    with pytest.raises(ConfigError, match="select_on"):
        build_config({"optim": {"select_on": "auc"}}, preset="tiny")
