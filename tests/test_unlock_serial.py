"""The serial lock as an Unlocker (contract 8) and the `biolock lock` commands, against the emulated lock."""

from __future__ import annotations

import json
import re

import pytest
from click.testing import CliRunner
from gpiozero import Device
from gpiozero.pins.mock import MockFactory

from device.cli import main
from device.config import GpioUnlockConfig, SerialUnlockConfig, UnlockConfig
from device.errors import UnlockError
from device.unlock import CompositeUnlocker, build_unlocker
from device.unlock.serial_lock import SerialLockUnlocker
from firmware_bridge.emulator import Emulator
from firmware_bridge.link import Link


@pytest.fixture
def emu(tmp_path):
    e = Emulator(tmp_path / "flash")
    e.start()
    yield e
    e.stop()


def paired_state(emu, tmp_path):
    state = tmp_path / "state"
    with Link.open(emu.port, state, timeout_s=0.3) as link:
        link.pair()
    return state


def serial_cfg(emu, **kw):
    return UnlockConfig(serial=SerialUnlockConfig(enabled=True, port=emu.port, timeout_s=0.2, retries=1, **kw))


def test_build_unlocker_serial_grant_opens_the_lock(emu, tmp_path):
    state = paired_state(emu, tmp_path)
    unl = build_unlocker(serial_cfg(emu), state)
    assert isinstance(unl, SerialLockUnlocker)
    unl.grant(120, "alice")
    assert [ms for ms, _ in emu.unlock_log] == [120] and emu.relay_on
    unl.deny("bob")
    assert emu.controller.denies == 1
    assert unl.status().unlocks == 1
    unl.close()


def test_unpaired_serial_lock_refuses_to_build(emu, tmp_path):
    with pytest.raises(UnlockError, match="not paired"):
        build_unlocker(serial_cfg(emu), tmp_path / "empty")


def test_key_file_from_config(emu, tmp_path):
    state = paired_state(emu, tmp_path)
    moved = tmp_path / "elsewhere.key"
    (state / "lock.key").rename(moved)
    unl = build_unlocker(serial_cfg(emu, key_file=moved), state)
    unl.grant(100, "x")
    assert len(emu.unlock_log) == 1
    unl.close()


def test_link_timeout_is_unlock_error_and_nothing_opens(emu, tmp_path):
    state = paired_state(emu, tmp_path)
    unl = build_unlocker(serial_cfg(emu), state)
    emu.unplugged = True
    with pytest.raises(UnlockError, match="did not confirm"):
        unl.grant(100, "x")
    unl.deny("still no lock")  # best effort: logged, not raised
    assert emu.unlock_log == []
    unl.close()


def test_serial_and_gpio_together(emu, tmp_path):
    factory = MockFactory()
    previous, Device.pin_factory = Device.pin_factory, factory
    try:
        state = paired_state(emu, tmp_path)
        cfg = UnlockConfig(serial=serial_cfg(emu).serial, gpio=GpioUnlockConfig(backend="gpiozero", relay_pin=21))
        unl = build_unlocker(cfg, state)
        assert isinstance(unl, CompositeUnlocker) and isinstance(unl.members[0], SerialLockUnlocker)
        unl.grant(100, "both")
        assert [ms for ms, _ in emu.unlock_log] == [100] and factory.pin(21).state is True
        emu.unplugged = True
        with pytest.raises(UnlockError):
            unl.grant(100, "lock gone")
        assert unl.members[1].grants == 1  # the relay did not fire for the failed grant
        unl.close()
    finally:
        factory.reset()
        Device.pin_factory = previous


def test_cli_pair_status_ping_test_unlock(emu, tmp_path):
    runner = CliRunner()
    state = ["--state-dir", str(tmp_path / "cli-state")]
    port = ["--port", emu.port, "--timeout", "0.3"]
    r = runner.invoke(main, [*state, "lock", "status", *port])
    assert r.exit_code == 4 and "not paired" in r.output
    r = runner.invoke(main, [*state, "lock", "pair", *port])
    assert r.exit_code == 0, r.output
    code = re.search(r"pairing code (\d{6})", r.output).group(1)
    assert code == f"{emu.controller.pair_code:06d}"  # the same six digits on both sides
    key_hex = (tmp_path / "flash" / "lock_key.bin").read_bytes().hex()
    assert key_hex not in r.output and key_hex.upper() not in r.output  # agreed, never shown or sent
    r = runner.invoke(main, [*state, "lock", "ping", *port, "--count", "2"])
    assert r.exit_code == 0 and "2 answered" in r.output
    r = runner.invoke(main, [*state, "lock", "test-unlock", *port, "--duration-ms", "150"])
    assert r.exit_code == 0 and "unlocked for 150 ms" in r.output
    assert [ms for ms, _ in emu.unlock_log] == [150]
    r = runner.invoke(main, [*state, "lock", "status", *port, "--json"])
    status = json.loads(r.stdout)
    assert status["unlocks"] == 1 and status["paired"]
    r = runner.invoke(main, [*state, "lock", "pair", *port])
    assert r.exit_code == 4 and "already exists" in r.output and key_hex not in r.output


def test_cli_fuzz_and_soak_print_counts():
    runner = CliRunner()
    r = runner.invoke(main, ["lock", "fuzz", "--frames", "300", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["frames"] >= 300 and report["unlocks"] == 0 and report["ok"]
    r = runner.invoke(main, ["lock", "soak", "--cycles", "5", "--json"])
    assert r.exit_code == 0, r.output
    report = json.loads(r.stdout)
    assert report["cycles"] == 5 and report["duplicated"] == 0 and report["succeeded"] + report["failed"] == 5


def test_cli_emulate_runs_and_stops(tmp_path):
    r = CliRunner().invoke(main, ["lock", "emulate", "--flash", str(tmp_path / "f"), "--seconds", "0.2"])
    assert r.exit_code == 0 and "/dev/" in r.output and "relay activations 0" in r.output
