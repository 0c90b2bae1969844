"""``biolock identify``: 1:N -- who is this? Exit 0 accept, 1 reject, >= 2 error."""

from __future__ import annotations

from pathlib import Path

import click

from device.commands._authcli import (
    JSON_OPTION,
    MODEL_OPTION,
    VEIN_IMAGE_OPTION,
    decide,
    open_authenticator,
    report_decision,
    with_decider,
)


@click.command("identify")
@click.option("--image", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Identify this image file instead of capturing from the sensor.")
@VEIN_IMAGE_OPTION
@MODEL_OPTION
@JSON_OPTION
@click.pass_obj
def command(app, image: Path | None, vein_image: Path | None, model: Path | None, as_json: bool) -> None:
    """Find the enrolled person a capture belongs to (best score at or above the threshold).

    Exits 0 with the user's name when accepted, 1 when nobody matches, 2 or more on errors.

    \b
    Example:
      biolock identify --image probe.png
      biolock identify --image fp.png --vein-image vein.png   # fusion mode
    """
    with open_authenticator(app, model) as auth:
        decision = with_decider(decide(app, auth, None, image, vein_image), auth)
    report_decision(decision, as_json, app.verbose)
