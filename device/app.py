"""The daemon loop: wait for a finger, capture, decide, signal, audit -- and keep running whatever the hardware does.

One attempt reads like the data flow in DESIGN.md::

    frame = sensor.capture()          # NoFingerError: nobody there, loop again (and ping the watchdog)
    decision = decide(frame.image)    # Authenticator: preprocess, quality gate, embed, match, decide, audit
    unlocker.grant() / .deny()        # only an accepted decision whose grant was confirmed counts as unlocked
    sensor.feedback(...)              # R503 LED colour; logged for every sensor
    sensor.wait_until_clear()         # one touch is one attempt

Why it is built this way:
- Fail closed: a capture fault, a decision that raises, an unlock that is not confirmed -- each is an attempt
  that did not unlock, logged and audited with its reason; the loop goes on.
- One stop event: SIGTERM/SIGINT set it; waiting for a finger ends within one poll, an attempt whose finger was
  already seen runs to the end (its signal and audit are never cut in half), then the loop exits.
- A sensor that disappears (unplugged, no answer three times in a row) is closed and re-opened with exponential
  backoff while the process stays up; systemd sees STATUS= lines and, with WatchdogSec, pings from this loop.
- READY=1 goes out once the model and store are loaded (the caller built them), before the sensor opens: a
  missing sensor is a state shown in STATUS=, not a start that never ends.
- The unlocker's health is checked every ``health_every_s`` while idle (the serial lock re-opens its port then).
  An unhealthy unlocker makes the daemon degraded (STATUS=degraded: why); degraded for ``max_degraded_s`` in a
  row, the loop stops with ``stats.degraded`` set and ``biolock run`` exits non-zero, so systemd restarts it.
- Only a grant that actually drives something counts as unlocked: with no lock configured (NullUnlocker,
  ``opens_door = False``) an accept logs ``unlocked=False``.
"""

from __future__ import annotations

import logging
import math
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from device.daemon_health import HealthAndLending
from device.sdnotify import SdNotifier
from device.sensors.base import (
    NoFingerError,
    ReplayExhaustedError,
    Sensor,
    SensorError,
    SensorUnavailableError,
)

log = logging.getLogger("biolock.daemon")

MAX_CONSECUTIVE_FAULTS = 3  # this many failed captures in a row: treat the sensor as gone and re-open it


@dataclass(frozen=True)
class Attempt:
    """What happened to one touch. ``outcome``: accepted, rejected, retry (poor capture) or fault."""

    outcome: str
    user: str | None
    reason: str
    score: float
    unlocked: bool
    capture_ms: float
    decision_ms: float
    total_ms: float


@dataclass
class DaemonStats:
    attempts: int = 0
    accepted: int = 0
    rejected: int = 0
    retries: int = 0
    faults: int = 0
    unlocks: int = 0
    unlock_failures: int = 0
    reopens: int = 0
    open_failures: int = 0
    degraded: str = ""  # set when the loop stopped because the unlocker stayed unhealthy for max_degraded_s
    history: list[Attempt] = field(default_factory=list, repr=False)


# Reasons the pipeline gives without a score that are refusals, not a poor capture (see device/pipeline.py).
NOT_A_CAPTURE_PROBLEM = ("locked out", "nobody enrolled", "not enrolled", "needs re-enrolment", "no fingerprint",
                         "no vein")


def classify(decision: Any) -> str:
    """accepted / rejected / retry: a capture refused before any comparison (no score) for its quality is a
    retry (the user is told what to fix); a lockout or an empty gallery is a rejection."""
    if decision.accepted:
        return "accepted"
    no_score = isinstance(decision.score, float) and math.isnan(decision.score)
    if no_score and not decision.reason.startswith(NOT_A_CAPTURE_PROBLEM):
        return "retry"
    return "rejected"


