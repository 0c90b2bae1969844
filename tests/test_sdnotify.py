"""sd_notify over a real AF_UNIX datagram socket named by NOTIFY_SOCKET (path and abstract namespace)."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import DEPLOY, unit_settings

from device.sdnotify import SdNotifier


@pytest.fixture
def listener(tmp_path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    path = str(tmp_path / "notify.sock")
    sock.bind(path)
    sock.settimeout(2)
    yield path, sock
    sock.close()


def test_ready_status_and_stopping_arrive_as_datagrams(listener):
    path, sock = listener
    notifier = SdNotifier({"NOTIFY_SOCKET": path})
    assert notifier.ready("model loaded, sensor open")
    assert sock.recv(4096) == b"READY=1\nSTATUS=model loaded, sensor open"
    assert notifier.stopping()
    assert sock.recv(4096) == b"STOPPING=1"
    notifier.close()


def test_abstract_namespace_socket():
    name = f"biolock-test-{os.getpid()}"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind("\0" + name)
    sock.settimeout(2)
    try:
        assert SdNotifier({"NOTIFY_SOCKET": "@" + name}).watchdog()
        assert sock.recv(64) == b"WATCHDOG=1"
    finally:
        sock.close()


def test_watchdog_pings_at_half_the_interval(listener):
    path, sock = listener
    notifier = SdNotifier({"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "4000000", "WATCHDOG_PID": str(os.getpid())})
    assert notifier.watchdog_interval_s == 2.0
    sent = [notifier.ping_if_due(t) for t in (100.0, 101.0, 101.99, 102.0, 103.0, 104.5)]
    assert sent == [True, False, False, True, False, True]
    assert [sock.recv(64) for _ in range(3)] == [b"WATCHDOG=1"] * 3


def test_watchdog_for_another_pid_or_absent_is_off():
    assert SdNotifier({"WATCHDOG_USEC": "1000000", "WATCHDOG_PID": "1"}).watchdog_interval_s is None
    assert SdNotifier({"WATCHDOG_USEC": "0"}).watchdog_interval_s is None
    assert SdNotifier({}).ping_if_due(0.0) is False


def test_outside_systemd_and_broken_sockets_never_raise(tmp_path):
    assert SdNotifier({}).ready() is False
    assert SdNotifier({"NOTIFY_SOCKET": str(tmp_path / "gone.sock")}).ready() is False


# --- the systemd unit, udev rules and installer in deploy/ -------------------------------------------------------
def test_unit_is_a_hardened_notify_service():
    s = unit_settings()
    assert s["Type"] == ["notify"] and s["Restart"] == ["on-failure"] and s["WatchdogSec"]
    assert s["StateDirectory"] == ["biolock"] and s["UMask"] == ["0077"]
    assert s["ProtectSystem"] == ["strict"] and s["PrivateNetwork"] == ["yes"] and s["DevicePolicy"] == ["closed"]
    allowed = " ".join(s["DeviceAllow"])
    for device in ("/dev/ttyS0", "/dev/ttyAMA10", "/dev/ttyTHS1", "char-gpiochip", "char-video4linux"):
        assert device in allowed
    assert "run" in s["ExecStart"][0].split()


@pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze not installed")
def test_unit_passes_systemd_analyze_verify(tmp_path):
    biolock = Path(sys.executable).with_name("biolock")
    text = (DEPLOY / "biolock.service").read_text().replace("/opt/biolock/.venv/bin/biolock", str(biolock))
    unit = tmp_path / "biolock.service"
    unit.write_text(text)
    out = subprocess.run(["systemd-analyze", "verify", str(unit)], capture_output=True, text=True, timeout=60)
    complaints = [line for line in (out.stdout + out.stderr).splitlines() if "biolock.service" in line]
    assert out.returncode == 0 and complaints == [], out.stdout + out.stderr


def test_udev_rules_are_well_formed():
    rules = [line for line in (DEPLOY / "99-biolock.rules").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert rules
    for rule in rules:
        keys = [part.strip() for part in rule.split(",")]
        assert any("==" in k for k in keys) and any(('="' in k or '+="' in k) and "==" not in k for k in keys), rule
    assert any("video4linux" in r for r in rules) and any("gpiochip" in r for r in rules)


def test_installer_dry_run_lists_the_steps():
    out = subprocess.run(["sh", str(DEPLOY / "install.sh"), "--dry-run"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    for step in ("useradd --system", "99-biolock.rules", "biolock.service", "systemctl daemon-reload"):
        assert step in out.stdout
