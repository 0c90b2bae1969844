"""``biolock enroll``: enrol one finger of a person from several captures (files or the sensor)."""

from __future__ import annotations

import json
from contextlib import closing
from pathlib import Path

import click

from device.commands._authcli import JSON_OPTION, MODEL_OPTION, file_images, open_authenticator, sensor_images


@click.command("enroll")
@click.argument("name")
@click.option("--finger", required=True, help="Which finger: left-|right- thumb, index, middle, ring or little.")
@click.option("--image", "images", multiple=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Read captures from image files instead of the sensor (repeat the option).")
@MODEL_OPTION
@JSON_OPTION
@click.pass_obj
def command(app, name: str, finger: str, images: tuple[Path, ...], model: Path | None, as_json: bool) -> None:
    """Enrol NAME's finger: takes enrol.captures (default 5) good, agreeing captures and stores them encrypted.

    Poor captures are refused with the reason, captures that disagree are asked again, and a finger already
    enrolled to someone else is refused. Nothing is stored unless everything succeeds.

    \b
    Example:
      biolock enroll alice --finger right-index
      biolock enroll alice --finger right-index --image a1.png --image a2.png --image a3.png
    """
    from device.pipeline import EnrolmentError

    def progress(fb) -> None:
        if not as_json:
            mark = "ok " if fb.ok else "no "
            click.echo(f"[{fb.index}] {mark} {fb.message} ({fb.good}/{fb.needed})", err=True)

    source = file_images(images) if images else sensor_images(app.config)
    with open_authenticator(app, model) as auth, closing(source):  # closing: release the sensor at once
        result = auth.enroll(name, finger, source, on_capture=progress)
    if as_json:
        click.echo(json.dumps({"ok": result.ok, "user": result.user, "finger": result.finger,
                               "stored": result.stored, "attempts": result.attempts,
                               "rejected": [list(r) for r in result.rejected], "reason": result.reason,
                               "duplicate_of": result.duplicate_of}, sort_keys=True))
    if not result.ok:
        raise EnrolmentError(f"enrolment of {name} ({finger}) failed: {result.reason}")
    if not as_json:
        click.echo(f"enrolled {name} ({finger}): {result.stored} templates from {result.attempts} captures")
