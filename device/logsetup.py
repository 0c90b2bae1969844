"""Logging for a daemon that journald reads: plain lines by default, one JSON object a line with ``--json``.

The output contract (README, "Output and exit codes"): results go to stdout, logs and progress to stderr; under
``--json`` every stderr line is a JSON object (``device.nativelog`` catches what native code prints); Python
warnings and OpenCV's own messages go through logging too, so they follow the same format and level.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time

# OpenCV reads this when it is first imported; set before any command imports cv2 (device.cli imports us first).
os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
# TensorFlow's C++ INFO lines (oneDNN notice, CPU feature guard) on fd 2: warnings and errors still show.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO, "warning": logging.WARNING, "error": logging.ERROR}


class JsonFormatter(logging.Formatter):
    """One JSON object per line; journald and log shippers split on newlines."""

    def format(self, record: logging.LogRecord) -> str:
        payload = {
            "ts": round(record.created, 3),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        extra = getattr(record, "fields", None)
        if isinstance(extra, dict):
            payload.update(extra)
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        return json.dumps(payload, default=str, sort_keys=True)


def configure_logging(level: str = "info", as_json: bool = False, verbose: bool = False) -> None:
    """Send biolock's logs to stderr; ``verbose`` forces debug level."""
    handler = logging.StreamHandler(sys.stderr)
    if as_json:
        handler.setFormatter(JsonFormatter())
    else:
        fmt = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
        fmt.converter = time.gmtime
        handler.setFormatter(fmt)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else _LEVELS.get(level, logging.INFO))
    logging.captureWarnings(True)  # warnings.warn(...) becomes a log record (JSON under --json)
    logging.getLogger("absl").setLevel(logging.DEBUG if verbose else logging.WARNING)  # TF's "Sharding callback"
    _opencv_level(verbose)
    from device import progress

    progress.set_json(as_json)


def _opencv_level(verbose: bool) -> None:
    """OpenCV's own "[ WARN:0@...]" lines: errors only, unless --verbose (when cv2 is already imported)."""
    cv2 = sys.modules.get("cv2")
    if cv2 is None:
        return
    try:
        levels = cv2.utils.logging
        levels.setLogLevel(levels.LOG_LEVEL_DEBUG if verbose else levels.LOG_LEVEL_ERROR)
    except AttributeError:
        pass
