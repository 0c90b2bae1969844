"""Enrol while the daemon runs: the daemon lends its sensor to a local CLI over an AF_UNIX socket.

Why this design (and not enrolment served by the daemon): the sensor is opened exclusively, so only one process
can use it; the simplest robust hand-over is that the CLI asks the daemon to let go of it. The CLI connects to
``<state_dir>/control.sock`` and sends ``PAUSE``; the daemon finishes the attempt in progress, closes the sensor
and answers ``PAUSED``; the CLI opens the sensor and enrols. The pause lasts exactly as long as that connection:
when the CLI exits -- normally, with an error, or killed -- the kernel closes the socket and the daemon re-opens
the sensor. A pause is bounded (``max_pause_s``, 10 min) so a stuck CLI cannot keep the door offline for good.

Who may ask: the socket is created 0600 in the state directory (0700, owned by the service user), so only that
user (or root) can connect; the peer's pid is read with SO_PEERCRED for the log and STATUS=.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import stat
import struct
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from device.sensors.base import SensorUnavailableError

log = logging.getLogger("biolock.control")

CONTROL_SOCKET = "control.sock"
MAX_LINE = 64


class ControlServer:
    """The daemon's end: non-blocking, polled from the daemon loop (no thread)."""

    def __init__(self, path: Path, *, max_pause_s: float = 600.0, clock: Callable[[], float] = time.monotonic):
        self.path = Path(path)
        self.max_pause_s = max_pause_s
        self.clock = clock
        with contextlib.suppress(FileNotFoundError):
            if stat.S_ISSOCK(os.lstat(self.path).st_mode):
                if _answers(self.path):
                    raise SensorUnavailableError(f"another biolock daemon is running: {self.path} answers")
                self.path.unlink()  # left by a daemon that was killed
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
        old = os.umask(0o177)
        try:
            self.sock.bind(str(self.path))
        finally:
            os.umask(old)
        self.sock.listen(4)
        self.sock.setblocking(False)
        self.holder: socket.socket | None = None
        self.holder_pid: int | None = None
        self.paused_since: float | None = None

    @property
    def paused(self) -> bool:
        return self.holder is not None

    def pause_requested(self) -> int | None:
        """Accept waiting clients; the pid of one that asks for a pause (the caller then lends the sensor and
        calls :meth:`confirm`), else None. Anything else, or a second client during a pause, is answered and
        closed."""
        while True:
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return None
            conn.settimeout(1.0)
            try:
                line = conn.recv(MAX_LINE).split(b"\n", 1)[0].strip()
            except OSError:
                conn.close()
                continue
            if line != b"PAUSE" or self.holder is not None:
                with contextlib.suppress(OSError):
                    conn.sendall(b"BUSY\n" if line == b"PAUSE" else b"ERROR unknown request\n")
                conn.close()
                continue
            conn.setblocking(False)
            self.holder, self.holder_pid = conn, _peer_pid(conn)
            return self.holder_pid if self.holder_pid is not None else 0

    def confirm(self) -> None:
        """The sensor is closed: tell the client it may open it now."""
        assert self.holder is not None
        self.paused_since = self.clock()
        try:
            self.holder.sendall(b"PAUSED\n")
        except OSError:
            self.end()

    def pause_over(self) -> str | None:
        """Why the pause ended (client closed / said RESUME / took too long), else None while it goes on."""
        if self.holder is None:
            return "no pause"
        self.pause_requested()  # answers BUSY to anyone else asking meanwhile
        try:
            data = self.holder.recv(MAX_LINE)
            reason = "client closed the connection" if not data else (
                "client resumed" if data.strip() == b"RESUME" else None)
        except (BlockingIOError, InterruptedError):
            reason = None
        except OSError as exc:
            reason = f"connection lost: {exc}"
        if reason is None and self.paused_since is not None and self.clock() - self.paused_since > self.max_pause_s:
            reason = f"pause longer than {self.max_pause_s:.0f} s"
        if reason is not None:
            self.end()
        return reason

    def end(self) -> None:
        holder, self.holder, self.holder_pid, self.paused_since = self.holder, None, None, None
        if holder is not None:
            holder.close()

    def close(self) -> None:
        self.end()
        self.sock.close()
        with contextlib.suppress(OSError):
            self.path.unlink()


def _answers(path: Path) -> bool:
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    probe.settimeout(1.0)
    try:
        probe.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def _peer_pid(conn: socket.socket) -> int | None:
    try:
        creds = conn.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
        return struct.unpack("3i", creds)[0]
    except (OSError, AttributeError):
        return None


@contextlib.contextmanager
def daemon_paused(state_dir: Path, *, timeout_s: float = 30.0) -> Iterator[bool]:
    """While inside, a running daemon has let go of the sensor. Yields False when no daemon is listening.

    ``timeout_s`` covers the attempt the daemon may be finishing (an R307 image upload takes about 7 s).
    """
    path = Path(state_dir) / CONTROL_SOCKET
    if not path.exists():
        yield False
        return
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM | socket.SOCK_CLOEXEC)
    try:
        sock.settimeout(timeout_s)
        try:
            sock.connect(str(path))
        except (ConnectionRefusedError, FileNotFoundError):
            yield False  # a socket file left behind by a daemon that is gone
            return
        except PermissionError:
            raise SensorUnavailableError(
                f"cannot ask the running daemon for the sensor: no permission on {path} (run as the service user, "
                "e.g. sudo -u biolock)") from None
        try:
            sock.sendall(b"PAUSE\n")
            reply = sock.recv(MAX_LINE).strip()
        except OSError as exc:
            raise SensorUnavailableError(f"the running daemon did not lend the sensor: {exc}") from None
        if reply != b"PAUSED":
            what = "another enrolment has it" if reply == b"BUSY" else reply.decode("ascii", "replace") or "no answer"
            raise SensorUnavailableError(f"the running daemon did not lend the sensor: {what}")
        log.info("the daemon lent the sensor; it takes it back when this command ends")
        yield True
    finally:
        sock.close()
