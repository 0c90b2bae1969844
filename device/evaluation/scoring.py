"""What an evaluation reports for one set, from its genuine and impostor scores: pure numpy, tested on known sets.

EER two ways: the FVC rule (``training.metrics.eer``: midpoint of [EER_low, EER_high] at observed scores) and by
linear interpolation where the FMR and FNMR curves cross between two observed thresholds. FNMR at FMR 1 % and
0.1 % (the latter only with >= 1,000 impostors: below that one false match is already 0.1 %), ZeroFMR, and per
security level the FNMR and measured FMR at the card's threshold with the 95 % upper bound of that FMR.
Match rule everywhere: ``score >= threshold``.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from device.calibration.bounds import clopper_pearson_upper
from training import metrics
from training.protocol import MIN_IMPOSTORS_FOR_FMR1000

LEVELS = {"convenient": ("1e-3", 1e-3), "balanced": ("1e-4", 1e-4), "secure": ("2e-5", 2e-5)}


def eer_linear(genuine, impostor) -> float:
    """EER where FMR(t) and FNMR(t) cross, linearly interpolated between the two observed thresholds around it."""
    g = np.asarray(genuine, dtype=np.float64)
    i = np.asarray(impostor, dtype=np.float64)
    t = np.append(np.unique(np.concatenate([g, i])), np.inf)
    fmr, fnmr = metrics.rates_at(g, i, t)
    d = fmr - fnmr  # falls from >= 0 (lowest threshold: FNMR 0) to <= 0 (+inf: FMR 0)
    k = int(np.nonzero(d <= 0)[0][0])
    if d[k] == 0 or k == 0:
        return float(fmr[k])
    w = d[k - 1] / (d[k - 1] - d[k])  # d[k-1] > 0 > d[k]
    return float(fmr[k - 1] + w * (fmr[k] - fmr[k - 1]))


def level_rates(genuine, impostor, threshold: float, claim: float) -> dict:
    """Measured FMR and FNMR at one threshold, the false-match count and its 95 % upper bound."""
    g = np.asarray(genuine, dtype=np.float64)
    i = np.asarray(impostor, dtype=np.float64)
    fm = int(np.count_nonzero(i >= threshold))
    bound = clopper_pearson_upper(fm, int(i.size))
    return {"threshold": float(threshold), "claim": claim, "fmr": fm / i.size if i.size else None,
            "false_matches": fm, "fmr_upper95": bound, "bound_reaches_claim": bool(bound <= claim),
            "fnmr": float(np.mean(g < threshold)) if g.size else None,
            "impostor_pairs": int(i.size), "genuine_pairs": int(g.size)}


def summarize_scores(genuine, impostor, thresholds: Mapping[str, float] | None = None) -> dict:
    """Everything ``biolock eval`` reports for one set and one protocol (``thresholds`` keyed 1e-3/1e-4/2e-5)."""
    g = np.asarray(genuine, dtype=np.float64)
    i = np.asarray(impostor, dtype=np.float64)
    out: dict = {"genuine_pairs": int(g.size), "impostor_pairs": int(i.size)}
    if g.size == 0 or i.size == 0:
        out["note"] = "no genuine or no impostor pairs: nothing to measure"
        return out
    e = metrics.eer(g, i)
    out.update({
        "eer_fvc": e.eer, "eer_fvc_low": e.eer_low, "eer_fvc_high": e.eer_high, "eer_linear": eer_linear(g, i),
        "fnmr_at_fmr_1e-2": metrics.fnmr_at_fmr(g, i, 0.01),
        "fnmr_at_fmr_1e-3": metrics.fnmr_at_fmr(g, i, 0.001) if i.size >= MIN_IMPOSTORS_FOR_FMR1000 else None,
        "zero_fmr": metrics.zero_fmr(g, i),
    })
    if thresholds:
        out["levels"] = {level: level_rates(g, i, float(thresholds[key]), claim)
                         for level, (key, claim) in LEVELS.items() if key in thresholds}
    return out
