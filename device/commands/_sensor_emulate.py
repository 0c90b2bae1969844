"""``biolock sensor emulate``: an emulated R307 / AS608 / R503 on a pty, for trying the daemon without hardware.

Why a command (beside ``biolock lock emulate``): a newcomer should see ``biolock run`` work against emulated
hardware without writing a script. The emulator is the byte-exact one the tests and ``biolock demo`` use
(``device.sensors.r30x_emulator``); the real driver on the other end cannot tell it from a module. Fingers are
synthetic R307-profile prints (``training.synth``, no TensorFlow) or images from a folder, placed one touch at a
time; the module's field faults can be injected. ``--enroll`` first enrols the synthetic people through the
emulated module (as ``biolock enroll`` would from the sensor), so the daemon has someone to recognise.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click
import numpy as np

FAULT_HELP = ("Inject a module fault before the first touch: NAME or NAME:COUNT, repeatable. Names: no_finger, "
              "capture_fail, bad_checksum, bad_checksum_data, truncated_upload, finger_lifted, half_packet, "
              "silence, garbage.")


def _faults(specs: tuple[str, ...]) -> list[tuple[str, int]]:
    from device.sensors.r30x_emulator import FAULTS

    out = []
    for spec in specs:
        name, _, count = spec.partition(":")
        if name not in FAULTS or (count and not count.isdigit()):
            raise click.BadParameter(f"{spec!r}: use NAME[:COUNT] with NAME one of {', '.join(FAULTS)}",
                                     param_hint="'--fault'")
        out.append((name, int(count or 1)))
    return out


def _touch_plan(people: int, impostors: int) -> Iterator[tuple[str, int, int]]:
    """(who, identity, impression) forever: each person once a round, then the round's strangers."""
    from device.demo import person_name

    for rnd in itertools.count():
        for p in range(people):
            yield person_name(p), p, 20 + rnd
        for i in range(impostors):
            yield f"stranger-{i + 1}", people + i, rnd


def _folder_images(folder: Path) -> Iterator[tuple[str, np.ndarray]]:
    from device.imageio import read_image

    files = sorted(p for p in folder.iterdir() if p.suffix.lower() in (".png", ".bmp", ".tif", ".tiff", ".jpg"))
    if not files:
        raise click.BadParameter(f"no images in {folder}", param_hint="'--images'")
    for path in itertools.cycle(files):
        yield path.name, read_image(path)


def _enroll(app: Any, emu: Any, render: Callable[[int, int], np.ndarray], people: int) -> None:
    """Enrol the synthetic people's right index fingers through the emulated module (skips those enrolled)."""
    from device.demo import FINGER, _touches, person_name
    from device.pipeline import Authenticator
    from device.sensors.r30x import R30xSensor

    with Authenticator.from_config(app.config, app.state_dir) as auth, \
            R30xSensor(emu.port, timeout_s=10.0 if emu.throttle else 2.0, poll_interval_s=0.02) as sensor:
        have = {u.name for u in auth.store.users()}
        for p in range(people):
            name = person_name(p)
            if name in have:
                click.echo(f"{name} is enrolled already", err=True)
                continue
            result = auth.enroll(name, FINGER, _touches(emu, sensor, render, p))
            click.echo(f"enrolled {name} ({FINGER}): {result.stored} templates" if result.ok else
                       f"could not enrol {name}: {result.reason}", err=True)


@click.command("emulate")
@click.option("--module", type=click.Choice(["r307", "as608", "r503"]), default="r307", show_default=True)
@click.option("--link", type=click.Path(dir_okay=False, path_type=Path), default=Path("/tmp/biolock-r307"),
              show_default=True, help="Symlink to the pty: what sensor.port names.")
@click.option("--people", type=click.IntRange(1, 500), default=3, show_default=True,
              help="Synthetic people whose fingers are placed (alice, bob, carol, ...).")
