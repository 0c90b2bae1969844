"""``biolock enroll``: enrol one finger of a person from several captures (files or the sensor)."""

from __future__ import annotations

import json
import logging
from contextlib import ExitStack, closing
from pathlib import Path

import click

from device.commands._authcli import JSON_OPTION, MODEL_OPTION, file_images, open_authenticator, sensor_images
from device.fingers import finger_option
from device.statedir import unchanged_on_failure

log = logging.getLogger("biolock.enroll")


@click.command("enroll")
@click.argument("name")
@finger_option()
@click.option("--image", "images", multiple=True, type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Read captures from image files instead of the sensor (repeat the option; fusion mode: the "
                   "fingerprint captures).")
@click.option("--vein-image", "vein_images", multiple=True,
              type=click.Path(dir_okay=False, exists=True, path_type=Path),
              help="Fusion mode: the vein captures as image files (repeat the option).")
@click.option("--only", type=click.Choice(["fingerprint", "vein"]), default=None,
              help="Fusion mode: enrol (or redo) just this modality; the other one stays as it is.")
@click.option("--replace", is_flag=True, help="Re-enrol a finger NAME already has (its templates are replaced).")
@click.option("--allow-duplicate", is_flag=True,
              help="Enrol even when the finger matches another user (e.g. identical twins); audited.")
@MODEL_OPTION
@JSON_OPTION
@click.pass_obj
def command(app, name: str, finger: str, images: tuple[Path, ...], vein_images: tuple[Path, ...],
            only: str | None, replace: bool, model: Path | None, as_json: bool, allow_duplicate: bool = False) -> None:
    """Enrol NAME's finger: takes enrol.captures (default 5) good, agreeing captures and stores them encrypted.

    Poor captures are refused with the reason, captures that disagree are asked again, the same image given twice
    counts once, and a finger already enrolled to someone else is refused. Nothing is stored unless everything
    succeeds, and a failed enrolment leaves the state directory as it was. --finger defaults to right-index and
    accepts fprintd's names (right-index-finger); re-enrolling a finger NAME already has needs --replace.

    In fusion mode (device.modality = "fusion") the same finger is enrolled in both modalities under NAME:
    first the fingerprint captures ([sensor] or --image files), then the vein captures ([sensor_vein] or
    --vein-image files). Each modality is stored when it succeeds; if the vein part fails, the fingerprint
    stays enrolled and `--only vein` redoes just the vein.

    \b
    Example:
      biolock enroll alice
      biolock enroll alice --finger left-thumb --replace
      biolock enroll alice --finger right-index --image a1.png --image a2.png --image a3.png
      biolock enroll alice --finger right-index --image f1.png --image f2.png --vein-image v1.png --vein-image v2.png
      biolock enroll alice --finger right-index --only vein     # fusion mode: redo the vein only
    """
    from device.pipeline import EnrolmentError

    fusion = app.config.device.modality == "fusion"
    if not fusion and (vein_images or only):
        raise click.UsageError("--vein-image and --only apply in fusion mode only (device.modality = 'fusion')")

    def progress(fb, modality: str | None = None) -> None:  # small sensor: "placement 4 stored: move ... (4/10)"
        if not as_json:
            mark = "ok " if fb.ok else "no "
            where = f"{modality} " if modality else ""
            click.echo(f"[{where}{fb.index}] {mark} {fb.message} ({fb.good}/{fb.needed})", err=True)

    from device.pipeline import check_user_name

    check_user_name(name)  # before the model loads or the sensor opens
    replacing = _already_enrolled(app, name, finger, replace, only)
    if fusion:  # not rolled back as a whole: a fingerprint that succeeded stays enrolled (see above)
        _enrol_fusion(app, name, finger, images, vein_images, only, model, as_json, progress)
        return
    source = file_images(images) if images else sensor_images(app.config)
    with unchanged_on_failure(app.state_dir), open_authenticator(app, model) as auth, closing(source):
        small = hasattr(auth, "placements")  # device.small_sensor: many placements, each touch told where to move
        if small and not as_json:
            click.echo(f"small sensor: touch {auth.placements} times, moving the finger a little each time", err=True)
        result = auth.enroll(name, finger, source, on_capture=progress, allow_duplicate=allow_duplicate)
        if not result.ok:
            if as_json:
                click.echo(json.dumps(_result_dict(result), sort_keys=True))
            raise EnrolmentError(f"enrolment of {name} ({finger}) failed: {result.reason}")
    if as_json:
        click.echo(json.dumps({**_result_dict(result), "replaced": replacing}, sort_keys=True))
    else:
        verb = "re-enrolled (replaced the old templates)" if replacing else "enrolled"
        if small:  # small-sensor mode (issue 18): one template of all placements
            click.echo(f"{verb} {name} ({finger}): {result.stored} placements from {result.attempts} touches")
        else:
            click.echo(f"{verb} {name} ({finger}): {result.stored} templates from {result.attempts} captures")


def _already_enrolled(app, name: str, finger: str, replace: bool, only: str | None) -> bool:
    """Whether NAME already has FINGER (in the modality being enrolled); without --replace that is an error.

    Read-only, before the model loads: a state directory without a store stays without one.
    """
    from device.pipeline import RequestError
    from device.store.cli_support import open_store

    if not (app.state_dir / "store.db").exists():
        return False
    modality = app.config.device.modality
    wanted = {only} if only else ({"fingerprint", "vein"} if modality == "fusion" else {modality})
    with open_store(app) as store:
        found = [u for u in store.users() if u.name == name]
    have = found and any(e.finger == finger and e.modality in wanted for e in found[0].enrolments)
    if have and not replace:
        raise RequestError(f"{name} already has {finger} enrolled: pass --replace to replace those templates, or "
                           "choose another --finger")
    if have:
        log.info("%s's %s is enrolled already: --replace, the new captures replace it", name, finger)
    return bool(have)


def _result_dict(result) -> dict:
    return {"ok": result.ok, "user": result.user, "finger": result.finger, "stored": result.stored,
            "attempts": result.attempts, "rejected": [list(r) for r in result.rejected], "reason": result.reason,
            "duplicate_of": result.duplicate_of}


def _enrol_fusion(app, name: str, finger: str, images: tuple[Path, ...], vein_images: tuple[Path, ...],
                  only: str | None, model: Path | None, as_json: bool, progress) -> None:
    """Fingerprint then vein (or ``only`` one), from files when any are given, else from the two sensors."""
    from device.pipeline import EnrolmentError

    wanted = [only] if only else ["fingerprint", "vein"]
    files = {"fingerprint": images, "vein": vein_images}
    from_files = bool(images or vein_images)
    if from_files:
        lacking = [m for m in wanted if not files[m]]
        if lacking:
            flags = {"fingerprint": "--image", "vein": "--vein-image"}
            raise click.UsageError(f"fusion enrolment from files needs {' and '.join(flags[m] for m in lacking)} "
                                   "files too (or --only MODALITY to enrol one modality)")
        extra = [m for m in files if m not in wanted and files[m]]
        if extra:
            raise click.UsageError(f"--only {only} but {extra[0]} files were given")
    elif "vein" in wanted and app.config.sensor_vein is None:
        from device.errors import ConfigError

        raise ConfigError("device.modality = 'fusion' needs a [sensor_vein] section to enrol the vein from the "
                          "sensor (or give --vein-image files)")
    with ExitStack() as stack:
        sources = {}
        for m in wanted:
            if from_files:
                sources[m] = file_images(files[m])
            elif m == "fingerprint":
                sources[m] = sensor_images(app.config, where="the fingerprint sensor")
            else:
                sources[m] = sensor_images(app.config, sensor_config=app.config.sensor_vein,
                                           where="the vein sensor")
            stack.enter_context(closing(sources[m]))
        auth = stack.enter_context(open_authenticator(app, model))
        results = auth.enroll(name, finger, sources, on_capture=lambda m, fb: progress(fb, m))
    failed = [m for m, r in results.items() if not r.ok]
    if as_json:
        click.echo(json.dumps({"ok": not failed and len(results) == len(wanted), "user": name, "finger": finger,
                               "modalities": {m: _result_dict(r) for m, r in results.items()}}, sort_keys=True))
    elif results:
        for m, r in results.items():
            if r.ok:
                click.echo(f"enrolled {name} ({finger}, {m}): {r.stored} templates from {r.attempts} captures")
    if failed:
        m = failed[0]
        kept = [k for k, r in results.items() if r.ok]
        hint = f"; {', '.join(kept)} stayed enrolled: redo with --only {m}" if kept else ""
        raise EnrolmentError(f"enrolment of {name} ({finger}, {m}) failed: {results[m].reason}{hint}")
