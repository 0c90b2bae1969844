"""Score-level and feature-level fusion, evaluated with identity-disjoint cross-validation.

Protocol: identities are split into ``folds`` (2) by sorted index. For each fold, the *other* identities are the
validation data: per-dimension z-scores, the entropy selection, score normalizations, fusion weights and the
decision threshold are all learned there. The fold's own identities are scored with the FVC protocol (genuine =
all pairs of one identity's impressions, impostor = first impression vs first impression of every other identity
*within the fold*), and the test scores of all folds are pooled. So every row of a table uses exactly the same test
pairs (counts are printed with each table). Validation uses all cross-identity pairs (up to
``MAX_VALIDATION_IMPOSTORS``, sampled with a fixed seed) so the learned normalizations and thresholds see more
impostors than the test does.

Weights for ``weighted_sum`` are learned by exhaustive search on a simplex grid (step 0.1, coarser when there are
many matchers: at most 400 points), minimizing validation EER, ties broken by the larger
d' = (mean_g - mean_i) / sqrt((var_g + var_i) / 2).
FAR / FRR are per comparison at the threshold of the validation EER, applied unchanged to the test pairs.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from device.fusion import METHODS, RULES, Normalizer, combine, fit_normalizer
from training import metrics
from training.fusion.selection import FeatureFusion, ZScore
from training.protocol import fvc_pairs

MAX_VALIDATION_IMPOSTORS = 20_000
Pairs = np.ndarray  # (n, 2) int row indices

# A matcher scores pairs given the rows it may learn from: (fit_rows, pairs) -> scores
Matcher = Callable[[np.ndarray, Pairs], np.ndarray]


def identity_folds(labels: Sequence[str], folds: int = 2) -> list[np.ndarray]:
    """Row indices of each fold; identity k (sorted) goes to fold k % folds."""
    ids = sorted(set(labels))
    fold_of = {ident: k % folds for k, ident in enumerate(ids)}
    return [np.array([i for i, lab in enumerate(labels) if fold_of[lab] == f]) for f in range(folds)]


def fold_test_pairs(labels: Sequence[str], impressions: Sequence[str], rows: np.ndarray) -> tuple[Pairs, Pairs]:
    """FVC genuine/impostor pairs among ``rows`` (global indices)."""
    g, i = fvc_pairs([labels[r] for r in rows], [impressions[r] for r in rows])
    to_global = np.asarray(rows)
    return (to_global[np.array(g, dtype=int).reshape(-1, 2)], to_global[np.array(i, dtype=int).reshape(-1, 2)])


def validation_pairs(labels: Sequence[str], rows: np.ndarray, seed: int = 0) -> tuple[Pairs, Pairs]:
    """All genuine pairs and all (or a fixed sample of) impostor pairs among ``rows``."""
    lab = np.asarray(labels)[rows]
    gen, imp = [], []
    for a, b in itertools.combinations(range(len(rows)), 2):
        (gen if lab[a] == lab[b] else imp).append((rows[a], rows[b]))
    imp_arr = np.array(imp, dtype=int).reshape(-1, 2)
    if len(imp_arr) > MAX_VALIDATION_IMPOSTORS:
        pick = np.random.default_rng(seed).choice(len(imp_arr), MAX_VALIDATION_IMPOSTORS, replace=False)
        imp_arr = imp_arr[np.sort(pick)]
    return np.array(gen, dtype=int).reshape(-1, 2), imp_arr


def cosine_matcher(features: np.ndarray) -> Matcher:
    """Cosine of per-dimension z-scored vectors (z-scores fitted on the fit rows)."""

    def score(fit_rows: np.ndarray, pairs: Pairs) -> np.ndarray:
        z = ZScore.fit(features[fit_rows])(features)
        z /= np.maximum(np.linalg.norm(z, axis=1, keepdims=True), 1e-12)
        return np.einsum("ij,ij->i", z[pairs[:, 0]], z[pairs[:, 1]]) if len(pairs) else np.zeros(0)

    return score


def embedding_matcher(embeddings: np.ndarray) -> Matcher:
    """Plain cosine of unit embeddings (the deep matcher as the device runs it: nothing learned)."""
    e = embeddings / np.maximum(np.linalg.norm(embeddings, axis=1, keepdims=True), 1e-12)

    def score(fit_rows: np.ndarray, pairs: Pairs) -> np.ndarray:
        return np.einsum("ij,ij->i", e[pairs[:, 0]], e[pairs[:, 1]]) if len(pairs) else np.zeros(0)

    return score


def map_matcher(maps: Sequence[np.ndarray], match: Callable[[np.ndarray, np.ndarray], float]) -> Matcher:
    """Binary vein maps compared with ``match`` (Miura matching); results cached per pair."""
    cache: dict[tuple[int, int], float] = {}

    def score(fit_rows: np.ndarray, pairs: Pairs) -> np.ndarray:
        out = np.empty(len(pairs))
        for k, (a, b) in enumerate(pairs):
            key = (int(a), int(b))
            if key not in cache:
                cache[key] = float(match(maps[a], maps[b]))
            out[k] = cache[key]
        return out

    return score


def feature_fusion_matcher(blocks: dict[str, np.ndarray], labels: Sequence[str], k: int = 256) -> Matcher:
    """Feature-level fusion: normalized concatenation + entropy selection (fitted on fit rows), then cosine."""

    def score(fit_rows: np.ndarray, pairs: Pairs) -> np.ndarray:
        fusion = FeatureFusion.fit({n: b[fit_rows] for n, b in blocks.items()}, [labels[r] for r in fit_rows], k)
        fused = fusion(blocks)
        return cosine_matcher(fused)(fit_rows, pairs)

    return score


def d_prime(genuine: np.ndarray, impostor: np.ndarray) -> float:
    den = np.sqrt((np.var(genuine) + np.var(impostor)) / 2.0)
    return float((np.mean(genuine) - np.mean(impostor)) / den) if den > 0 else 0.0


def simplex_grid(m: int, max_points: int = 400) -> np.ndarray:
    """Weight vectors on the simplex (sum 1, >= 0) with the finest step 1/n giving <= ``max_points`` points."""
    for n in (10, 8, 5, 4, 3, 2, 1):
        count = 1
        for j in range(1, m):
            count = count * (n + j) // j
        if count <= max_points:
            break
    pts = [c for c in itertools.product(range(n + 1), repeat=m - 1) if sum(c) <= n]
    return np.array([[*c, n - sum(c)] for c in pts], dtype=np.float64) / n


def learn_weights(gen: np.ndarray, imp: np.ndarray) -> np.ndarray:
    """Weights (m,) minimizing validation EER of the weighted sum; ties by larger d'. gen/imp: (n, m)."""
    best, best_key = None, None
    for w in simplex_grid(gen.shape[1]):
        g, i = gen @ w, imp @ w
        key = (metrics.eer(g, i).eer, -d_prime(g, i))
        if best_key is None or key < best_key:
            best, best_key = w, key
    return best


