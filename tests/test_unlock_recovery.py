"""Issue 17 item 2: the lock link recovers after its port goes away, and the daemon reports (then ends) a lasting
outage instead of feeding the watchdog forever.

Real parts: pyserial over a pty to the emulated lock (real firmware), whose port is a symlink that is repointed to
a NEW pty pair (a USB-UART re-enumerating); the real daemon loop over the emulated R307. Backoff and degraded time
run on passed-in clocks, never on real sleeps.
"""

from __future__ import annotations

import socket
import threading

import pytest
from helpers import decide, print_of

from device.app import Daemon
from device.config import SerialUnlockConfig, UnlockConfig
from device.errors import UnlockError
from device.sdnotify import SdNotifier
from device.sensors.r30x import R30xSensor
from device.sensors.r30x_emulator import R30xEmulator
from device.unlock import build_unlocker
from firmware_bridge.emulator import Emulator
from firmware_bridge.link import Link

pytestmark = pytest.mark.timeout(60)


class StepClock:
    """A monotonic clock that moves only when told to, plus ``step`` per call (so read loops still end)."""

    def __init__(self, step: float = 0.001) -> None:
        self.now = 1000.0
        self.step = step

    def __call__(self) -> float:
        self.now += self.step
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def lock(tmp_path):
    emu = Emulator(tmp_path / "flash", link=tmp_path / "ttyLOCK")
    emu.start()
    yield emu
    emu.stop()


def paired_unlocker(lock, tmp_path, **link_kwargs):
    state = tmp_path / "state"
    with Link.open(lock.port, state, timeout_s=0.3) as link:
        link.pair()
    cfg = UnlockConfig(serial=SerialUnlockConfig(enabled=True, port=lock.port, timeout_s=0.3, retries=1))
    unlocker = build_unlocker(cfg, state)
    for name, value in link_kwargs.items():
        setattr(unlocker.link, name, value)
    return unlocker


def test_reenumerated_lock_port_is_reopened_and_the_failed_grant_opened_nothing(lock, tmp_path):
    unlocker = paired_unlocker(lock, tmp_path)
    unlocker.grant(100, "alice")
    old_tty = lock.port and (tmp_path / "ttyLOCK").resolve()
    lock.reenumerate()
    assert (tmp_path / "ttyLOCK").resolve() != old_tty  # same path, another device
    with pytest.raises(UnlockError, match="lock port"):
        unlocker.grant(100, "bob")  # this request met the dead port: reported failed ...
    assert len(lock.unlock_log) == 1  # ... and it opened nothing
    unlocker.grant(100, "carol")  # the next one re-opens the same path and greets the lock again
    assert len(lock.unlock_log) == 2 and lock.unlock_log[-1][1] == unlocker.link.unlock_refs[-1]
    assert unlocker.link.stats["reopens"] == 1 and unlocker.health() is None
    unlocker.close()


def test_missing_port_is_retried_with_backoff_and_health_says_why(lock, tmp_path):
    clock = StepClock()
    unlocker = paired_unlocker(lock, tmp_path, clock=clock)
    link = unlocker.link
    lock.unplug_port()
    reason = unlocker.health()  # the zero-wait read meets the hung-up port
    assert reason and reason.startswith("serial lock: ")
    failures = []
    for _ in range(40):  # 40 checks, 0.25 s apart: 10 s without the port
        clock.advance(0.25)
        assert unlocker.health() is not None
        failures.append(link.stats["reopen_failures"])
    # re-opens were tried at about 0, 0.5, 1.5, 3.5, 7.5 s: five tries in 10 s, not forty
    assert failures[-1] == 5, failures
    with pytest.raises(UnlockError):
        unlocker.grant(100, "while down")  # fails at once, within the backoff: nothing is sent, nothing opens
    lock.replug_port()
    clock.advance(30.0)
    assert unlocker.health() is None
    unlocker.grant(100, "back")
    assert [ms for ms, _ in lock.unlock_log] == [100]
    unlocker.close()


