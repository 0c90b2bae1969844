"""sd_notify over a real AF_UNIX datagram socket named by NOTIFY_SOCKET (path and abstract namespace)."""

import os
import socket

import pytest

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
