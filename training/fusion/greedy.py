"""The headline fused scheme: greedy forward matcher selection + weighted sum, chosen on validation scores only.

Why: a plain sum over ~9 matchers of very unequal strength (fingerprint DoG at 40-50 % EER next to vein Log-Gabor
at under 1 %) is often worse than its best member, and a scheme picked on other sets (or, worse, on test pairs)
says nothing about a new one. This scheme starts from the best single matcher *on validation* and only grows when
validation says so, so on validation it is never worse than that matcher; whether that carries to the test pairs
is what the report measures.

Procedure (per fold, per normalization; all inputs are normalized *validation* scores, shape (pairs, matchers)):
1. start from the matcher with the lowest validation EER (ties: larger d');
2. for every matcher not yet chosen, try fused = (1 - a) * current + a * candidate for a in 0.05, 0.10, ..., 0.95
   (a line search on the simplex: earlier weights are scaled by 1 - a, so the weights stay >= 0 and sum to 1);
   keep the (candidate, a) with the best key (validation EER, then larger d');
3. add it only if it *improves* the current fused score: validation EER lower by more than ``min_eer_gain``
   (default: one comparison of the smaller class, 1 / min(genuine, impostor) - less is noise), or EER not higher
   and d' larger by at least ``min_dprime_gain`` (5 %, relative; this decides when the validation EER is already
   0). Otherwise stop. A matcher that duplicates a chosen one or adds only noise does not pass either test;
4. the normalization (min-max, z-score, tanh) whose selection has the best key is the fold's scheme.
Weights are learned by this line search rather than logistic regression because it keeps the device's
``weighted_sum`` contract (weights >= 0, sum 1, any normalization) and optimizes the figure reported (EER), and
rather than the full simplex grid because the grid's cost grows with the number of matchers while the line
search costs 19 EERs per candidate and step. The decision threshold is the validation EER threshold of the
fused score. Nothing here sees a test pair.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from device.fusion import METHODS, Normalizer, combine, fit_normalizer
from training import metrics

ALPHAS = np.arange(1, 20) / 20.0
MIN_DPRIME_GAIN = 0.05


def d_prime(genuine: np.ndarray, impostor: np.ndarray) -> float:
    """(mean_g - mean_i) / sqrt((var_g + var_i) / 2); 0 when both are constant."""
    den = np.sqrt((np.var(genuine) + np.var(impostor)) / 2.0)
    return float((np.mean(genuine) - np.mean(impostor)) / den) if den > 0 else 0.0


def score_key(genuine: np.ndarray, impostor: np.ndarray) -> tuple[float, float]:
    """Sort key of a score set: (EER, -d'); smaller is better."""
    return metrics.eer(genuine, impostor).eer, -d_prime(genuine, impostor)


def improves(new: tuple[float, float], current: tuple[float, float], min_eer_gain: float,
             min_dprime_gain: float = MIN_DPRIME_GAIN) -> bool:
    """Whether key ``new`` is a real improvement over ``current`` (see the module docstring, step 3)."""
    (e_new, nd_new), (e_cur, nd_cur) = new, current
    if e_new < e_cur - min_eer_gain:
        return True
    d_new, d_cur = -nd_new, -nd_cur
    return e_new <= e_cur + 1e-12 and d_new > d_cur + min_dprime_gain * max(abs(d_cur), 1e-9)


@dataclass(frozen=True)
class Selection:
    """Chosen matcher indices (in the order added), their simplex weights, and the validation key per step."""

    chosen: tuple[int, ...]
    weights: tuple[float, ...]
    keys: tuple[tuple[float, float], ...]

    @property
    def key(self) -> tuple[float, float]:
        return self.keys[-1]

    def named(self, names: Sequence[str]) -> dict[str, float]:
        return {names[c]: round(float(w), 4) for c, w in zip(self.chosen, self.weights, strict=True)}


def best_single(gen: np.ndarray, imp: np.ndarray) -> int:
    """Column with the best validation key (lowest EER, then larger d'); ties by column order."""
    keys = [score_key(gen[:, k], imp[:, k]) for k in range(gen.shape[1])]
    return min(range(len(keys)), key=lambda k: (keys[k], k))


def greedy_forward(gen: np.ndarray, imp: np.ndarray, start: int | None = None, min_eer_gain: float | None = None,
                   min_dprime_gain: float = MIN_DPRIME_GAIN, alphas: Sequence[float] = ALPHAS) -> Selection:
    """Greedy forward selection with line-searched weights on normalized validation scores gen (n, m), imp (k, m)."""
    gen, imp = np.asarray(gen, dtype=np.float64), np.asarray(imp, dtype=np.float64)
    if gen.ndim != 2 or imp.ndim != 2 or gen.shape[1] != imp.shape[1] or min(len(gen), len(imp)) == 0:
        raise ValueError(f"need (pairs, matchers) arrays with the same matchers, got {gen.shape} and {imp.shape}")
    m = gen.shape[1]
    if min_eer_gain is None:
        min_eer_gain = 1.0 / min(len(gen), len(imp))
    first = best_single(gen, imp) if start is None else int(start)
    chosen, weights = [first], [1.0]
    cur_g, cur_i = gen[:, first], imp[:, first]
    keys = [score_key(cur_g, cur_i)]
    while len(chosen) < m:
        best = None  # (key, candidate, alpha)
        for c in range(m):
            if c in chosen:
                continue
            for a in alphas:
                key = score_key((1 - a) * cur_g + a * gen[:, c], (1 - a) * cur_i + a * imp[:, c])
                if best is None or key < best[0]:
                    best = (key, c, float(a))
        if best is None or not improves(best[0], keys[-1], min_eer_gain, min_dprime_gain):
            break
        key, c, a = best
        weights = [w * (1 - a) for w in weights] + [a]
        chosen.append(c)
        cur_g, cur_i = (1 - a) * cur_g + a * gen[:, c], (1 - a) * cur_i + a * imp[:, c]
        keys.append(key)
    return Selection(tuple(chosen), tuple(weights), tuple(keys))


@dataclass(frozen=True)
class FusionChoice:
    """One fold's headline scheme: normalization, normalizers, selection (over ``names``)."""

    method: str
    names: tuple[str, ...]
    normalizers: Mapping[str, Normalizer]
    selection: Selection

    def describe(self) -> dict:
        return {"normalization": self.method, "weights": self.selection.named(self.names),
                "validation_eer": self.selection.key[0], "validation_d_prime": -self.selection.key[1],
                "steps": [{"eer": e, "d_prime": -nd} for e, nd in self.selection.keys]}

    def __call__(self, raw: Mapping[str, np.ndarray]) -> np.ndarray:
        """Fused scores of raw per-matcher scores (only the chosen matchers are read)."""
        cols = [self.names[c] for c in self.selection.chosen]
        x = np.stack([np.asarray(self.normalizers[n](raw[n]), dtype=np.float64) for n in cols], axis=1)
        return combine(x, "weighted_sum", self.selection.weights)


def choose_fusion(val: Mapping[str, tuple[np.ndarray, np.ndarray]], methods: Sequence[str] = METHODS,
                  min_eer_gain: float | None = None) -> FusionChoice:
    """The headline scheme for one fold from raw validation scores {matcher: (genuine, impostor)}."""
    names = tuple(val)
    raw_g = np.stack([val[n][0] for n in names], axis=1)
    raw_i = np.stack([val[n][1] for n in names], axis=1)
    start = best_single(raw_g, raw_i)
    best: FusionChoice | None = None
    for method in methods:
        norms = {n: fit_normalizer(method, *val[n]) for n in names}
        g = np.stack([np.asarray(norms[n](val[n][0])) for n in names], axis=1)
        i = np.stack([np.asarray(norms[n](val[n][1])) for n in names], axis=1)
        sel = greedy_forward(g, i, start=start, min_eer_gain=min_eer_gain)
        if best is None or sel.key < best.selection.key:
            best = FusionChoice(method, names, norms, sel)
    assert best is not None  # methods is never empty
    return best
