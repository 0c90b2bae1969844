"""The int8-vs-float export gate, sized by the validation set.

Why not a fixed 0.5 point: on 15 validation fingers (280 genuine / 105 impostor pairs) one pair moves the EER by
about a point, so a fixed 0.5-point gate refuses models whose int8 and float embeddings agree to cosine 0.9999 on
statistical noise alone. The gate here is the larger of 0.5 points and the half-width of a 95 % paired bootstrap
interval of the EER difference (the same resampled genuine and impostor pairs score both models, so their shared
noise cancels and only quantization's effect remains). With thousands of pairs the interval is narrow and the
0.5-point floor rules; with a handful it widens honestly. ``--max-eer-delta`` replaces the rule with a fixed
number, and the card records which rule passed the model and its numbers (``metrics.export_gate``).
"""

from __future__ import annotations

import numpy as np

FLOOR = 0.005  # 0.5 percentage points: the gate is never tighter than the historical rule
REPLICATES = 400


def paired_eer_interval(float_g: np.ndarray, float_i: np.ndarray, int8_g: np.ndarray, int8_i: np.ndarray,
                        replicates: int = REPLICATES, seed: int = 0) -> dict:
    """Observed int8 - float EER difference and its 95 % paired bootstrap interval (pairs resampled)."""
    from training.metrics import eer

    rng = np.random.default_rng(seed)
    observed = eer(int8_g, int8_i).eer - eer(float_g, float_i).eer
    diffs = np.empty(replicates)
    for r in range(replicates):
        g = rng.integers(0, float_g.size, float_g.size)
        i = rng.integers(0, float_i.size, float_i.size)
        diffs[r] = eer(int8_g[g], int8_i[i]).eer - eer(float_g[g], float_i[i]).eer
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    return {"delta": float(observed), "ci95": [float(lo), float(hi)], "half_width": float((hi - lo) / 2),
            "replicates": replicates, "genuine_pairs": int(float_g.size), "impostor_pairs": int(float_i.size)}


def decide(interval: dict, max_eer_delta: float | None) -> dict:
    """The gate's verdict: ``{"rule", "allowed", "passed", ...interval}``; ``max_eer_delta`` overrides the rule."""
    if max_eer_delta is not None:
        allowed, rule = float(max_eer_delta), "override (--max-eer-delta)"
    else:
        allowed, rule = max(FLOOR, interval["half_width"]), "max(0.5 points, 95 % bootstrap half-width)"
    return {**interval, "rule": rule, "allowed": allowed, "passed": abs(interval["delta"]) <= allowed}


def describe(gate: dict) -> str:
    """One line for the log and for the error message."""
    lo, hi = gate["ci95"]
    return (f"int8 - float validation EER {gate['delta'] * 100:+.2f} points (95 % interval {lo * 100:+.2f} to "
            f"{hi * 100:+.2f}, {gate['genuine_pairs']:,} genuine / {gate['impostor_pairs']:,} impostor pairs); "
            f"allowed {gate['allowed'] * 100:.2f} points by {gate['rule']}")
