"""Setting thresholds that a count of impostors can support, and measuring given thresholds: pure numpy.

``fit_levels`` picks, per security level, the lowest threshold that (a) keeps the measured FMR at or below the
claim on *every* set on its own (``training.metrics.threshold_at_fmr``: a small set then puts the threshold
above all of its impostors), and (b) keeps the 95 % upper bound of the FMR over all sets pooled at or below the
claim when the pooled count can show it at all (with N impostors that needs N >= ~3/claim). A level whose pooled
bound cannot reach the claim is kept at (a) and marked unsupported. Thresholds never fall as levels get
stricter. ``measure`` fills the calibration block for thresholds chosen elsewhere. Held-out sets are scored
at the fitted thresholds and never move them; one that breaks a claim withdraws that level's support
(``device.calibration.fields.held_out_verdict``).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from device.calibration.bounds import clopper_pearson_upper, max_false_matches
from device.calibration.fields import CLAIMS, LEVEL_KEYS, Calibration, LevelCalibration, held_out_verdict

ScoreSets = Mapping[str, tuple[np.ndarray, np.ndarray]]  # set name -> (genuine scores, impostor scores)


def _threshold_at_fmr(impostor: np.ndarray, claim: float) -> float:
    from training.metrics import threshold_at_fmr

    return threshold_at_fmr(impostor, claim)


def pooled_threshold(impostor: np.ndarray, claim: float) -> float | None:
    """The lowest threshold whose false matches among ``impostor`` keep the 95 % bound <= claim; None if none can."""
    imp = np.sort(np.asarray(impostor, dtype=np.float64))[::-1]
    k = max_false_matches(int(imp.size), claim)
    if k < 0:
        return None
    if k >= imp.size:
        return float(-np.inf)
    return float(np.nextafter(imp[k], np.inf))  # accept only the k highest impostor scores


def fit_levels(sets: ScoreSets, ceiling: float | None = None) -> dict[str, float]:
    """Thresholds keyed 1e-3 / 1e-4 / 2e-5 (see the module docstring); ``ceiling`` caps them (1.0 for cosines)."""
    if not sets:
        raise ValueError("no score sets to calibrate on")
    pooled = np.concatenate([np.asarray(i, dtype=np.float64) for _, i in sets.values()])
    out: dict[str, float] = {}
    floor = -np.inf
    for key in LEVEL_KEYS.values():
        claim = CLAIMS[key]
        t = max(_threshold_at_fmr(np.asarray(i, dtype=np.float64), claim) for _, i in sets.values())
        tp = pooled_threshold(pooled, claim)
        t = max(t, tp if tp is not None else -np.inf, floor)
        if ceiling is not None:
            t = min(t, ceiling)
        out[key] = floor = float(t)
    return out


def _rates(genuine: np.ndarray, impostor: np.ndarray, t: float) -> tuple[int, int, int, float]:
    fm = int(np.count_nonzero(impostor >= t))
    fnmr = float(np.mean(genuine < t)) if genuine.size else 1.0
    return fm, int(impostor.size), int(genuine.size), fnmr


def _held_out(held_out: ScoreSets, t: float, claim: float) -> dict[str, dict]:
    out = {}
    for name, (gs, im) in held_out.items():
        fm, n, g, fnmr = _rates(np.asarray(gs, dtype=np.float64), np.asarray(im, dtype=np.float64), t)
        if n == 0:
            raise ValueError(f"held-out set {name} has no impostor pairs")
        out[name] = {"impostor_pairs": n, "genuine_pairs": g, "false_matches": fm, "fmr": fm / n,
                     "fnmr": fnmr if g else None, "fmr_upper95": clopper_pearson_upper(fm, n),
                     "verdict": held_out_verdict(fm, n, claim)}
    return out


def measure(sets: ScoreSets, thresholds: Mapping[str, float], method: str = "",
            held_out: ScoreSets | None = None) -> Calibration:
    """The calibration block of ``thresholds`` on ``sets``: pooled counts per level plus per-set rates, and the
    verdict of each ``held_out`` set (scored, never fitted on)."""
    held_out = held_out or {}
    if set(held_out) & set(sets):
        raise ValueError(f"sets both fitted on and held out: {sorted(set(held_out) & set(sets))}")
    g_all = np.concatenate([np.asarray(g, dtype=np.float64) for g, _ in sets.values()])
    i_all = np.concatenate([np.asarray(i, dtype=np.float64) for _, i in sets.values()])
    levels: dict[str, LevelCalibration] = {}
    per_set: dict[str, dict] = {name: {} for name in sets}
    for level, key in LEVEL_KEYS.items():
        t = float(thresholds[key])
        fm, n, g, fnmr = _rates(g_all, i_all, t)
        upper = clopper_pearson_upper(fm, n)
        held = _held_out(held_out, t, CLAIMS[key])
        refuted = any(r["verdict"] == "refutes" for r in held.values())
        levels[level] = LevelCalibration(key, CLAIMS[key], t, tuple(sets), n, g, fm, fm / n, fnmr, upper,
                                         upper <= CLAIMS[key] and not refuted, held)
        for name, (gs, im) in sets.items():
            sfm, sn, sg, sfnmr = _rates(np.asarray(gs, dtype=np.float64), np.asarray(im, dtype=np.float64), t)
            per_set[name][level] = {"impostor_pairs": sn, "genuine_pairs": sg, "false_matches": sfm,
                                    "fmr": sfm / sn if sn else None, "fnmr": sfnmr if sg else None,
                                    "fmr_upper95": clopper_pearson_upper(sfm, sn) if sn else None}
    return Calibration(levels, method, per_set)


def calibrate(sets: ScoreSets, method: str, ceiling: float | None = None,
              held_out: ScoreSets | None = None) -> tuple[dict[str, float], Calibration]:
    """Fit the thresholds on ``sets`` and measure them there and on ``held_out``: what a card builder writes."""
    thresholds = fit_levels(sets, ceiling)
    return thresholds, measure(sets, thresholds, method, held_out)