@click.option("--impostors", type=click.IntRange(0, 100), default=1, show_default=True,
              help="Strangers (never enrolled) placed after each round of people.")
@click.option("--images", "folder", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Place these image files instead of synthetic fingers (name order, cycling).")
@click.option("--enroll", is_flag=True, help="First enrol the synthetic people into the state directory.")
@click.option("--every", type=click.FloatRange(0.2, 3600), default=4.0, show_default=True,
              help="Seconds between touches (a touch waits until the previous one was read).")
@click.option("--touches", type=click.IntRange(0, 10**6), default=0, help="Stop after this many (default: Ctrl-C).")
@click.option("--real-baud", is_flag=True, help="Throttle to 57600 baud like the real UART (R307: ~7 s a touch).")
@click.option("--packet-size", type=click.Choice(["32", "64", "128", "256"]), default="128", show_default=True)
@click.option("--fault", "fault_specs", multiple=True, help=FAULT_HELP)
@click.option("--fault-rate", type=click.FloatRange(0, 1), default=0.0, show_default=True,
              help="Before each touch, inject one random fault with this probability.")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the synthetic fingers and faults.")
@click.pass_obj
def emulate(app: Any, module: str, link: Path, people: int, impostors: int, folder: Path | None, enroll: bool,
            every: float, touches: int, real_baud: bool, packet_size: str, fault_specs: tuple[str, ...],
            fault_rate: float, seed: int) -> None:
    """Run an emulated fingerprint module on a pty and place fingers on it, one touch at a time.

    Point [sensor] port at --link and `biolock run` (or enroll, verify, sensor test) talks to it through the
    real R30x driver. Each touch is printed (who, genuine or stranger) so the daemon's decisions can be checked.

    \b
    Example:
      biolock --state-dir /tmp/bl sensor emulate --people 3 --enroll &
      biolock --state-dir /tmp/bl --config biolock.toml run     # [sensor] type = "r30x", port = "/tmp/biolock-r307"
      biolock sensor emulate --module r503 --real-baud --fault no_finger:2 --fault-rate 0.1
    """
    from device.demo import synthetic_renderer
    from device.sensors.r30x_emulator import FAULTS, R30xEmulator

    faults = _faults(fault_specs)
    render = synthetic_renderer(seed) if folder is None else None
    rng = np.random.default_rng(seed)
    emu = R30xEmulator(module, link=link, throttle=real_baud, packet_size=int(packet_size), seed=seed)
    with emu:
        click.echo(f"emulated {module.upper()} on {emu.port} ({'57600 baud' if real_baud else 'unthrottled'}, "
                   f"{packet_size}-byte packets)")
        if enroll:
            if render is None:
                raise click.UsageError("--enroll enrols the synthetic people; it does not combine with --images")
            _enroll(app, emu, render, people)
        for name, count in faults:
            emu.inject(name, count)
        source = _folder_images(folder) if folder is not None else (
            (f"{who} ({'genuine' if not who.startswith('stranger') else 'stranger'})", render(identity, impression))
            for who, identity, impression in _touch_plan(people, impostors))
        _serve(emu, source, every, touches, fault_rate, rng, FAULTS)


def _serve(emu: Any, source: Iterator[tuple[str, np.ndarray]], every: float, touches: int, fault_rate: float,
           rng: np.random.Generator, faults: tuple[str, ...]) -> None:
    done = 0
    try:
        while touches == 0 or done < touches:
            if emu.pending() == 0:
                label, image = next(source)
                if fault_rate and rng.random() < fault_rate:
                    fault = str(rng.choice(faults))
                    emu.inject(fault)
                    label += f" + fault {fault}"
                emu.present(image)
                done += 1
                click.echo(f"touch {done}: {label}")
            time.sleep(every)
    except KeyboardInterrupt:
        pass
    click.echo(f"stopped after {done} touches; {emu.uploads} images uploaded")
