"""Exclusive use of a serial port, with the holder's pid in the refusal.

Why: two processes on one sensor UART interleave their packets and corrupt both (the daemon and an enrolment
started by hand, say). ``flock(LOCK_EX | LOCK_NB)`` on the open port -- the same advisory lock pyserial's
``exclusive=True`` takes, so either side may use either -- makes the second opener fail at once, and the kernel's
lock table (``/proc/locks``) names the process that holds it, so the message can say "in use by pid N".
The lock goes away with the file descriptor, so a crashed holder never leaves a stale lock behind.
"""

from __future__ import annotations

import fcntl
import os
from typing import Any


def holder_pid(path: str) -> int | None:
    """The pid holding a flock on the file ``path`` names (following links), from /proc/locks; None if unknown."""
    try:
        st = os.stat(path)
        with open("/proc/locks", encoding="ascii", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return None
    wanted = (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    for line in lines:
        fields = line.split()
        # "1: FLOCK  ADVISORY  WRITE 1234 00:1a:5 0 EOF"; blocked waiters have a "->" field first
        if len(fields) < 6 or fields[1] == "->" or fields[1] != "FLOCK":
            continue
        try:
            pid = int(fields[4])
            major, minor, inode = fields[5].split(":")
            if (int(major, 16), int(minor, 16), int(inode)) == wanted:
                return pid
        except ValueError:
            continue
    return None


def lock_port(ser: Any, path: str) -> str | None:
    """Take an exclusive flock on the open port ``ser``; None on success, else why not (naming the holder).

    Ports without a file descriptor (``loop://``, ``socket://`` URLs) cannot be shared by accident: nothing to do.
    """
    fileno = getattr(ser, "fileno", None)
    if fileno is None:
        return None
    try:
        fd = fileno()
    except Exception:  # pyserial URL handlers without a real fd raise here
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        pid = holder_pid(path)
        who = f"pid {pid}" if pid is not None else "another process"
        return f"{path} is in use by {who}"
    except OSError:  # a filesystem without flock: no protection, but no reason to refuse the device
        return None
    return None
