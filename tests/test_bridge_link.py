"""Real pyserial against the emulated lock (real firmware) over a pty: pairing, operations, faults."""

from __future__ import annotations

import os
import stat
import time
from collections import Counter

import pytest

from firmware_bridge.emulator import Emulator, Faults
from firmware_bridge.errors import (
    BridgeError,
    KeyFileError,
    LinkTimeoutError,
    NackError,
    PairingError,
    PortError,
    StateError,
)
from firmware_bridge.link import PAIRED, READY, UNPAIRED, Link
from firmware_bridge.pairing import (
    generate_key,
    key_to_qr_text,
    parse_key_text,
    read_key_file,
    write_key_file,
)


def wait_for(pred, timeout=5.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.005)
    return pred()


@pytest.fixture
def emu(tmp_path):
    e = Emulator(tmp_path / "flash")
    e.start()
    yield e
    e.stop()


def open_link(emu, tmp_path, **kw):
    kw.setdefault("timeout_s", 0.3)
    return Link.open(emu.port, tmp_path / "state", **kw)


@pytest.fixture
def link(emu, tmp_path):
    lk = open_link(emu, tmp_path)
    lk.pair()
    yield lk
    lk.close()


def test_state_machine_pair_hello_and_key_file(emu, tmp_path):
    lk = open_link(emu, tmp_path)
    assert lk.state == UNPAIRED
    with pytest.raises(StateError):
        lk.status()
    assert lk.pair() == "2.0.0"
    assert lk.state == PAIRED
    key_file = tmp_path / "state" / "lock.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key = read_key_file(key_file)
    assert (tmp_path / "flash" / "lock_key.bin").read_bytes() == key == lk.key  # agreed, never sent
    assert lk.pair_code == f"{emu.controller.pair_code:06d}"
    info = lk.hello()
    assert lk.state == READY and info.max_duration_ms == 60_000
    lk.close()
    again = open_link(emu, tmp_path)  # a new process: key from the file, counters from lock.counters
    assert again.state == PAIRED and again.status().paired
    again.close()


def test_ping_status_unlock_relock_and_deny(link, emu):
    assert link.ping() >= 0
    st = link.status()
    assert not st.relay_on and st.door_open is False
    emu.set_door(True)
    assert link.status().door_open is True
    assert link.unlock(150, "alice") == 150
    assert emu.relay_on and emu.unlock_log == [(150, link.unlock_refs[-1])]
    assert wait_for(lambda: not emu.relay_on)
    link.deny("stranger")
    assert emu.controller.denies == 1 and emu.relay_activations == 1


def test_relay_drops_after_duration_even_if_host_vanishes(link, emu):
    link.unlock(200, "then the host dies")
    link.close()
    assert emu.relay_on
    assert wait_for(lambda: not emu.relay_on)


def test_counter_survives_emulator_restart(tmp_path):
    with Emulator(tmp_path / "flash") as e1:
        lk = open_link(e1, tmp_path)
        lk.pair()
        lk.unlock(100, "first")
        lk.close()
        used = int((tmp_path / "state" / "lock.counters").read_text().split()[0])
    with Emulator(tmp_path / "flash") as e2:  # same flash folder: the board was power-cycled
        assert e2.controller.rx_ctr == used
        lk = open_link(e2, tmp_path)
        assert lk.unlock(100, "after restart") == 100
        lk.close()


def test_host_that_lost_its_counters_resynchronises_via_nack(link, emu, tmp_path):
    for _ in range(3):
        link.ping()
    link.close()
    (tmp_path / "state" / "lock.counters").unlink()
    lk = open_link(emu, tmp_path)
    lk.hello()  # first HELLO is refused as a replay; the NACK's detail moves our counter past the lock's
    assert lk.stats["fresh_challenge"] == 0 and lk.counters.tx > emu.controller.rx_ctr - 1
    assert lk.unlock(100, "resynced") == 100
    lk.close()


def test_one_byte_at_a_time_both_ways(tmp_path):
    with Emulator(tmp_path / "flash", Faults(byte_at_a_time=True)) as e:
        lk = open_link(e, tmp_path)
        lk.pair()
        assert lk.unlock(100, "slowly") == 100
        assert lk.status().unlocks == 1
        lk.close()


def test_silent_lock_is_a_timeout_never_an_unlock(link, emu, tmp_path):
    emu.unplugged = True
    fake_now = [0.0]

    def clock():
        fake_now[0] += 0.05
        return fake_now[0]

    sleeps = []
    silent = Link(link.port, link.key, link.counters, timeout_s=0.2, retries=2, clock=clock, sleep=sleeps.append)
    with pytest.raises(LinkTimeoutError):
        silent.exchange(0x02, b"", {0x8A})
    assert sleeps == [0.05, 0.1]  # exponential backoff between the three tries
    assert silent.stats["retransmits"] == 2
    with pytest.raises(LinkTimeoutError):
        silent.unlock(100, "nobody there")
    assert emu.unlock_log == []


