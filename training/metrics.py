"""Biometric verification metrics as pure numpy functions (ISO/IEC 19795-1 terms, per comparison).

Scores are similarities: higher means more alike. Tie rule, used everywhere here: a comparison is a *match*
when ``score >= threshold``. So FMR(t) = share of impostor scores >= t and FNMR(t) = share of genuine scores < t.

EER is interpolated the FVC way (Maio et al., FVC2000): with t1 the largest threshold where FNMR <= FMR and t2 the
smallest where FNMR >= FMR, the EER lies in [EER_low, EER_high] taken at whichever of t1, t2 has the smaller
FMR + FNMR, and the reported EER is the midpoint. Thresholds are the observed scores (plus +inf), so no
interpolation between scores is invented.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EerResult:
    eer: float
    threshold: float
    eer_low: float
    eer_high: float


def _as_scores(scores: np.ndarray | list[float], name: str) -> np.ndarray:
    arr = np.asarray(scores, dtype=np.float64).ravel()
    if arr.size == 0:
        raise ValueError(f"{name} scores are empty")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} scores contain NaN or infinity")
    return arr


def rates_at(genuine, impostor, thresholds) -> tuple[np.ndarray, np.ndarray]:
    """FMR and FNMR at each threshold (match when score >= threshold)."""
    g = np.sort(_as_scores(genuine, "genuine"))
    i = np.sort(_as_scores(impostor, "impostor"))
    t = np.asarray(thresholds, dtype=np.float64)
    fmr = 1.0 - np.searchsorted(i, t, side="left") / i.size
    fnmr = np.searchsorted(g, t, side="left") / g.size
    return fmr, fnmr


def _candidate_thresholds(genuine: np.ndarray, impostor: np.ndarray) -> np.ndarray:
    return np.append(np.unique(np.concatenate([genuine, impostor])), np.inf)


def eer(genuine, impostor) -> EerResult:
    """Equal error rate, FVC interpolation (see module docstring)."""
    g = _as_scores(genuine, "genuine")
    i = _as_scores(impostor, "impostor")
    t = _candidate_thresholds(g, i)
    fmr, fnmr = rates_at(g, i, t)
    below = np.nonzero(fnmr <= fmr)[0]
    above = np.nonzero(fnmr >= fmr)[0]
    k1 = below[-1]  # t[0] (lowest score) always has FNMR 0 <= FMR
    k2 = above[0]  # t[-1] (+inf) always has FMR 0 <= FNMR
    if fnmr[k1] + fmr[k1] <= fnmr[k2] + fmr[k2]:
        low, high, thr = fnmr[k1], fmr[k1], t[k1]
    else:
        low, high, thr = fmr[k2], fnmr[k2], t[k2]
    return EerResult(eer=float((low + high) / 2), threshold=float(thr), eer_low=float(low), eer_high=float(high))


def threshold_at_fmr(impostor, fmr: float) -> float:
    """The lowest threshold whose FMR does not exceed ``fmr`` (ties at the threshold count as matches)."""
    if not 0.0 <= fmr <= 1.0:
        raise ValueError(f"fmr must be within [0, 1], got {fmr}")
    i = np.sort(_as_scores(impostor, "impostor"))[::-1]
    allowed = int(np.floor(fmr * i.size + 1e-9))  # impostor matches we may accept
    if allowed >= i.size:
        return float(-np.inf)
    # Accept only scores strictly above the (allowed+1)-th highest impostor score.
    return float(np.nextafter(i[allowed], np.inf))


def fnmr_at_fmr(genuine, impostor, fmr: float) -> float:
    """FNMR at the operating point with FMR <= ``fmr`` (FMR100: fmr=0.01, FMR1000: fmr=0.001)."""
    thr = threshold_at_fmr(impostor, fmr)
    g = _as_scores(genuine, "genuine")
    return float(np.mean(g < thr))


def zero_fmr(genuine, impostor) -> float:
    """Lowest FNMR at which no impostor is accepted."""
    return fnmr_at_fmr(genuine, impostor, 0.0)


def roc_curve(genuine, impostor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(FMR, TMR = 1 - FNMR, thresholds), thresholds descending so FMR rises from 0."""
    g = _as_scores(genuine, "genuine")
    i = _as_scores(impostor, "impostor")
    t = _candidate_thresholds(g, i)[::-1]
    fmr, fnmr = rates_at(g, i, t)
    return fmr, 1.0 - fnmr, t


def det_curve(genuine, impostor) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(FMR, FNMR, thresholds) for a DET plot."""
    fmr, tmr, t = roc_curve(genuine, impostor)
    return fmr, 1.0 - tmr, t


def roc_auc(genuine, impostor) -> float:
    """Area under the ROC: P(genuine > impostor) + P(tie) / 2 (Mann-Whitney with mid-ranks)."""
    g = _as_scores(genuine, "genuine")
    i = _as_scores(impostor, "impostor")
    both = np.concatenate([g, i])
    order = np.argsort(both, kind="mergesort")
    ranks = np.empty(both.size, dtype=np.float64)
    sorted_vals = both[order]
    # mid-ranks for ties
    _, first, counts = np.unique(sorted_vals, return_index=True, return_counts=True)
    mid = first + (counts + 1) / 2.0
    ranks[order] = np.repeat(mid, counts)
    rank_sum = ranks[: g.size].sum()
    return float((rank_sum - g.size * (g.size + 1) / 2.0) / (g.size * i.size))


def rank1_accuracy(scores: np.ndarray, probe_labels, gallery_labels) -> float:
    """Share of probes whose best-scoring gallery entry has the probe's label (closed-set identification)."""
    s = np.asarray(scores, dtype=np.float64)
    if s.ndim != 2 or s.shape != (len(probe_labels), len(gallery_labels)):
        raise ValueError(f"scores must be (probes, gallery) = ({len(probe_labels)}, {len(gallery_labels)})")
    best = np.argmax(s, axis=1)
    gallery = np.asarray(gallery_labels)
    return float(np.mean(gallery[best] == np.asarray(probe_labels)))
