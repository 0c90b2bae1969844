"""``biolock demo --modality vein``: the vein product end to end on synthetic whole camera frames.

What runs is what runs on a board with a NIR camera: the real camera backend (``device.sensors.camera``, OpenCV
``VideoCapture``) replays an MJPG .avi of synthetic whole frames (housing, background and the postures of a real
capture box: ``training.synth.vein_frame``), the real Authenticator finds the finger region, runs the vein model
on it and fuses it with the line matcher (``models/vein_lines.json``), the encrypted store keeps both templates,
and the real daemon loop signals the emulated lock. People enrol with a normal posture and are then presented in
the other postures (side, tilt, rotation, bent, tense, after shaking); strangers are other synthetic fingers.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from device.demo import (
    FINGER,
    DemoError,
    DemoSummary,
    Presentation,
    _report,
    _summarize,
    demo_workspace,
    emulated_lock,
    person_name,
)

BURST = 3  # frames per touch in the video (the camera keeps the sharpest of a burst)
ENROL_TOUCHES = 6


def vein_renderer(seed: int) -> Callable[[int, int, str], np.ndarray]:
    """``render(identity, impression, posture)`` whole frames; DemoError without the synthetic generator."""
    try:
        from training.synth.dataset import identity_seed
        from training.synth.vein import render_impression
        from training.synth.vein_frame import render_frame
    except ImportError as exc:
        raise DemoError(f"the vein demo needs the synthetic vein generator (training.synth): {exc}") from exc

    def render(identity: int, impression: int, posture: str) -> np.ndarray:
        ident = identity_seed(seed, identity, "vein")
        return render_frame(render_impression(ident, impression, "roi"), posture, seed=ident + impression)

    return render


def write_video(path: Path, frames: list[np.ndarray], burst: int = BURST) -> Path:
    """An MJPG .avi with each frame repeated ``burst`` times (one touch per frame), as a USB camera records."""
    import cv2

    h, w = frames[0].shape
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 15, (w, h))
    if not writer.isOpened():
        raise DemoError("OpenCV cannot write MJPG video here: the vein demo needs opencv with FFmpeg")
    try:
        for f in frames:
            for _ in range(burst):
                writer.write(cv2.cvtColor(f, cv2.COLOR_GRAY2BGR))
    finally:
        writer.release()
    return path


def vein_plan(people: int, genuine: int, impostors: int) -> list[tuple[Presentation, str]]:
    """Genuine touches in the postures other than normal, interleaved with strangers (normal posture)."""
    from training.synth.vein_frame import POSTURES

    others = [p for p in POSTURES if p != "normal"]
    touches = [(Presentation("genuine", person_name(p), p, 10 + g), others[(g * people + p) % len(others)])
               for g in range(genuine) for p in range(people)]
    fakes = [(Presentation("impostor", f"stranger-{i + 1}", people + i, 0), "normal") for i in range(impostors)]
    out: list[tuple[Presentation, str]] = []
    while touches or fakes:
        out.extend(touches[:2])
        del touches[:2]
        if fakes:
            out.append(fakes.pop(0))
    return out


def _captures(path: Path) -> Iterator[np.ndarray]:
    from device.sensors.camera import CameraSensor

    with CameraSensor(str(path), burst=BURST) as cam:
        while True:
            yield cam.capture(timeout_s=5.0).image


def run_vein_demo(*, model: Path | None = None, state_dir: Path | None = None, people: int = 3, genuine: int = 2,
                  impostors: int = 3, seed: int = 7, verbose: bool = False,
                  echo: Callable[[str], None] = print) -> DemoSummary:
    """Enrol ``people`` from camera video, then present their other postures and strangers to the daemon."""
    from models import default_card

    card = Path(model) if model is not None else default_card("vein")
    if not card.is_file():
        raise DemoError(f"model card {card} not found")
    render = vein_renderer(seed)
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        work, state_dir = demo_workspace(stack, prefix="biolock-vein-demo-", state_dir=state_dir, verbose=verbose,
                                         loggers=("biolock.daemon", "device.sensors.camera", "biolock.unlock"))
        from device.app import Daemon
        from device.config import Config, DeviceConfig, InferenceConfig
        from device.pipeline import Authenticator
        from device.sensors.camera import CameraSensor

        config = Config(device=DeviceConfig(modality="vein"), inference=InferenceConfig(model=card))
        auth = stack.enter_context(Authenticator.from_config(config, Path(state_dir), card_path=card))
        echo(f"sensor: NIR camera backend replaying MJPG video of synthetic whole frames ({BURST} frames a touch)")
        echo(f"matcher: {auth.matcher_name} (threshold {auth.threshold:.3f} at security '{config.matching.security}')")
        unlocker, lock = stack.enter_context(emulated_lock(Path(state_dir), work, echo))
        summary = DemoSummary(enrolled=[], lock="emulated lock controller" if lock is not None else "none")
        for person in range(people):
            name = person_name(person)
            video = write_video(work / f"enrol-{person}.avi",
                                [render(person, k, "normal") for k in range(ENROL_TOUCHES)])
            result = auth.enroll(name, FINGER, _captures(video))
            echo(f"enrol {name:6} ({FINGER}): {result.stored} captures stored after {result.attempts} touches, "
                 + ("stored" if result.ok else f"FAILED ({result.reason})"))
            if result.ok:
                summary.enrolled.append(name)
        queue = vein_plan(people, genuine, impostors)
        if queue:
            video = write_video(work / "door.avi", [render(t.identity, t.impression, posture) for t, posture in queue])
            done: list[Any] = []

            echo("door: " + ", ".join(f"{t.person} ({posture})" for t, posture in queue))

            def after(attempt: Any) -> None:
                touch, _ = queue[len(done)]
                done.append(attempt)
                _report(touch, attempt, summary, echo)

            Daemon(lambda: CameraSensor(str(video), burst=BURST), auth.identify, unlocker, duration_ms=1000,
                   poll_s=0.5, max_attempts=len(queue), on_attempt=after, audit=auth.store.audit).run()
        if lock is not None:
            summary.lock_opens = len(lock.unlock_log)
    summary.seconds = time.perf_counter() - started
    _summarize(summary, echo)
    return summary
