"""``biolock calibrate``: measure this site's sensor and people, and tighten the thresholds for this site."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click

from device.commands._authcli import JSON_OPTION, MODEL_OPTION


def _summary(site: dict, scores, level: str, card_cal, seconds: float) -> list[str]:
    from device.calibration.fields import LEVEL_KEYS
    from device.calibration.sitecal import pairs_needed, users_needed

    cal = site["calibration"]["levels"]
    if scores.small_sensor:  # strangers against placements templates: no genuine pairs, FNMR not measured here
        h, w = scores.window
        lines = [f"with {scores.users} people enrolled ({scores.captures} fingers' placements templates) and "
                 f"{scores.strangers_used} stranger touches of {h}x{w} px at 500 dpi: "
                 f"{scores.strangers.size:,} stranger pairs, measured in {seconds:.1f} s"]
        if scores.strangers_rejected:
            lines.append(f"  {scores.strangers_rejected} stranger images refused as touches, not scored: "
                         + "; ".join(f"{n} x {why}" for why, n in sorted(scores.refusals.items())))
        lines.append("  FNMR is not measured: the store keeps one template per finger, no separate touches")
    else:
        lines = [f"with {scores.users} people enrolled ({scores.captures} stored captures: "
                 f"{scores.genuine.size:,} genuine and {scores.impostor.size:,} impostor pairs"
                 + (f", plus {scores.strangers.size:,} stranger pairs from {scores.strangers_used} images" if
                    scores.strangers_used else "") + f"), measured in {seconds:.1f} s:"]
    for lv, key in LEVEL_KEYS.items():
        r = cal[lv]
        own = (f"this site's pairs: {r['false_matches']} false matches of {r['impostor_pairs']:,}, bound "
               f"{r['fmr_upper95']:.2g}" + ("" if scores.small_sensor else f", FNMR {100 * r['fnmr']:.1f} %"))
        if lv in site["card_supported"]:
            c = card_cal.levels[lv]
            verdict = f"supported at an FMR bound of {c.fmr_upper95:.2g} (card, {c.impostor_pairs:,} pairs)"
        elif r["supported"]:
            verdict = f"supported at an FMR bound of {r['fmr_upper95']:.2g} (this site)"
        elif scores.small_sensor:
            verdict = (f"NOT supported by this site's pairs (needs at least {pairs_needed(r['claim']):,} stranger "
                       "pairs without a false match: more strangers or more enrolled fingers)")
        else:
            verdict = (f"NOT supported (this site's pairs alone need about {users_needed(r['claim'])} enrolled "
                       "users, or strangers)")
        mark = " <- configured" if lv == level else ""
        moved = site["thresholds"][key] - site["card_thresholds"][key]
        lines.append(f"  '{lv}': threshold {site['thresholds'][key]:.4f} ({'+' if moved >= 0 else ''}{moved:.4f} "
                     f"vs card), {verdict}; {own}{mark}")
    return lines


@click.command("calibrate")
@click.option("--strangers", type=click.Path(file_okay=False, exists=True, path_type=Path), default=None,
              help="A folder of images of people who are not enrolled (more impostor pairs).")
@click.option("--allow-looser", is_flag=True, help="Let thresholds fall below those in force (never by default).")
@click.option("--replace", is_flag=True, help="Replace a site calibration made for another model.")
@click.option("--plot", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="DET plot PNG (default: <state dir>/site_calibration_det.png when matplotlib is installed).")
@click.option("--dry-run", is_flag=True, help="Measure and report; write nothing.")
@click.option("--no-progress", is_flag=True)
@MODEL_OPTION
@JSON_OPTION
@click.pass_obj
def command(app, strangers: Path | None, allow_looser: bool, replace: bool, plot: Path | None, dry_run: bool,
            no_progress: bool, model: Path | None, as_json: bool) -> None:
    """Score every enrolled user's stored captures against every other user's and set this site's thresholds.

    Uses the stored templates (the store keeps no images) and the score the device decides on. Thresholds only
    tighten unless --allow-looser; the result goes to <state dir>/site_calibration.json with the same fields as
    a card, and the device decides at it from the next start. Needs at least 10 enrolled users.

    Small-sensor mode (R503, matching.minutiae = "partial") needs --strangers: its store keeps one template per
    finger, so the pairs are every stranger touch (captured on this sensor) against every enrolled finger. The
    file records the strangers' touch size; a level their pairs support is supported for that size, even on a
    sensor smaller than the small-sensor card's window.

    \b
    Example:
      biolock calibrate
      biolock calibrate --strangers /srv/visitor_prints --plot site_det.png
    """
    import dataclasses

    from device.calibration.site import load_site, save_site, site_path
    from device.calibration.sitecal import build_site, score_site, score_small_sensor_site, site_thresholds
    from device.errors import ConfigError
    from device.pipeline import Authenticator
    from device.small_sensor import is_small_sensor, sensor_window, site_matcher, smaller_than

    cfg = app.config
    small = is_small_sensor(cfg)
    if small and strangers is None:
        raise ConfigError("in small-sensor mode biolock calibrate needs --strangers FOLDER: the store keeps one "
                          "stitched template per enrolled finger (no separate captures, no images), so this "
                          "site's pairs can only be touches of people who are not enrolled, captured on this "
                          "sensor, scored against every enrolled finger; nothing changed")
    cfg = dataclasses.replace(cfg, matching=dataclasses.replace(cfg.matching, allow_unsupported_level=True))
    t0 = time.perf_counter()
    with Authenticator.from_config(cfg, app.state_dir, card_path=model, check_security=False) as auth:
        if small:
            matcher, card_t = site_matcher(auth.placements), dict(auth.small_card.thresholds)
            card_cal = auth.small_card.calibration
        elif auth.minutiae is not None:
            matcher, card_t = auth.matcher_name, dict(auth.minutiae.card.thresholds)
            card_cal = auth.minutiae.card.calibration
        else:
            matcher, card_t, card_cal = auth.model_id, dict(auth.card.thresholds), auth.card.calibration
        try:
            existing = load_site(app.state_dir, matcher)
        except ConfigError:
            if not replace:
                raise ConfigError(f"{site_path(app.state_dir)} was made for another model or is damaged; nothing "
                                  "changed (pass --replace to calibrate this one from scratch)") from None
            existing = None
        in_force = {k: max(v, existing.thresholds[k]) if existing else v for k, v in card_t.items()}
        progress = not no_progress and not as_json
        build_cal = card_cal
        if small:
            scores = score_small_sensor_site(auth, strangers, sensor_window(cfg), progress)
            if not scores.strangers_used:
                raise ConfigError(f"{strangers}: none of the {scores.strangers_rejected} stranger images could be "
                                  "scored as a touch (" + "; ".join(f"{n} x {why}" for why, n in
                                                                      sorted(scores.refusals.items()))
                                  + "); nothing changed")
            card_window = auth.small_card.window
            if card_window is not None and smaller_than(scores.window, card_window):
                build_cal = None  # the card's claims do not cover touches this small: only the site's own count
        else:
            scores = score_site(auth, strangers, progress=progress)
        thresholds = site_thresholds(scores, in_force, allow_looser, integer_scores=small)
        site = build_site(auth, scores, thresholds, card_t, build_cal, matcher)
    seconds = time.perf_counter() - t0
    looser = [k for k in thresholds if thresholds[k] < in_force[k]]
    if looser and not allow_looser:  # site_thresholds never does this; kept as the last line of defence
        raise ConfigError(f"the site calibration would loosen {', '.join(looser)}; nothing changed")
    plot_note = _plot(site, scores, plot or Path(app.state_dir) / "site_calibration_det.png", plot is not None,
                      dry_run)
    if not dry_run:
        save_site(app.state_dir, site)
    lines = _summary(site, scores, cfg.matching.security, card_cal, seconds)
    if as_json:
        extra = {"strangers_refusals": scores.refusals} if scores.small_sensor else {}
        click.echo(json.dumps({**site, **extra, "seconds": seconds, "written": None if dry_run else
                               str(site_path(app.state_dir)), "plot": plot_note}, default=float))
        return
    click.echo("\n".join(lines))
    click.echo(plot_note)
    click.echo("dry run: nothing written" if dry_run else f"wrote {site_path(app.state_dir)} (in force from the "
               "next start of the daemon and every CLI command)")


def _plot(site: dict, scores, path: Path, asked: bool, dry_run: bool) -> str:
    """The DET PNG with the site thresholds marked; without matplotlib, a note (an error only if it was asked)."""
    if dry_run and not asked:
        return "no plot (dry run)"
    from device.calibration.fields import LEVEL_KEYS
    from training.detplot import Curve, PlotError, det_plot

    imp = scores.impostor if not scores.strangers.size else __import__("numpy").concatenate(
        [scores.impostor, scores.strangers])
    if scores.small_sensor:
        return "no plot: a small-sensor site calibration has no genuine pairs (one template per finger)"
    if scores.genuine.size == 0 or imp.size == 0:
        return "no plot (no genuine or no impostor pairs)"
    marks = {lv: site["thresholds"][key] for lv, key in LEVEL_KEYS.items()}
    try:
        det_plot([Curve(f"site ({site['enrolled_users']} users)", scores.genuine, imp, marks)], path,
                 f"site calibration: {site['matcher']}")
    except PlotError as exc:
        if asked:
            raise
        return f"no plot: {exc}"
    return f"DET plot: {path}"