class Daemon(HealthAndLending):
    """The loop around one sensor, one decision function and one unlocker.

    Fusion mode passes a ``device.fusion_capture.PairedSensor`` (fingerprint, then vein) and
    ``decide_frame=True``, so the decision function gets both captures and what was missing.
    """

    def __init__(
        self,
        sensor_factory: Callable[[], Sensor],
        decide: Callable[[np.ndarray], Any],
        unlocker: Any,
        *,
        duration_ms: int = 3000,
        notifier: SdNotifier | None = None,
        stop: threading.Event | None = None,
        clock: Callable[[], float] = time.monotonic,
        poll_s: float = 1.0,
        clear_timeout_s: float = 5.0,
        backoff_s: tuple[float, float] = (0.5, 30.0),
        max_attempts: int | None = None,
        audit: Callable[..., None] | None = None,
        on_attempt: Callable[[Attempt], None] | None = None,
        keep_history: bool = True,
        decide_frame: bool = False,
        health_every_s: float = 5.0,
        max_degraded_s: float | None = 300.0,
        control: Any = None,
    ) -> None:
        self.sensor_factory = sensor_factory
        self.decide = decide
        self.unlocker = unlocker
        self.duration_ms = duration_ms
        self.notifier = notifier or SdNotifier({})
        self.stop_event = stop or threading.Event()
        self.clock = clock
        self.poll_s = poll_s
        self.clear_timeout_s = clear_timeout_s
        self.backoff_s = backoff_s
        self.max_attempts = max_attempts
        self._audit_fn = audit
        self.on_attempt = on_attempt
        self.keep_history = keep_history
        self.decide_frame = decide_frame  # fusion: decide() takes the whole (paired) Frame, not just its image
        self.stats = DaemonStats()
        self.sensor: Sensor | None = None
        self._faults_in_row = 0
        self.health_every_s = health_every_s
        self.max_degraded_s = max_degraded_s
        self.degraded_reason: str | None = None
        self._degraded_since: float | None = None
        self._next_health = -math.inf
        self.opens_door = getattr(unlocker, "opens_door", True)  # NullUnlocker: False
        self.control = control  # device.control.ControlServer: lends the sensor to `biolock enroll`

    # -- lifecycle ---------------------------------------------------------------------------------------------
    def stop(self) -> None:
        self.stop_event.set()

    def run(self) -> DaemonStats:
        """Run until stopped, ``max_attempts`` reached, or a replay sensor runs out. Returns the counts."""
        try:
            self.notifier.ready("model and store loaded; opening the sensor")
            if not self._open_sensor():
                return self.stats
            self.notifier.status(self._ready_status())
            log.info("ready: waiting for fingers on %s", getattr(self.sensor, "sensor_id", "sensor"))
            while not self.stop_event.is_set():
                if self._check_health():
                    break
                if self.control is not None and self._lend_sensor():
                    if not self._open_sensor():
                        break
                    self.notifier.status(self._ready_status())
                self.notifier.ping_if_due(self.clock())
                if self.max_attempts is not None and self.stats.attempts >= self.max_attempts:
                    break
                try:
                    self.step()
                except ReplayExhaustedError as exc:
                    log.info("%s: stopping", exc)
                    break
                except SensorUnavailableError as exc:
                    self._sensor_lost(str(exc))
                    if not self._open_sensor():
                        break
                    self.notifier.status(self._ready_status())
        finally:
            self.notifier.stopping()
            self._close_sensor()
        log.info("stopped after %d attempts", self.stats.attempts)
        return self.stats

    def _close_sensor(self) -> None:
        sensor, self.sensor = self.sensor, None
        if sensor is not None:
            try:
                sensor.close()
            except Exception as exc:  # closing a vanished device is not worth dying for
                log.debug("closing the sensor failed: %s", exc)

    def _sensor_lost(self, reason: str) -> None:
        log.warning("sensor lost: %s; re-opening", reason)
        self._audit("sensor", user=None, decision="lost", detail=reason[:200])
        self._close_sensor()
        self.stats.reopens += 1
        self._faults_in_row = 0

    def _open_sensor(self) -> bool:
        """Open the sensor, retrying with exponential backoff until it opens or a stop is requested."""
        delay, longest = self.backoff_s
        while not self.stop_event.is_set():
            sensor = None
            try:
                sensor = self.sensor_factory()
                sensor.open()
                self.sensor = sensor
                return True
            except SensorError as exc:
                if sensor is not None:
                    sensor.close()
                self.stats.open_failures += 1
                log.warning("sensor unavailable: %s (retrying in %.1f s)", exc, delay)
                self.notifier.status(f"waiting for the sensor: {exc}"[:200])
            self._wait(delay)
            delay = min(delay * 2, longest)
        return False

    def _wait(self, seconds: float) -> None:
        """Sleep on the stop event, pinging the watchdog meanwhile."""
        end = self.clock() + seconds
        slice_s = self.notifier.watchdog_interval_s or seconds
        while not self.stop_event.is_set():
            self.notifier.ping_if_due(self.clock())
            left = end - self.clock()
            if left <= 0:
                return
            self.stop_event.wait(min(left, slice_s))

    def _audit(self, event: str, **fields: Any) -> None:
        if self._audit_fn is None:
            return
        try:
            self._audit_fn(event, **fields)
        except Exception as exc:  # the audit store failing must not stop the door from staying shut
            log.error("audit %s failed: %s", event, exc)

    # -- one attempt -------------------------------------------------------------------------------------------
    def step(self) -> Attempt | None:
        """Wait up to one poll for a finger and, if one comes, run the whole attempt. None when nobody came."""
        sensor = self.sensor
        if sensor is None:
            raise SensorUnavailableError("no sensor open")
        start = self.clock()
        try:
            frame = sensor.capture(timeout_s=self.poll_s, cancel=self.stop_event)
        except NoFingerError:
            return None
        except SensorUnavailableError:
            raise
        except SensorError as exc:
            return self._fault(sensor, f"capture failed: {exc}", start)
        self._faults_in_row = 0
        captured = self.clock()
        sensor.feedback("busy")
        try:
            decision = self.decide(frame if self.decide_frame else frame.image)
        except Exception as exc:  # fail closed: a decision that raises is a refusal, never an unlock
            log.exception("decision failed")
            return self._finish(sensor, "fault", None, f"decision failed: {exc}", math.nan, False, start, captured)
        decided = self.clock()
        outcome = classify(decision)
        unlocked = False
        reason = decision.reason
        if outcome == "accepted":
            try:
                self.unlocker.grant(self.duration_ms, f"{decision.user}: {decision.reason}")
                unlocked = self.opens_door  # honest: a grant to no lock opens nothing
            except Exception as exc:
                outcome, reason = "fault", f"unlock not confirmed: {exc}"
                self.stats.unlock_failures += 1
                self._audit("unlock", user=decision.user, decision="failed", detail=reason[:200])
        else:
            self._deny(reason)
        attempt = self._finish(sensor, outcome, decision.user, reason, decision.score, unlocked, start, captured,
                               decided)
        return attempt

    def _deny(self, reason: str) -> None:
        try:
            self.unlocker.deny(reason)
        except Exception as exc:
            log.warning("deny signal failed: %s", exc)

    def _fault(self, sensor: Sensor, reason: str, start: float) -> Attempt:
        self._faults_in_row += 1
        self._audit("sensor", user=None, decision="fault", detail=reason[:200])
        self._deny(reason)
        attempt = self._finish(sensor, "fault", None, reason, math.nan, False, start, self.clock(), wait=False)
        if self._faults_in_row >= MAX_CONSECUTIVE_FAULTS:
            raise SensorUnavailableError(f"{self._faults_in_row} failed captures in a row (last: {reason})")
        return attempt

    def _finish(self, sensor: Sensor, outcome: str, user: str | None, reason: str, score: float, unlocked: bool,
                start: float, captured: float, decided: float | None = None, wait: bool = True) -> Attempt:
        end = self.clock()
        decided = end if decided is None else decided
        attempt = Attempt(outcome, user, reason, float(score), unlocked, (captured - start) * 1000,
                          (decided - captured) * 1000, (end - start) * 1000)
        stats = self.stats
        stats.attempts += 1
        stats.accepted += outcome == "accepted"
        stats.rejected += outcome == "rejected"
        stats.retries += outcome == "retry"
        stats.faults += outcome == "fault"
        stats.unlocks += unlocked
        if self.keep_history:
            stats.history.append(attempt)
        log.info("attempt %d: %s %s (%s) unlocked=%s %.1f ms", stats.attempts, outcome, user or "-", reason,
                 unlocked, attempt.total_ms,  # the one INFO line per attempt (unlockers log theirs at DEBUG)
                 extra={"fields": {"attempt": stats.attempts, "outcome": outcome, "user": user, "reason": reason,
                                   "unlocked": unlocked, "ms": round(attempt.total_ms, 1)}})
        sensor.feedback({"accepted": "accepted", "rejected": "rejected", "retry": "retry"}.get(outcome, "error"))
        if self.on_attempt is not None:
            self.on_attempt(attempt)
        if wait and not self.stop_event.is_set():
            try:
                sensor.wait_until_clear(self.clear_timeout_s, cancel=self.stop_event)
            except SensorUnavailableError:
                raise
            except SensorError as exc:
                log.debug("waiting for the finger to lift: %s", exc)
        sensor.feedback("idle")
        return attempt


