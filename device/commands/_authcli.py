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


def open_authenticator(app: Any, model: Path | None) -> Any:
    from device.pipeline import Authenticator

    return Authenticator.from_config(app.config, app.state_dir, card_path=model)


def file_images(paths: Sequence[Path]) -> Iterator[Any]:
    from device.imageio import read_image

    for path in paths:
        yield read_image(path)


def sensor_images(config: Any, count: int | None = None) -> Iterator[Any]:
    """Frames from the configured sensor, prompting on stderr; ``count`` None means until the caller stops."""
    from device.sensors import build_sensor

    with build_sensor(config.sensor) as sensor:
        n = 0
        while count is None or n < count:
            click.echo("place your finger on the sensor", err=True)
            frame = sensor.capture(config.sensor.finger_timeout_s)
            n += 1
            yield frame.image
            click.echo("lift your finger", err=True)
            sensor.wait_until_clear(config.sensor.finger_timeout_s)


def one_image(app: Any, image: Path | None) -> Any:
    if image is not None:
        return next(file_images([image]))
    return next(sensor_images(app.config, 1))


def report_decision(decision: Any, as_json: bool) -> None:
    """Print a decision and exit 0 (accepted) or 1 (rejected), so scripts can test the result."""
    if as_json:
        click.echo(json.dumps(decision.as_dict(), sort_keys=True))
    else:
        who = decision.user or "unknown"
        score = "n/a" if decision.score != decision.score else f"{decision.score:.3f}"
        verdict = "ACCEPT" if decision.accepted else "REJECT"
        click.echo(f"{verdict} {who}: {decision.reason} (score {score}, threshold {decision.threshold:.3f}, "
                   f"{decision.latency_ms:.1f} ms)")
    sys.exit(0 if decision.accepted else 1)
