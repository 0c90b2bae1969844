"""Calibrating cards: thresholds a count of impostors supports, written into model cards and fusion cards.

Two ways in, one rule (``device.calibration.fit``):

- The builders (``biolock train export``, ``biolock train minutiae-card``, ``training.fusion.card_builder``) call
  ``calibrated`` / ``calibrate_fusion_card`` on the synthetic scores they already have, so every new card carries
  a calibration block.
- ``biolock train calibrate-card CARD`` re-calibrates an existing card on more sets: real dev sets and synthetic
  folders, each scored with every cross-identity pair by the same decision ``biolock eval`` runs (so the numbers
  are what the device decides). The card's model file is not touched; only thresholds and the block change.

A model card's thresholds are cosines (capped at 1.0). Shipped models stay trained on synthetic data only; the
real sets only move thresholds, and the card names them. ``--held-out`` sets (a research-only sensor whose terms
allow evaluation only) are scored at the fitted thresholds and never move them; a level one of them breaks is
marked unsupported.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path

import click
import numpy as np

from device.calibration.fit import calibrate

ScoreSets = Mapping[str, tuple[np.ndarray, np.ndarray]]


def same_identity_scores(emb: np.ndarray, labels: list[str]) -> np.ndarray:
    """Cosines of every pair of rows with the same label (the genuine pairs of a validation set)."""
    from device.evaluation.datasets import genuine_pairs

    e = np.asarray(emb, dtype=np.float64)
    e = e / np.maximum(np.linalg.norm(e, axis=1, keepdims=True), 1e-12)
    p = genuine_pairs(list(labels))
    return np.einsum("ij,ij->i", e[p[:, 0]], e[p[:, 1]])


def calibrated(sets: ScoreSets, method: str, ceiling: float | None = None,
               held_out: ScoreSets | None = None) -> tuple[dict[str, float], dict]:
    """(thresholds, calibration block as JSON-ready dict) for ``sets`` of (genuine, impostor) scores."""
    thresholds, cal = calibrate(sets, method, ceiling, held_out)
    return thresholds, cal.to_dict()


def split_held_out(sets: Mapping[str, tuple[np.ndarray, np.ndarray]], held_out: tuple[str, ...],
                   ) -> tuple[dict, dict]:
    """(sets to fit on, sets held out): a set is held out when ``held_out`` names it or a folder above it."""
    held = {k: v for k, v in sets.items() if any(_under(k, h) for h in held_out)}
    unused = [h for h in held_out if not any(_under(k, h) for k in sets)]
    if unused:
        raise click.UsageError(f"--held-out {', '.join(unused)} names no scored set (have: {', '.join(sets)})")
    fit = {k: v for k, v in sets.items() if k not in held}
    if not fit:
        raise click.UsageError("every set is held out: nothing is left to set the thresholds on")
    return fit, held


def calibrate_fusion_card(card, sets: ScoreSets, method: str = "fused scores, every pair",
                          held_out: ScoreSets | None = None):
    """``card`` with thresholds fitted on the fused ``sets`` and the calibration block in its extra fields."""
    from device.fusion.card import FusionCard

    thresholds, block = calibrated(sets, method, held_out=held_out)
    return FusionCard(card.name, card.rule, card.matchers, card.weights, thresholds,
                      {**dict(card.extra), "calibration": block})


def fused_from_raw(card, genuine: Mapping[str, np.ndarray], impostor: Mapping[str, np.ndarray],
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Fused scores of raw per-matcher scores through the card's normalizers, rule and weights."""
    from device.fusion import combine

    names = list(card.matcher_names)
    spec = {m.name: m for m in card.matchers}
    w = card.weight_vector_for(names)

    def fuse(raw: Mapping[str, np.ndarray]) -> np.ndarray:
        return combine(np.stack([spec[n].normalizer(np.asarray(raw[n])) for n in names], axis=1), card.rule, w)

    return fuse(genuine), fuse(impostor)


def _under(name: str, h: str) -> bool:
    return name == h or name.startswith(h.rstrip("/") + "/")


def score_sources(decision, sources: list[tuple[Path, tuple[str, ...], str]], progress: bool = True,
                  fvc_protocol: tuple[str, ...] = ()) -> dict:
    """Every cross-identity pair of each set: {set name: (genuine, impostor)}; ``prefix`` marks synthetic sets.

    Sets under ``fvc_protocol`` take the FVC protocol's impostors (first impressions only): for a held-out set
    whose every pair would take hours with a slow matcher.
    """
    from device.evaluation.datasets import genuine_pairs, impostor_pairs, load_sets, usable_pairs
    from device.evaluation.runner import extract_all, score_pairs

    out: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for data, only, prefix in sources:
        for es in load_sets(data, decision.modality, only):
            templates, ok, _, _ = extract_all(decision, es, progress)
            cheap = decision.name == "embedding"
            gen = usable_pairs(genuine_pairs(es.labels), ok)
            protocol = "fvc" if any(_under(es.name, h) for h in fvc_protocol) else "all"
            imp = usable_pairs(impostor_pairs(es.labels, es.impressions, protocol), ok)
            g, _ = score_pairs(decision, templates, gen, f"genuine {es.name}", progress, cheap)
            i, _ = score_pairs(decision, templates, imp, f"impostors {es.name}", progress, cheap)
            out[f"{prefix}{es.name}"] = (g, i)
    return out


