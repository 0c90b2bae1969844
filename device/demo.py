"""``biolock demo``: the whole product on emulated hardware, in a temporary state directory.

What runs is what runs on a board: the real R30x driver talks over a pty to the byte-exact R307 emulator, the
real Authenticator (preprocess, LiteRT int8 model, encrypted SQLite store, lockout, audit) decides, and the real
daemon loop signals the lock -- the emulated lock controller running the reference firmware over its own pty,
paired with a fresh key, when ``firmware_bridge`` is present. Only the fingers are synthetic: R307-profile prints
from ``training.synth`` (numpy + OpenCV, no TensorFlow). Nothing touches the network or the user's own state.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import statistics
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from device.errors import BiolockError

NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
MAX_PEOPLE = 500  # the synthetic population is seeded per identity, so any count renders; 500 keeps 1:N quick


def person_name(index: int) -> str:
    """alice, bob, ... heidi, then person9, person10, ... (the synthetic population has no names of its own)."""
    return NAMES[index] if index < len(NAMES) else f"person{index + 1}"
FINGER = "right-index"


class DemoError(BiolockError):
    """The demo cannot run here (a missing part, a state directory that is not empty)."""


@dataclass(frozen=True)
class Presentation:
    kind: str  # genuine | impostor
    person: str  # who really is on the sensor
    identity: int  # synthetic identity index
    impression: int


@dataclass
class DemoSummary:
    enrolled: list[str]
    genuine: int = 0
    genuine_accepted: int = 0
    impostors: int = 0
    impostors_rejected: int = 0
    decision_ms: list[float] = dataclasses.field(default_factory=list)
    capture_ms: list[float] = dataclasses.field(default_factory=list)
    lock: str = "none"
    lock_opens: int | None = None
    seconds: float = 0.0
    memory: dict[str, float] | None = None

    @property
    def median_decision_ms(self) -> float:
        return statistics.median(self.decision_ms) if self.decision_ms else float("nan")

    @property
    def median_capture_ms(self) -> float:
        return statistics.median(self.capture_ms) if self.capture_ms else float("nan")


def find_card(model: Path | None) -> Path:
    """The model card the demo uses: ``--model``, else the shipped fingerprint model (clear error if missing)."""
    if model is not None:
        if not Path(model).is_file():
            raise DemoError(f"model card {model} not found")
        return Path(model)
    from models import default_card

    return default_card("fingerprint")


def synthetic_renderer(seed: int) -> Callable[[int, int], np.ndarray]:
    """``render(identity, impression)`` for R307-profile prints; DemoError if the generator is not installed."""
    try:
        from training.synth.dataset import identity_seed
        from training.synth.fingerprint import render_impression
    except ImportError as exc:
        raise DemoError(f"the demo needs the synthetic fingerprint generator (training.synth): {exc}") from exc

    def render(identity: int, impression: int) -> np.ndarray:
        return render_impression(identity_seed(seed, identity, "fingerprint"), impression, "r307")

    return render


@contextlib.contextmanager
def emulated_lock(state_dir: Path, work: Path, echo: Callable[[str], None]) -> Iterator[tuple[Any, Any]]:
    """(unlocker, lock emulator) for the paired emulated lock controller, or (NullUnlocker, None) without one."""
    from device.unlock import NullUnlocker

    try:
        from device.config import SerialUnlockConfig, UnlockConfig
        from device.unlock import build_unlocker
        from firmware_bridge.emulator import Emulator
        from firmware_bridge.link import Link
    except ImportError as exc:
        echo(f"lock: no emulated lock controller ({exc}); decisions are logged only")
        yield NullUnlocker(), None
        return
    lock = Emulator(work / "lock-flash")
    port = lock.start()
    unlocker = None
    try:
        with Link.open(port, state_dir, timeout_s=1.0) as link:
            version = link.pair()
        unlocker = build_unlocker(UnlockConfig(serial=SerialUnlockConfig(enabled=True, port=port)), state_dir)
        echo(f"lock: emulated lock controller (reference firmware {version}) on {port}, paired with a new key")
        yield unlocker, lock
    finally:
        if unlocker is not None:
            unlocker.close()
        lock.stop()


def plan(people: int, genuine: int, impostors: int) -> list[Presentation]:
    """Genuine touches of every enrolled person interleaved with impostors (fresh impressions only)."""
    touches = [Presentation("genuine", person_name(p), p, 20 + g) for g in range(genuine) for p in range(people)]
    fakes = [Presentation("impostor", f"stranger-{i + 1}", people + i, 0) for i in range(impostors)]
    out: list[Presentation] = []
    while touches or fakes:
        if touches:
            out.append(touches.pop(0))
        if touches:
            out.append(touches.pop(0))
        if fakes:
            out.append(fakes.pop(0))
    return out


def run_demo(*, model: Path | None = None, state_dir: Path | None = None, people: int = 3, genuine: int = 2,
             impostors: int = 3, seed: int = 7, real_baud: bool = False, soak: int = 0, verbose: bool = False,
             render: Callable[[int, int], np.ndarray] | None = None,
             echo: Callable[[str], None] = print) -> DemoSummary:
    """Enrol ``people`` through the emulated R307, then present genuine and impostor fingers to the daemon.

    ``render(identity, impression)`` makes the finger images (default: R307-profile prints from training.synth).
    """
    if not 1 <= people <= MAX_PEOPLE:
        raise DemoError(f"people must be 1..{MAX_PEOPLE}")
    card = find_card(model)
    render = render or synthetic_renderer(seed)
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        work, state_dir = demo_workspace(stack, prefix="biolock-demo-", state_dir=state_dir, verbose=verbose,
                                         loggers=("biolock.daemon", "device.sensors.r30x", "biolock.unlock"))
        from device.config import Config, InferenceConfig, LockoutConfig, SensorConfig
        from device.pipeline import Authenticator
        from device.sensors.r30x import R30xSensor
        from device.sensors.r30x_emulator import R30xEmulator

        lockout = LockoutConfig(seconds=0.0, identify_seconds=0.0) if soak else LockoutConfig()
        config = Config(sensor=SensorConfig(type="r30x"), inference=InferenceConfig(model=card), lockout=lockout)
        emu = stack.enter_context(R30xEmulator("r307", link=work / "ttyR307", throttle=real_baud))
        echo(f"sensor: emulated R307 on {emu.port} ({'57600 baud' if real_baud else 'unthrottled'}), "
             "driven by the real R30x driver")
        auth = stack.enter_context(Authenticator.from_config(config, Path(state_dir), card_path=card))
        echo(f"matcher: {auth.matcher_name} (threshold {auth.threshold:.3f} at security '{config.matching.security}')")
        unlocker, lock = stack.enter_context(emulated_lock(Path(state_dir), work, echo))
        summary = DemoSummary(enrolled=[], lock="emulated lock controller" if lock is not None else "none")

        def sensor() -> R30xSensor:
            return R30xSensor(emu.port, timeout_s=10.0 if real_baud else 2.0, poll_interval_s=0.02)

        with sensor() as enrol_sensor:
            for person in range(people):
                name = person_name(person)
                result = auth.enroll(name, FINGER, _touches(emu, enrol_sensor, render, person))
                state = "stored" if result.ok else f"FAILED ({result.reason})"
                echo(f"enrol {name:6} ({FINGER}): {result.stored} captures stored after {result.attempts} touches, "
                     f"{state}")
                if result.ok:
                    summary.enrolled.append(name)
        queue = plan(people, genuine, impostors)
        present_queue(emu, sensor, render, queue, auth, unlocker,
                      lambda touch, attempt: _report(touch, attempt, summary, echo))
        if lock is not None:
            summary.lock_opens = len(lock.unlock_log)  # UNLOCK commands the lock's firmware carried out
        if soak and queue:
            summary.memory = _soak(emu, sensor, auth, unlocker, render, queue, soak, echo)
    summary.seconds = time.perf_counter() - started
    _summarize(summary, echo)
    return summary


def present_queue(emu: Any, sensor: Callable[[], Any], render: Callable[[int, int], np.ndarray],
                  queue: list[Presentation], auth: Any, unlocker: Any,
                  on_result: Callable[[Presentation, Any], None]) -> None:
    """Put each touch of ``queue`` on the emulated sensor in turn and let the daemon identify it (the R307 and
    R503 demos); ``on_result(touch, attempt)`` after each decision, before the next touch is presented."""
    from device.app import Daemon

    done: list[Presentation] = []

    def after(attempt: Any) -> None:
        touch = queue[len(done)]
        done.append(touch)
        on_result(touch, attempt)
        if len(done) < len(queue):
            nxt = queue[len(done)]
            emu.present(render(nxt.identity, nxt.impression))

    if queue:
        emu.present(render(queue[0].identity, queue[0].impression))
        Daemon(sensor, auth.identify, unlocker, duration_ms=1000, poll_s=0.5, max_attempts=len(queue),
               on_attempt=after, audit=auth.store.audit).run()


def demo_workspace(stack: contextlib.ExitStack, *, prefix: str, state_dir: Path | None, verbose: bool,
                   loggers: tuple[str, ...]) -> tuple[Path, Path]:
    """A temporary work folder and an empty state directory for one demo run (every demo runs in one).

    Per-attempt logs of ``loggers`` are quieted unless ``verbose``: the demo prints its own lines. A state
    directory given by the user must be empty: the demo enrols its own people.
    """
    if not verbose:
        for name in loggers:
            stack.enter_context(_quiet(name))
    work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=prefix)))
    if state_dir is None:
        return work, work / "state"
    if Path(state_dir).exists() and any(Path(state_dir).iterdir()):
        raise DemoError(f"state directory {state_dir} is not empty: the demo enrols its own people")
    return work, Path(state_dir)


@contextlib.contextmanager
def _quiet(logger: str) -> Iterator[None]:
    log = logging.getLogger(logger)
    old = log.level
    log.setLevel(logging.WARNING)
    try:
        yield
    finally:
        log.setLevel(old)


def _touches(emu: Any, sensor: Any, render: Callable[[int, int], np.ndarray], person: int) -> Iterator[np.ndarray]:
    """Enrolment captures through the real driver: place the finger, capture, lift; as many as enrolment asks."""
    impression = 0
    while True:
        emu.present(render(person, impression))
        impression += 1
        frame = sensor.capture(timeout_s=30)
        sensor.wait_until_clear(timeout_s=5)
        yield frame.image


def _report(touch: Presentation, attempt: Any, summary: DemoSummary, echo: Callable[[str], None]) -> None:
    verdict = "ACCEPT" if attempt.outcome == "accepted" else "REJECT"
    who = attempt.user or "-"
    score = "  n/a" if attempt.score != attempt.score else f"{attempt.score:5.3f}"
    opened = "  lock opened" if attempt.unlocked else ""
    echo(f"{touch.kind:8} {touch.person:10} -> {verdict} {who:6} score {score}  decision {attempt.decision_ms:6.1f} ms"
         f"  capture {attempt.capture_ms:6.1f} ms  ({attempt.reason}){opened}")
    summary.decision_ms.append(attempt.decision_ms)
    summary.capture_ms.append(attempt.capture_ms)
    if touch.kind == "genuine":
        summary.genuine += 1
        summary.genuine_accepted += attempt.outcome == "accepted" and attempt.user == touch.person
    else:
        summary.impostors += 1
        summary.impostors_rejected += attempt.outcome != "accepted"


def _soak(emu: Any, sensor: Callable[[], Any], auth: Any, unlocker: Any, render: Callable[[int, int], np.ndarray],
          queue: list[Presentation], attempts: int, echo: Callable[[str], None]) -> dict[str, float]:
    """Run ``attempts`` more touches (cycling the demo's fingers) and report the RSS drift."""
    from device.app import Daemon, RssProbe

    images = [render(t.identity, t.impression) for t in queue]
    echo(f"soak: {attempts} attempts through driver, pipeline and lock ...")
    probe = RssProbe(every=max(1, attempts // 10), then=lambda a: emu.present(images[probe.count % len(images)]))
    emu.present(images[0])
    Daemon(sensor, auth.identify, unlocker, duration_ms=100, poll_s=0.5, max_attempts=attempts,
           on_attempt=probe, keep_history=False).run()
    for n, kib in probe.samples:
        echo(f"  after {n:6d} attempts: RSS {kib / 1024:7.1f} MiB")
    return probe.report()


def _summarize(summary: DemoSummary, echo: Callable[[str], None]) -> None:
    echo("")
    echo(f"summary: enrolled {len(summary.enrolled)} ({', '.join(summary.enrolled)}); "
         f"genuine accepted {summary.genuine_accepted}/{summary.genuine}; "
         f"impostors rejected {summary.impostors_rejected}/{summary.impostors}")
    echo(f"         median decision latency {summary.median_decision_ms:.1f} ms "
         f"(capture over the emulated UART: median {summary.median_capture_ms:.1f} ms)")
    if summary.lock_opens is not None:
        echo(f"         unlocks carried out by the lock controller: {summary.lock_opens}")
    if summary.memory:
        m = summary.memory
        echo(f"         soak: {m['attempts']} attempts, RSS {m['rss_warm_kib'] / 1024:.1f} -> "
             f"{m['rss_end_kib'] / 1024:.1f} MiB ({m['drift_kib_per_1000']:+.1f} KiB per 1000 attempts)")
    echo(f"         total {summary.seconds:.1f} s")
