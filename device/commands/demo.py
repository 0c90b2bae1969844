"""``biolock demo``: the whole product on emulated hardware (the README's main command, `make demo`)."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("demo")
@click.option("--model", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Model card JSON (default: the shipped models/fingerprint.json).")
@click.option("--people", type=click.IntRange(1, 500), default=3, show_default=True,
              help="People to enrol (synthetic; the first eight have names, then person9, person10, ...).")
@click.option("--genuine", type=click.IntRange(0, 20), default=2, show_default=True,
              help="Genuine touches per enrolled person.")
@click.option("--impostors", type=click.IntRange(0, 20), default=3, show_default=True,
              help="Touches by people who are not enrolled.")
@click.option("--seed", type=int, default=7, show_default=True, help="Seed of the synthetic identities.")
@click.option("--real-baud", is_flag=True,
              help="Throttle the emulated R307 to 57600 baud like the real UART (about 6.5 s per image).")
@click.option("--soak", type=click.IntRange(0, 1_000_000), default=0, show_default=True,
              help="Afterwards run N more attempts and report the memory (RSS) drift.")
@click.option("--modality", type=click.Choice(["fingerprint", "vein", "fusion"]), default="fingerprint",
              show_default=True,
              help="vein: synthetic whole NIR frames replayed through the camera backend (docs/vein.md); fusion: "
                   "fingerprint (emulated R307) + vein (camera) fused by a card fitted at start on synthetic data "
                   "(docs/fusion.md).")
@click.option("--module", type=click.Choice(["r307", "r503"]), default="r307", show_default=True,
              help="The emulated fingerprint module. r503: the small 192x192 capacitive sensor with its LED ring, in "
                   "small-sensor mode (many placements per finger, partial-print matcher; docs/partial-prints.md).")
@click.option("--placements", type=click.IntRange(1, 20), default=10, show_default=True,
              help="--module r503: linked touches enrolled per finger.")
@click.pass_obj
def command(app, model: Path | None, people: int, genuine: int, impostors: int, seed: int, real_baud: bool,
            soak: int, modality: str, module: str = "r307", placements: int = 10) -> None:
    """Run biolock end to end on emulated hardware: no sensor, lock, network or setup needed.

    Generates synthetic R307 fingerprints, starts an emulated R307 module and the emulated lock controller on
    pseudo-terminals, enrols three people through the real driver, then presents genuine and impostor fingers
    to the daemon loop and prints every decision with its latency and a summary. Uses a temporary state
    directory unless --state-dir is given (it must be empty).

    \b
    Examples:
      biolock demo
      biolock demo --model out/fingerprint.json --people 4 --impostors 5
      biolock demo --soak 10000            # memory drift over 10,000 more attempts
      biolock demo --modality fusion       # fingerprint + vein fused (card fitted on synthetic data)
      biolock demo --module r503           # small sensor: partial prints, 10 placements per finger, LED ring
    """
    if module == "r503":  # issue 18: small-sensor mode on the emulated R503
        if modality != "fingerprint" or soak or model is not None:
            raise click.UsageError("--module r503 runs the fingerprint demo in small-sensor mode (no --modality, "
                                   "--soak or --model)")
        from device.demo_r503 import run_r503_demo

        summary = run_r503_demo(state_dir=app.state_dir_option, people=people, genuine=genuine,
                                impostors=impostors, placements=placements, seed=seed, real_baud=real_baud,
                                verbose=app.verbose, echo=click.echo)
        if summary.impostors_rejected < summary.impostors:
            raise SystemExit(1)
        return
    if modality == "fusion":  # fingerprint + vein fused on one touch (docs/fusion.md)
        from device.demo_fusion import run_fusion_demo

        summary = run_fusion_demo(model=model, state_dir=app.state_dir_option, people=people, genuine=genuine,
                                  impostors=impostors, seed=seed, verbose=app.verbose, echo=click.echo)
        if summary.impostors_rejected < summary.impostors:
            raise SystemExit(1)
        return
    if modality == "vein":  # issue 19: the vein product on synthetic whole camera frames
        from device.demo_vein import run_vein_demo

        summary = run_vein_demo(model=model, state_dir=app.state_dir_option, people=people, genuine=genuine,
                                impostors=impostors, seed=seed, verbose=app.verbose, echo=click.echo)
        if summary.impostors_rejected < summary.impostors:
            raise SystemExit(1)
        return
    from device.demo import run_demo

    summary = run_demo(model=model, state_dir=app.state_dir_option, people=people, genuine=genuine,
                       impostors=impostors, seed=seed, real_baud=real_baud, soak=soak,
                       verbose=app.verbose, echo=click.echo)
    if summary.impostors_rejected < summary.impostors:
        raise SystemExit(1)  # an impostor got in: the demo failed its one promise
