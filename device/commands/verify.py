"""``biolock verify``: 1:1 -- does this finger belong to NAME? Exit 0 accept, 1 reject, >= 2 error."""

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


@click.command("verify")
@click.argument("name")
@click.option("--image", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Verify this image file instead of capturing from the sensor.")
@VEIN_IMAGE_OPTION
@MODEL_OPTION
@JSON_OPTION
@click.pass_obj
def command(app, name: str, image: Path | None, vein_image: Path | None, model: Path | None,
            as_json: bool) -> None:
    """Verify that a capture matches NAME at the configured security level.

    Exits 0 when accepted, 1 when rejected (no match, poor capture, locked out), 2 or more on errors, so shell
    scripts can use it directly. Every decision is audited (no biometric data).

    \b
    Example:
      biolock verify alice && echo "welcome"
      biolock verify alice --image probe.png --json
      biolock verify alice --image fp.png --vein-image vein.png   # fusion mode
    """
    with open_authenticator(app, model) as auth:
        decision = with_decider(decide(app, auth, name, image, vein_image), auth)
    report_decision(decision, as_json, app.verbose)
