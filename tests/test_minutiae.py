"""The minutiae matcher beside the embedding: store packing, the NBIS backend, the fusion card and the pipeline.

Real parts throughout: nbis-py (the `minutiae` extra) on prints from our own generator, the fixture LiteRT model,
the real SQLite store. The pipeline's fusion card is written by hand here (the test is about plumbing: which score
decides, what is stored, what fails closed); fitting a card is tested on score arrays with known answers.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from models_fixture import fixture_models  # noqa: F401 - fixture

from device.config import Config, EnrolConfig, InferenceConfig, LockoutConfig, MatchingConfig
from device.errors import BiolockError
from device.fusion import FusionCardError
from device.inference.card import load_card
from device.minutiae import (
    MINUTIAE_MODALITY,
    TEMPLATE_BYTES,
    MinutiaeError,
    available,
    load_minutiae_check,
    open_matcher,
    pack_template,
    unpack_template,
)
from device.minutiae.setup import default_card_path
from device.pipeline import Authenticator
from training.synth.dataset import identity_seed
from training.synth.fingerprint import render_impression


def print_of(finger: int, impression: int) -> np.ndarray:
    return render_impression(identity_seed(21, finger, "fingerprint"), impression, "r307")


@pytest.fixture(scope="module")
def nbis():
    return open_matcher("nbis")


# --- store packing ---------------------------------------------------------------------------------------------

@settings(max_examples=50, deadline=None)
@given(st.binary(min_size=1, max_size=TEMPLATE_BYTES))
def test_pack_unpack_round_trip(raw):
    vec = pack_template(raw)
    assert vec.shape == (TEMPLATE_BYTES + 1,) and vec.dtype == np.float32
    assert unpack_template(vec) == raw


def test_pack_refuses_empty_and_oversized_templates():
    with pytest.raises(MinutiaeError, match="empty"):
        pack_template(b"")
    with pytest.raises(MinutiaeError, match="over the"):
        pack_template(b"x" * (TEMPLATE_BYTES + 1))


@pytest.mark.parametrize("damage", ["length", "fraction", "range", "tail", "size"])
def test_unpack_refuses_vectors_that_pack_did_not_make(damage):
    vec = pack_template(b"\x01\x02\x03")
    if damage == "length":
        vec[0] = TEMPLATE_BYTES + 5
    elif damage == "fraction":
        vec[2] = 1.5
    elif damage == "range":
        vec[1] = 300
    elif damage == "tail":
        vec[10] = 7
    else:
        vec = vec[:-1]
    with pytest.raises(MinutiaeError):
        unpack_template(vec)


# --- the NBIS backend ------------------------------------------------------------------------------------------

def test_nbis_scores_the_same_finger_above_other_fingers(nbis):
    a, b = nbis.extract(print_of(0, 0)), nbis.extract(print_of(0, 1))
    others = [nbis.extract(print_of(f, 0)) for f in (1, 2, 3)]
    genuine = nbis.compare(a, b)
    impostors = [nbis.compare(a, o) for o in others]
    assert genuine > max(impostors)
    assert nbis.compare(a, b) == nbis.compare(a, b)  # deterministic
    assert nbis.template_id.startswith(("nbis-py@", "nbis-python@")) and available("nbis") is None


def test_nbis_refuses_blank_and_malformed_captures(nbis):
    with pytest.raises(MinutiaeError, match="no minutiae"):
        nbis.extract(np.full((288, 256), 200, np.uint8))
    with pytest.raises(MinutiaeError, match="uint8"):
        nbis.extract(np.zeros((288, 256), np.float32))
    with pytest.raises(MinutiaeError, match="damaged"):
        nbis.compare(b"not a template", nbis.extract(print_of(0, 0)))


def test_unknown_backend_is_a_clear_error():
    assert "unknown minutiae backend" in available("sourceafis")
    with pytest.raises(MinutiaeError, match="cannot run here"):
        open_matcher("sourceafis")


# --- fitting a card --------------------------------------------------------------------------------------------

def test_fit_card_puts_thresholds_at_the_asked_false_match_rates():
    from training.minutiae_card import ScoredSet, fit_card, measure

    rng = np.random.default_rng(0)
    n_imp = 200_000
    # cosine: weak and long-tailed; minutiae: impostors near zero, genuine well above
    imp = {"fingerprint": rng.normal(0.6, 0.12, n_imp), "minutiae": rng.poisson(8, n_imp).astype(float)}
    gen = {"fingerprint": rng.normal(0.9, 0.06, 4000), "minutiae": rng.gamma(4, 20, 4000)}
    scored = ScoredSet("synthetic", gen, imp, 0)
    card = fit_card(scored, {"fingerprint": "model@1", "minutiae": "backend@1"})
    assert math.isclose(sum(card.weights.values()), 1.0)
    assert card.weights["minutiae"] > card.weights["fingerprint"]  # the short-tailed matcher earns more weight
    t = card.thresholds
    assert t["1e-3"] <= t["1e-4"] <= t["2e-5"]
    m = measure(card, scored)
    for key, fmr in (("1e-3", 1e-3), ("1e-4", 1e-4), ("2e-5", 2e-5)):
        assert m["fused"][f"fmr@{key}"] <= fmr
    assert m["fused"]["fnmr@1e-4"] < m["fingerprint"]["fnmr@1e-4"]


# --- the card on the device ------------------------------------------------------------------------------------

def write_card(path: Path, model: str, backend: str, thresholds: dict[str, float] | None = None) -> Path:
    """Fused = 0.2 * cosine + 0.8 * bozorth / 100: minutiae decide, the embedding nudges."""
    card = {
        "format": "biolock-fusion-card/1", "name": "fingerprint+minutiae", "rule": "weighted_sum",
        "matchers": [
            {"name": "fingerprint", "modality": "fingerprint", "model": model,
             "normalization": {"method": "zscore", "params": {"mu": 0.0, "sigma": 1.0}}, "thresholds": None},
            {"name": "minutiae", "modality": "fingerprint", "model": backend,
             "normalization": {"method": "zscore", "params": {"mu": 0.0, "sigma": 100.0}}, "thresholds": None},
        ],
        "weights": {"fingerprint": 0.2, "minutiae": 0.8},
        "thresholds": thresholds or {"1e-3": 0.40, "1e-4": 0.45, "2e-5": 0.5},
    }
    path.write_text(json.dumps(card))
    return path


def test_card_must_be_fitted_on_the_running_model_and_backend(fixture_models, nbis, tmp_path):  # noqa: F811
    model = load_card(fixture_models.int8_card).model_id
    good = write_card(tmp_path / "good.json", model, nbis.template_id)
    check = load_minutiae_check("nbis", good, model)
    assert check.threshold("balanced") == 0.45
    assert float(check.fused(0.5, 50)[0]) == pytest.approx(0.2 * 0.5 + 0.8 * 0.5)
    assert float(check.fused(math.nan, 50)[0]) == -math.inf  # fail closed
    with pytest.raises(FusionCardError, match="fitted on model"):
        load_minutiae_check("nbis", write_card(tmp_path / "m.json", "other@1.0.0+0", nbis.template_id), model)
    with pytest.raises(FusionCardError, match="fitted on nbis-py@0.0"):
        load_minutiae_check("nbis", write_card(tmp_path / "b.json", model, "nbis-py@0.0/iso19794-2"), model)
    with pytest.raises(FusionCardError, match="does not exist"):
        load_minutiae_check("nbis", tmp_path / "missing.json", model)


def make_auth(card: Path, state: Path, minutiae: str = "auto", minutiae_card: Path | None = None,
              captures: int = 3) -> Authenticator:
    config = Config(inference=InferenceConfig(model=card),
                    matching=MatchingConfig(minutiae=minutiae, minutiae_card=minutiae_card),
                    enrol=EnrolConfig(captures=captures, max_attempts=8), lockout=LockoutConfig(max_failures=50))
    return Authenticator.from_config(config, state)


def test_auto_runs_the_embedding_alone_without_a_card_and_named_backend_refuses(fixture_models, tmp_path):  # noqa: F811
    with make_auth(fixture_models.int8_card, tmp_path / "s1") as auth:
        assert auth.minutiae is None and auth.matcher_name == auth.model_id
    assert not default_card_path(fixture_models.int8_card).exists()
    with pytest.raises(BiolockError, match="does not exist"):
        make_auth(fixture_models.int8_card, tmp_path / "s2", minutiae="nbis")


@pytest.fixture
def fused_auth(fixture_models, nbis, tmp_path):  # noqa: F811
    model = load_card(fixture_models.int8_card).model_id
    card = write_card(tmp_path / "card.json", model, nbis.template_id)
    auth = make_auth(fixture_models.int8_card, tmp_path / "state", minutiae_card=card)
    yield auth
    auth.close()


def test_enrol_stores_minutiae_beside_embeddings_and_decides_on_the_fused_score(fused_auth, nbis):
    auth = fused_auth
    assert auth.minutiae is not None and nbis.template_id in auth.matcher_name
    for user, finger in (("alice", 0), ("bob", 1)):
        result = auth.enroll(user, "right-index", [print_of(finger, k) for k in range(6)])
        assert result.ok, result.reason
    emb = auth.store.gallery("fingerprint", auth.model_id)
    mnt = auth.store.gallery(MINUTIAE_MODALITY, nbis.template_id)
    assert emb.users == mnt.users and emb.fingers == mnt.fingers and len(emb.users) == 6
    assert all(unpack_template(row) for row in mnt.matrix)

    genuine = auth.verify("alice", print_of(0, 20))
    assert genuine.accepted and genuine.threshold == 0.45 and genuine.score >= 0.45
    assert "minutiae" in genuine.stages_ms
    impostor = auth.verify("alice", print_of(1, 20))
    assert not impostor.accepted and impostor.reason == "no match"
    who = auth.identify(print_of(1, 21))
    assert who.accepted and who.user == "bob"
    stranger = auth.identify(print_of(5, 20))
    assert not stranger.accepted and stranger.user is None


def test_a_capture_without_minutiae_is_a_poor_capture_not_a_failure(fused_auth):
    fused_auth.enroll("alice", "right-index", [print_of(0, k) for k in range(6)])
    yy, xx = np.mgrid[0:288, 0:256]
    stripes = (128 + 90 * np.sin(2 * np.pi * (0.8 * xx + 0.6 * yy) / 9)).astype(np.uint8)  # ridges, no endings
    d = fused_auth.verify("alice", stripes)
    assert not d.accepted and math.isnan(d.score)
    assert "minutiae" in d.reason, d.reason
    assert fused_auth.store.lockout_remaining("alice", 0.0) == 0


def test_a_user_enrolled_without_minutiae_is_decided_by_the_embedding_alone(fixture_models, fused_auth,  # noqa: F811
                                                                             tmp_path):
    from models_fixture import finger_image

    with make_auth(fixture_models.int8_card, tmp_path / "state", minutiae="off") as plain:
        assert plain.enroll("carol", "left-thumb", [finger_image(3, k) for k in range(4)]).ok
    card_threshold = load_card(fixture_models.int8_card).thresholds["1e-4"]
    decision = fused_auth.verify("carol", print_of(0, 3))
    assert decision.threshold == pytest.approx(card_threshold)  # the model card's threshold, not the fused one
    assert not decision.accepted


def test_enrolment_is_all_or_nothing_across_embeddings_and_minutiae(fused_auth, monkeypatch):
    real = fused_auth.store.enroll

    def fail_on_minutiae(user, finger, modality, model_id, vectors):
        if modality == MINUTIAE_MODALITY:
            raise BiolockError("disk full")
        return real(user, finger, modality, model_id, vectors)

    monkeypatch.setattr(fused_auth.store, "enroll", fail_on_minutiae)
    with pytest.raises(BiolockError, match="disk full"):
        fused_auth.enroll("alice", "right-index", [print_of(0, k) for k in range(6)])
    assert not fused_auth.store.has_user("alice")
    assert fused_auth.store.gallery("fingerprint", fused_auth.model_id).users == []


def test_the_shipped_minutiae_card_fits_the_shipped_model():
    """A model re-shipped without refitting its minutiae card fails here, not silently on a board."""
    from models import default_card

    card = load_card(default_card("fingerprint"))  # the optional NBIS card (the default one is biolock's own)
    check = load_minutiae_check("nbis", card.path.with_name("fingerprint_minutiae_nbis.json"), card.model_id)
    t = {level: check.threshold(level) for level in ("convenient", "balanced", "secure")}
    assert t["convenient"] < t["balanced"] <= t["secure"]
    assert check.card.extra["metrics"]["fit"]["fused"]["impostor_pairs"] >= 100_000


def test_the_same_finger_cannot_be_enrolled_to_a_second_user_with_minutiae_on(fused_auth):
    """The duplicate check compares cosines with the model card's threshold, not the fused one."""
    assert fused_auth.enroll("alice", "right-index", [print_of(0, k) for k in range(6)]).ok
    again = fused_auth.enroll("mallory", "left-index", [print_of(0, k) for k in range(6)])
    assert not again.ok and again.duplicate_of == "alice"
    assert not fused_auth.store.has_user("mallory")


