"""Greedy forward matcher selection (training/fusion/greedy.py) on score arrays with a known answer."""

from __future__ import annotations

import numpy as np
import pytest

from training import metrics
from training.fusion.greedy import best_single, choose_fusion, greedy_forward, improves
from training.fusion.scores import cosine_matcher, evaluate_fusion, fold_all_impostors

N_GEN, N_IMP = 400, 4000


def matcher_scores(separation: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Genuine ~ N(separation, 1), impostor ~ N(0, 1), independent noise per seed."""
    rng = np.random.default_rng(seed)
    return rng.normal(separation, 1.0, N_GEN), rng.normal(0.0, 1.0, N_IMP)


def stack(*matchers: tuple[np.ndarray, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    return np.stack([m[0] for m in matchers], axis=1), np.stack([m[1] for m in matchers], axis=1)


def test_noise_matcher_is_never_selected():
    strong, noise = matcher_scores(2.5, 1), matcher_scores(0.0, 2)
    gen, imp = stack(noise, strong)
    sel = greedy_forward(gen, imp)
    assert sel.chosen == (1,) and sel.weights == (1.0,)


def test_complementary_matcher_is_selected_and_lowers_validation_eer():
    a, b, noise = matcher_scores(2.0, 3), matcher_scores(1.8, 4), matcher_scores(0.0, 5)
    gen, imp = stack(a, noise, b)
    sel = greedy_forward(gen, imp)
    assert sel.chosen[:2] == (0, 2) and 1 not in sel.chosen
    assert sum(sel.weights) == pytest.approx(1.0) and min(sel.weights) > 0
    assert 0.3 < sel.weights[1] < 0.7  # two independent views of similar strength get similar weights
    single = metrics.eer(*a).eer
    assert sel.key[0] < single - 0.01  # sqrt(2) better separation: EER clearly lower
    fused_g, fused_i = gen[:, list(sel.chosen)] @ sel.weights, imp[:, list(sel.chosen)] @ sel.weights
    assert metrics.eer(fused_g, fused_i).eer == pytest.approx(sel.key[0])


def test_duplicate_of_a_chosen_matcher_adds_nothing():
    a = matcher_scores(2.0, 6)
    gen, imp = stack(a, a, (a[0] * 3 + 1, a[1] * 3 + 1))  # an exact copy and an affine copy
    assert greedy_forward(gen, imp).chosen == (0,)


def test_start_is_the_best_matcher_on_validation_wherever_it_is_listed():
    weak, strong = matcher_scores(1.0, 7), matcher_scores(3.0, 8)
    gen, imp = stack(weak, weak, strong)
    assert best_single(gen, imp) == 2
    assert greedy_forward(gen, imp).chosen[0] == 2
    assert greedy_forward(gen, imp, start=0).chosen[0] == 0  # a given start is honoured


def test_improves_needs_more_than_noise():
    cur = (0.100, -2.0)
    assert improves((0.090, -2.0), cur, min_eer_gain=0.005)
    assert not improves((0.098, -2.0), cur, min_eer_gain=0.005)  # EER gain below the noise floor, same d'
    assert improves((0.098, -2.5), cur, min_eer_gain=0.005)  # small EER gain but d' 25 % larger
    assert improves((0.100, -2.2), cur, min_eer_gain=0.005)  # same EER, d' 10 % larger
    assert not improves((0.100, -2.05), cur, min_eer_gain=0.005)  # same EER, d' only 2.5 % larger
    assert not improves((0.101, -3.0), cur, min_eer_gain=0.005)  # higher EER never passes
    assert improves((0.0, -6.0), (0.0, -4.0), min_eer_gain=0.01)  # EER already 0: d' decides


def test_bad_shapes_are_refused():
    with pytest.raises(ValueError, match="same matchers"):
        greedy_forward(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="same matchers"):
        greedy_forward(np.zeros((0, 2)), np.zeros((5, 2)))


def test_choose_fusion_returns_a_callable_scheme_on_raw_scores():
    a, b, noise = matcher_scores(2.0, 9), matcher_scores(1.8, 10), matcher_scores(0.0, 11)
    val = {"a": (a[0] * 0.1, a[1] * 0.1), "noise": (noise[0] * 50, noise[1] * 50), "b": (b[0] + 7, b[1] + 7)}
    choice = choose_fusion(val)
    assert set(choice.selection.named(choice.names)) == {"a", "b"}
    fused = choice({n: v[0] for n, v in val.items()}), choice({n: v[1] for n, v in val.items()})
    assert metrics.eer(*fused).eer == pytest.approx(choice.selection.key[0])
    assert choice.describe()["normalization"] in ("minmax", "zscore", "tanh")


def test_all_impostor_pairs_of_a_fold():
    labels = ["a", "a", "b", "b", "c"]
    pairs = fold_all_impostors(labels, np.array([4, 0, 1, 2, 3]))
    assert len(pairs) == 10 - 2  # C(5, 2) minus the two genuine pairs
    assert all(labels[x] != labels[y] and x < y for x, y in pairs)
    assert len({(int(x), int(y)) for x, y in pairs}) == len(pairs)


def test_cross_validated_headline_ignores_a_noise_matcher_end_to_end():
    rng = np.random.default_rng(0)
    n_id, per = 20, 4
    labels = [f"id{k}" for k in range(n_id) for _ in range(per)]
    impressions = [str(j + 1) for _ in range(n_id) for j in range(per)]
    centres = rng.normal(size=(n_id, 16))
    good = np.stack([centres[int(lab[2:])] + rng.normal(scale=0.8, size=16) for lab in labels])
    noise = rng.normal(size=(len(labels), 16))
    res = evaluate_fusion({"noise": cosine_matcher(noise), "good": cosine_matcher(good)}, labels, impressions,
                          rules=("sum",))
    by = {r["scheme"]: r for r in res}
    fused, base = by["greedy weighted sum"], by["best single on validation"]
    assert [c["matcher"] for c in base["choices"]] == ["good", "good"]
    assert all(set(c["weights"]) == {"good"} for c in fused["choices"])
    # nothing added in either fold: the headline and its baseline have the same (validation z-scored) test scores
    assert fused["eer"] == pytest.approx(base["eer"]) and fused["eer_all"] == pytest.approx(base["eer_all"])
    assert base["eer_all"] == pytest.approx(by["good"]["eer_all"], abs=0.03)  # z-scoring per fold ~ raw pooling
    assert by["sum/zscore"]["eer_all"] > fused["eer_all"]  # the plain sum lets the noise in
