"""The daemon loop over the real R30x driver and emulator: stop, SIGTERM mid-attempt, sensor loss, faults never unlock.

The decision function is a small stand-in (a marker pixel names the finger's owner) so these tests exercise the
loop, not the model; tests/test_demo.py runs the loop with the real Authenticator.
"""

import math
import os
import signal
import socket
import threading

import cv2
import numpy as np
import pytest
from helpers import decide, print_of

from device.app import Daemon, classify, install_signal_handlers, rss_kib
from device.errors import UnlockError
from device.pipeline import Decision
from device.sdnotify import SdNotifier
from device.sensors.camera import CameraSensor
from device.sensors.r30x import R30xSensor
from device.sensors.r30x_emulator import R30xEmulator
from device.unlock import NullUnlocker

pytestmark = pytest.mark.timeout(60)  # a loop bug must fail fast, not hang the suite

class Recorder(NullUnlocker):
    """Records grants like NullUnlocker but stands for a lock that opens (NullUnlocker itself opens nothing)."""

    opens_door = True


@pytest.fixture
def emu(tmp_path):
    with R30xEmulator("r307", link=tmp_path / "ttyFP") as emulator:
        yield emulator


def fault_after_open(emu, fault, count=1):
    """A sensor factory whose first sensor gets ``fault`` injected after the handshake (it hits the first attempt)."""
    injected = []

    class FaultAfterOpen(R30xSensor):
        def open(self):
            super().open()
            if not injected:
                injected.append(fault)
                emu.inject(fault, count)

    return lambda: FaultAfterOpen(emu.port, timeout_s=1.0, poll_interval_s=0.01)


def make_daemon(emu, unlocker=None, **kwargs):
    kwargs.setdefault("poll_s", 0.1)
    kwargs.setdefault("backoff_s", (0.05, 0.2))
    kwargs.setdefault("clear_timeout_s", 0.5)
    factory = kwargs.pop("factory", lambda: R30xSensor(emu.port, timeout_s=1.0, poll_interval_s=0.01))
    return Daemon(factory, kwargs.pop("decide", decide), unlocker or Recorder(), **kwargs)


def test_accepted_finger_unlocks_and_unknown_finger_is_denied(emu):
    emu.present(print_of(170))
    emu.present(print_of(34))
    unlocker = Recorder()
    stats = make_daemon(emu, unlocker, max_attempts=2, duration_ms=1500).run()
    assert (stats.accepted, stats.rejected, stats.unlocks) == (1, 1, 1)
    assert unlocker.grants == [(1500, "alice: match")]
    assert unlocker.denials == ["no match"]
    assert [a.outcome for a in stats.history] == ["accepted", "rejected"]


def test_stop_event_ends_an_idle_daemon_promptly(emu, tmp_path):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "n.sock"))
    listener.settimeout(5)
    daemon = make_daemon(emu, notifier=SdNotifier({"NOTIFY_SOCKET": str(tmp_path / "n.sock")}))
    thread = threading.Thread(target=daemon.run)
    thread.start()
    assert listener.recv(256).startswith(b"READY=1")  # sent once model and store are loaded, before the sensor
    assert listener.recv(256).startswith(b"STATUS=ready: sensor r307@")  # the sensor's state follows in STATUS=
    daemon.stop()
    thread.join(timeout=5)
    assert not thread.is_alive()
    assert listener.recv(256) == b"STOPPING=1"
    assert daemon.stats.attempts == 0
    listener.close()


def test_sigterm_mid_attempt_finishes_that_attempt_then_exits(emu):
    stop = threading.Event()
    restore = install_signal_handlers(stop)

    def slow_decide(image):
        os.kill(os.getpid(), signal.SIGTERM)  # the service manager stops us while we decide
        return decide(image)

    try:
        emu.present(print_of(170))
        emu.present(print_of(85))  # a second finger that must not be processed
        unlocker = Recorder()
        stats = make_daemon(emu, unlocker, decide=slow_decide, stop=stop).run()
    finally:
        restore()
    assert stop.is_set()
    assert stats.attempts == 1 and unlocker.grants == [(3000, "alice: match")]
    assert emu.pending() == 1


def test_sensor_that_disappears_is_reopened_with_backoff(emu):
    unlocker = Recorder()
    daemon = make_daemon(emu, unlocker, max_attempts=2)

    def after(attempt):
        if daemon.stats.attempts == 1:
            emu.unplug()
            threading.Timer(0.4, lambda: (emu.replug(), emu.present(print_of(85)))).start()

    daemon.on_attempt = after
    emu.present(print_of(170))
    stats = daemon.run()
    assert stats.attempts == 2 and stats.reopens >= 1 and stats.open_failures >= 1
    assert [g[1] for g in unlocker.grants] == ["alice: match", "bob: match"]


def test_ready_comes_before_an_absent_sensor_and_status_says_why(tmp_path):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "n.sock"))
    listener.settimeout(5)
    emu = R30xEmulator("r307", link=tmp_path / "absent")  # never started: no sensor at all
    daemon = make_daemon(emu, notifier=SdNotifier({"NOTIFY_SOCKET": str(tmp_path / "n.sock")}))
    thread = threading.Thread(target=daemon.run)
    thread.start()
    try:
        assert listener.recv(256).startswith(b"READY=1")  # `systemctl start` returns without a sensor
        assert listener.recv(256).startswith(b"STATUS=waiting for the sensor: cannot open")
    finally:
        daemon.stop()
        thread.join(timeout=5)
        listener.close()
    assert daemon.stats.attempts == 0


