"""Test-set numbers for one model run: accuracy, balanced accuracy with a subject-level bootstrap interval, AUC,
classification report, confusion matrix, and accuracy per finger, per hand and on real vs altered prints.

Why a bootstrap over *subjects*: the images of one person are not independent draws (same ridge density on every
finger), so an interval from image counts would be too narrow. Resampling whole subjects gives an honest one.
"""

from __future__ import annotations

import numpy as np

from training.softbio.dataset import CLASSES, SoftbioSet
from training.softbio.models import ModelRun, balanced_accuracy

BOOTSTRAP = 500


def bootstrap_interval(y: np.ndarray, pred: np.ndarray, groups: np.ndarray, seed: int = 0,
                       rounds: int = BOOTSTRAP) -> tuple[float, float]:
    """95 % percentile interval of the balanced accuracy, resampling ``groups`` (subjects) with replacement."""
    keys, inverse = np.unique(groups, return_inverse=True)
    members = [np.flatnonzero(inverse == k) for k in range(keys.size)]
    rng = np.random.default_rng([seed, 0xB0])
    values = []
    for _ in range(rounds):
        idx = np.concatenate([members[k] for k in rng.integers(0, keys.size, keys.size)])
        if np.unique(y[idx]).size == 2:
            values.append(balanced_accuracy(y[idx], pred[idx]))
    if not values:
        return float("nan"), float("nan")
    lo, hi = np.percentile(values, [2.5, 97.5])
    return float(lo), float(hi)


def auc(y: np.ndarray, scores: np.ndarray) -> float:
    """Area under the ROC curve (M positive); NaN with one class in the test part."""
    from sklearn.metrics import roc_auc_score

    return float(roc_auc_score(y, scores)) if np.unique(y).size == 2 else float("nan")


def group_accuracy(y: np.ndarray, pred: np.ndarray, keys: np.ndarray) -> dict[str, dict]:
    """Accuracy (and balanced accuracy where both classes occur) per value of ``keys``, with counts."""
    out = {}
    for key in sorted(set(keys.tolist())):
        sel = keys == key
        both = np.unique(y[sel]).size == 2
        out[str(key)] = {"n": int(sel.sum()), "accuracy": float((pred[sel] == y[sel]).mean()),
                         "balanced_accuracy": balanced_accuracy(y[sel], pred[sel]) if both else None}
    return out


def evaluate_run(run: ModelRun, data: SoftbioSet, seed: int = 0) -> dict:
    """Every number the report shows for ``run`` (plain types, ready for JSON)."""
    from sklearn.metrics import classification_report, confusion_matrix, roc_curve

    idx = run.test_idx
    y, pred, subjects = data.y[idx], run.pred, data.subjects[idx]
    lo, hi = bootstrap_interval(y, pred, subjects, seed)
    report = classification_report(y, pred, labels=[0, 1], target_names=list(CLASSES), output_dict=True,
                                   zero_division=0)
    altered = np.where(data.alterations[idx] == "none", "real", "altered")
    return {
        "model": run.model, "split": run.split,
        "test_images": int(idx.size), "test_subjects": int(np.unique(subjects).size),
        "test_images_per_class": {c: int((y == k).sum()) for k, c in enumerate(CLASSES)},
        "accuracy": float((pred == y).mean()), "balanced_accuracy": balanced_accuracy(y, pred),
        "balanced_accuracy_ci95": [lo, hi], "auc": auc(y, run.scores),
        "classification_report": report,
        "confusion_matrix": confusion_matrix(y, pred, labels=[0, 1]).tolist(),
        "per_finger": group_accuracy(y, pred, data.fingers[idx]),
        "per_hand": group_accuracy(y, pred, data.hands[idx]),
        "real_vs_altered": group_accuracy(y, pred, altered),
        "per_alteration": group_accuracy(y, pred, data.alterations[idx]),
        "roc": _roc(roc_curve, y, run.scores),
        "history": run.history,
        "info": run.info,
    }


def _roc(roc_curve, y: np.ndarray, scores: np.ndarray) -> dict[str, list[float]] | None:
    if np.unique(y).size < 2:
        return None
    fpr, tpr, _ = roc_curve(y, scores)
    return {"fpr": [round(float(v), 5) for v in fpr], "tpr": [round(float(v), 5) for v in tpr]}
