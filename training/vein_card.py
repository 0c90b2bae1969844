"""``biolock train vein-card``: fit the fusion card of (vein model cosine, vein line score) and calibrate it.

Why this split: the shipped cards must be reproducible without the real sets, so normalization and weights are
chosen on a synthetic vein set (fingers the model never trained on: another seed), by the lowest FNMR at FMR
1/10,000 (the default level), then EER, then the most even weights (on a set both matchers separate perfectly
nothing else can decide). Thresholds are then set by ``device.calibration`` on every
cross-finger pair of the synthetic set and of each real set given with ``--data`` (FV-USM: ~4.3 million impostor
pairs, so FMR 1/10,000 is measured, not extrapolated); the card names them. Every score is computed by the device's
own code path (``LineMatcher.model_input`` -> vein-v1 preprocessing -> the model; ``LineMatcher.extract``); line
scores of all pairs come from ``training.vein_lines`` (the same correlation, batched by FFT).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import click
import numpy as np


@dataclass
class PairScores:
    """Raw scores of every pair of one set: genuine (same finger) and impostor (different fingers)."""

    name: str
    genuine: dict[str, np.ndarray]  # matcher name -> scores
    impostor: dict[str, np.ndarray]
    fvc: tuple[dict[str, np.ndarray], dict[str, np.ndarray]] | None  # FVC-protocol (genuine, impostor), or None
    failed: int  # captures without a region, a usable model input or a template


def templates_of(images, embedder, progress: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(unit embeddings, decoded line maps, ok flags) of grey images through the device's vein code path."""
    from device.minutiae.base import MinutiaeError
    from device.preprocess import preprocess
    from device.progress import tqdm
    from device.vein import template
    from device.vein.backend import LineMatcher
    from device.vein.lines import MAP_SIZE

    matcher, card = LineMatcher(), embedder.card
    vectors = np.zeros((len(images), card.embedding_size), np.float32)
    maps = np.zeros((len(images), *MAP_SIZE), np.float32)
    ok = np.zeros(len(images), bool)
    for k, image in enumerate(tqdm(images, desc="vein: region, model, lines", disable=not progress)):
        try:
            maps[k] = template.decode(matcher.extract(image))
        except MinutiaeError:
            continue
        prep = preprocess(matcher.model_input(image), "vein", card.input_size, card.preprocessing)
        if prep.quality.ok:
            vectors[k], ok[k] = embedder.embed(prep.image), True
    vectors /= np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
    return vectors, maps, ok


def score_set(name: str, images, labels, impressions, embedder, progress: bool = True) -> PairScores:
    """Every pair's model cosine and line score (and the FVC-protocol subset when impressions are given)."""
    from device.evaluation.datasets import genuine_pairs, impostor_pairs, usable_pairs
    from training.vein_lines import score_matrix

    vectors, maps, ok = templates_of(images, embedder, progress)
    cos, lines = vectors @ vectors.T, score_matrix(maps)
    lab = np.asarray(labels)

    def pick(pairs: np.ndarray) -> dict[str, np.ndarray]:
        p = usable_pairs(pairs, ok)
        return {"vein": cos[p[:, 0], p[:, 1]].astype(np.float64), "vein-lines": lines[p[:, 0], p[:, 1]].astype(
            np.float64)}

    gen = genuine_pairs(list(lab))
    imp = impostor_pairs(list(lab), list(impressions), "all")
    fvc = (pick(gen), pick(impostor_pairs(list(lab), list(impressions), "fvc"))) if impressions is not None else None
    return PairScores(name, pick(gen), pick(imp), fvc, int((~ok).sum()))


def synthetic_set(seed: int, identities: int, impressions: int, embedder, progress: bool = True) -> PairScores:
    """A synthetic vein ROI set (``roi`` profile) scored like a real one."""
    from training.synth.dataset import identity_seed
    from training.synth.vein import render_impression

    images, labels, imps = [], [], []
    for i in range(identities):
        for k in range(impressions):
            images.append(render_impression(identity_seed(seed, i, "vein"), k, "roi"))
            labels.append(str(i))
            imps.append(str(k + 1))
    return score_set(f"synthetic:vein roi seed {seed}", images, labels, imps, embedder, progress)


def real_sets(data: Path, only: tuple[str, ...], embedder, progress: bool = True) -> list[PairScores]:
    """Each vein set under ``data`` (folder or manifest.csv), scored with every pair."""
    from device.evaluation.datasets import load_sets
    from device.imageio import read_image

    out = []
    for es in load_sets(data, "vein", only):
        images = [read_image(p) for p in es.paths]
        out.append(score_set(es.name, images, es.labels, es.impressions, embedder, progress))
    return out


NAMES = ("vein", "vein-lines")


def fit_card(fit: PairScores, models: dict[str, str]):
    """Normalization and weights chosen on ``fit`` (FNMR at FMR 1e-4, then EER); thresholds set later."""
    from device.fusion import FusionCard, MatcherSpec, combine, fit_normalizer
    from training import metrics
    from training.fusion.card_builder import fmr_thresholds
    from training.fusion.scores import simplex_grid

    best = None
    for method in ("tanh", "zscore"):
        norms = {n: fit_normalizer(method, fit.genuine[n], fit.impostor[n]) for n in NAMES}
        ng = np.stack([norms[n](fit.genuine[n]) for n in NAMES], axis=1)
        ni = np.stack([norms[n](fit.impostor[n]) for n in NAMES], axis=1)
        for w in simplex_grid(2, max_points=21):
            g, i = combine(ng, "weighted_sum", w), combine(ni, "weighted_sum", w)
            # ties (a synthetic set both matchers separate perfectly) go to the most even weights: the set cannot
            # say that one matcher is better, and the equal-weight sum is the neutral choice
            key = (metrics.fnmr_at_fmr(g, i, 1e-4), metrics.eer(g, i).eer, abs(float(w[0]) - 0.5))
            if best is None or key < best[0]:
                best = (key, method, norms, w, ni)
    _, method, norms, w, ni = best
    matchers = tuple(MatcherSpec(name=n, modality="vein", normalizer=norms[n], model=models[n],
                                 thresholds=fmr_thresholds(ni[:, k])) for k, n in enumerate(NAMES))
    weights = {n: float(x) for n, x in zip(NAMES, w / w.sum(), strict=True)}
    return FusionCard(name="vein+vein-lines", rule="weighted_sum", matchers=matchers, weights=weights,
                      thresholds=fmr_thresholds(combine(ni, "weighted_sum", w)), extra={"normalization": method})