def test_a_user_without_minutiae_is_not_decided_by_an_embedding_that_supports_no_level(fixture_models,  # noqa: F811
                                                                                       fused_auth, tmp_path):
    """Issue 16, fail closed: the shipped embedding card's levels are refuted on a held-out real sensor, so a user
    enrolled before minutiae must re-enrol instead of being let in on the embedding's cosine."""
    from models_fixture import finger_image

    with make_auth(fixture_models.int8_card, tmp_path / "state", minutiae="off") as plain:
        assert plain.enroll("carol", "left-thumb", [finger_image(3, k) for k in range(4)]).ok
    fused_auth.embedding_decides = False  # what a card whose level is unsupported sets (checked below)
    d = fused_auth.verify("carol", finger_image(3, 1))
    assert not d.accepted and d.reason.startswith("needs re-enrolment: enrolled without minutiae templates")
    assert fused_auth.identify(finger_image(3, 2)).user is None
    fused_auth.embedding_decides = True
    assert fused_auth.verify("carol", finger_image(3, 1)).reason != d.reason


def test_the_shipped_embedding_card_does_not_decide_users_without_minutiae(tmp_path):
    from models import default_card

    card = load_card(default_card("fingerprint"))
    assert card.calibration is not None and not card.calibration.supported("balanced")
    with make_auth(card.path, tmp_path / "s") as auth:
        assert auth.minutiae is not None and not auth.embedding_decides
    config = Config(inference=InferenceConfig(model=card.path),
                    matching=MatchingConfig(allow_unsupported_level=True))
    with Authenticator.from_config(config, tmp_path / "s2") as auth:
        assert auth.embedding_decides  # the explicit override covers them too, and is logged at start
