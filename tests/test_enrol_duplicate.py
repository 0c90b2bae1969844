"""The duplicate check at enrolment (issue 15 leftover): one false pair match is not a duplicate finger.

`biolock demo --people 8 --seed 1` refused grace as a duplicate of dave (and seed 3 dave as one of bob): of the 25
pair comparisons between the two people's captures exactly one reached the `balanced` threshold, the other 24 sat
at impostor level. The check now needs at least ``DUPLICATE_CAPTURES`` of the new captures to match the other
user; the same finger enrolled twice still matches with most of its captures and is refused.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from device.config import Config, EnrolConfig, InferenceConfig, LockoutConfig
from device.pipeline import Authenticator
from training.synth.dataset import identity_seed
from training.synth.fingerprint import render_impression


def demo_print(person: int, impression: int, seed: int = 1):
    """What `biolock demo --seed 1` shows the sensor for person ``person`` (0 = alice, 3 = dave, 6 = grace)."""
    return render_impression(identity_seed(seed, person, "fingerprint"), impression, "r307")


def shipped_auth(state: Path) -> Authenticator:
    from models import default_card

    config = Config(inference=InferenceConfig(model=default_card("fingerprint")),
                    enrol=EnrolConfig(captures=5, max_attempts=10), lockout=LockoutConfig(max_failures=50))
    return Authenticator.from_config(config, state)


@pytest.fixture(scope="module")
def dave_enrolled(tmp_path_factory):
    auth = shipped_auth(tmp_path_factory.mktemp("dup") / "state")
    assert auth.minutiae is not None and auth.minutiae.matcher.kind == "biolock"
    result = auth.enroll("dave", "right-index", (demo_print(3, k) for k in range(10)))
    assert result.ok, result.reason
    yield auth
    auth.close()


def test_a_single_false_pair_match_does_not_make_a_duplicate(dave_enrolled, monkeypatch):
    import device.pipeline as pipeline

    grace = [demo_print(6, k) for k in range(10)]
    with monkeypatch.context() as m:  # the old rule (any one capture) refuses her: this is the demo's case
        m.setattr(pipeline, "DUPLICATE_CAPTURES", 1)
        refused = dave_enrolled.enroll("grace", "right-index", iter(grace))
        assert not refused.ok and refused.duplicate_of == "dave"
    result = dave_enrolled.enroll("grace", "right-index", iter(grace))
    assert result.ok and result.duplicate_of is None, result.reason
    assert dave_enrolled.store.has_user("grace")


def test_the_same_finger_under_another_name_is_still_refused(dave_enrolled):
    again = dave_enrolled.enroll("mallory", "left-index", (demo_print(3, k) for k in range(10, 20)))
    assert not again.ok and again.duplicate_of == "dave" and "already enrolled" in again.reason
    assert not dave_enrolled.store.has_user("mallory")