def write_model_card(path: Path, thresholds: dict[str, float], block: dict, out: Path) -> Path:
    """The model card at ``path`` with new thresholds and calibration, validated, written atomically to ``out``."""
    from device.inference.card import parse_card

    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    raw["thresholds"] = thresholds
    raw["calibration"] = block
    parse_card(raw, Path(out))
    tmp = Path(out).with_suffix(".json.tmp")
    tmp.write_text(json.dumps(raw, indent=2) + "\n", encoding="utf-8")
    tmp.replace(out)
    return Path(out)


@click.command("calibrate-card")
@click.argument("card", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--data", "real", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Real dataset folder or manifest (repeatable).")
@click.option("--set", "only", multiple=True, help="Only these sets of --data (name prefixes, repeatable).")
@click.option("--synthetic", multiple=True, type=click.Path(exists=True, path_type=Path),
              help="Synthetic dataset folder(s) from `biolock data synth` (named synthetic:...).")
@click.option("--held-out", "held_out", multiple=True,
              help="Sets of --data scored at the fitted thresholds, never fitted on (set or folder names, repeatable).")
@click.option("--held-out-protocol", type=click.Choice(["all", "fvc"]), default="all", show_default=True,
              help="Impostors of the held-out sets: every cross-identity pair, or the FVC protocol's (fewer).")
@click.option("--model", type=click.Path(dir_okay=False, exists=True, path_type=Path), default=None,
              help="For a fusion card: the model card it fuses (default: the shipped one).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Where to write (default: overwrite CARD).")
@click.option("--no-progress", is_flag=True)
def calibrate_card_cmd(card: Path, real: tuple[Path, ...], only: tuple[str, ...], synthetic: tuple[Path, ...],
                       held_out: tuple[str, ...], held_out_protocol: str, model: Path | None, out: Path | None,
                       no_progress: bool) -> None:
    """Set CARD's thresholds on real and synthetic sets (every cross-identity pair) and record the calibration.

    A model card is scored by its embedding alone; a fusion card (minutiae card) by the fused decision. Per
    level the threshold keeps the measured FMR <= claim on each set and the 95 % bound over all sets <= claim
    where the count can show it; levels it cannot show are marked unsupported. --held-out sets are scored at
    those thresholds without moving them; a level whose claim one of them breaks is marked unsupported.

    \b
    Example:
      biolock data synth --modality vein --identities 150 --impressions 6 --profile roi --seed 7 --out out/sv
      biolock train calibrate-card models/vein.json --data ../shared/data --set vein/fvusm_roi --synthetic out/sv
      biolock train calibrate-card models/fingerprint.json --data ../shared/data --set fingerprint/fvc2000 \\
          --set fingerprint/fvc2002 --held-out fingerprint/polyu_hrf_500dpi --synthetic out/fp
    """
    from device.evaluation.decisions import DecisionOptions, open_decision
    from device.fusion import load_fusion_card, save_fusion_card

    raw = json.loads(card.read_text(encoding="utf-8"))
    is_fusion = str(raw.get("format", "")).startswith("biolock-fusion-card")
    only = (*only, *held_out) if only else only  # a held-out set is scored even when --set narrows the rest
    sources = [(p, only, "") for p in real] + [(p, (), "synthetic:") for p in synthetic]
    if not sources:
        raise click.UsageError("give at least one --data or --synthetic set")
    if is_fusion:
        decision = open_decision("fused", DecisionOptions("fingerprint", model=model, card=card))
    else:
        decision = open_decision("embedding", DecisionOptions(raw.get("modality", "fingerprint"), model=card))
    try:
        sets = score_sources(decision, sources, not no_progress,
                             held_out if held_out_protocol == "fvc" else ())
    finally:
        decision.close()
    method = f"{decision.name} decision ({decision.matcher_id}), every cross-identity pair"
    if held_out:
        method += (f"; held out: {', '.join(held_out)} ("
                   f"{'FVC protocol impostors' if held_out_protocol == 'fvc' else 'every cross-identity pair'})")
    target = out or card
    sets, held = split_held_out(sets, held_out)
    if is_fusion:
        fc = calibrate_fusion_card(load_fusion_card(card), sets, method, held)
        save_fusion_card(fc, target)
        block = fc.extra["calibration"]
    else:
        thresholds, block = calibrated(sets, method, ceiling=1.0, held_out=held)
        write_model_card(card, thresholds, block, target)
    click.echo(f"wrote {target}")
    for level, r in block["levels"].items():
        click.echo(f"  {level:<10} t={r['threshold']:.4f}: FMR {r['false_matches']}/{r['impostor_pairs']:,} "
                   f"(bound {r['fmr_upper95']:.2e}, claim {r['claim']:g}: "
                   f"{'supported' if r['supported'] else 'NOT supported'}), FNMR {100 * r['fnmr']:.2f} % "
                   f"of {r['genuine_pairs']:,}")
        for name, per in block["per_set"].items():
            p = per[level]
            click.echo(f"      {name}: FMR {p['false_matches']}/{p['impostor_pairs']:,}, FNMR {100 * p['fnmr']:.2f} %")
        for name, h in r.get("held_out", {}).items():
            fnmr = "" if h["fnmr"] is None else f", FNMR {100 * h['fnmr']:.2f} %"
            click.echo(f"      held out {name}: FMR {h['false_matches']}/{h['impostor_pairs']:,}{fnmr}: {h['verdict']}")
