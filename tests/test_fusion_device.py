"""Device-side score fusion (device/fusion): normalization, rules, fusion card validation, fuse_decision."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.errors import ModelError
from device.fusion import (
    FusionCardError,
    Normalizer,
    combine,
    fit_normalizer,
    fuse_decision,
    hampel_location_scale,
    load_fusion_card,
    parse_fusion_card,
    save_fusion_card,
)

THR = {"1e-3": 0.5, "1e-4": 0.6, "2e-5": 0.7}


def card_dict(**overrides) -> dict:
    data = {
        "format": "biolock-fusion-card/1",
        "name": "fingerprint+vein",
        "rule": "weighted_sum",
        "matchers": [
            {"name": "fingerprint", "modality": "fingerprint", "model": "fp@1+abc",
             "normalization": {"method": "minmax", "params": {"lo": 0.0, "hi": 1.0}},
             "thresholds": {"1e-3": 0.6, "1e-4": 0.7, "2e-5": 0.8}},
            {"name": "vein", "modality": "vein", "model": None,
             "normalization": {"method": "zscore", "params": {"mu": 0.2, "sigma": 0.1}},
             "thresholds": {"1e-3": 2.0, "1e-4": 3.0, "2e-5": 4.0}},
        ],
        "weights": {"fingerprint": 0.5, "vein": 0.5},
        "thresholds": dict(THR),
        "metrics": {"eer": 0.01},
    }
    data.update(overrides)
    return data


@pytest.fixture
def card():
    return parse_fusion_card(card_dict())


# normalization -------------------------------------------------------------------------------------------------

def test_minmax_and_zscore_map_validation_scores_as_documented():
    g, i = np.array([0.8, 0.9, 1.0]), np.array([0.0, 0.2, 0.4])
    mm = fit_normalizer("minmax", g, i)
    assert mm(0.0) == pytest.approx(0.0) and mm(1.0) == pytest.approx(1.0) and mm(0.5) == pytest.approx(0.5)
    z = fit_normalizer("zscore", g, i)
    both = z(np.concatenate([g, i]))
    assert both.mean() == pytest.approx(0.0, abs=1e-12) and both.std() == pytest.approx(1.0)


def test_tanh_is_bounded_monotonic_and_centred_on_genuine_location():
    rng = np.random.default_rng(0)
    g, i = rng.normal(0.8, 0.05, 200), rng.normal(0.3, 0.1, 200)
    t = fit_normalizer("tanh", g, i)
    xs = np.linspace(-5, 5, 101)
    ys = t(xs)
    assert np.all((ys > 0) & (ys < 1)) and np.all(np.diff(ys) > 0)
    assert t(t.params["mu"]) == pytest.approx(0.5)
    assert t.params["mu"] == pytest.approx(0.8, abs=0.02)


def test_hampel_resists_gross_outliers_where_the_mean_does_not():
    rng = np.random.default_rng(1)
    clean = rng.normal(10.0, 1.0, 900)
    dirty = np.concatenate([clean, np.full(100, 1000.0)])
    mu, sigma = hampel_location_scale(dirty)
    assert abs(mu - 10.0) < 0.3 and sigma < 3.0
    assert abs(dirty.mean() - 10.0) > 50


def test_unknown_normalization_method_is_rejected():
    with pytest.raises(ValueError, match="unknown normalization"):
        fit_normalizer("sigmoid", [1.0, 2.0], [0.0])


# rules ---------------------------------------------------------------------------------------------------------

def test_rules_known_answers_and_nan_fails_closed():
    x = np.array([[0.2, 0.8], [1.0, 0.0], [np.nan, 1.0]])
    np.testing.assert_allclose(combine(x[:2], "sum"), [0.5, 0.5])
    np.testing.assert_allclose(combine(x[:2], "max"), [0.8, 1.0])
    np.testing.assert_allclose(combine(x[:2], "min"), [0.2, 0.0])
    np.testing.assert_allclose(combine(x[:2], "weighted_sum", [0.25, 0.75]), [0.65, 0.25])
    for rule in ("sum", "max", "min"):
        assert math.isnan(combine(x, rule)[2])
    assert math.isnan(combine(x, "weighted_sum", [0.5, 0.5])[2])
    with pytest.raises(ValueError):
        combine(x, "weighted_sum", [1.0])
    with pytest.raises(ValueError):
        combine(x, "product")


# card ----------------------------------------------------------------------------------------------------------

def test_card_round_trip(tmp_path, card):
    path = save_fusion_card(card, tmp_path / "fusion.json")
    again = load_fusion_card(path, expected_matchers=["vein", "fingerprint"])
    assert again.to_dict() == card.to_dict()
    assert again.matcher_names == ("fingerprint", "vein")
    assert not list(tmp_path.glob(".fusion.json.*"))  # no temp file left behind


def test_weights_naming_other_matchers_fail_at_load_with_both_lists(tmp_path):
    path = tmp_path / "card.json"
    path.write_text(json.dumps(card_dict(weights={"fingerprint": 0.5, "face": 0.5})))
    with pytest.raises(FusionCardError) as info:
        load_fusion_card(path)
    msg = str(info.value)
    assert "face" in msg and "vein" in msg and str(path) in msg
    assert isinstance(info.value, ModelError)


def test_card_for_other_configured_matchers_fails_at_load(tmp_path):
    path = save_fusion_card(parse_fusion_card(card_dict()), tmp_path / "card.json")
    with pytest.raises(FusionCardError, match=r"configured with matchers \[fingerprint, iris\]"):
        load_fusion_card(path, expected_matchers=["fingerprint", "iris"])


@pytest.mark.parametrize(
    "overrides, match",
    [
        ({"format": "other/1"}, "format"),
        ({"rule": "product"}, "rule"),
        ({"weights": {"fingerprint": 0.7, "vein": 0.7}}, "sum to"),
        ({"weights": {"fingerprint": -0.5, "vein": 1.5}}, ">= 0"),
        ({"weights": {"fingerprint": float("nan"), "vein": 0.5}}, "finite"),
        ({"thresholds": {"1e-3": 0.5, "1e-4": 0.6}}, "expected exactly"),
        ({"thresholds": {"1e-3": 0.5, "1e-4": "x", "2e-5": 0.7}}, "not a finite number"),
        ({"matchers": []}, "at least two"),
        ({"weights": [0.5, 0.5]}, "must map"),
    ],
)
def test_malformed_cards_are_rejected(overrides, match):
    with pytest.raises(FusionCardError, match=match):
        parse_fusion_card(card_dict(**overrides))


def test_bad_normalization_params_are_rejected():
    data = card_dict()
    data["matchers"][1]["normalization"]["params"]["sigma"] = 0.0
    with pytest.raises(FusionCardError, match="sigma > 0"):
        parse_fusion_card(data)
    data = card_dict()
    del data["matchers"][0]["normalization"]["params"]["hi"]
    with pytest.raises(FusionCardError, match="missing hi"):
        parse_fusion_card(data)
    data = card_dict()
    data["matchers"][1]["name"] = "fingerprint"
    with pytest.raises(FusionCardError, match="repeat"):
        parse_fusion_card(data)


def test_missing_or_broken_card_files(tmp_path):
    with pytest.raises(FusionCardError, match="does not exist"):
        load_fusion_card(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(FusionCardError, match="not valid JSON"):
        load_fusion_card(bad)


# fuse_decision -------------------------------------------------------------------------------------------------

def test_both_present_accepts_above_and_rejects_below_threshold(card):
    # fingerprint 0.9 -> 0.9; vein 0.5 -> 3.0; weighted 1.95 >= 0.7
    d = fuse_decision({"fingerprint": 0.9, "vein": 0.5}, card, "secure", fallback=False)
    assert d.accepted and d.score == pytest.approx(1.95) and d.threshold == 0.7
    assert d.used == ("fingerprint", "vein") and not d.missing and d.audit_note is None
    d = fuse_decision({"fingerprint": 0.3, "vein": 0.2}, card, "secure", fallback=False)
    assert not d.accepted and d.score == pytest.approx(0.15)


def test_security_level_picks_the_card_threshold(card):
    scores = {"fingerprint": 0.4, "vein": 0.28}  # fused 0.2 + 0.4 = 0.6
    assert fuse_decision(scores, card, "convenient", False).accepted
    assert fuse_decision(scores, card, "balanced", False).accepted
    assert not fuse_decision(scores, card, "secure", False).accepted
    with pytest.raises(FusionCardError, match="security level"):
        fuse_decision(scores, card, "lax", False)


def test_missing_modality_never_accepts_without_fallback(card):
    for scores in ({"fingerprint": 1.0}, {"fingerprint": 1.0, "vein": None}, {"vein": 9.0}, {}):
        d = fuse_decision(scores, card, "convenient", fallback=False)
        assert not d.accepted and d.missing and not d.fallback_used


def test_fallback_decides_on_present_modality_and_says_so(card):
    d = fuse_decision({"fingerprint": 0.95, "vein": None}, card, "secure", fallback=True)
    assert d.accepted and d.fallback_used and d.missing == ("vein",) and d.used == ("fingerprint",)
    assert "vein missing" in d.audit_note and "fingerprint alone" in d.audit_note
    assert d.threshold == 0.8  # the fingerprint's own secure threshold, not the fused one
    low = fuse_decision({"fingerprint": 0.75, "vein": None}, card, "secure", fallback=True)
    assert not low.accepted and low.fallback_used
    assert not fuse_decision({}, card, "secure", fallback=True).accepted


def test_fallback_without_single_matcher_thresholds_fails_closed():
    data = card_dict()
    data["matchers"][0]["thresholds"] = None
    card = parse_fusion_card(data)
    d = fuse_decision({"fingerprint": 1.0}, card, "convenient", fallback=True)
    assert not d.accepted and "fallback impossible" in d.reason


def test_non_finite_score_rejects_even_with_fallback(card):
    for bad in (float("nan"), float("inf")):
        d = fuse_decision({"fingerprint": bad, "vein": 0.9}, card, "convenient", fallback=True)
        assert not d.accepted and "non-finite" in d.reason


def test_unknown_matcher_score_is_an_error(card):
    with pytest.raises(FusionCardError, match="face"):
        fuse_decision({"fingerprint": 0.9, "vein": 0.9, "face": 0.9}, card, "secure", False)


@settings(max_examples=60, deadline=None)
@given(
    fp=st.floats(-2, 2), vein=st.floats(-2, 2), bump=st.floats(0, 1),
    rule=st.sampled_from(["weighted_sum", "sum", "max", "min"]),
    security=st.sampled_from(["secure", "balanced", "convenient"]),
)
def test_raising_a_score_never_turns_accept_into_reject(fp, vein, bump, rule, security):
    card = parse_fusion_card(card_dict(rule=rule, weights={"fingerprint": 0.3, "vein": 0.7}))
    before = fuse_decision({"fingerprint": fp, "vein": vein}, card, security, False)
    after = fuse_decision({"fingerprint": fp + bump, "vein": vein}, card, security, False)
    assert after.accepted or not before.accepted
    assert not fuse_decision({"fingerprint": fp + bump}, card, security, False).accepted


def test_normalizer_dict_round_trip():
    n = Normalizer("tanh", {"mu": 0.1, "sigma": 0.2, "spread": 0.01})
    assert Normalizer(**n.to_dict())(0.3) == pytest.approx(n(0.3))
