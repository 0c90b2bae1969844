"""Issue 17 item 9: the sensor UART is opened exclusively, and a running daemon lends it to an enrolment.

Real parts: the daemon loop (device.app.Daemon) on the real R30x driver against the emulated R307 over a pty, the
real AF_UNIX control socket, and the CLI's own capture path (``_authcli.sensor_images``, what `biolock enroll` uses).
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest
from click.testing import CliRunner
from helpers import decide, print_of

from device.app import Daemon
from device.cli import main
from device.commands._authcli import sensor_images
from device.config import Config, SensorConfig
from device.control import CONTROL_SOCKET, ControlServer, daemon_paused
from device.sdnotify import SdNotifier
from device.sensors.base import SensorUnavailableError
from device.sensors.r30x import R30xSensor
from device.sensors.r30x_emulator import R30xEmulator
from device.unlock import NullUnlocker

pytestmark = pytest.mark.timeout(60)


class Recorder(NullUnlocker):
    opens_door = True


def wait_for(pred, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not pred():
        time.sleep(0.01)  # polling a condition set by another thread, not timing the code under test
    return pred()


@pytest.fixture
def running(tmp_path):
    """A daemon on the emulated R307 with its control socket in ``tmp_path``; yields (emulator, daemon)."""
    state = tmp_path / "state"  # $BIOLOCK_STATE_DIR in every test (conftest): where the CLI looks
    state.mkdir()
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)  # systemd's end of NOTIFY_SOCKET
    listener.bind(str(tmp_path / "notify.sock"))
    listener.settimeout(0.2)
    notes: list[str] = []

    def drain():
        while listener.fileno() >= 0:
            try:
                notes.append(listener.recv(512).decode())
            except (TimeoutError, OSError):
                continue

    threading.Thread(target=drain, daemon=True).start()
    with R30xEmulator("r307", link=tmp_path / "ttyFP") as emu:
        control = ControlServer(state / CONTROL_SOCKET)
        daemon = Daemon(lambda: R30xSensor(emu.port, timeout_s=1.0, poll_interval_s=0.01), decide, Recorder(),
                        poll_s=0.05, clear_timeout_s=0.5, backoff_s=(0.05, 0.2), control=control,
                        notifier=SdNotifier({"NOTIFY_SOCKET": str(tmp_path / "notify.sock")}))
        daemon.notes = notes
        thread = threading.Thread(target=daemon.run)
        thread.start()
        assert wait_for(lambda: daemon.sensor is not None)
        try:
            yield emu, daemon
        finally:
            daemon.stop()
            thread.join(timeout=10)
            control.close()
            listener.close()
    assert not thread.is_alive()


def test_second_opener_is_refused_naming_the_daemon_pid(running):
    emu, _ = running
    with pytest.raises(SensorUnavailableError, match=rf"in use by pid {os.getpid()}\b"):
        R30xSensor(emu.port, timeout_s=1.0).open()


def test_enrolment_borrows_the_sensor_from_the_running_daemon(running, tmp_path):
    emu, daemon = running
    config = Config(sensor=SensorConfig(type="r30x", port=emu.port, timeout_s=1.0, finger_timeout_s=5.0))
    def enrollee():  # touches the sensor once the daemon has let go of it (earlier, the daemon would see it)
        if wait_for(lambda: daemon.sensor is None):
            emu.present(print_of(85))

    threading.Thread(target=enrollee, daemon=True).start()
    captures = sensor_images(config, 1)
    image = next(captures)  # inside: the daemon has let go of the sensor, the CLI holds it
    assert int(image[0, 0]) == 85 and daemon.sensor is None and daemon.stats.attempts == 0
    captures.close()  # the command ends: the daemon takes the sensor back
    assert wait_for(lambda: daemon.sensor is not None)
    notes = daemon.notes
    assert wait_for(lambda: any(m.startswith("STATUS=paused: sensor lent to pid") for m in notes))
    lent = next(i for i, m in enumerate(notes) if m.startswith("STATUS=paused"))
    assert wait_for(lambda: any(m.startswith("STATUS=ready: sensor") for m in notes[lent:]))  # STATUS= follows
    emu.present(print_of(170))
    assert wait_for(lambda: daemon.stats.unlocks == 1)
    assert daemon.unlocker.grants == [(3000, "alice: match")]  # the enrolment touch never reached the daemon


def test_a_killed_enrolment_gives_the_sensor_back(running, tmp_path):
    emu, daemon = running
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    client.settimeout(10)
    client.connect(str(tmp_path / "state" / CONTROL_SOCKET))
    client.sendall(b"PAUSE\n")
    assert client.recv(64) == b"PAUSED\n"
    other = R30xSensor(emu.port, timeout_s=1.0)
    other.open()  # lent: the second opener gets it now
    with pytest.raises(SensorUnavailableError, match="another enrolment has it"):
        with daemon_paused(tmp_path / "state", timeout_s=5):
            pass  # a second enrolment during the pause is told so, not left waiting
    other.close()
    client.close()  # what the kernel does when the CLI is killed
    assert wait_for(lambda: daemon.sensor is not None)


def test_no_daemon_and_a_stale_socket_mean_no_pause(tmp_path):
    with daemon_paused(tmp_path) as lent:
        assert lent is False
    stale = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    stale.bind(str(tmp_path / CONTROL_SOCKET))
    stale.close()  # the file stays, nobody listens: a daemon killed with -9
    with daemon_paused(tmp_path) as lent:
        assert lent is False


def test_run_refuses_to_start_without_a_lock_unless_told(tmp_path):
    cfg = tmp_path / "biolock.toml"
    cfg.write_text('[sensor]\ntype = "replay"\npath = "/nonexistent"\n')
    result = CliRunner().invoke(main, ["--config", str(cfg), "--state-dir", str(tmp_path / "s"), "run"])
    assert result.exit_code == 2 and "no lock is configured" in result.output and "none = true" in result.output



def test_status_says_what_opens_the_door(tmp_path):
    cfg = tmp_path / "biolock.toml"
    args = ["--config", str(cfg), "--state-dir", str(tmp_path / "s"), "status", "--json"]
    cfg.write_text('[sensor]\ntype = "replay"\npath = "/nonexistent"\n')
    assert "refuses to start" in json.loads(CliRunner().invoke(main, args).stdout)["unlock"]
    cfg.write_text('[sensor]\ntype = "replay"\npath = "/nonexistent"\n[unlock]\nnone = true\n')
    assert "accepts open nothing" in json.loads(CliRunner().invoke(main, args).stdout)["unlock"]
    cfg.write_text('[unlock.serial]\nenabled = true\nport = "/dev/biolock-lock"\n')
    assert json.loads(CliRunner().invoke(main, args).stdout)["unlock"] == "serial lock on /dev/biolock-lock"


def test_a_second_daemon_does_not_steal_the_control_socket(running, tmp_path):
    with pytest.raises(SensorUnavailableError, match="another biolock daemon is running"):
        ControlServer(tmp_path / "state" / CONTROL_SOCKET)
    assert (tmp_path / "state" / CONTROL_SOCKET).exists()