@dataclass
class SchemeResult:
    """Pooled test scores of one scheme plus what was learned per fold."""

    name: str
    kind: str  # "single", "feature", "score"
    genuine: list[np.ndarray] = field(default_factory=list)
    impostor: list[np.ndarray] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)
    weights: list[dict[str, float]] = field(default_factory=list)
    far: list[tuple[int, int]] = field(default_factory=list)  # (false accepts, impostor pairs) per fold
    frr: list[tuple[int, int]] = field(default_factory=list)
    fusion_us_per_pair: list[float] = field(default_factory=list)

    def add_fold(self, g: np.ndarray, i: np.ndarray, threshold: float) -> None:
        self.genuine.append(g)
        self.impostor.append(i)
        self.thresholds.append(float(threshold))
        self.far.append((int(np.sum(i >= threshold)), len(i)))
        self.frr.append((int(np.sum(g < threshold)), len(g)))

    def summary(self) -> dict:
        g, i = np.concatenate(self.genuine), np.concatenate(self.impostor)
        e = metrics.eer(g, i)
        fa, ni = (sum(x) for x in zip(*self.far, strict=True))
        fr, ng = (sum(x) for x in zip(*self.frr, strict=True))
        out = {"scheme": self.name, "kind": self.kind, "eer": e.eer, "eer_low": e.eer_low, "eer_high": e.eer_high,
               "far": fa / max(ni, 1), "frr": fr / max(ng, 1), "genuine_pairs": int(g.size),
               "impostor_pairs": int(i.size)}
        if self.weights:
            out["weights"] = self.weights
        if self.fusion_us_per_pair:
            out["fusion_us_per_pair"] = float(np.median(self.fusion_us_per_pair))
        return out