def test_sensor_absent_at_start_is_waited_for(tmp_path):
    emu = R30xEmulator("r307", link=tmp_path / "late")
    threading.Timer(0.3, lambda: (emu.start(), emu.present(print_of(170)))).start()
    try:
        stats = make_daemon(emu, max_attempts=1).run()
    finally:
        emu.stop()
    assert stats.open_failures >= 1 and stats.accepted == 1


@pytest.mark.parametrize(
    "fault",
    ["bad_checksum", "bad_checksum_data", "truncated_upload", "finger_lifted", "capture_fail", "half_packet",
     "silence"],
)
def test_no_fault_ever_unlocks_and_the_daemon_keeps_running(emu, fault):
    unlocker = Recorder()
    emu.present(print_of(170))
    if fault == "finger_lifted":
        emu.present(print_of(170))  # the user puts the finger back
    stats = make_daemon(emu, unlocker, max_attempts=2, factory=fault_after_open(emu, fault)).run()
    faults = [a for a in stats.history if a.outcome == "fault"]
    assert len(faults) == 1 and not faults[0].unlocked
    assert stats.unlocks == len(unlocker.grants) == 1  # only the clean second attempt opened


def test_garbage_on_the_line_does_not_cost_the_attempt(emu):
    unlocker = Recorder()
    emu.inject("garbage", 3)
    emu.present(print_of(85))
    stats = make_daemon(emu, unlocker, max_attempts=1).run()
    assert stats.accepted == 1 and unlocker.grants[0][1] == "bob: match"


def test_repeated_silence_reopens_the_sensor(emu):
    emu.present(print_of(170))
    stats = make_daemon(emu, max_attempts=4, factory=fault_after_open(emu, "silence", 4)).run()
    assert (stats.faults, stats.reopens, stats.open_failures, stats.accepted) == (3, 1, 1, 1)


class FailingUnlocker(NullUnlocker):
    def grant(self, duration_ms, reason):
        raise UnlockError("lock did not acknowledge")


def test_unconfirmed_unlock_and_failing_decisions_are_faults(emu):
    emu.present(print_of(170))
    stats = make_daemon(emu, FailingUnlocker(), max_attempts=1).run()
    assert stats.unlocks == 0 and stats.unlock_failures == 1 and stats.history[0].outcome == "fault"

    def broken(image):
        raise RuntimeError("model exploded")

    emu.present(print_of(170))
    unlocker = Recorder()
    stats = make_daemon(emu, unlocker, decide=broken, max_attempts=1).run()
    assert stats.faults == 1 and unlocker.grants == [] and "model exploded" in stats.history[0].reason


def test_audit_records_sensor_faults(emu):
    records = []
    emu.inject("truncated_upload")
    emu.present(print_of(34))
    make_daemon(emu, max_attempts=1, audit=lambda event, **kw: records.append((event, kw["decision"]))).run()
    assert records == [("sensor", "fault")]


def test_black_camera_is_rejected_and_a_finished_video_stops_the_daemon(tmp_path):
    path = tmp_path / "black.avi"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for _ in range(4):
        writer.write(np.zeros((48, 64, 3), np.uint8))
    writer.release()
    unlocker = Recorder()
    stats = Daemon(lambda: CameraSensor(str(path), burst=2), decide, unlocker, poll_s=1).run()
    assert stats.faults >= 1 and unlocker.grants == []
    assert "black" in stats.history[0].reason


def test_watchdog_is_pinged_while_idle(emu, tmp_path):
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    listener.bind(str(tmp_path / "w.sock"))
    listener.settimeout(5)
    env = {"NOTIFY_SOCKET": str(tmp_path / "w.sock"), "WATCHDOG_USEC": "100000"}
    daemon = make_daemon(emu, notifier=SdNotifier(env), poll_s=0.02)
    thread = threading.Thread(target=daemon.run)
    thread.start()
    messages = [listener.recv(256) for _ in range(4)]
    daemon.stop()
    thread.join(timeout=5)
    listener.close()
    assert messages[0].startswith(b"READY=1") and messages.count(b"WATCHDOG=1") >= 2


def test_classify_and_rss():
    assert classify(Decision(False, None, math.nan, 0.5, "fingerprint too small: press flat", 1.0)) == "retry"
    assert classify(Decision(False, "a", math.nan, 0.5, "locked out: try again in 30 s", 1.0)) == "rejected"
    assert classify(Decision(False, None, math.nan, 0.5, "nobody enrolled", 1.0)) == "rejected"
    assert classify(Decision(False, None, 0.2, 0.5, "no match", 1.0)) == "rejected"
    assert rss_kib() > 0


def test_r503_led_ring_shows_busy_result_and_idle(tmp_path):
    from device.sensors.r30x import LED_PATTERNS

    with R30xEmulator("r503") as emu503:
        image = np.full((192, 192), 120, np.uint8)
        image[0, 0] = 85
        emu503.present(image)
        emu503.present(np.full((192, 192), 120, np.uint8))
        factory = lambda: R30xSensor(emu503.port, "r503", timeout_s=1.0, poll_interval_s=0.01)  # noqa: E731
        make_daemon(emu503, max_attempts=2, factory=factory).run()
        expected = [LED_PATTERNS[k] for k in ("busy", "accepted", "idle", "busy", "rejected", "idle")]
        assert list(emu503.leds) == expected


def test_no_lock_configured_logs_unlocked_false(emu, caplog):
    emu.present(print_of(170))
    unlocker = NullUnlocker()
    with caplog.at_level("INFO", logger="biolock.daemon"):
        stats = make_daemon(emu, unlocker, max_attempts=1).run()
    assert stats.accepted == 1 and stats.unlocks == 0 and unlocker.grants == [(3000, "alice: match")]
    assert "accepted alice (match) unlocked=False" in caplog.text
