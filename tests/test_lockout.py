"""Lockout: the pure rules (property-based) and their persistence across restarts."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from device.config import LockoutConfig
from device.store import TemplateStore
from device.store.lockout import LockoutState, after_failure, remaining

DEFAULT = LockoutConfig()


def fail(state, now, n, config=DEFAULT):
    started = []
    for _ in range(n):
        state, seconds = after_failure(state, now, config)
        started.append(seconds)
    return state, started


def test_five_failures_lock_for_thirty_seconds_growing():
    state, started = fail(LockoutState(), 100.0, 5)
    assert started == [0, 0, 0, 0, 30.0]
    assert remaining(state, 100.0) == 30.0 and remaining(state, 120.0) == 10.0 and remaining(state, 130.0) == 0
    state, started = fail(state, 200.0, 5)
    assert started[-1] == 60.0 and remaining(state, 200.0) == 60.0
    state, started = fail(state, 300.0, 5)
    assert started[-1] == 120.0


def test_clock_set_back_never_locks_longer_than_the_lockout():
    state, _ = fail(LockoutState(), 1000.0, 5)
    assert remaining(state, 10.0) == 30.0  # wall clock jumped back: still locked, but only for the lockout


@settings(max_examples=100, deadline=None)
@given(max_failures=st.integers(1, 10), seconds=st.floats(0, 1000), growth=st.floats(1, 10),
       events=st.lists(st.tuples(st.booleans(), st.floats(0, 1e6)), max_size=60))
def test_lockout_properties(max_failures, seconds, growth, events):
    config = LockoutConfig(max_failures=max_failures, seconds=seconds, growth=growth)
    state, last_duration, consecutive = LockoutState(), 0.0, 0
    for success, now in events:
        if success:
            state, last_duration, consecutive = LockoutState(), 0.0, 0
            continue
        state, started = after_failure(state, now, config)
        consecutive += 1
        assert 0 <= remaining(state, now) <= state.duration
        if started:
            assert consecutive % max_failures == 0
            assert started >= last_duration  # repeats never get shorter
            last_duration = started
        else:
            assert consecutive % max_failures != 0 or seconds == 0


@pytest.fixture
def state_dir(tmp_path):
    return tmp_path / "state"


def test_lockout_persists_across_restarts(state_dir):
    config = LockoutConfig(max_failures=3, seconds=10.0, growth=3.0)
    with TemplateStore.open(state_dir, lockout_config=config) as store:
        assert [store.record_failure("user:alice", 50.0) for _ in range(3)] == [0, 0, 10.0]
        assert store.lockout_remaining("user:bob", 50.0) == 0  # subjects are independent
    with TemplateStore.open(state_dir, lockout_config=config) as store:
        assert store.lockout_remaining("user:alice", 54.0) == pytest.approx(6.0)
        assert [store.record_failure("user:alice", 70.0) for _ in range(3)][-1] == 30.0
    with TemplateStore.open(state_dir, lockout_config=config) as store:
        assert store.lockout_remaining("user:alice", 80.0) == pytest.approx(20.0)
        store.record_success("user:alice")
        assert store.lockout_remaining("user:alice", 80.0) == 0
        assert [store.record_failure("user:alice", 90.0) for _ in range(3)][-1] == 10.0  # growth reset


def test_default_lockout_config_from_open(state_dir):
    with TemplateStore.open(state_dir) as store:
        assert [store.record_failure("identify", 0.0) for _ in range(5)] == [0, 0, 0, 0, 30.0]


def test_batch_groups_counter_and_audit_all_or_nothing(state_dir):
    with TemplateStore.open(state_dir) as store:
        with store.batch():
            store.record_failure("user:alice", 1.0)
            store.audit("verify", user="alice", decision="reject")
        with pytest.raises(RuntimeError), store.batch():
            for _ in range(4):
                store.record_failure("user:alice", 2.0)
            store.audit("verify", user="alice", decision="reject")
            raise RuntimeError("crash before the commit")
        assert len(store.audit_tail()) == 1
        assert [store.record_failure("user:alice", 3.0) for _ in range(4)][-1] == 30.0  # 1 + 4 failures


def test_success_without_failures_does_not_write(state_dir):
    with TemplateStore.open(state_dir) as store:
        before = store.conn.total_changes
        store.record_success("user:alice")
        assert store.conn.total_changes == before
        store.record_failure("user:alice", 0.0)
        store.record_success("user:alice")
        assert store.conn.total_changes == before + 2 + 2 * 2  # the row, its deletion; generation (seq, MAC) twice
