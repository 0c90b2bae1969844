"""``biolock train minutiae-card``: fit the fusion card of (embedding cosine, minutiae score) on synthetic prints.

Why synthetic and why R307: the shipped models must be reproducible without the real sets, and the card's
thresholds are FMR targets for the sensor the device ships for (the R307 profile, the demo's sensor). Two disjoint
sets of fingers from the generator (different seeds, never the training fingers of seed 1): the *fit* set chooses
normalization and weights (lowest FNMR at FMR 1/10,000, the default security) and the thresholds; the *test* set
measures what the card does on fingers it never saw, and those numbers go in the card's ``metrics``. Every pair
of captures of a set is used: genuine = same finger, impostor = different fingers.

Minutiae scores are computed in worker processes (one backend each); the fit set of 60 fingers x 12 impressions
is ~255,000 impostor pairs, a few minutes on 2 cores. With fewer than 50,000 impostors the FMR 1/50,000 threshold
is just above every impostor seen: the command says so.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from multiprocessing import get_context
from pathlib import Path

import click
import numpy as np

PROFILE = "r307"
_WORKER = None


@dataclass
class ScoredSet:
    name: str
    genuine: dict[str, np.ndarray]  # matcher name -> raw scores
    impostor: dict[str, np.ndarray]
    failed_extractions: int


def _render(job: tuple[int, int, int]) -> np.ndarray:
    from training.synth.dataset import identity_seed
    from training.synth.fingerprint import render_impression

    seed, identity, impression = job
    return render_impression(identity_seed(seed, identity, "fingerprint"), impression, PROFILE)


def _worker_matcher(kind: str):
    global _WORKER
    if _WORKER is None:
        from device.minutiae import open_matcher

        _WORKER = open_matcher(kind)
    return _WORKER


def _extract(job: tuple[str, np.ndarray]) -> bytes | None:
    from device.minutiae import MinutiaeError

    kind, image = job
    try:
        return _worker_matcher(kind).extract(image)
    except MinutiaeError:
        return None  # counted; scores 0 against everything, as on the device


def _compare(job: tuple[str, list[bytes | None], np.ndarray]) -> np.ndarray:
    kind, templates, pairs = job
    m = _worker_matcher(kind)
    return np.array([0.0 if templates[a] is None or templates[b] is None else m.compare(templates[a], templates[b])
                     for a, b in pairs], dtype=np.float64)


def all_pairs(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(genuine, impostor) index pairs (n, 2) over every unordered pair of captures."""
    a, b = np.triu_indices(len(labels), k=1)
    same = labels[a] == labels[b]
    pairs = np.stack([a, b], axis=1)
    return pairs[same], pairs[~same]


