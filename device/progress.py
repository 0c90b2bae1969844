"""The one progress policy for every bar in biolock (training, data synth, calibration, enrolment, uploads).

Why one policy: bars that follow their own rules write ``\\r`` updates into log files when stderr is redirected
(one multi-kilobyte line per epoch), break the one-JSON-object-per-line contract under ``--json`` and cannot be
turned off together. Here:

- stderr is a terminal and logs are plain: a live tqdm bar on stderr that disappears when done;
- otherwise (a file, a pipe, journald, or ``--json``): no ``\\r`` ever; one log line (logger ``biolock.progress``,
  INFO, so it is JSON under ``--json``) every ``every`` items, by default about ten per task, plus the last one;
- ``--quiet`` (or ``set_quiet(True)``): nothing at all.

Results never go through here: progress and logs are stderr, results are stdout.
"""

from __future__ import annotations

import logging
import math
import sys
import time
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger("biolock.progress")

_state = {"quiet": False, "json": False}


def set_quiet(quiet: bool) -> None:
    """Turn every progress report off (``biolock --quiet``)."""
    _state["quiet"] = bool(quiet)


def set_json(as_json: bool) -> None:
    """Under ``--json`` every stderr line must be JSON, so bars become log records even on a terminal."""
    _state["json"] = bool(as_json)


def is_quiet() -> bool:
    return _state["quiet"]


def live() -> bool:
    """True when a live (``\\r``-updating) bar is allowed: stderr is a terminal and logs are plain."""
    if _state["quiet"] or _state["json"]:
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


class Progress:
    """A bar over ``total`` items following the policy above; use as a context manager or wrap an iterable."""

    def __init__(self, total: int | None = None, desc: str = "", unit: str = "it", every: int | None = None,
                 lines: bool = True, enabled: bool = True) -> None:
        self.total = total
        self.desc = desc
        self.unit = unit
        self.n = 0
        self._lines = lines and enabled and not _state["quiet"]
        self._every = every or (max(1, math.ceil(total / 10)) if total else 100)
        self._next = self._every
        self._start = time.monotonic()
        self._bar: Any = None
        self._closed = False
        if enabled and live():
            from tqdm import tqdm

            self._bar = tqdm(total=total, desc=desc, unit=unit, leave=False, file=sys.stderr, dynamic_ncols=True)

    def update(self, n: int = 1) -> None:
        self.n += n
        if self._bar is not None:
            self._bar.update(n)
        elif self._lines and self.n >= self._next and (self.total is None or self.n < self.total):
            self._line()
            while self._next <= self.n:
                self._next += self._every

    def set_postfix(self, **values: Any) -> None:
        """Extra numbers shown on a live bar (e.g. the running loss); not logged line by line."""
        if self._bar is not None:
            self._bar.set_postfix(values, refresh=False)

    def write(self, message: str) -> None:
        """A summary line (e.g. one per epoch) printed once, above a live bar or as a log record."""
        if _state["quiet"]:
            return
        if self._bar is not None:
            self._bar.write(message, file=sys.stderr)
        else:
            log.info(message)

    def _line(self) -> None:
        elapsed = time.monotonic() - self._start
        of = f"/{self.total}" if self.total else ""
        pct = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        log.info(f"{self.desc}: {self.n}{of} {self.unit}{pct}, {elapsed:.1f} s",
                 extra={"fields": {"progress": self.desc, "n": self.n, "total": self.total}})

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        if self._bar is not None:
            self._bar.close()
        elif self._lines and self.n and self.total is not None and self.n >= self.total:
            self._line()

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def track(items: Iterable[T], total: int | None = None, desc: str = "", unit: str = "it",
          every: int | None = None, enabled: bool = True) -> Iterator[T]:
    """Iterate ``items`` with a progress report (``total`` defaults to ``len(items)`` when it has one)."""
    if total is None and hasattr(items, "__len__"):
        total = len(items)  # type: ignore[arg-type]
    with Progress(total, desc, unit, every, enabled=enabled) as bar:
        for item in items:
            yield item
            bar.update()


def note(message: str) -> None:
    """A one-off status line for a wait the user would otherwise sit through in silence (e.g. a sensor upload)."""
    if not _state["quiet"]:
        log.info(message)


class _Wrapped(Progress):
    """A Progress that also iterates (what ``tqdm(iterable)`` returns)."""

    def __init__(self, iterable: Iterable[Any] | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._iterable = iterable

    def __iter__(self) -> Iterator[Any]:
        try:
            for item in self._iterable or ():
                yield item
                self.update()
        finally:
            self.close()


def tqdm(iterable: Iterable[Any] | None = None, total: int | None = None, desc: str | None = None,
         unit: str = "it", disable: bool | None = False, **_ignored: Any) -> _Wrapped:
    """tqdm's call signature on this module's policy, so existing bars switch with one import line.

    ``disable=None`` (tqdm: "only on a terminal") is what the policy does anyway; ``leave``, ``mininterval`` and
    the like are ignored (a live bar never stays; non-terminal output is one line per N items).
    """
    if total is None and iterable is not None and hasattr(iterable, "__len__"):
        total = len(iterable)  # type: ignore[arg-type]
    return _Wrapped(iterable, total=total, desc=desc or "", unit=unit, enabled=disable is not True)
