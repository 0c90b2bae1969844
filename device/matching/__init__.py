"""Matching: pure functions from embeddings to scores and decisions (no I/O, no state)."""

from device.matching.decision import SECURITY_KEYS, accept, threshold_for
from device.matching.fusion import FusionFn, get_rule, normalize, register
from device.matching.scores import (
    Candidate,
    agreeing_subset,
    connected_group,
    cosine_scores,
    identify,
    identify_scores,
    pairwise,
    verify_score,
)

__all__ = [
    "SECURITY_KEYS", "Candidate", "FusionFn", "accept", "cosine_scores", "get_rule", "identify", "identify_scores",
    "normalize", "pairwise", "register", "threshold_for", "verify_score", "agreeing_subset",
    "connected_group",
]
