"""Native libraries' own stderr output, brought under biolock's output contract.

Why at the file-descriptor level: LiteRT prints ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` from
C++ straight onto fd 2 during ``allocate_tensors()`` (measured with ai-edge-litert 2.x: ``TF_CPP_MIN_LOG_LEVEL``
is not honoured), OpenCV and TensorFlow do the same; Python's ``sys.stderr`` never sees those bytes. So:

- ``quiet_native()`` points fd 2 at a temporary file around a noisy native call and re-logs what was written
  there through ``logging`` (the XNNPACK notice at DEBUG, anything else at WARNING), so it honours ``--json``;
- ``install_json_stderr()`` is the safety net under ``--json``: fd 2 becomes a pipe read by a thread that passes
  JSON lines through and wraps every other line (click's usage text, a native warning, a stray print) in a JSON
  object, so every stderr line parses as JSON whatever wrote it. Carriage-return updates keep only their last part.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
from collections.abc import Iterator

log = logging.getLogger("biolock.native")

_BENIGN = ("Created TensorFlow Lite XNNPACK delegate",)
_lock = threading.Lock()


def _real_fd(stream_name: str, expected: int) -> int | None:
    """``expected`` when sys.stdout/sys.stderr really is it (not under click's CliRunner or pytest's capsys)."""
    try:
        fd = getattr(sys, stream_name).fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if fd == expected else None


def _stderr_fd() -> int | None:
    return _real_fd("stderr", 2)


@contextlib.contextmanager
def quiet_native(source: str = "native", stdout: bool = False) -> Iterator[None]:
    """Capture what native code writes to fd 2 (and fd 1 with ``stdout``) inside the block and re-log it.

    ``stdout=True`` is for TensorFlow's converters, which print hundreds of "Saved artifact ... Captures" lines
    on stdout, where only results belong; they are kept at DEBUG.
    """
    fds = [fd for fd in (_stderr_fd(), _real_fd("stdout", 1) if stdout else None) if fd is not None]
    if not fds:
        yield
        return
    captured: list[str] = []
    with _lock, contextlib.ExitStack() as stack:
        sinks = {fd: stack.enter_context(tempfile.TemporaryFile()) for fd in fds}
        sys.stdout.flush()
        sys.stderr.flush()
        saved = {fd: os.dup(fd) for fd in fds}
        for fd, sink in sinks.items():
            os.dup2(sink.fileno(), fd)
        try:
            yield
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            for fd in fds:
                os.dup2(saved[fd], fd)
                os.close(saved[fd])
                sinks[fd].seek(0)
                captured.append(sinks[fd].read().decode("utf-8", "replace"))
    noisy = stdout  # a converter's stdout chatter is never worth a warning
    for line in "\n".join(captured).splitlines():
        line = line.strip()
        if line:
            benign = noisy or any(b in line for b in _BENIGN)
            log.log(logging.DEBUG if benign else logging.WARNING, "%s: %s", source, line)


def as_json_line(line: str) -> str:
    """A JSON object line for one stderr line: JSON objects pass, anything else is wrapped."""
    text = line.rstrip("\n").split("\r")[-1].rstrip()
    if text.startswith("{"):
        try:
            if isinstance(json.loads(text), dict):
                return text
        except ValueError:
            pass
    low = text.lower()
    level = "error" if low.startswith(("error", "usage:", "traceback")) else "warning" if "warn" in low else "info"
    return json.dumps({"ts": round(time.time(), 3), "level": level, "logger": "stderr", "msg": text}, sort_keys=True)


_installed: dict[str, object] = {}


def install_json_stderr() -> bool:
    """Route fd 2 through a JSON-wrapping pump for the rest of the process; False when fd 2 is not ours."""
    fd = _stderr_fd()
    if fd is None or _installed:
        return bool(_installed)
    sys.stderr.flush()
    saved = os.dup(fd)
    read_end, write_end = os.pipe()
    os.dup2(write_end, fd)
    os.close(write_end)
    out = os.fdopen(saved, "w", buffering=1, encoding="utf-8", errors="replace", closefd=False)

    def pump() -> None:
        with os.fdopen(read_end, "rb") as src:
            for raw in src:
                text = raw.decode("utf-8", "replace")
                if text.strip():
                    out.write(as_json_line(text) + "\n")
                    out.flush()

    thread = threading.Thread(target=pump, name="json-stderr", daemon=True)
    thread.start()
    _installed.update(saved=saved, thread=thread)

    def finish() -> None:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        os.dup2(saved, fd)  # closes the pipe's last write end, so the pump sees EOF and drains
        thread.join(timeout=2.0)

    atexit.register(finish)
    return True
