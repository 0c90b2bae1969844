"""The one-sided 95 % Clopper-Pearson upper bound of a false-match rate, in pure Python (no SciPy on the board).

Why a bound and not the measured rate: "0 false matches among 5,000 impostor pairs" does not show an FMR of
1/10,000; it only shows the FMR is below about 3/5,000 with 95 % confidence. A security level is *supported* on a
set of impostor pairs only when this upper bound is at or below the level's claim.

The exact bound is the p with P(X <= k | n, p) = alpha for X ~ Binomial(n, p), i.e. the (1 - alpha) quantile of
Beta(k + 1, n - k). It is found by bisection on the regularized incomplete beta function (continued fraction,
Numerical Recipes 6.4), accurate to ~1e-12 relative for the counts that occur here (n up to tens of millions).
"""

from __future__ import annotations

import math

CONFIDENCE = 0.95


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 100_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 <= x <= 1."""
    if x <= 0.0:
        return 0.0
    if x >= 1.0:
        return 1.0
    ln_front = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1.0) / (a + b + 2.0):
        return math.exp(ln_front) * _betacf(a, b, x) / a
    return 1.0 - math.exp(ln_front) * _betacf(b, a, 1.0 - x) / b


def binomial_cdf(k: int, n: int, p: float) -> float:
    """P(X <= k) for X ~ Binomial(n, p): I_{1-p}(n - k, k + 1)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return betainc(n - k, k + 1, 1.0 - p)


def clopper_pearson_upper(k: int, n: int, confidence: float = CONFIDENCE) -> float:
    """One-sided upper confidence bound of a rate with ``k`` events among ``n`` trials (k = 0: 1 - alpha^(1/n)).

    ``ValueError`` for impossible counts; n = 0 gives 1.0 (nothing was measured, nothing is shown).
    """
    if isinstance(k, bool) or isinstance(n, bool) or int(k) != k or int(n) != n:
        raise ValueError(f"counts must be integers, got k={k!r}, n={n!r}")
    k, n = int(k), int(n)
    if n < 0 or k < 0 or k > n:
        raise ValueError(f"need 0 <= k <= n, got k={k}, n={n}")
    if not 0.0 < confidence < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    alpha = 1.0 - confidence
    if n == 0 or k == n:
        return 1.0
    if k == 0:
        return -math.expm1(math.log(alpha) / n)
    lo, hi = k / n, 1.0
    for _ in range(200):  # bisection: binomial_cdf(k, n, p) falls as p rises
        mid = (lo + hi) / 2.0
        if binomial_cdf(k, n, mid) > alpha:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-15 * max(hi, 1e-300):
            break
    return hi


def max_false_matches(n: int, claim: float, confidence: float = CONFIDENCE) -> int:
    """The most false matches among ``n`` impostor pairs whose upper bound still reaches ``claim``; -1 if none.

    Used to set a threshold that a count of impostors can support: accept at most this many of them.
    """
    if n <= 0 or clopper_pearson_upper(0, n, confidence) > claim:
        return -1
    lo, hi = 0, max(1, int(claim * n) + 1)  # the bound is above k/n, so k < claim * n
    while lo < hi:  # largest k with bound <= claim
        mid = (lo + hi + 1) // 2
        if clopper_pearson_upper(mid, n, confidence) <= claim:
            lo = mid
        else:
            hi = mid - 1
    return lo
