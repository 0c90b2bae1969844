"""Matching: pure functions, property-based (hypothesis) plus a few known answers."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from device.errors import ConfigError, ModelError
from device.matching import (
    accept,
    agreeing_subset,
    cosine_scores,
    get_rule,
    identify,
    identify_scores,
    normalize,
    pairwise,
    threshold_for,
    verify_score,
)

DIM = 16
finite = st.floats(-10, 10, allow_nan=False, width=32)


def unit_rows(n_min: int = 1, n_max: int = 12):
    return arrays(np.float32, st.tuples(st.integers(n_min, n_max), st.just(DIM)), elements=finite).filter(
        lambda a: np.all(np.linalg.norm(a, axis=1) > 1e-3)
    ).map(lambda a: a / np.linalg.norm(a, axis=1, keepdims=True))


@settings(max_examples=60, deadline=None)
@given(unit_rows(2, 12))
def test_scores_in_range_and_symmetric(rows):
    m = pairwise(rows)
    assert np.all(m >= -1) and np.all(m <= 1)
    np.testing.assert_allclose(m, m.T, atol=1e-6)
    np.testing.assert_allclose(np.diag(m), 1.0, atol=1e-5)
    np.testing.assert_allclose(cosine_scores(rows[0], rows), m[0], atol=1e-6)


@settings(max_examples=60, deadline=None)
@given(unit_rows(2, 20), st.randoms(use_true_random=False))
def test_permutation_invariance(rows, rnd):
    probe, gallery = rows[0], rows[1:]
    users = [f"u{i % 3}" for i in range(len(gallery))]
    order = list(range(len(gallery)))
    rnd.shuffle(order)
    shuffled_users = [users[i] for i in order]
    assert math.isclose(verify_score(probe, gallery), verify_score(probe, gallery[order]), abs_tol=1e-6)
    a, b = identify_scores(probe, gallery, users), identify_scores(probe, gallery[order], shuffled_users)
    assert a.keys() == b.keys() and all(math.isclose(a[k], b[k], abs_tol=1e-6) for k in a)
    top_a, top_b = identify(probe, gallery, users, top=1), identify(probe, gallery[order], shuffled_users, top=1)
    assert math.isclose(top_a[0].score, top_b[0].score, abs_tol=1e-6)
    assert math.isclose(top_a[0].score, max(a.values()), abs_tol=1e-6)


@settings(max_examples=60, deadline=None)
@given(unit_rows(1, 30), st.integers(1, 4))
def test_identify_top_k_agrees_with_brute_force(rows, top):
    probe, gallery = rows[0], rows
    users = [f"u{i % 5}" for i in range(len(gallery))]
    ranked = identify(probe, gallery, users, top=top)
    brute = sorted(identify_scores(probe, gallery, users).values(), reverse=True)[:top]
    assert [round(c.score, 5) for c in ranked] == [round(s, 5) for s in brute]
    assert ranked[0].score == pytest.approx(1.0, abs=1e-5)  # the probe is in the gallery


@settings(max_examples=80, deadline=None)
@given(st.floats(-1, 1), st.floats(-1, 1), st.floats(-1, 1))
def test_threshold_monotonic(score, t1, t2):
    lo, hi = sorted((t1, t2))
    if accept(score, hi):
        assert accept(score, lo)  # a stricter threshold never accepts what a laxer one rejects
    assert not accept(float("nan"), lo)


def test_security_levels_map_to_card_keys():
    card = {"1e-3": 0.5, "1e-4": 0.6, "2e-5": 0.7}
    assert [threshold_for(card, s) for s in ("convenient", "balanced", "secure")] == [0.5, 0.6, 0.7]
    with pytest.raises(ModelError):
        threshold_for(card, "lax")
    with pytest.raises(ModelError):
        threshold_for({"1e-3": 0.5}, "secure")
    assert accept(0.6, 0.6) and not accept(0.5999, 0.6)


def test_empty_gallery_and_known_answers():
    assert verify_score(np.ones(4) / 2, np.zeros((0, 4))) == -1.0
    assert identify(np.ones(4) / 2, np.zeros((0, 4)), []) == []
    e = np.eye(3, dtype=np.float32)
    probe = np.array([0.6, 0.8, 0.0], np.float32)
    ranked = identify(probe, e, ["a", "b", "c"], top=3)
    assert [(c.user, round(c.score, 4)) for c in ranked] == [("b", 0.8), ("a", 0.6), ("c", 0.0)]


def test_agreeing_subset_leaves_out_the_stray_capture():
    base = np.array([1, 0, 0, 0], np.float32)
    close = [base + np.array([0, d, 0, 0], np.float32) for d in (0.0, 0.1, -0.1, 0.05)]
    stray = np.array([0, 0, 1, 0], np.float32)
    caps = np.stack([stray, *close])
    caps /= np.linalg.norm(caps, axis=1, keepdims=True)
    assert agreeing_subset(caps, 0.9, 3) == [1, 2, 3]
    assert agreeing_subset(caps, 0.9, 10) == [1, 2, 3, 4]
    assert len(agreeing_subset(caps[:2], 0.9, 2)) == 1  # two fingers that disagree: no pair
    assert agreeing_subset(caps[:0], 0.9, 3) == []


def test_agreeing_subset_keeps_a_chain_of_placements():
    # three placements along the finger: the two ends do not match each other, both match the middle one
    caps = np.stack([[np.cos(a), np.sin(a), 0.0] for a in np.deg2rad([0.0, 20.0, 40.0])]).astype(np.float32)
    assert pairwise(caps)[0, 2] < 0.9 < pairwise(caps)[0, 1]
    assert agreeing_subset(caps, 0.9, 3) == [0, 1, 2]


def _connected(group, agree):
    seen, todo = {group[0]}, [group[0]]
    while todo:
        i = todo.pop()
        for j in group:
            if j not in seen and agree[i, j]:
                seen.add(j)
                todo.append(j)
    return seen == set(group)


@settings(max_examples=40, deadline=None)
@given(unit_rows(1, 10), st.floats(-1, 1), st.integers(1, 10))
def test_agreeing_subset_is_one_connected_group(rows, threshold, size):
    group = agreeing_subset(rows, threshold, size)
    assert 1 <= len(group) <= size
    agree = pairwise(rows) >= threshold
    assert _connected(group, agree)
    if len(group) > 1:  # every kept capture matches another kept capture
        assert all(any(agree[i, j] for j in group if j != i) for i in group)


def test_vectorized_identify_handles_a_large_gallery():
    rng = np.random.default_rng(0)
    g = rng.normal(size=(10_000, 128)).astype(np.float32)
    g /= np.linalg.norm(g, axis=1, keepdims=True)
    users = [f"user{i // 5}" for i in range(len(g))]
    best = identify(g[4242], g, users, top=2)
    assert best[0].user == "user848" and best[0].score == pytest.approx(1.0, abs=1e-5)
    assert best[1].user != "user848"


def test_fusion_hooks():
    assert normalize(0.7, 0.7) == 0.0 and normalize(1.0, 0.7) == pytest.approx(1.0) and normalize(-1.0, 0.7) == -1
    mean = get_rule("mean")
    assert mean({"fingerprint": 0.2, "vein": -0.1}) == pytest.approx(0.05)
    assert mean({"fingerprint": 0.9, "vein": None}) == -math.inf  # missing modality fails closed
    assert get_rule("min")({"fingerprint": 0.2, "vein": -0.1}) == -0.1
    with pytest.raises(ConfigError):
        get_rule("nope")
