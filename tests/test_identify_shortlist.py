"""Identification with minutiae (issue 15 leftover): the embedding's shortlist, and scoring everyone in a small
gallery because the shortlist misses real fingers (docs/fingerprint.md, "Identification")."""

from __future__ import annotations

import numpy as np
import pytest

import device.pipeline as pipeline
from device.config import Config, EnrolConfig, InferenceConfig, LockoutConfig
from device.pipeline import SCORE_ALL_CAPTURES, SHORTLIST, SHORTLIST_CAPTURES, Authenticator, shortlist_plan
from training.synth.dataset import identity_seed
from training.synth.fingerprint import render_impression


def r307(finger: int, impression: int) -> np.ndarray:
    return render_impression(identity_seed(9, finger, "fingerprint"), impression, "r307")


def test_a_small_gallery_is_scored_in_full_a_large_one_is_shortlisted():
    small = [f"u{i // 5}" for i in range(SCORE_ALL_CAPTURES)]  # 32 users x 5 captures: every capture
    assert shortlist_plan(small) == (32, None)
    large = [f"u{i // 5}" for i in range(5000)]  # `biolock bench`'s identify among 1,000 x 5
    users, captures = shortlist_plan(large)
    assert (users, captures) == (SHORTLIST, SHORTLIST_CAPTURES) and users * captures <= 40  # as 8 users x 5
    assert shortlist_plan([]) == (1, None) and shortlist_plan(["a", "a"]) == (1, None)


@pytest.fixture(scope="module")
def three_enrolled(tmp_path_factory):
    from models import default_card

    config = Config(inference=InferenceConfig(model=default_card("fingerprint")),
                    enrol=EnrolConfig(captures=3, max_attempts=8), lockout=LockoutConfig(max_failures=50))
    auth = Authenticator.from_config(config, tmp_path_factory.mktemp("id") / "state")
    assert auth.minutiae is not None
    for user, finger in (("ann", 1), ("ben", 2), ("cat", 3)):
        assert auth.enroll(user, "right-index", (r307(finger, k) for k in range(8))).ok
    yield auth
    auth.close()


def _scored_users(auth, image):
    """identify(image) and the users it compared by minutiae."""
    seen: list[str] = []
    real = auth._user_score

    def spy(user, *args, **kwargs):
        seen.append(user)
        return real(user, *args, **kwargs)

    auth._user_score = spy
    try:
        return auth.identify(image), seen
    finally:
        del auth._user_score


def test_identify_scores_every_user_of_a_small_gallery(three_enrolled, monkeypatch):
    monkeypatch.setattr(pipeline, "SHORTLIST", 1)
    decision, seen = _scored_users(three_enrolled, r307(2, 10))
    assert decision.accepted and decision.user == "ben"
    assert sorted(seen) == ["ann", "ben", "cat"]  # all three, although the shortlist would be one


def test_identify_shortlists_a_large_gallery_by_cosine(three_enrolled, monkeypatch):
    monkeypatch.setattr(pipeline, "SHORTLIST", 1)
    monkeypatch.setattr(pipeline, "SCORE_ALL_CAPTURES", 0)  # as if the gallery were large
    from device.minutiae.check import MinutiaeCheck

    compared: list[int] = []
    real = MinutiaeCheck.best

    def count(self, cosines, probe, templates, threshold):
        compared.append(len(templates))
        return real(self, cosines, probe, templates, threshold)

    monkeypatch.setattr(MinutiaeCheck, "best", count)
    decision, seen = _scored_users(three_enrolled, r307(2, 10))
    assert len(seen) == 1 and compared == [SHORTLIST_CAPTURES]  # the best cosine's user, through one capture
    assert not decision.accepted or decision.user == "ben"
    stranger, _ = _scored_users(three_enrolled, r307(40, 0))
    assert not stranger.accepted and stranger.user is None


@pytest.mark.realdata
def test_on_real_prints_scoring_everyone_finds_more_fingers_than_the_shortlist(shared_data):
    """FVC2002 DB1_B + DB2_B pooled (20 fingers, impressions 1-2 enrolled, 120 probes): the embedding's best 4
    miss some true fingers; scoring every finger identifies at least as many, and no probe is accepted as another
    finger at `balanced`."""
    from training.fp_identify_bench import _sets, evaluate, features, load

    rows = load(shared_data, _sets("fvc2002/DB1_B,fvc2002/DB2_B"), enrol=2)
    features(rows)
    res = evaluate(rows, ("4",), score_all=True)
    assert res["fingers"] == 20 and res["probes_scored"] == 120
    assert res["recall"]["4"] < 1.0
    assert res["modes"]["all"]["rank1"] >= res["modes"]["4"]["rank1"] and res["modes"]["all"]["rank1"] >= 0.9
    assert res["modes"]["all"]["wrongly_accepted"] == 0


def test_user_templates_indexes_the_gallery_once_and_unpacks_only_the_best_captures():
    from device.minutiae.base import pack_template
    from device.minutiae.pairing import Templates, user_templates
    from device.store.views import Gallery

    rng = np.random.default_rng(0)
    vec = rng.normal(size=(5, 16)).astype(np.float32)
    vec /= np.linalg.norm(vec, axis=1, keepdims=True)
    users, fingers = ["a", "b", "a", "b", "a"], ["right-index"] * 5
    emb = Gallery(users, fingers, vec)
    mnt = Gallery(users, fingers, np.stack([pack_template(bytes([k + 1])) for k in range(5)]))
    g = Templates(emb, mnt)
    assert g.rows_of("a") == ([0, 2, 4], [0, 2, 4]) and g.rows_of("nobody") == ([], [])
    cos, tpl = user_templates(g, "a", vec[2])
    assert len(cos) == 3 and tpl == [b"\x01", b"\x03", b"\x05"]
    cos, tpl = user_templates(g, "a", vec[2], captures=1)
    assert tpl == [b"\x03"] and cos[0] == pytest.approx(1.0)  # the probe is capture 2 itself
    # captures of the two kinds that do not line up: the embedding alone, never someone else's minutiae
    bad = Templates(emb, Gallery(users, ["left-index"] + fingers[1:], mnt.matrix))
    assert user_templates(bad, "a", vec[2], captures=1)[1] is None
