"""Score-level and feature-level fusion, evaluated with identity-disjoint cross-validation.

Protocol: identities are split into ``folds`` (2) by sorted index. For each fold, the *other* identities are the
validation data: per-dimension z-scores, the entropy selection, score normalizations, fusion weights and the
decision threshold are all learned there. The fold's own identities are scored with the FVC protocol (genuine =
all pairs of one identity's impressions, impostor = first impression vs first impression of every other identity
*within the fold*), and the test scores of all folds are pooled. So every row of a table uses exactly the same test
pairs (counts are printed with each table). Validation uses all cross-identity pairs (up to
``MAX_VALIDATION_IMPOSTORS``, sampled with a fixed seed) so the learned normalizations and thresholds see more
impostors than the test does. Each test fold is also scored against *every* cross-identity pair of the fold
(``impostor_all``, same genuine pairs): far more impostors than FVC's first-vs-first (an FVC DB_B fold of 5 fingers
x 8: 640 impostor pairs instead of 10), reported beside the FVC figure.

The headline fused scheme (kind ``greedy``) is chosen per fold on validation scores only: greedy forward matcher
selection + line-searched weighted sum, normalization picked by validation too (training/fusion/greedy.py). Its
baseline (kind ``val-single``) is the single matcher that is best on the same validation scores.

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
from training.fusion.greedy import choose_fusion, d_prime
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
    """Pooled test scores of one scheme plus what was learned per fold.

    ``impostor`` holds the FVC impostor pairs (the headline protocol); ``impostor_all`` every cross-identity pair
    of the fold (the same genuine pairs), so the EER is less coarse where FVC leaves only a few impostors.
    """

    name: str
    kind: str  # "single", "feature", "score", "greedy" (headline fused), "val-single" (best single on validation)
    genuine: list[np.ndarray] = field(default_factory=list)
    impostor: list[np.ndarray] = field(default_factory=list)
    impostor_all: list[np.ndarray] = field(default_factory=list)
    thresholds: list[float] = field(default_factory=list)
    weights: list[dict[str, float]] = field(default_factory=list)
    choices: list[dict] = field(default_factory=list)  # per fold: what validation chose
    far: list[tuple[int, int]] = field(default_factory=list)  # (false accepts, impostor pairs) per fold
    frr: list[tuple[int, int]] = field(default_factory=list)
    fusion_us_per_pair: list[float] = field(default_factory=list)

    def add_fold(self, g: np.ndarray, i: np.ndarray, threshold: float, i_all: np.ndarray | None = None) -> None:
        self.genuine.append(g)
        self.impostor.append(i)
        if i_all is not None:
            self.impostor_all.append(i_all)
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
        if self.impostor_all and len(self.impostor_all) == len(self.genuine):
            ia = np.concatenate(self.impostor_all)
            out["eer_all"] = metrics.eer(g, ia).eer
            out["impostor_pairs_all"] = int(ia.size)
            out["far_all"] = sum(int(np.sum(x >= t)) for x, t in zip(self.impostor_all, self.thresholds,
                                                                     strict=True)) / max(int(ia.size), 1)
        if self.weights:
            out["weights"] = self.weights
        if self.choices:
            out["choices"] = self.choices
        if self.fusion_us_per_pair:
            out["fusion_us_per_pair"] = float(np.median(self.fusion_us_per_pair))
        return out


def fold_all_impostors(labels: Sequence[str], rows: np.ndarray) -> Pairs:
    """Every cross-identity pair among ``rows`` (global indices, each unordered pair once, lower row first)."""
    rows = np.sort(np.asarray(rows))
    lab = np.asarray(labels)[rows]
    a, b = np.triu_indices(len(rows), k=1)
    keep = lab[a] != lab[b]
    return np.stack([rows[a[keep]], rows[b[keep]]], axis=1).astype(int).reshape(-1, 2)


def _score_sets(matcher: Matcher, fit_rows: np.ndarray, *pair_sets: Pairs) -> list[np.ndarray]:
    """Score several pair sets with one call (a feature-level matcher refits per call)."""
    joined = np.concatenate([p.reshape(-1, 2) for p in pair_sets], axis=0)
    scores = matcher(fit_rows, joined)
    return np.split(scores, np.cumsum([len(p) for p in pair_sets])[:-1])


def _validation_z(val: tuple[np.ndarray, np.ndarray], test: Sequence[np.ndarray]) -> tuple[list[np.ndarray], float]:
    """Test scores and the validation EER threshold, z-scored with the validation scores' mean and std.

    Schemes chosen per fold (a different matcher or normalization in each fold) live on different scales; this
    affine map leaves each fold's EER unchanged and puts the folds on one scale before their scores are pooled.
    The headline scheme and its baseline (best single on validation) both go through it, so in a fold where the
    greedy selection keeps only its starting matcher the two have identical test scores; the pooled EER of the
    baseline can differ a little from that matcher's own row (raw cosine scores pooled).
    """
    both = np.concatenate(val)
    mu, sd = float(both.mean()), float(both.std()) or 1.0
    return [(t - mu) / sd for t in test], (metrics.eer(*val).threshold - mu) / sd


def evaluate_fusion(matchers: dict[str, Matcher], labels: Sequence[str], impressions: Sequence[str],
                    feature_level: dict[str, Matcher] | None = None, folds: int = 2,
                    methods: Sequence[str] = METHODS, rules: Sequence[str] = RULES) -> list[dict]:
    """Every single matcher, every feature-level scheme, every normalization x rule, and the headline scheme
    (greedy selection + weighted sum chosen on validation, kind "greedy") with its baseline, the best single
    matcher on validation (kind "val-single"), cross-validated.

    Returns summaries (see ``SchemeResult.summary``), singles first.
    """
    names = list(matchers)
    results: dict[str, SchemeResult] = {}

    def get(name: str, kind: str) -> SchemeResult:
        return results.setdefault(name, SchemeResult(name, kind))

    for test_rows in identity_folds(labels, folds):
        fit_rows = np.setdiff1d(np.arange(len(labels)), test_rows)
        tg, ti = fold_test_pairs(labels, impressions, test_rows)
        ta = fold_all_impostors(labels, test_rows)
        vg, vi = validation_pairs(labels, fit_rows)
        if len(tg) == 0 or len(ti) == 0 or len(vg) == 0 or len(vi) == 0:
            raise ValueError("each fold needs at least two identities with two impressions each")
        val, test = {}, {}
        for n in names:
            a, b, c, d, e = _score_sets(matchers[n], fit_rows, vg, vi, tg, ti, ta)
            val[n], test[n] = (a, b), (c, d, e)
        for n in names:
            get(n, "single").add_fold(test[n][0], test[n][1], metrics.eer(*val[n]).threshold, test[n][2])
        for n, fm in (feature_level or {}).items():
            a, b, c, d, e = _score_sets(fm, fit_rows, vg, vi, tg, ti, ta)
            get(n, "feature").add_fold(c, d, metrics.eer(a, b).threshold, e)
        choice = choose_fusion(val, methods)
        single = choice.names[choice.selection.chosen[0]]
        z, thr = _validation_z(val[single], test[single])
        vs = get("best single on validation", "val-single")
        vs.add_fold(z[0], z[1], thr, z[2])
        vs.choices.append({"matcher": single})
        fused_val = (choice({n: v[0] for n, v in val.items()}), choice({n: v[1] for n, v in val.items()}))
        z, thr = _validation_z(fused_val, [choice({n: t[k] for n, t in test.items()}) for k in range(3)])
        res = get("greedy weighted sum", "greedy")
        res.add_fold(z[0], z[1], thr, z[2])
        res.choices.append(choice.describe())
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
                fused = [combine(np.stack([norms[n](test[n][k]) for n in names], axis=1), rule, weights)
                         for k in range(3)]
                us = (time.perf_counter() - t0) * 1e6 / sum(len(f) for f in fused)
                res = get(f"{rule}/{method}", "score")
                res.add_fold(*fused[:2], thr, fused[2])
                res.fusion_us_per_pair.append(us)
                if weights is not None:
                    res.weights.append({n: round(float(w), 3) for n, w in zip(names, weights, strict=True)})
    return [r.summary() for r in results.values()]