def evaluate_fusion(matchers: dict[str, Matcher], labels: Sequence[str], impressions: Sequence[str],
                    feature_level: dict[str, Matcher] | None = None, folds: int = 2,
                    methods: Sequence[str] = METHODS, rules: Sequence[str] = RULES) -> list[dict]:
    """Every single matcher, every feature-level scheme and every normalization x rule, cross-validated.

    Returns summaries (see ``SchemeResult.summary``), singles first.
    """
    names = list(matchers)
    results: dict[str, SchemeResult] = {}

    def get(name: str, kind: str) -> SchemeResult:
        return results.setdefault(name, SchemeResult(name, kind))

    for test_rows in identity_folds(labels, folds):
        fit_rows = np.setdiff1d(np.arange(len(labels)), test_rows)
        tg, ti = fold_test_pairs(labels, impressions, test_rows)
        vg, vi = validation_pairs(labels, fit_rows)
        if len(tg) == 0 or len(ti) == 0 or len(vg) == 0 or len(vi) == 0:
            raise ValueError("each fold needs at least two identities with two impressions each")
        val = {n: (matchers[n](fit_rows, vg), matchers[n](fit_rows, vi)) for n in names}
        test = {n: (matchers[n](fit_rows, tg), matchers[n](fit_rows, ti)) for n in names}
        for n in names:
            get(n, "single").add_fold(*test[n], metrics.eer(*val[n]).threshold)
        for n, fm in (feature_level or {}).items():
            g, i = fm(fit_rows, tg), fm(fit_rows, ti)
            get(n, "feature").add_fold(g, i, metrics.eer(fm(fit_rows, vg), fm(fit_rows, vi)).threshold)
        if len(names) < 2:
            continue
        for method in methods:
            norms: dict[str, Normalizer] = {n: fit_normalizer(method, *val[n]) for n in names}
            vgen = np.stack([norms[n](val[n][0]) for n in names], axis=1)
            vimp = np.stack([norms[n](val[n][1]) for n in names], axis=1)
            for rule in rules:
                weights = learn_weights(vgen, vimp) if rule == "weighted_sum" else None
                thr = metrics.eer(combine(vgen, rule, weights), combine(vimp, rule, weights)).threshold
                t0 = time.perf_counter()
                tgen = combine(np.stack([norms[n](test[n][0]) for n in names], axis=1), rule, weights)
                timp = combine(np.stack([norms[n](test[n][1]) for n in names], axis=1), rule, weights)
                us = (time.perf_counter() - t0) * 1e6 / (len(tgen) + len(timp))
                res = get(f"{rule}/{method}", "score")
                res.add_fold(tgen, timp, thr)
                res.fusion_us_per_pair.append(us)
                if weights is not None:
                    res.weights.append({n: round(float(w), 3) for n, w in zip(names, weights, strict=True)})
    return [r.summary() for r in results.values()]
