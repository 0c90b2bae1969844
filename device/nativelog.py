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


def _stderr_fd() -> int | None:
    """fd 2 when sys.stderr really is it (not under click's CliRunner or pytest's capsys)."""
    try:
        fd = sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):
        return None
    return fd if fd == 2 else None


@contextlib.contextmanager
def quiet_native(source: str = "native") -> Iterator[None]:
    """Capture what native code writes to fd 2 inside the block and re-log it (see module docstring)."""
    fd = _stderr_fd()
    if fd is None:
        yield
        return
    with _lock, tempfile.TemporaryFile() as sink:
        sys.stderr.flush()
        saved = os.dup(fd)
        os.dup2(sink.fileno(), fd)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, fd)
            os.close(saved)
            sink.seek(0)
            captured = sink.read().decode("utf-8", "replace")
    for line in captured.splitlines():
        line = line.strip()
        if line:
            benign = any(b in line for b in _BENIGN)
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
