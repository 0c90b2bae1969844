"""``biolock eval``: score what the device decides (any registered decision) on real or synthetic image sets."""

from device.evaluation.datasets import PROTOCOLS, EvalSet, load_sets
from device.evaluation.decisions import DECISIONS, AcquireError, DecisionOptions, names, open_decision
from device.evaluation.runner import evaluate_set
from device.evaluation.scoring import LEVELS, eer_linear, summarize_scores

__all__ = ["DECISIONS", "LEVELS", "PROTOCOLS", "AcquireError", "DecisionOptions", "EvalSet", "eer_linear",
           "evaluate_set", "load_sets", "names", "open_decision", "summarize_scores"]