def install_signal_handlers(stop: threading.Event) -> Callable[[], None]:
    """SIGTERM and SIGINT set ``stop`` (the attempt in progress finishes). Returns a function restoring the old ones."""
    previous = {}

    def handler(signum: int, _frame: Any) -> None:
        log.info("signal %d: finishing the attempt in progress, then stopping", signum)
        stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, handler)

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def rss_kib() -> int:
    """This process's resident set size in KiB (Linux /proc; 0 where unavailable)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


class RssProbe:
    """An ``on_attempt`` hook that samples RSS every ``every`` attempts (memory growth over a long soak)."""

    def __init__(self, every: int = 1000, then: Callable[[Attempt], None] | None = None) -> None:
        self.every = max(1, every)
        self.then = then
        self.count = 0
        self.samples: list[tuple[int, int]] = [(0, rss_kib())]

    def __call__(self, attempt: Attempt) -> None:
        self.count += 1
        if self.count % self.every == 0:
            self.samples.append((self.count, rss_kib()))
        if self.then is not None:
            self.then(attempt)

    def report(self) -> dict[str, float]:
        """Drift from the first sample after warm-up (the first ``every`` attempts) to the last."""
        base = self.samples[1] if len(self.samples) > 2 else self.samples[0]
        last = self.samples[-1]
        span = max(1, last[0] - base[0])
        return {
            "attempts": self.count,
            "rss_start_kib": self.samples[0][1],
            "rss_warm_kib": base[1],
            "rss_end_kib": last[1],
            "drift_kib": last[1] - base[1],
            "drift_kib_per_1000": round((last[1] - base[1]) * 1000 / span, 2),
        }
