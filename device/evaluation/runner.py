"""Run one decision over evaluation sets: extract every image once, score every needed pair once, summarize.

Genuine pairs and the ``all`` impostors are scored together; ``fvc`` impostors are a subset of ``all`` and are
looked up, not scored again. Timings: extraction per image (median), comparison per pair (batched, as the
evaluation runs them) and one single comparison (median of up to 200, as a 1:1 decision runs it).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from device.evaluation.datasets import EvalSet, genuine_pairs, impostor_pairs, usable_pairs
from device.evaluation.decisions import AcquireError, Decision
from device.evaluation.scoring import summarize_scores

SINGLE_COMPARISONS = 200
COMPARE_CHUNK = 512
# Pairs are scored tile by tile (TILE templates on each side), so a matcher's per-template cache (the biolock
# matcher keeps 512 templates' cylinders) serves every comparison of a tile: in (i, j) order every pair of a set
# larger than the cache missed it twice (PolyU HRF, 1,480 prints: ~5 ms per pair instead of ~0.3 ms).
TILE = 128


@dataclass
class SetScores:
    """Raw scores of one set, per protocol: (genuine, impostor)."""

    name: str
    scores: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)


def _bar(total: int, desc: str, progress: bool):
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, disable=not progress or None, leave=False, unit="it")


def extract_all(decision: Decision, es: EvalSet, progress: bool) -> tuple[list, np.ndarray, list[str], list[float]]:
    """(templates, acquired mask, failure reasons, extraction ms per acquired image)."""
    from device.imageio import read_image

    templates: list = []
    ok = np.zeros(len(es), dtype=bool)
    reasons: list[str] = []
    times: list[float] = []
    with _bar(len(es), f"extract {es.name}", progress) as bar:
        for k, path in enumerate(es.paths):
            image = read_image(path)
            t = time.perf_counter()
            try:
                templates.append(decision.extract(image))
                ok[k] = True
                times.append((time.perf_counter() - t) * 1000)
            except AcquireError as exc:
                templates.append(None)
                reasons.append(f"{path.name}: {exc}")
            bar.update(1)
    return templates, ok, reasons, times


def score_pairs(decision: Decision, templates: list, pairs: np.ndarray, desc: str, progress: bool,
                cheap: bool = False) -> tuple[np.ndarray, float]:
    """Scores of ``pairs`` and the total wall time in ms; chunks feed the progress bar."""
    scores = np.empty(len(pairs), dtype=np.float64)
    order = tile_order(pairs)
    pairs = np.asarray(pairs)[order] if len(pairs) else pairs
    chunk = max(COMPARE_CHUNK, len(pairs) // 50) if cheap else COMPARE_CHUNK
    spent = 0.0
    with _bar(len(pairs), desc, progress) as bar:
        for s in range(0, len(pairs), chunk):
            p = pairs[s:s + chunk]
            t = time.perf_counter()
            scores[s:s + len(p)] = decision.compare(templates, p)
            spent += (time.perf_counter() - t) * 1000
            bar.update(len(p))
    out = np.empty_like(scores)
    out[order] = scores  # back in the order asked
    return out, spent


def tile_order(pairs: np.ndarray, tile: int = TILE) -> np.ndarray:
    """A permutation of ``pairs`` that visits them tile by tile ((i // tile, j // tile) blocks), stable inside."""
    p = np.asarray(pairs).reshape(-1, 2)
    return np.lexsort((p[:, 1] // tile, p[:, 0] // tile)) if len(p) else np.arange(0)


def single_compare_ms(decision: Decision, templates: list, pairs: np.ndarray) -> float | None:
    if len(pairs) == 0:
        return None
    step = max(1, len(pairs) // SINGLE_COMPARISONS)
    samples = []
    for p in pairs[::step][:SINGLE_COMPARISONS]:
        t = time.perf_counter()
        decision.compare(templates, p[None])
        samples.append((time.perf_counter() - t) * 1000)
    return float(np.median(samples))


def evaluate_set(decision: Decision, es: EvalSet, protocols: tuple[str, ...], progress: bool = True,
                 log: Callable[[str], None] | None = None) -> tuple[dict, SetScores]:
    """The report of one set (see ``scoring.summarize_scores``) and its raw scores for plots."""
    templates, ok, reasons, ext_ms = extract_all(decision, es, progress)
    gen = genuine_pairs(es.labels)
    imp = {p: impostor_pairs(es.labels, es.impressions, p) for p in protocols}
    g_use = usable_pairs(gen, ok)
    widest = imp["all"] if "all" in imp else imp[protocols[0]]
    w_use = usable_pairs(widest, ok)
    cheap = decision.name == "embedding" or getattr(decision, "cheap", False)
    g_scores, g_ms = score_pairs(decision, templates, g_use, f"genuine {es.name}", progress, cheap)
    w_scores, w_ms = score_pairs(decision, templates, w_use, f"impostors {es.name}", progress, cheap)
    report: dict = {
        "set": es.name, "images": len(es), "identities": es.identities,
        "failures_to_acquire": int((~ok).sum()), "fta_rate": float((~ok).mean()) if len(es) else 0.0,
        "fta_examples": reasons[:5],
        "genuine_pairs_lost_to_fta": int(len(gen) - len(g_use)),
        "extract_ms_median": float(np.median(ext_ms)) if ext_ms else None,
        "compare_ms_per_pair": (g_ms + w_ms) / max(1, len(g_use) + len(w_use)),
        "compare_ms_single": single_compare_ms(decision, templates, g_use if len(g_use) else w_use),
        "protocols": {},
    }
    scores = SetScores(es.name)
    n = len(es)
    wkey = w_use[:, 0] * n + w_use[:, 1]
    order = np.argsort(wkey)
    for proto, pairs in imp.items():
        use = usable_pairs(pairs, ok)
        if pairs is widest:
            i_scores = w_scores
        else:  # a subset of the widest protocol's pairs: look the scores up
            keys = use[:, 0] * n + use[:, 1]
            i_scores = w_scores[order[np.searchsorted(wkey[order], keys)]]
        summary = summarize_scores(g_scores, i_scores, decision.thresholds)
        summary["impostor_pairs_lost_to_fta"] = int(len(pairs) - len(use))
        report["protocols"][proto] = summary
        scores.scores[proto] = (g_scores, i_scores)
    if log:
        log(f"{es.name}: done")
    return report, scores
