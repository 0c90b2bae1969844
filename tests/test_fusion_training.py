"""Training-side fusion: entropy selection, feature-level fusion, classifiers, cross-validated score fusion,
multimodal pairing and the fusion card builder."""

from __future__ import annotations

import numpy as np
import pytest

from device.errors import DatasetError
from device.fusion import fuse_decision, parse_fusion_card
from training import metrics
from training.fusion.card_builder import build_card
from training.fusion.classifiers import CLASSIFIERS, identify, split_enrolment
from training.fusion.scores import (
    cosine_matcher,
    evaluate_fusion,
    feature_fusion_matcher,
    fold_test_pairs,
    identity_folds,
    learn_weights,
    simplex_grid,
)
from training.fusion.selection import FeatureFusion, mutual_information, select_informative
from training.fusion.sets import ImageSet, pair_multimodal


def blobs(n_id: int = 12, per: int = 5, dim: int = 16, noise: float = 1.0, seed: int = 0, shift: int = 0):
    """Identity centres plus noise; ``shift`` draws a different, independent view of the same identities."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(100 + shift).normal(size=(n_id, dim))
    labels = [f"id{k}" for k in range(n_id) for _ in range(per)]
    impressions = [str(j + 1) for _ in range(n_id) for j in range(per)]
    x = np.stack([centres[int(lab[2:])] + rng.normal(scale=noise, size=dim) for lab in labels])
    return x, labels, impressions


def test_mutual_information_ranks_identity_dimension_first_and_constant_last():
    rng = np.random.default_rng(0)
    labels = [str(k) for k in range(8) for _ in range(4)]
    informative = np.array([float(lab) for lab in labels]) + rng.normal(0, 0.01, len(labels))
    x = np.stack([rng.normal(size=len(labels)), informative, np.zeros(len(labels))], axis=1)
    mi = mutual_information(x, labels, bins=8)
    assert mi[1] == pytest.approx(3.0, abs=0.05)  # 8 identities in 8 bins: log2(8) bits
    assert mi[2] == 0.0
    assert mi[1] > mi[0] > mi[2]
    assert list(select_informative(x, labels, k=2)) == [1, 0]


def test_feature_fusion_selects_k_dims_and_balances_blocks():
    a, labels, _ = blobs(dim=100)
    b, _, _ = blobs(dim=10, shift=1)
    fusion = FeatureFusion.fit({"a": a, "b": b}, labels, k=20)
    out = fusion({"a": a, "b": b})
    assert out.shape == (len(labels), 20) and np.isfinite(out).all()
    assert fusion.selected.max() < 110 and len(set(fusion.selected)) == 20
    with pytest.raises(ValueError, match="missing"):
        fusion({"a": a})


def test_split_enrolment_takes_lowest_impressions():
    labels = ["a", "a", "a", "b", "b", "b"]
    impressions = ["3", "1", "2", "10", "2", "1"]
    train, test = split_enrolment(labels, impressions, 2)
    assert list(train) == [1, 2, 4, 5] and list(test) == [0, 3]


@pytest.mark.parametrize("clf", CLASSIFIERS)
def test_classifiers_identify_separable_identities(clf):
    x, labels, impressions = blobs(n_id=6, per=6, noise=0.3)
    train, test = split_enrolment(labels, impressions, 3)
    r = identify(clf, x[train], [labels[i] for i in train], x[test], [labels[i] for i in test])
    assert r.probes == 18 and r.identities == 6
    assert r.genuine.size == 18 and r.impostor.size == 18 * 5
    assert r.rank1 >= (0.7 if clf == "tree" else 0.99)
    assert metrics.eer(r.genuine, r.impostor).eer <= (0.3 if clf == "tree" else 0.05)


def test_unknown_classifier():
    x, labels, _ = blobs(n_id=3, per=2)
    with pytest.raises(ValueError, match="unknown classifier"):
        identify("forest", x, labels, x, labels)


def test_folds_are_identity_disjoint_and_pairs_follow_fvc():
    _, labels, impressions = blobs(n_id=10, per=4)
    folds = identity_folds(labels, 2)
    assert sorted(np.concatenate(folds)) == list(range(len(labels)))
    ids = [{labels[i] for i in f} for f in folds]
    assert not ids[0] & ids[1]
    g, i = fold_test_pairs(labels, impressions, folds[0])
    assert len(g) == 5 * 6 and len(i) == 10  # 5 identities: C(4,2) genuine each, C(5,2) impostor
    assert all(labels[a] == labels[b] for a, b in g) and all(labels[a] != labels[b] for a, b in i)


def test_simplex_grid_and_learned_weights_prefer_the_informative_matcher():
    grid = simplex_grid(3)
    assert np.allclose(grid.sum(axis=1), 1) and (grid >= 0).all() and len(grid) == 66  # step 0.1
    assert len(simplex_grid(6)) <= 400 and len(simplex_grid(2)) == 11
    rng = np.random.default_rng(0)
    gen = np.stack([rng.normal(1, 0.3, 200), rng.normal(0, 1, 200)], axis=1)  # matcher 0 informative
    imp = np.stack([rng.normal(0, 0.3, 500), rng.normal(0, 1, 500)], axis=1)
    w = learn_weights(gen, imp)
    assert w[0] > 0.7 and w.sum() == pytest.approx(1.0)


def test_score_fusion_of_independent_views_beats_each_view():
    a, labels, impressions = blobs(n_id=24, per=4, noise=1.6, seed=1)
    b, _, _ = blobs(n_id=24, per=4, noise=1.6, seed=2, shift=1)
    c = np.concatenate([a[:, :8], b[:, 8:]], axis=1)  # unrelated third view for the feature level
    res = evaluate_fusion({"a": cosine_matcher(a), "b": cosine_matcher(b)}, labels, impressions,
                          {"concat": feature_fusion_matcher({"a": a, "b": b, "c": c}, labels, k=24)})
    by = {r["scheme"]: r for r in res}
    assert {r["genuine_pairs"] for r in res} == {24 * 6} and len({r["impostor_pairs"] for r in res}) == 1
    assert len(res) == 2 + 1 + 2 + 3 * 4  # singles, feature level, best-on-validation + greedy, rules x norms
    best_single = min(by["a"]["eer"], by["b"]["eer"])
    assert by["sum/zscore"]["eer"] < best_single
    assert by["weighted_sum/zscore"]["eer"] < best_single
    fused, base = by["greedy weighted sum"], by["best single on validation"]
    assert fused["kind"] == "greedy" and base["kind"] == "val-single"
    assert fused["eer"] < best_single and fused["eer_all"] < base["eer_all"]
    assert [set(c["weights"]) for c in fused["choices"]] == [{"a", "b"}] * 2  # both views chosen in both folds
    assert {c["matcher"] for c in base["choices"]} <= {"a", "b"}
    # all cross-identity pairs of a fold of 12 identities x 4: C(48, 2) - 12 * C(4, 2) = 1056, two folds
    assert {r["impostor_pairs_all"] for r in res} == {2 * 1056}
    assert len(by["weighted_sum/tanh"]["weights"]) == 2  # one per fold
    for r in res:
        assert 0 <= r["far"] <= 1 and 0 <= r["frr"] <= 1


def test_multimodal_pairing_by_index_truncates_impressions():
    fp = ImageSet("fp", "fingerprint", [], [f"f{k}" for k in range(5) for _ in range(8)],
                  [str(j + 1) for _ in range(5) for j in range(8)])
    vein = ImageSet("v", "vein", [], [f"v{k}" for k in range(6) for _ in range(6)],
                    [str(j + 1) for _ in range(6) for j in range(6)])
    m = pair_multimodal(fp, vein, "both", "test")
    assert m.identities == 5 and len(m.labels) == 30
    fp_rows, vein_rows = m.parts["fp"][1], m.parts["vein"][1]
    assert fp.labels[fp_rows[7]] == "f1" and fp.impressions[fp_rows[7]] == "2"
    assert vein.labels[vein_rows[7]] == "v1" and vein.impressions[vein_rows[7]] == "2"
    with pytest.raises(DatasetError, match="cannot pair"):
        pair_multimodal(fp, ImageSet("v", "vein", [], ["a", "b"], ["1", "1"]), "x", "")


def test_card_builder_writes_a_valid_card_that_decides():
    a, labels, _ = blobs(n_id=15, per=4, noise=0.6, seed=3)
    b, _, _ = blobs(n_id=15, per=4, noise=0.6, seed=4, shift=1)
    card = build_card({"fingerprint": a, "vein": b}, {"fingerprint": "fp@1", "vein": None}, labels,
                      "weighted_sum/tanh", "blobs")
    again = parse_fusion_card(card.to_dict(), expected_matchers=["fingerprint", "vein"])
    t = again.thresholds
    assert t["2e-5"] >= t["1e-4"] >= t["1e-3"]
    na = a / np.linalg.norm(a, axis=1, keepdims=True)
    nb = b / np.linalg.norm(b, axis=1, keepdims=True)
    genuine = {"fingerprint": float(na[0] @ na[1]), "vein": float(nb[0] @ nb[1])}
    impostor = {"fingerprint": float(na[0] @ na[4]), "vein": float(nb[0] @ nb[4])}
    assert fuse_decision(genuine, again, "convenient", False).accepted
    assert not fuse_decision(impostor, again, "convenient", False).accepted
    assert card.extra["metrics"]["genuine_pairs"] == 15 * 6
