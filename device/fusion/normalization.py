"""Score normalization learned on validation scores: min-max, z-score and tanh-estimators.

Each matcher speaks its own scale (cosine, Miura correlation, SVM margin); fusion first maps them onto a common
one. Parameters are fitted on *validation* scores (never on the test pairs) and stored in the fusion card:

- ``minmax``: (s - lo) / (hi - lo), lo/hi = min/max of all validation scores. Not robust to outliers.
- ``zscore``: (s - mu) / sigma, mean/std of all validation scores.
- ``tanh``: 0.5 * (tanh(spread * (s - mu) / sigma) + 1) with mu, sigma from Hampel's M-estimator of the
  *genuine* validation scores (Jain, Nandakumar & Ross 2005; spread 0.01 as there). Robust and bounded in (0, 1).

Hampel's estimator: redescending influence psi(u) = u (|u| < a), a*sign(u) (a <= |u| < b),
a*sign(u)*(c - |u|)/(c - b) (b <= |u| < c), 0 beyond; a, b, c = the 70th/85th/95th percentiles of |u| with
u = (s - median) / (1.4826 * MAD); location by iteratively reweighted means (weights psi(u)/u).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np

METHODS = ("minmax", "zscore", "tanh")
REQUIRED_PARAMS = {"minmax": ("lo", "hi"), "zscore": ("mu", "sigma"), "tanh": ("mu", "sigma", "spread")}


@dataclass(frozen=True)
class Normalizer:
    """A fitted normalization: ``method`` and its parameters (all finite, scales > 0)."""

    method: str
    params: Mapping[str, float] = field(default_factory=dict)

    def __call__(self, score: float | np.ndarray) -> float | np.ndarray:
        s = np.asarray(score, dtype=np.float64)
        p = self.params
        if self.method == "minmax":
            out = (s - p["lo"]) / (p["hi"] - p["lo"])
        elif self.method == "zscore":
            out = (s - p["mu"]) / p["sigma"]
        elif self.method == "tanh":
            out = 0.5 * (np.tanh(p["spread"] * (s - p["mu"]) / p["sigma"]) + 1.0)
        else:  # validated at construction by check_normalizer; kept for safety
            raise ValueError(f"unknown normalization {self.method!r}")
        return float(out) if np.ndim(out) == 0 else out

    def to_dict(self) -> dict:
        return {"method": self.method, "params": {k: float(v) for k, v in self.params.items()}}


def check_normalizer(method: str, params: Mapping[str, object]) -> str | None:
    """Why ``method``/``params`` are unusable, or None when they are fine (used by the card loader)."""
    if method not in METHODS:
        return f"unknown normalization {method!r} (known: {', '.join(METHODS)})"
    need = REQUIRED_PARAMS[method]
    missing = [k for k in need if k not in params]
    if missing:
        return f"normalization {method} needs {', '.join(need)}; missing {', '.join(missing)}"
    extra = sorted(set(params) - set(need))
    if extra:
        return f"normalization {method} has unknown parameters {', '.join(extra)}"
    values = {}
    for k in need:
        v = params[k]
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(float(v)):
            return f"normalization parameter {k}={v!r} is not a finite number"
        values[k] = float(v)
    if method == "minmax" and not values["hi"] > values["lo"]:
        return f"minmax needs hi > lo, got lo={values['lo']} hi={values['hi']}"
    if method in ("zscore", "tanh") and not values["sigma"] > 0:
        return f"{method} needs sigma > 0, got {values['sigma']}"
    if method == "tanh" and not values["spread"] > 0:
        return f"tanh needs spread > 0, got {values['spread']}"
    return None


def hampel_location_scale(scores: np.ndarray, iterations: int = 20) -> tuple[float, float]:
    """Hampel M-estimates (location, scale) of ``scores``; falls back to mean/std for degenerate input."""
    s = np.asarray(scores, dtype=np.float64)
    s = s[np.isfinite(s)]
    if s.size == 0:
        raise ValueError("no finite scores to fit")
    mu = float(np.median(s))
    mad = 1.4826 * float(np.median(np.abs(s - mu)))
    if mad <= 0:
        std = float(s.std())
        return mu, std if std > 0 else 1e-6
    u = np.abs(s - mu) / mad
    a, b, c = (float(np.percentile(u, q)) for q in (70, 85, 95))
    b, c = max(b, a + 1e-9), max(c, b + 2e-9)
    w = np.ones_like(s)
    for _ in range(iterations):
        u = (s - mu) / mad
        au = np.abs(u)
        psi = np.where(au < a, au, np.where(au < b, a, np.where(au < c, a * (c - au) / (c - b), 0.0)))
        w = np.where(au > 1e-12, psi / np.maximum(au, 1e-12), 1.0)
        if w.sum() <= 0:
            break
        new_mu = float(np.sum(w * s) / np.sum(w))
        if abs(new_mu - mu) < 1e-12 * max(1.0, abs(mu)):
            mu = new_mu
            break
        mu = new_mu
    sigma = math.sqrt(float(np.sum(w * (s - mu) ** 2) / max(np.sum(w), 1e-12)))
    return mu, sigma if sigma > 0 else max(mad, 1e-6)


def fit_normalizer(method: str, genuine: np.ndarray, impostor: np.ndarray, spread: float = 0.01) -> Normalizer:
    """Fit ``method`` on validation genuine/impostor scores of one matcher."""
    g = np.asarray(genuine, dtype=np.float64)
    i = np.asarray(impostor, dtype=np.float64)
    both = np.concatenate([g, i])
    both = both[np.isfinite(both)]
    if both.size < 2:
        raise ValueError("need at least two finite validation scores to fit a normalization")
    if method == "minmax":
        lo, hi = float(both.min()), float(both.max())
        params = {"lo": lo, "hi": hi if hi > lo else lo + 1e-6}
    elif method == "zscore":
        sigma = float(both.std())
        params = {"mu": float(both.mean()), "sigma": sigma if sigma > 0 else 1e-6}
    elif method == "tanh":
        mu, sigma = hampel_location_scale(g if np.isfinite(g).sum() >= 2 else both)
        params = {"mu": mu, "sigma": sigma, "spread": float(spread)}
    else:
        raise ValueError(f"unknown normalization {method!r} (known: {', '.join(METHODS)})")
    return Normalizer(method, params)