def score_set(name: str, seed: int, identities: int, impressions: int, embedder, kind: str,
              workers: int = 2) -> ScoredSet:
    """Render, embed, extract and score every pair of one synthetic set."""
    from device.preprocess import preprocess
    from device.progress import tqdm

    jobs = [(seed, i, k) for i in range(identities) for k in range(impressions)]
    labels = np.repeat(np.arange(identities), impressions)
    pool = get_context("fork").Pool(workers)
    try:
        images = list(tqdm(pool.imap(_render, jobs, chunksize=8), total=len(jobs), desc=f"{name}: render"))
        templates = list(tqdm(pool.imap(_extract, [(kind, im) for im in images], chunksize=8), total=len(jobs),
                              desc=f"{name}: minutiae"))
        card = embedder.card
        vectors = np.stack([embedder.embed(preprocess(im, "fingerprint", card.input_size, card.preprocessing).image)
                            for im in tqdm(images, desc=f"{name}: embed")])
        genuine, impostor = all_pairs(labels)
        both = np.concatenate([genuine, impostor])
        chunks = np.array_split(both, max(1, len(both) // 2000))
        parts = list(tqdm(pool.imap(_compare, [(kind, templates, c) for c in chunks]), total=len(chunks),
                          desc=f"{name}: compare {len(both):,} pairs"))
    finally:
        pool.close()
        pool.join()
    minutiae = np.concatenate(parts)
    cosine = np.einsum("ij,ij->i", vectors[both[:, 0]], vectors[both[:, 1]])
    g = len(genuine)
    return ScoredSet(name, {"fingerprint": cosine[:g], "minutiae": minutiae[:g]},
                     {"fingerprint": cosine[g:], "minutiae": minutiae[g:]}, sum(t is None for t in templates))


def rates(genuine: np.ndarray, impostor: np.ndarray, thresholds: dict[str, float]) -> dict:
    """EER and, per card threshold, the FNMR and FMR it gives on these pairs."""
    from training import metrics

    out = {"eer": metrics.eer(genuine, impostor).eer, "genuine_pairs": int(len(genuine)),
           "impostor_pairs": int(len(impostor))}
    for key, t in thresholds.items():
        out[f"fnmr@{key}"] = float(np.mean(genuine < t))
        out[f"fmr@{key}"] = float(np.mean(impostor >= t))
    return out


def fit_card(fit: ScoredSet, models: dict[str, str], embedding_weight: float | None = None):
    """Choose normalization and weights on ``fit`` (FNMR at FMR 1e-4, then EER) and set the thresholds.

    ``embedding_weight`` fixes the embedding's weight instead (0: the minutiae matcher decides alone, which is
    what the real FVC sets measured for the biolock backend, docs/fingerprint.md)."""
    from device.fusion import FusionCard, MatcherSpec, combine, fit_normalizer
    from training import metrics
    from training.fusion.card_builder import fmr_thresholds
    from training.fusion.scores import simplex_grid

    names = ["fingerprint", "minutiae"]
    best = None
    for method in ("tanh", "zscore") if embedding_weight is None else ("zscore",):  # fixed weights: plain z-score
        norms = {n: fit_normalizer(method, fit.genuine[n], fit.impostor[n]) for n in names}
        ng = np.stack([norms[n](fit.genuine[n]) for n in names], axis=1)
        ni = np.stack([norms[n](fit.impostor[n]) for n in names], axis=1)
        grid = simplex_grid(2, max_points=21) if embedding_weight is None else \
            np.array([[embedding_weight, 1.0 - embedding_weight]])
        for w in grid:
            g, i = combine(ng, "weighted_sum", w), combine(ni, "weighted_sum", w)
            key = (metrics.fnmr_at_fmr(g, i, 1e-4), metrics.eer(g, i).eer)
            if best is None or key < best[0]:
                best = (key, method, norms, w, ng, ni)
    _, method, norms, w, ng, ni = best

    fused_imp = combine(ni, "weighted_sum", w)
    matchers = tuple(MatcherSpec(name=n, modality="fingerprint", normalizer=norms[n], model=models[n],
                                 thresholds=fmr_thresholds(ni[:, k])) for k, n in enumerate(names))
    weights = {n: float(x) for n, x in zip(names, w / w.sum(), strict=True)}
    return FusionCard(name="fingerprint+minutiae", rule="weighted_sum", matchers=matchers, weights=weights,
                      thresholds=fmr_thresholds(fused_imp), extra={"normalization": method})


def measure(card, scored: ScoredSet) -> dict:
    """What the card does on one scored set: fused and single-matcher rates at the card's thresholds."""
    from device.fusion import combine

    names = ["fingerprint", "minutiae"]
    spec = {m.name: m for m in card.matchers}
    w = card.weight_vector_for(names)
    fg = combine(np.stack([spec[n].normalizer(scored.genuine[n]) for n in names], axis=1), "weighted_sum", w)
    fi = combine(np.stack([spec[n].normalizer(scored.impostor[n]) for n in names], axis=1), "weighted_sum", w)
    out = {"fused": rates(fg, fi, dict(card.thresholds)), "failed_extractions": scored.failed_extractions}
    for n in names:
        raw_t = {k: float(v) for k, v in spec[n].thresholds.items()}
        out[n] = rates(spec[n].normalizer(scored.genuine[n]), spec[n].normalizer(scored.impostor[n]), raw_t)
    return out


@click.command("minutiae-card")
@click.option("--model", "model_card", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Embedding model card (default: the shipped fingerprint model).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True,
              help="Where to write the fusion card (the device looks for models/fingerprint_minutiae.json).")
@click.option("--backend", default="nbis", show_default=True, help="Minutiae backend.")
@click.option("--identities", default=60, show_default=True, type=click.IntRange(4, 2000),
              help="Fingers in the fit set.")
@click.option("--test-identities", default=30, show_default=True, type=click.IntRange(2, 2000),
              help="Fingers in the held-out test set.")
@click.option("--impressions", default=12, show_default=True, type=click.IntRange(2, 100))
@click.option("--seed", default=11, show_default=True, type=int, help="Generator seed of the fit set (test: +1).")
@click.option("--workers", default=2, show_default=True, type=click.IntRange(1, 64))
@click.option("--embedding-weight", type=click.FloatRange(0.0, 1.0), default=None,
              help="Fix the embedding's weight (0: minutiae decide alone) instead of choosing it on the fit set.")
def minutiae_card(model_card: Path | None, out: Path, backend: str, identities: int, test_identities: int,
                  impressions: int, seed: int, workers: int, embedding_weight: float | None) -> None:
    """Fit the embedding + minutiae fusion card on synthetic R307 prints and measure it on held-out fingers.

    Example:
      biolock train minutiae-card --out models/fingerprint_minutiae.json
    """
    from device.config import InferenceConfig
    from device.errors import BiolockError
    from device.fusion import save_fusion_card
    from device.fusion.card import FusionCard
    from device.inference import build_embedder
    from device.minutiae import open_matcher

    try:
        embedder = build_embedder(InferenceConfig(), model_card, modality="fingerprint")
        template_id = open_matcher(backend).template_id
    except BiolockError as exc:
        raise click.ClickException(str(exc)) from exc
    try:
        fit = score_set("fit", seed, identities, impressions, embedder, backend, workers)
        test = score_set("test", seed + 1, test_identities, impressions, embedder, backend, workers)
    finally:
        embedder.close()
    card = fit_card(fit, {"fingerprint": embedder.model_id, "minutiae": template_id}, embedding_weight)
    from training.card_calibration import calibrate_fusion_card, fused_from_raw  # issue 16: calibration block

    card = calibrate_fusion_card(card, {f"synthetic:{PROFILE} fit seed {seed}": fused_from_raw(
        card, fit.genuine, fit.impostor)}, "fused scores of the fit set, every pair")
    metrics_ = {"fit": measure(card, fit), "test": measure(card, test)}
    extra = {"metrics": metrics_,
             "trained_on": f"synthetic fingerprint ({PROFILE} profile): fit {identities} fingers x {impressions} "
                           f"(seed {seed}), test {test_identities} fingers x {impressions} (seed {seed + 1}); "
                           "every pair", "created": date.today().isoformat(), **dict(card.extra)}
    card = FusionCard(card.name, card.rule, card.matchers, card.weights, card.thresholds, extra)
    save_fusion_card(card, out)
    click.echo(f"wrote {out}: weights {json.dumps(card.weights)}, normalization {extra['normalization']}")
    if len(fit.impostor["fingerprint"]) < 50_000:
        click.echo("note: fewer than 50,000 impostor pairs: the 2e-5 threshold is only above every impostor seen")
    for part, m in metrics_.items():
        for name in ("fingerprint", "minutiae", "fused"):
            r = m[name]
            click.echo(f"{part:4s} {name:11s} EER {100 * r['eer']:5.2f} %  FNMR at FMR 1e-3 "
                       f"{100 * r['fnmr@1e-3']:5.1f} %, 1e-4 {100 * r['fnmr@1e-4']:5.1f} % (FMR there "
                       f"{100 * r['fmr@1e-4']:.4f} %)  {r['genuine_pairs']:,} / {r['impostor_pairs']:,} pairs")
