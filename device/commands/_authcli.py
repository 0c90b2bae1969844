"""Shared plumbing of the enroll / verify / identify / status commands (not a command itself).

Why here: the commands differ only in what they ask the Authenticator; opening it, reading images from files or
the sensor, and printing a decision (text or JSON, exit code 0 accept / 1 reject) are the same. Heavy imports
(OpenCV, LiteRT) happen inside these functions, never at module import.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import click

MODEL_OPTION = click.option(
    "--model", "model", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Model card JSON to use (default: inference.model from the config, else the shipped model).")
JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object.")


VEIN_IMAGE_OPTION = click.option(
    "--vein-image", type=click.Path(dir_okay=False, path_type=Path), default=None,
    help="Fusion mode: the vein image file (with --image for the fingerprint; a modality without a file is missing).")


def is_fusion(app: Any) -> bool:
    return app.config.device.modality == "fusion"


def open_authenticator(app: Any, model: Path | None) -> Any:
    """The single-modality Authenticator, or in fusion mode the FusionAuthenticator (``model``: the fingerprint's)."""
    if is_fusion(app):
        from device.fusion_pipeline import FusionAuthenticator

        return FusionAuthenticator.from_config(app.config, app.state_dir, card_paths={"fingerprint": model})
    from device.pipeline import Authenticator

    return Authenticator.from_config(app.config, app.state_dir, card_path=model)


def fusion_captures(app: Any, image: Path | None, vein_image: Path | None) -> tuple[dict[str, Any], dict[str, str]]:
    """One capture per modality: from the files given, else one paired capture (fingerprint, then vein sensor)."""
    if image is not None or vein_image is not None:
        captures = {"fingerprint": None if image is None else next(file_images([image])),
                    "vein": None if vein_image is None else next(file_images([vein_image]))}
        return captures, {m: "no image file given" for m, v in captures.items() if v is None}
    from device.fusion_capture import fusion_sensor_factory

    def prompt(name: str) -> None:
        click.echo(f"now place your finger on the {name} sensor", err=True)

    with fusion_sensor_factory(app.config, on_next=prompt)() as sensor:
        click.echo("place your finger on the fingerprint sensor", err=True)
        frame = sensor.capture(app.config.sensor.finger_timeout_s)
    return dict(frame.images), dict(frame.missing)


def decide(app: Any, auth: Any, name: str | None, image: Path | None, vein_image: Path | None) -> Any:
    """verify (``name`` given) or identify on one capture per configured modality."""
    if is_fusion(app):
        captures, reasons = fusion_captures(app, image, vein_image)
        return auth.identify(captures, reasons) if name is None else auth.verify(name, captures, reasons)
    if vein_image is not None:
        raise click.UsageError("--vein-image only applies in fusion mode (device.modality = 'fusion')")
    probe = one_image(app, image)
    return auth.identify(probe) if name is None else auth.verify(name, probe)


def file_images(paths: Sequence[Path]) -> Iterator[Any]:
    from device.imageio import read_image

    for path in paths:
        yield read_image(path)


def sensor_images(config: Any, count: int | None = None, *, sensor_config: Any = None,
                  where: str = "the sensor") -> Iterator[Any]:
    """Frames from the configured sensor (or ``sensor_config``), prompting on stderr; ``count`` None: until the
    caller stops."""
    from device.sensors import build_sensor

    cfg = config.sensor if sensor_config is None else sensor_config
    with _daemon_lends_sensor(config), build_sensor(cfg) as sensor:
        n = 0
        while count is None or n < count:
            click.echo(f"place your finger on {where}", err=True)
            frame = sensor.capture(cfg.finger_timeout_s)
            n += 1
            yield frame.image
            click.echo("lift your finger", err=True)
            sensor.wait_until_clear(cfg.finger_timeout_s)


def _daemon_lends_sensor(config: Any) -> Any:
    """A running `biolock run` lends its (exclusively opened) sensor for the duration (device/control.py)."""
    from device.config import resolve_state_dir
    from device.control import daemon_paused

    app = getattr(click.get_current_context(silent=True), "obj", None)
    state_dir = app.state_dir if hasattr(app, "state_dir") else resolve_state_dir(None, config)
    return daemon_paused(state_dir)


def one_image(app: Any, image: Path | None) -> Any:
    if image is not None:
        return next(file_images([image]))
    return next(sensor_images(app.config, 1))


class _WithDecider:
    """A decision whose JSON also says which matcher decided, at which threshold and the FMR its card supports."""

    def __init__(self, decision: Any, info: Any) -> None:
        self._decision, self._info = decision, info

    def __getattr__(self, name: str) -> Any:
        return getattr(self._decision, name)

    def as_dict(self) -> dict[str, Any]:
        return {**self._decision.as_dict(), "decided_by": self._info.as_dict()}


def with_decider(decision: Any, auth: Any) -> Any:
    """``decision`` with ``decided_by`` (issue 16) in its JSON when ``auth`` knows what decides.

    Why one helper: verify and identify (single or fusion mode) must report the same field the same way."""
    info = getattr(auth, "decision_info", None)
    return decision if info is None else _WithDecider(decision, info)


def report_decision(decision: Any, as_json: bool, verbose: bool = False) -> None:
    """Print a decision and exit 0 (accepted) or 1 (rejected), so scripts can test the result.

    Without ``--json`` or ``-v`` a reject says only "no match" (never the score, the threshold, or whether the name
    is enrolled: issue 17 item 8); the details are for the admin who asks for them."""
    if as_json:
        click.echo(json.dumps(decision.as_dict(), sort_keys=True))
    elif verbose:
        who = decision.user or "unknown"
        score = "n/a" if decision.score != decision.score else f"{decision.score:.3f}"
        verdict = "ACCEPT" if decision.accepted else "REJECT"
        click.echo(f"{verdict} {who}: {decision.reason} (score {score}, threshold {decision.threshold:.3f}, "
                   f"{decision.latency_ms:.1f} ms)")
    elif decision.accepted:
        click.echo(f"ACCEPT {decision.user}: {decision.reason} ({decision.latency_ms:.1f} ms)")
    else:
        from device.pipeline import public_reason

        click.echo(f"REJECT {decision.user or 'unknown'}: {public_reason(decision.reason)}")
    sys.exit(0 if decision.accepted else 1)
