"""``biolock demo --modality fusion``: fingerprint + vein fused on one touch, end to end on emulated hardware.

What runs is what runs on a board in fusion mode (docs/fusion.md, "Fusion mode on the device"): the daemon's
``PairedSensor`` takes the fingerprint from the emulated R307 (real R30x driver over a pty, as in ``biolock demo``)
and then the vein from the real camera backend replaying an MJPG .avi of synthetic whole NIR frames (as in
``biolock demo --modality vein``); the real ``FusionAuthenticator`` embeds both, fuses the two cosines with a fusion
card and the daemon loop signals the emulated lock. Person i's fingerprint and vein are synthetic identity i.

The fusion card: none is shipped for the shipped models, so the demo fits one at start (``fit_demo_card``) with the
training side's card builder on synthetic people who are never enrolled or presented (its own seed), scored through
the same probe path the device uses. It is fitted on synthetic data only, on too few impostor pairs to support any
security level, so the demo sets ``matching.allow_unsupported_level = true`` for itself and prints both facts.
No TensorFlow anywhere: the generators are numpy + OpenCV, the models run on LiteRT.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from device.demo import (
    FINGER,
    MAX_PEOPLE,
    DemoError,
    DemoSummary,
    _report,
    _summarize,
    _touches,
    demo_workspace,
    emulated_lock,
    find_card,
    person_name,
    synthetic_renderer,
)
from device.demo_vein import BURST, ENROL_TOUCHES, _captures, vein_plan, vein_renderer, write_video

CARD_IDENTITIES = 20  # synthetic people the demo's fusion card is fitted on, CARD_TOUCHES each (60 genuine and
CARD_TOUCHES = 3  # 1,710 impostor pairs: too few to support any level, hence allow_unsupported_level)
CARD_SEED_OFFSET = 1000  # the card's people have the demo's seed + this: never the demo's own people
ENROL_CAPTURES = 2  # agreeing captures per modality: the fingerprint embedding alone (fusion mode has no minutiae
# check) rarely gets 3 synthetic captures above its card's agreement threshold (tried: 2 of 3 people fail)


def fit_demo_card(path: Path, cards: dict[str, Path], seed: int, identities: int = CARD_IDENTITIES,
                  echo: Callable[[str], None] = print) -> Path:
    """A fusion card for ``cards`` (fingerprint and vein model cards) fitted on synthetic identities only.

    Each sample goes through the device's own probe (``Authenticator._probe``: the vein's finger region, the
    preprocessing and quality gate, the LiteRT model), so the card's normalizers see the scores the device makes.
    A person's vein impression 0 is a normal placement, the others other postures, like the demo's genuine touches.
    """
    from device.config import InferenceConfig
    from device.fusion_pipeline import _vein_lines
    from device.inference import build_embedder
    from device.pipeline import Authenticator
    from training.fusion.card_builder import write_card
    from training.synth.vein_frame import POSTURES

    started = time.perf_counter()
    fit_seed = seed + CARD_SEED_OFFSET
    render = {"fingerprint": synthetic_renderer(fit_seed), "vein": vein_renderer(fit_seed)}
    others = [p for p in POSTURES if p != "normal"]
    samples = [(i, j) for i in range(identities) for j in range(CARD_TOUCHES)]

    def image(m: str, i: int, j: int) -> np.ndarray:
        return render[m](i, j) if m == "fingerprint" else render[m](i, j, "normal" if j == 0 else
                                                                   others[(i + j) % len(others)])

    embeddings: dict[str, np.ndarray] = {}
    models: dict[str, str | None] = {}
    with ThreadPoolExecutor(max_workers=4) as pool:
        for m, card in cards.items():
            embedder = build_embedder(InferenceConfig(), card, modality=m)
            try:
                probe = Authenticator(embedder, None, modality=m,
                                      minutiae=_vein_lines(embedder) if m == "vein" else None)
                images = list(pool.map(lambda s, m=m: image(m, *s), samples))
                vectors = []
                for (i, j), img in zip(samples, images, strict=True):
                    vector, problem = probe._probe(img, {})
                    if vector is None:
                        raise DemoError(f"fitting the fusion card: synthetic {m} {i}/{j} refused ({problem})")
                    vectors.append(vector)
                embeddings[m], models[m] = np.stack(vectors), embedder.model_id
            finally:
                embedder.close()
    labels = [str(i) for i, _ in samples]
    write_card(path, embeddings, models, labels, "weighted_sum/tanh",
               f"biolock demo: {identities} synthetic identities x {CARD_TOUCHES} (seed {fit_seed}), "
               "synthetic data only")
    echo(f"fusion card: fitted at start on synthetic data only ({identities} synthetic people x {CARD_TOUCHES} "
         f"touches, seed {fit_seed}, none of them enrolled or presented) in {time.perf_counter() - started:.1f} s")
    return path


def run_fusion_demo(*, model: Path | None = None, vein_model: Path | None = None, fusion_card: Path | None = None,
                    state_dir: Path | None = None, people: int = 3, genuine: int = 2, impostors: int = 3,
                    seed: int = 7, verbose: bool = False, echo: Callable[[str], None] = print) -> DemoSummary:
    """Enrol ``people`` in both modalities, then present genuine and impostor (fingerprint, vein) touches."""
    if not 1 <= people <= MAX_PEOPLE:
        raise DemoError(f"people must be 1..{MAX_PEOPLE}")
    from models import default_card

    cards = {"fingerprint": find_card(model), "vein": Path(vein_model) if vein_model else default_card("vein")}
    for m, card in cards.items():
        if not card.is_file():
            raise DemoError(f"{m} model card {card} not found")
    render_fp, render_vein = synthetic_renderer(seed), vein_renderer(seed)
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        work, state_dir = demo_workspace(
            stack, prefix="biolock-fusion-demo-", state_dir=state_dir, verbose=verbose,
            loggers=("biolock.daemon", "device.sensors.r30x", "device.sensors.camera", "biolock.unlock",
                     "biolock.security", "biolock.fusion"))
        from device.app import Daemon
        from device.calibration.fields import CLAIMS, LEVEL_KEYS
        from device.config import Config, DeviceConfig, EnrolConfig, InferenceConfig, MatchingConfig
        from device.errors import ConfigError
        from device.fusion_capture import PairedSensor
        from device.fusion_pipeline import FusionAuthenticator
        from device.sensors.camera import CameraSensor
        from device.sensors.r30x import R30xSensor
        from device.sensors.r30x_emulator import R30xEmulator

        if fusion_card is None:
            fusion_card = fit_demo_card(work / "fusion_card.json", cards, seed, echo=echo)
        else:
            echo(f"fusion card: {fusion_card}")

        def config(allow: bool) -> Config:
            return Config(device=DeviceConfig(modality="fusion"), enrol=EnrolConfig(captures=ENROL_CAPTURES),
                          inference=InferenceConfig(model=cards["fingerprint"], vein_model=cards["vein"]),
                          matching=MatchingConfig(fusion_card=Path(fusion_card), allow_unsupported_level=allow))

        try:
            cfg = config(False)
            auth = FusionAuthenticator.from_config(cfg, Path(state_dir), card_paths=cards)
        except ConfigError as exc:
            if "allow_unsupported_level" not in str(exc):
                raise
            cfg = config(True)  # the demo's own choice, said plainly: the card supports no level
            auth = FusionAuthenticator.from_config(cfg, Path(state_dir), card_paths=cards)
            echo("fusion card: supports no security level (too few impostor pairs); the demo sets "
                 "matching.allow_unsupported_level = true for itself")
        stack.enter_context(auth)
        emu = stack.enter_context(R30xEmulator("r307", link=work / "ttyR307"))
        echo(f"sensors: emulated R307 on {emu.port} (real R30x driver), then the NIR camera backend replaying MJPG "
             f"video of synthetic whole frames ({BURST} frames a touch)")
        echo(f"matcher: fusion of {' + '.join(f'{m} {a.model_id}' for m, a in auth.scorers.items())}")
        info = auth.decision_info
        support = ("" if info is None or info.supported is None else
                   f": {'supported' if info.supported else 'NOT supported'} by this card (95 % FMR bound "
                   f"{info.fmr_upper95:.2g} on {info.impostor_pairs:,} impostor pairs)")
        echo(f"level: '{cfg.matching.security}' (claim FMR {CLAIMS[LEVEL_KEYS[cfg.matching.security]]:g}), fused "
             f"threshold {auth.threshold:.3f}{support}")
        echo(f"enrolment: {ENROL_CAPTURES} agreeing captures per modality (enrol.captures = {ENROL_CAPTURES}: fusion "
             "mode scores the fingerprint with its embedding alone)")
        unlocker, lock = stack.enter_context(emulated_lock(Path(state_dir), work, echo))
        summary = DemoSummary(enrolled=[], lock="emulated lock controller" if lock is not None else "none")

        def fingerprint_sensor() -> R30xSensor:
            return R30xSensor(emu.port, timeout_s=2.0, poll_interval_s=0.02)

        with fingerprint_sensor() as enrol_sensor:
            for person in range(people):
                name = person_name(person)
                video = write_video(work / f"enrol-{person}.avi",
                                    [render_vein(person, k, "normal") for k in range(ENROL_TOUCHES)])
                results = auth.enroll(name, FINGER, {"fingerprint": _touches(emu, enrol_sensor, render_fp, person),
                                                     "vein": _captures(video)})
                parts = [f"{m} {r.stored} captures" + ("" if r.ok else f" FAILED ({r.reason})")
                         for m, r in results.items()]
                ok = len(results) == 2 and all(r.ok for r in results.values())
                echo(f"enrol {name:6} ({FINGER}): {', '.join(parts)}, " + ("stored" if ok else "FAILED"))
                if ok:
                    summary.enrolled.append(name)
        queue = vein_plan(people, genuine, impostors)
        if queue:
            video = write_video(work / "door.avi",
                                [render_vein(t.identity, t.impression, posture) for t, posture in queue])
            echo("door: " + ", ".join(f"{t.person} (vein {posture})" for t, posture in queue))
            done: list[Any] = []

            def after(attempt: Any) -> None:
                touch, _ = queue[len(done)]
                done.append(attempt)
                _report(touch, attempt, summary, echo)
                if len(done) < len(queue):
                    nxt, _ = queue[len(done)]
                    emu.present(render_fp(nxt.identity, nxt.impression))

            def sensors() -> PairedSensor:
                return PairedSensor(fingerprint_sensor, lambda: CameraSensor(str(video), burst=BURST),
                                    secondary_timeout_s=5.0)

            def decide(frame: Any) -> Any:
                return auth.identify(frame.images, frame.missing)

            emu.present(render_fp(queue[0][0].identity, queue[0][0].impression))
            Daemon(sensors, decide, unlocker, duration_ms=1000, poll_s=0.5, max_attempts=len(queue),
                   on_attempt=after, audit=auth.store.audit, decide_frame=True).run()
        if lock is not None:
            summary.lock_opens = len(lock.unlock_log)
    summary.seconds = time.perf_counter() - started
    _summarize(summary, echo)
    return summary
