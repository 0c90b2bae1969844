"""``biolock eval``: score the decision the device makes on a dataset folder or manifest, per sensor."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click


def _plots(result: dict, all_scores: list, out: Path) -> list[Path]:
    """DET, ROC and histogram PNGs per set and protocol; PlotError (how to install matplotlib) when missing."""
    import numpy as np

    from device.evaluation.scoring import LEVELS
    from training.detplot import Curve, det_plot, histogram_plot, roc_plot

    marks = {}
    if result.get("thresholds"):
        marks = {level: result["thresholds"][key] for level, (key, _) in LEVELS.items() if key in result["thresholds"]}
    written: list[Path] = []
    for scores in all_scores:
        slug = re.sub(r"[^A-Za-z0-9_.-]+", "_", scores.name)
        for proto, (g, i) in scores.scores.items():
            if g.size == 0 or i.size == 0:
                continue
            curve = Curve(f"{scores.name} [{proto}]", np.asarray(g), np.asarray(i), marks)
            title = f"{result['decision']}: {scores.name} [{proto}]"
            written.append(det_plot([curve], out / f"{slug}_{proto}_det.png", f"DET {title}"))
            written.append(roc_plot([curve], out / f"{slug}_{proto}_roc.png", f"ROC {title}"))
            written.append(histogram_plot(curve, out / f"{slug}_{proto}_hist.png", f"scores {title}"))
    return written


@click.command("eval")
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("--decision", "decision_name", default="device", show_default=True,
              help="What decides: device (as configured), embedding, fused, a minutiae backend (nbis, ...), or "
                   "any registered matcher (device/evaluation/decisions.py).")
@click.option("--model", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Model card (default: the configured or shipped one).")
@click.option("--card", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="Fusion/matcher card (default: <model card>_minutiae.json beside the model card).")
@click.option("--modality", type=click.Choice(["fingerprint", "vein"]), default=None,
              help="Default: the configured device.modality, or what the set names say.")
@click.option("--set", "only", multiple=True, help="Only sets whose name starts with this (repeatable), "
              "e.g. fingerprint/fvc2002/DB1_B.")
@click.option("--protocol", type=click.Choice(["fvc", "all", "both"]), default="both", show_default=True,
              help="Impostors: fvc (first impressions), all (every cross-finger pair), or both.")
@click.option("--plots", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write DET/ROC/histogram PNGs here (needs matplotlib).")
@click.option("--crop", default=None, metavar="WxH", help="Score one WxH window per impression, inside the finger, "
              "seeded by the image (the same windows for every decision): e.g. 160x160 (device/evaluation/crop.py).")
@click.option("--crop-placement", type=click.Choice(["uniform", "centred"]), default="uniform", show_default=True,
              help="With --crop: uniform (anywhere inside the finger: the yardstick) or centred (on the finger's "
              "centre with a seeded +-32 px jitter: easier; say so when you report it).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on stdout.")
@click.option("--no-progress", is_flag=True, help="No progress bars.")
@click.pass_obj
def command(app, data: Path, decision_name: str, model: Path | None, card: Path | None, modality: str | None,
            only: tuple[str, ...], protocol: str, plots: Path | None, crop: str | None, crop_placement: str,
            as_json: bool, no_progress: bool) -> None:
    """Measure a decision on DATA (a dataset folder or manifest.csv), each sensor separately.

    Per set: EER (FVC rule and linear interpolation), FNMR at FMR 1 % and 0.1 % (0.1 % only with >= 1,000
    impostors), ZeroFMR, FNMR and measured FMR (with its 95 % upper bound) at each security level's threshold,
    failures to acquire, pair counts, time per extraction and per comparison. Genuine pairs: every pair of
    impressions of one finger; impostors: the FVC protocol and/or every pair of two different fingers.

    \b
    Examples:
      biolock eval ../shared/data --set fingerprint/fvc2002          # what the device decides
      biolock eval ../shared/data --modality vein --decision embedding --protocol all --json
      biolock eval my_sensor_images/ --decision nbis --plots out/eval
      biolock eval ../shared/data --set fingerprint/fvc2002 --decision partial --crop 160x160
    """
    from device.evaluation import DecisionOptions, evaluate_set, load_sets, open_decision
    from device.evaluation.report import format_report

    config = app.config
    modality = _modality(modality, only, config.device.modality if app.config_file is not None else None, data)
    sets = load_sets(data, modality, only)
    protocols = ("fvc", "all") if protocol == "both" else (protocol,)
    decision = open_decision(decision_name, DecisionOptions(modality, model or config.inference.model, card, config))
    if crop:
        from device.evaluation.crop import CroppedDecision, parse_crop

        decision = CroppedDecision(decision, parse_crop(crop), placement=crop_placement)
    try:
        result: dict = {"decision": decision.name, "matcher": decision.matcher_id, "modality": modality,
                        "card": str(decision.card_path) if decision.card_path else None,
                        "thresholds": decision.thresholds, "data": str(data), "sets": []}
        all_scores = []
        for es in sets:
            report, scores = evaluate_set(decision, es, protocols, progress=not no_progress and not as_json)
            result["sets"].append(report)
            all_scores.append(scores)
    finally:
        decision.close()
    if plots is not None:
        result["plots"] = [str(p) for p in _plots(result, all_scores, plots)]
    if as_json:
        click.echo(json.dumps(result, indent=1, default=float))
        return
    click.echo(format_report(result))
    for p in result.get("plots", []):
        click.echo(f"wrote {p}")


def _modality(given: str | None, only: tuple[str, ...], configured: str | None, data: Path) -> str:
    """--modality, else what --set names, else the config file's device.modality, else what the sets say."""
    if given:
        return given
    from device.evaluation.datasets import load_sets, modality_of

    named = {modality_of(o) for o in only} - {None}
    if len(named) == 1:
        return named.pop()
    if configured in ("fingerprint", "vein"):
        return configured
    said = {modality_of(s.name) for s in load_sets(data)} - {None}
    return said.pop() if len(said) == 1 else "fingerprint"
