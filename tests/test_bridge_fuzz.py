"""Attack tests with hypothesis against the real firmware logic, plus small runs of the fuzz and soak benches."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge import frame as F
from firmware_bridge import messages as M
from firmware_bridge.emulator import Faults
from firmware_bridge.errors import BridgeError
from firmware_bridge.fuzz import Fuzzer, InProcessLock
from firmware_bridge.soak import run_soak

KEY = bytes(range(7, 39))


@pytest.fixture(scope="module")
def lock(tmp_path_factory):
    return InProcessLock(tmp_path_factory.mktemp("flash"), KEY)


def fresh_unlock(lock: InProcessLock) -> bytes:
    return lock.honest(M.UNLOCK, M.unlock_payload(lock.challenge(), 5))


SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@SETTINGS
@given(data=st.binary(max_size=300))
def test_random_bytes_never_open_and_never_crash(lock, data):
    before = lock.ctl.unlocks
    lock.feed(data + b"\x00")
    assert lock.ctl.unlocks == before


@SETTINGS
@given(bits=st.sets(st.integers(min_value=0), min_size=1, max_size=4))
def test_bit_flips_of_a_frame_that_would_open_never_open(lock, bits):
    wire = bytearray(fresh_unlock(lock))
    for bit in {b % (len(wire) * 8) for b in bits}:
        wire[bit // 8] ^= 1 << (bit % 8)
    before = lock.ctl.unlocks
    lock.feed(bytes(wire) + b"\x00")
    assert lock.ctl.unlocks == before


@SETTINGS
@given(cut=st.integers(min_value=1, max_value=200))
def test_truncations_never_open(lock, cut):
    wire = fresh_unlock(lock)
    before = lock.ctl.unlocks
    lock.feed(wire[:cut % (len(wire) - 1)] + b"\x00")
    assert lock.ctl.unlocks == before


@SETTINGS
@given(key=st.binary(min_size=32, max_size=32), counter=st.integers(min_value=0, max_value=2**64 - 1),
       duration=st.integers(min_value=1, max_value=60_000))
def test_wrong_keys_never_open(lock, key, counter, duration):
    if key == KEY:
        return
    nonce = lock.challenge()
    before = lock.ctl.unlocks
    lock.feed(b"\x00" + F.encode(key, M.UNLOCK, counter, M.unlock_payload(nonce, duration)))
    assert lock.ctl.unlocks == before


@SETTINGS
@given(st.data())
def test_replays_and_reorders_never_open_again(lock, data):
    recorded = []
    for _ in range(3):  # an eavesdropper records three honest, successful unlocks
        wire = fresh_unlock(lock)
        before = lock.ctl.unlocks
        lock.feed(wire)
        assert lock.ctl.unlocks == before + 1
        recorded.append(wire)
    held = fresh_unlock(lock)  # reorder: an honest UNLOCK held back while a later honest frame overtakes it
    lock.feed(lock.honest(M.HEARTBEAT, b""))
    lock.challenge()  # and a fresh challenge is outstanding while the attack runs
    opened = lock.ctl.unlocks
    for wire in data.draw(st.permutations([*recorded, held])):
        lock.feed(wire)
    assert lock.ctl.unlocks == opened


@settings(max_examples=100, deadline=None)
@given(st.binary(max_size=200))
def test_host_receive_path_only_raises_typed_errors(data):
    from firmware_bridge.counters import MemoryCounters

    counters = MemoryCounters()
    for item in F.FrameReader().feed(data + b"\x00"):
        if isinstance(item, Exception):
            assert isinstance(item, BridgeError)
            continue
        try:
            counters.accept_rx(F.unpack(item, KEY, expect_from_lock=True).counter)
        except BridgeError:
            pass
        else:
            pytest.fail("random bytes were accepted as an authentic frame")


def test_fuzzer_small_run_is_clean():
    fuzzer = Fuzzer(seed=11)
    try:
        report = fuzzer.run(1500)
    finally:
        fuzzer.close()
    assert report.frames >= 1500
    assert report.unlocks == 0 and report.host_accepted == 0 and report.crashes == 0 and report.untyped == 0
    assert {k.split(":")[1] for k in report.by_kind} >= {"random", "bitflip", "replay", "reorder", "truncate",
                                                           "oversize", "wrong_key", "rollback_replay"}
    # the rollback attack really got past the counter check and was stopped by the nonce
    assert report.lock_outcomes["nack:2"] > 0
    assert report.lock_outcomes["nack:1"] > 0 and report.lock_outcomes["drop:tag"] > 0


def test_small_soak_over_pty_is_never_duplicated(tmp_path):
    report = run_soak(20, Faults(drop=0.05, corrupt=0.05, seed=3), timeout_s=0.1, workdir=tmp_path)
    assert report.cycles == 20 and report.crashes == 0
    assert report.duplicated == 0 and report.reported_but_not_opened == 0
    assert report.succeeded + report.failed == 20 and report.succeeded >= 12
    assert sum(report.faults.values()) > 0
