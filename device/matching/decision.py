"""Decision thresholds: a security level names a false-match rate, the model card says which cosine gives it.

Why from the card: a threshold only means something for the model it was measured on, so it travels with the model
(contract 5). ``secure`` = FMR 1/50,000 (Android Class 3), ``balanced`` = 1/10,000 (FIDO), ``convenient`` = 1/1,000.
A score equal to the threshold is accepted (the card's thresholds are the lowest score at that FMR).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

from device.errors import ModelError

SECURITY_KEYS = {"secure": "2e-5", "balanced": "1e-4", "convenient": "1e-3"}
FMR_OF_KEY = {"2e-5": 1 / 50_000, "1e-4": 1 / 10_000, "1e-3": 1 / 1_000}


def threshold_for(thresholds: Mapping[str, float], security: str) -> float:
    """The cosine threshold for ``security`` from a card's ``thresholds`` table."""
    key = SECURITY_KEYS.get(security)
    if key is None:
        raise ModelError(f"security level {security!r} is not one of {', '.join(SECURITY_KEYS)}")
    value = thresholds.get(key)
    if value is None or not math.isfinite(float(value)):
        raise ModelError(f"the model card has no threshold for {security} (key {key!r})")
    return float(value)


def accept(score: float, threshold: float) -> bool:
    """Accept when ``score >= threshold``; NaN never accepts (fail closed)."""
    return bool(math.isfinite(score) and score >= threshold)

