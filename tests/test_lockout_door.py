"""Issue 17 item 1: lockout for a shared door, each attack reproduced with the safe outcome.

Attacks (from the issue): 5 stranger touches in identify mode locked every enrolled user out; lockouts doubled
without a cap (the 20th lasted 182 days); verify and identify lockouts did not block each other; moving the wall
clock forward ended a lockout; nothing listed or cleared lockouts. Clocks and boot ids are passed in: no sleeping.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from click.testing import CliRunner
from models_fixture import finger_image, fixture_models  # noqa: F401 - fixture

from device.cli import main
from device.config import Config, EnrolConfig, InferenceConfig, LockoutConfig
from device.pipeline import IDENTIFY_SUBJECT, Authenticator
from device.store import TemplateStore


class Wall:
    """A wall clock the test moves by hand (an attacker with NTP or an RTC can move the real one)."""

    def __init__(self, t: float = 1_700_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class Boot:
    def __init__(self) -> None:
        self.id = "boot-1"

    def __call__(self) -> str:
        return self.id


def open_store(state: Path, wall: Wall, boot: Boot, config: LockoutConfig | None = None) -> TemplateStore:
    return TemplateStore.open(state, lockout_config=config or LockoutConfig(), clock=wall, boot_id=boot)


def test_every_lockout_is_capped_even_the_twentieth(tmp_path: Path):
    with open_store(tmp_path / "s", Wall(), Boot()) as store:
        started = [store.record_failure("alice", float(i)) for i in range(5 * 20)]
    lockouts = [s for s in started if s]
    assert len(lockouts) == 20 and max(lockouts) == LockoutConfig().max_seconds == 900.0
    assert lockouts[:3] == [30.0, 60.0, 120.0]  # still growing below the cap


def test_absurd_growth_neither_overflows_nor_exceeds_the_cap(tmp_path: Path):
    config = LockoutConfig(max_failures=1, seconds=86400.0, growth=10.0, max_seconds=600.0)
    with open_store(tmp_path / "s", Wall(), Boot(), config) as store:
        assert {store.record_failure("alice", 0.0) for _ in range(500)} == {600.0}


def test_strangers_in_identify_mode_never_lock_a_user_and_back_off_is_capped(tmp_path: Path):
    config = LockoutConfig()
    with open_store(tmp_path / "s", Wall(), Boot(), config) as store:
        started = [store.record_failure(IDENTIFY_SUBJECT, 0.0) for _ in range(200)]
        assert max(started) == config.identify_max_seconds == 30.0 and started[4] == config.identify_seconds
        assert store.lockout_remaining("alice", 0.0) == 0 and store.lockout_remaining("bob", 0.0) == 0
        assert store.lockout_remaining(IDENTIFY_SUBJECT, 0.0) <= 30.0


@pytest.mark.parametrize("jump", [+10 * 86400.0, -10 * 86400.0, +1e9])
def test_moving_the_wall_clock_neither_ends_nor_stretches_a_lockout(tmp_path: Path, jump: float):
    wall, boot = Wall(), Boot()
    with open_store(tmp_path / "s", wall, boot) as store:
        for _ in range(5):
            store.record_failure("alice", 100.0)
        wall.t += jump  # the attack: set the clock forward (or an RTC-less board boots in the past)
        assert store.lockout_remaining("alice", 101.0) == pytest.approx(29.0)
    with open_store(tmp_path / "s", wall, boot) as store:  # a daemon restart in the same boot: same deadline
        assert store.lockout_remaining("alice", 110.0) == pytest.approx(20.0)
        assert store.lockout_remaining("alice", 130.0) == 0


def test_a_reboot_restarts_a_running_lockout_never_shortens_it(tmp_path: Path):
    wall, boot = Wall(), Boot()
    with open_store(tmp_path / "s", wall, boot) as store:
        for _ in range(5):
            store.record_failure("alice", 5000.0)  # monotonic time of boot 1
    boot.id, wall.t = "boot-2", wall.t + 1e7  # power cycle, and the wall clock far ahead
    with open_store(tmp_path / "s", wall, boot) as store:
        assert store.lockout_remaining("alice", 3.0) == pytest.approx(30.0)  # monotonic restarted near 0
        assert store.lockout_remaining("alice", 20.0) == pytest.approx(13.0)
        assert store.lockout_remaining("alice", 33.0) == 0
        # an expired lockout is not started again by the next failure, and the counter goes on
        assert store.record_failure("alice", 40.0) == 0


def test_a_schema_1_lockout_row_is_re_anchored_not_dropped(tmp_path: Path):
    wall, boot = Wall(), Boot()
    with open_store(tmp_path / "s", wall, boot) as store:
        store.conn.execute("INSERT INTO lockout (subject, failures, lockouts, locked_until, duration, boot) "
                           "VALUES ('alice', 0, 1, 1e12, 30, 'legacy')")
        assert store.lockout_remaining("alice", 7.0) == pytest.approx(30.0)


def run_cli(state: Path, *args: str):
    return CliRunner().invoke(main, ["--state-dir", str(state), *args])


def test_lockout_list_reset_audit_and_status(tmp_path: Path):
    import time

    state = tmp_path / "s"
    with TemplateStore.open(state) as store:
        for _ in range(5):
            store.record_failure("alice", time.monotonic())
        store.record_failure("bob", time.monotonic())
    r = run_cli(state, "lockout", "list", "--json")
    rows = {row["subject"]: row for row in json.loads(r.output)}
    assert r.exit_code == 0 and rows["alice"]["remaining_s"] > 25 and rows["bob"]["failures"] == 1
    status = json.loads(run_cli(state, "status", "--json").output)
    assert [lock["subject"] for lock in status["store"]["lockouts"]] == ["alice"]
    assert run_cli(state, "lockout", "reset").exit_code == 2  # neither a user nor --all
    r = run_cli(state, "lockout", "reset", "carol")
    assert r.exit_code == 2 and "no failed attempts" in r.output
    r = run_cli(state, "lockout", "reset", "alice")
    assert r.exit_code == 0 and "cleared 1" in r.output
    with TemplateStore.open(state) as store:
        assert store.lockout_remaining("alice", time.monotonic()) == 0
        assert [s for s, _, _ in store.lockouts(time.monotonic())] == ["bob"]
        last = store.audit_tail(1)[0]
        assert (last.event, last.user, last.decision) == ("lockout.reset", "alice", "ok")
    r = run_cli(state, "lockout", "reset", "--all", "--json")
    assert r.exit_code == 0 and json.loads(r.output) == {"cleared": 1, "user": None}  # bob's record was left
    assert json.loads(run_cli(state, "lockout", "list", "--json").output) == []


class Mono:
    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def test_pipeline_stranger_cannot_lock_out_alice_and_verify_lock_holds_in_identify(fixture_models, tmp_path):  # noqa: F811
    clock = Mono()
    config = Config(inference=InferenceConfig(model=fixture_models.int8_card), enrol=EnrolConfig(captures=3))
    with Authenticator.from_config(config, tmp_path / "state", clock=clock) as auth:
        assert auth.enroll("alice", "right-index", [finger_image(1, i) for i in range(3)]).ok
        stranger = finger_image(9, 0)
        for _ in range(20):  # the attack: many stranger touches at the door
            d = auth.identify(stranger)
            assert not d.accepted
            clock.t += 1
        left = auth.store.lockout_remaining(IDENTIFY_SUBJECT, clock.t)
        assert 0 < left <= config.lockout.identify_max_seconds
        assert auth.store.lockout_remaining("alice", clock.t) == 0  # no user was charged
        d = auth.verify("alice", finger_image(1, 5))  # the shared back-off holds for verify too (consistent)
        assert not d.accepted and d.reason.startswith("locked out")
        clock.t += left
        assert auth.identify(finger_image(1, 5)).user == "alice"  # alice gets in after at most the cap

        for _ in range(5):  # now alice's name is attacked through verify: alice is locked ...
            auth.verify("alice", stranger)
        d = auth.identify(finger_image(1, 5))  # ... and identify does not open for her either
        assert not d.accepted and d.reason.startswith("locked out") and math.isnan(d.score) and d.user is None
        clock.t += 31
        assert auth.identify(finger_image(1, 5)).accepted
