"""Metrics on score sets with answers worked out by hand, plus a cross-check against scikit-learn."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from training import metrics
from training.protocol import cosine_pair_scores, fvc_pairs, summarize

GEN = [0.4, 0.6, 0.8, 0.9]
IMP = [0.1, 0.5, 0.7, 0.2]


def test_eer_hand_worked_example():
    # At t = 0.6: FMR = 1/4 (0.7), FNMR = 1/4 (0.4) -> both bounds meet.
    r = metrics.eer(GEN, IMP)
    assert r.eer == pytest.approx(0.25)
    assert (r.eer_low, r.eer_high) == (pytest.approx(0.25), pytest.approx(0.25))
    assert r.threshold == pytest.approx(0.6)


def test_eer_perfect_separation_is_zero():
    assert metrics.eer([0.9, 0.8, 0.7], [0.1, 0.2, 0.3]).eer == 0.0


def test_eer_interval_when_rates_do_not_cross_exactly():
    # t1 = 0.6: FMR 1/2, FNMR 1/3 (sum 5/6); t2 = 0.7: FMR 0, FNMR 1/3 (sum 1/3) -> [0, 1/3], EER 1/6.
    r = metrics.eer([0.55, 0.7, 0.8], [0.6, 0.1])
    assert (r.eer_low, r.eer_high) == (pytest.approx(0.0), pytest.approx(1 / 3))
    assert r.eer == pytest.approx(1 / 6)


def test_tie_at_threshold_counts_as_match():
    fmr, fnmr = metrics.rates_at([0.5], [0.5], [0.5])
    assert fmr[0] == 1.0 and fnmr[0] == 0.0


def test_operating_points_hand_worked():
    assert metrics.fnmr_at_fmr(GEN, IMP, 0.25) == pytest.approx(0.25)
    assert metrics.zero_fmr(GEN, IMP) == pytest.approx(0.5)
    thr = metrics.threshold_at_fmr(IMP, 0.25)
    assert 0.5 < thr < 0.6
    assert metrics.threshold_at_fmr(IMP, 1.0) == -np.inf


def test_auc_hand_worked():
    assert metrics.roc_auc(GEN, IMP) == pytest.approx(13 / 16)
    assert metrics.roc_auc([0.5], [0.5]) == pytest.approx(0.5)  # a tie counts half


def test_cross_check_against_sklearn():
    from sklearn.metrics import roc_auc_score
    from sklearn.metrics import roc_curve as sk_roc

    rng = np.random.default_rng(0)
    gen = np.round(rng.normal(0.7, 0.15, 400), 2)  # rounding creates ties on purpose
    imp = np.round(rng.normal(0.3, 0.15, 3000), 2)
    y = np.r_[np.ones(gen.size), np.zeros(imp.size)]
    s = np.r_[gen, imp]
    assert metrics.roc_auc(gen, imp) == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    fpr, tpr, thr = sk_roc(y, s, drop_intermediate=False)
    fmr, tmr = metrics.rates_at(gen, imp, thr[1:])  # sklearn also matches at score >= threshold
    assert np.allclose(fmr, fpr[1:]) and np.allclose(1 - tmr, tpr[1:])


def test_empty_and_nan_scores_are_rejected():
    with pytest.raises(ValueError, match="empty"):
        metrics.eer([], [0.1])
    with pytest.raises(ValueError, match="NaN"):
        metrics.eer([0.2, float("nan")], [0.1])


@settings(max_examples=60, deadline=None)
@given(
    st.lists(st.integers(-100, 100), min_size=1, max_size=40),
    st.lists(st.integers(-100, 100), min_size=1, max_size=40),
)
def test_eer_properties(gen_i, imp_i):
    gen, imp = np.array(gen_i) / 100, np.array(imp_i) / 100
    r = metrics.eer(gen, imp)
    assert 0.0 <= r.eer_low <= 1.0 and 0.0 <= r.eer_high <= 1.0
    assert min(r.eer_low, r.eer_high) <= r.eer <= max(r.eer_low, r.eer_high)
    # A strictly increasing transform of the scores changes no rate.
    r2 = metrics.eer(np.exp(gen), np.exp(imp))
    assert r2.eer == pytest.approx(r.eer)
    assert metrics.roc_auc(gen, imp) == pytest.approx(metrics.roc_auc(np.exp(gen), np.exp(imp)))


def test_fvc_pair_counts_match_the_protocol():
    labels = [f"f{i}" for i in range(10) for _ in range(8)]
    impressions = [str(k) for _ in range(10) for k in range(1, 9)]
    gen, imp = fvc_pairs(labels, impressions)
    assert len(gen) == 280 and len(imp) == 45
    assert all(labels[a] == labels[b] for a, b in gen)
    assert all(labels[a] != labels[b] and impressions[a] == impressions[b] == "1" for a, b in imp)


def test_fvc_first_impression_is_numeric_order():
    labels = ["a", "a", "b", "b"]
    impressions = ["10", "2", "3", "1"]
    _, imp = fvc_pairs(labels, impressions)
    assert imp == [(1, 3)]


def test_summary_hides_fmr1000_with_few_impostors():
    gen, imp = np.linspace(0.5, 1, 50), np.linspace(0, 0.6, 45)
    s = summarize(gen, imp)
    assert s["fmr1000"] is None and s["genuine_pairs"] == 50 and s["impostor_pairs"] == 45
    s = summarize(gen, np.linspace(0, 0.6, 1000))
    assert s["fmr1000"] is not None


def test_cosine_pair_scores():
    emb = np.array([[1.0, 0.0], [2.0, 0.0], [0.0, 3.0]])
    assert np.allclose(cosine_pair_scores(emb, [(0, 1), (0, 2)]), [1.0, 0.0])