def test_lock_absent_at_start_does_not_stop_the_daemon_from_building_it(lock, tmp_path):
    unlocker = paired_unlocker(lock, tmp_path)
    unlocker.close()
    lock.unplug_port()
    cfg = UnlockConfig(serial=SerialUnlockConfig(enabled=True, port=str(tmp_path / "ttyLOCK"), timeout_s=0.3))
    late = build_unlocker(cfg, tmp_path / "state")
    assert "cannot open lock port" in late.health()
    lock.replug_port()
    real = late.link.clock
    late.link.clock = lambda: real() + 60  # a minute later: past the first backoff step
    late.grant(100, "late")
    assert len(lock.unlock_log) == 1
    late.close()


# --- the daemon -----------------------------------------------------------------------------------------------------
def listener(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(10)
    return sock


def statuses(sock, until: bytes, limit: int = 400) -> list[bytes]:
    seen = []
    for _ in range(limit):
        msg = sock.recv(512)
        seen.append(msg)
        if until in msg:
            return seen
    raise AssertionError(f"{until!r} never came: {seen[-5:]}")


def test_daemon_reports_degraded_recovers_and_opens_again(lock, tmp_path):
    clock = StepClock(step=0.05)
    unlocker = paired_unlocker(lock, tmp_path, clock=clock)
    sock = listener(tmp_path / "n.sock")
    with R30xEmulator("r307", link=tmp_path / "ttyFP") as fp:
        daemon = Daemon(lambda: R30xSensor(fp.port, timeout_s=1.0, poll_interval_s=0.01), decide, unlocker,
                        notifier=SdNotifier({"NOTIFY_SOCKET": str(tmp_path / "n.sock")}), clock=clock, poll_s=0.02,
                        clear_timeout_s=0.5, health_every_s=1.0, max_degraded_s=1e9, max_attempts=1, duration_ms=150)
        thread = threading.Thread(target=daemon.run)
        thread.start()
        try:
            statuses(sock, b"STATUS=ready")
            lock.unplug_port()
            degraded = statuses(sock, b"STATUS=degraded")[-1]
            assert b"serial lock" in degraded
            lock.replug_port()
            clock.advance(60)  # past any backoff step
            statuses(sock, b"STATUS=ready")
            fp.present(print_of(170))
            thread.join(timeout=30)
        finally:
            daemon.stop()
            thread.join(timeout=5)
    sock.close()
    assert daemon.stats.unlocks == 1 and [ms for ms, _ in lock.unlock_log] == [150]
    assert daemon.stats.degraded == ""
    unlocker.close()


def test_daemon_exits_after_a_bounded_degraded_time(lock, tmp_path):
    clock = StepClock(step=0.5)
    unlocker = paired_unlocker(lock, tmp_path, clock=clock)
    sock = listener(tmp_path / "n.sock")
    env = {"NOTIFY_SOCKET": str(tmp_path / "n.sock"), "WATCHDOG_USEC": "1000000"}
    messages: list[bytes] = []
    drain = threading.Thread(target=lambda: messages.extend(statuses(sock, b"STOPPING=1", limit=100_000)))
    drain.start()  # read as systemd does: a full datagram queue would block the sender
    lock.unplug_port()  # and it never comes back
    with R30xEmulator("r307", link=tmp_path / "ttyFP") as fp:
        daemon = Daemon(lambda: R30xSensor(fp.port, timeout_s=1.0, poll_interval_s=0.01), decide, unlocker,
                        notifier=SdNotifier(env), clock=clock, poll_s=0.02, health_every_s=5.0, max_degraded_s=120.0)
        thread = threading.Thread(target=daemon.run)
        thread.start()
        thread.join(timeout=30)
        alive = thread.is_alive()
        daemon.stop()
        thread.join(timeout=5)
    drain.join(timeout=10)
    sock.close()
    assert not alive, "a lasting lock outage must end the daemon (systemd restarts it)"
    assert daemon.stats.degraded.startswith("degraded for 12") and "serial lock" in daemon.stats.degraded
    assert any(m.startswith(b"STATUS=exiting: degraded") for m in messages)
    assert lock.unlock_log == []
    unlocker.close()


def test_health_of_a_port_opened_by_pyserial_url_is_no_false_alarm(lock, tmp_path):
    with Link.open(f"spy://{lock.port}?file={tmp_path / 'spy.txt'}", tmp_path / "state", timeout_s=0.3) as link:
        link.pair()
        assert link.check() is None and link.unlock(100, "x") == 100 and link.check() is None