def test_pair_refused_by_a_paired_lock_leaves_no_key(link, emu, tmp_path):
    other = tmp_path / "other"
    lk = Link.open(emu.port, other, timeout_s=0.3)
    with pytest.raises(PairingError, match="pair button"):
        lk.pair()
    assert not (other / "lock.key").exists() and not (other / "lock.key.new").exists()
    lk.close()


def test_pair_button_allows_re_pairing(link, emu, tmp_path):
    emu.press_pair_button()
    other = tmp_path / "other"
    lk = Link.open(emu.port, other, timeout_s=0.3)
    lk.pair()
    assert lk.unlock(100, "new key") == 100
    with pytest.raises(BridgeError):  # the old key is dead
        link.status()
    lk.close()


def test_existing_key_file_is_never_overwritten(link, tmp_path):
    key_file = tmp_path / "state" / "lock.key"
    before = key_file.read_bytes()
    with pytest.raises(PairingError, match="already exists"):
        link.pair(key_file)
    with pytest.raises(PairingError):
        write_key_file(key_file, generate_key())
    assert key_file.read_bytes() == before


def test_key_file_checks_do_not_echo_the_key(tmp_path):
    path = tmp_path / "k"
    key = generate_key()
    write_key_file(path, key)
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="other users"):
        read_key_file(path)
    os.chmod(path, 0o600)
    path.write_text("zz" + key.hex()[2:])
    with pytest.raises(KeyFileError) as info:
        read_key_file(path)
    assert key.hex()[2:] not in str(info.value)
    assert parse_key_text(key_to_qr_text(key)) == key
    with pytest.raises(KeyFileError, match="32 bytes"):
        parse_key_text("abcd")


def test_unopenable_port_is_a_typed_error(tmp_path):
    with pytest.raises(PortError):
        Link.open(str(tmp_path / "no-such-tty"), tmp_path)


def test_out_of_range_duration_is_nacked(link):
    with pytest.raises(NackError) as info:
        link.unlock(60_001, "too long")
    assert info.value.code == 4


FAULTS = {
    "drop": Faults(drop=0.15, seed=1),
    "corrupt": Faults(corrupt=0.15, seed=2),
    "delay": Faults(delay=0.3, delay_s=0.05, seed=3),
    "reorder": Faults(reorder=0.15, seed=4),
    "reboot": Faults(reboot=0.08, seed=5),
}


@pytest.mark.parametrize("kind", list(FAULTS))
def test_every_fault_kind_gives_confirmed_or_reported_failed_never_duplicated(tmp_path, kind):
    with Emulator(tmp_path / "flash", FAULTS[kind]) as e:
        e.set_faults_active(False)
        lk = open_link(e, tmp_path, timeout_s=0.1, retries=3)
        lk.pair()
        e.set_faults_active(True)
        results, cycle_of = {}, {}
        for i in range(12):
            lk.unlock_refs = []
            try:
                lk.unlock(1, f"{kind}-{i}")
                results[f"{kind}-{i}"] = True
            except BridgeError:
                results[f"{kind}-{i}"] = False
            cycle_of.update((ref, f"{kind}-{i}") for ref in lk.unlock_refs)
        time.sleep(0.2)
        lk.close()
    opened = Counter(cycle_of.get(ref, "?") for _, ref in e.unlock_log)
    injected = sum(v for k, v in e.counts.items() if not k.startswith("reboots"))
    assert injected > 0, f"no {kind} fault was injected"
    assert all(n == 1 for n in opened.values()), "an unlock was carried out twice"
    assert all(opened[r] == 1 for r, ok in results.items() if ok), "reported success without opening"
    assert sum(results.values()) >= 6  # retries make most cycles succeed despite the faults


def test_host_persists_the_lock_counter_it_accepted(link, emu, tmp_path):
    link.unlock(100, "x")
    tx, rx = (int(v) for v in (tmp_path / "state" / "lock.counters").read_text().split())
    assert rx == emu.controller.tx_ctr and tx == emu.controller.rx_ctr


def test_link_works_through_a_pyserial_url(emu, tmp_path):
    log = tmp_path / "spy.txt"
    lk = Link.open(f"spy://{emu.port}?file={log}", tmp_path / "state", timeout_s=0.3)
    lk.pair()
    assert lk.unlock(100, "via url") == 100
    lk.close()
    assert "TX" in log.read_text() or "write" in log.read_text().lower()