def report(card, scored: PairScores) -> dict:
    """EER per matcher and fused (every pair and, for real sets, the FVC protocol) and rates at the thresholds."""
    from training import metrics
    from training.card_calibration import fused_from_raw

    def eers(g: dict[str, np.ndarray], i: dict[str, np.ndarray]) -> dict:
        fg, fi = fused_from_raw(card, g, i)
        out = {n: metrics.eer(g[n], i[n]).eer for n in NAMES}
        out.update(fused=metrics.eer(fg, fi).eer, genuine_pairs=int(fg.size), impostor_pairs=int(fi.size))
        for key, t in card.thresholds.items():
            out[f"fnmr@{key}"], out[f"fmr@{key}"] = float(np.mean(fg < t)), float(np.mean(fi >= t))
        return out

    out = {"all_pairs": eers(scored.genuine, scored.impostor), "failed_captures": scored.failed}
    if scored.fvc is not None and scored.name.startswith("vein/"):
        out["fvc"] = eers(*scored.fvc)
    return out


@click.command("vein-card")
@click.option("--model", "model_card", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Vein model card (default: the shipped models/vein.json).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the card (the device looks for <model card>_lines.json: models/vein_lines.json).")
@click.option("--data", type=click.Path(exists=True, path_type=Path), default=None,
              help="Real dataset folder or manifest.csv whose vein sets also set the thresholds (every pair).")
@click.option("--set", "only", multiple=True, help="Only these sets of --data (name prefixes), e.g. vein/fvusm_roi.")
@click.option("--identities", default=100, show_default=True, type=click.IntRange(4, 5000),
              help="Synthetic fingers in the fit set.")
@click.option("--impressions", default=6, show_default=True, type=click.IntRange(2, 50))
@click.option("--seed", default=11, show_default=True, type=int,
              help="Synthetic seed (the shipped model trained on seed 1: keep it different).")
@click.option("--no-progress", is_flag=True)
def vein_card(model_card: Path | None, out: Path, data: Path | None, only: tuple[str, ...], identities: int,
              impressions: int, seed: int, no_progress: bool) -> None:
    """Fit the vein model + line matcher fusion card and calibrate its thresholds.

    \b
    Example:
      biolock train vein-card --out models/vein_lines.json --data ../shared/data --set vein/fvusm_roi
    """
    from device.config import InferenceConfig
    from device.errors import BiolockError
    from device.fusion import save_fusion_card
    from device.fusion.card import FusionCard
    from device.inference import build_embedder
    from device.vein.backend import TEMPLATE_ID
    from training.card_calibration import calibrate_fusion_card, fused_from_raw

    try:
        embedder = build_embedder(InferenceConfig(), model_card, modality="vein")
    except BiolockError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        fit = synthetic_set(seed, identities, impressions, embedder, not no_progress)
        real = real_sets(data, only, embedder, not no_progress) if data is not None else []
    finally:
        embedder.close()
    card = fit_card(fit, {"vein": embedder.model_id, "vein-lines": TEMPLATE_ID})
    sets = {s.name: fused_from_raw(card, s.genuine, s.impostor) for s in [fit, *real]}
    method = f"vein model + line matcher fused ({embedder.model_id} + {TEMPLATE_ID}), every cross-finger pair"
    card = calibrate_fusion_card(card, sets, method)
    metrics_ = {s.name: report(card, s) for s in [fit, *real]}
    trained = (f"weights: synthetic vein (roi profile), {identities} fingers x {impressions} (seed {seed}), every "
               f"pair; thresholds: {', '.join(sets)} (every cross-finger pair)")
    card = FusionCard(card.name, card.rule, card.matchers, card.weights, card.thresholds,
                      {**dict(card.extra), "metrics": metrics_, "trained_on": trained,
                       "created": date.today().isoformat()})
    save_fusion_card(card, out)
    click.echo(f"wrote {out}: weights {json.dumps(card.weights)}, normalization {card.extra['normalization']}")
    for name, m in metrics_.items():
        for proto in ("all_pairs", "fvc"):
            if proto in m:
                r = m[proto]
                click.echo(f"{name} [{proto}] {r['genuine_pairs']:,} / {r['impostor_pairs']:,} pairs: EER model "
                           f"{100 * r['vein']:.2f} %, lines {100 * r['vein-lines']:.2f} %, fused "
                           f"{100 * r['fused']:.2f} %; at balanced FMR {100 * r['fmr@1e-4']:.4f} % FNMR "
                           f"{100 * r['fnmr@1e-4']:.2f} %")
        click.echo(f"{name}: {m['failed_captures']} captures without a template")
    for level, r in card.extra["calibration"]["levels"].items():
        click.echo(f"  {level:<10} t={r['threshold']:.4f}: FMR {r['false_matches']}/{r['impostor_pairs']:,} "
                   f"(bound {r['fmr_upper95']:.2e}: {'supported' if r['supported'] else 'NOT supported'}), "
                   f"FNMR {100 * r['fnmr']:.2f} %")
