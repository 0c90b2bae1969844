"""The classifiers compared by the study, behind one call: ``run_model(name, data, features, split, budget)``.

All models see exactly the same training images (the split's training part, class-balanced by under- or
oversampling), use the validation part for their one choice (SVM: C; CNNs: the epoch to stop at), and are
scored once on the test part. ``scores`` are "how male" (higher = class M), so ROC and AUC read the same for all.

- ``svm``: RBF support vector machine on the standardized handcrafted features (scikit-learn); C chosen from a
  small grid by validation balanced accuracy.
- ``cnn`` and ``resnet``: see ``training.softbio.cnn`` (TensorFlow, imported only when asked for).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from device.errors import ConfigError
from training.softbio.splits import Split, balance

MODEL_NAMES = ("svm", "cnn", "resnet")
SVM_C_GRID = (0.3, 1.0, 3.0, 10.0)


@dataclass(frozen=True)
class Budget:
    """What every model gets: the same epochs, batch, balancing, augmentation and seed."""

    epochs: int = 15
    batch_size: int = 32
    patience: int = 4  # early stopping on validation loss
    balance: str = "over"  # under, over or none (training part only)
    seed: int = 0
    allow_flip: bool = False  # horizontal flips mirror a left hand into a right one: only when hand is ignored
    rotation_deg: float = 10.0
    shift: float = 0.08  # fraction of the image side
    zoom: float = 0.05  # kept small: zoom changes ridge density, the very signal under study
    verbose: int = 0


@dataclass
class ModelRun:
    """One model trained and tested on one split."""

    model: str
    split: str
    test_idx: np.ndarray
    scores: np.ndarray  # higher = more likely M
    pred: np.ndarray  # 0 = F, 1 = M
    history: dict[str, list[float]] | None = None
    info: dict = field(default_factory=dict)


def parse_models(text: str) -> list[str]:
    """``"svm,cnn"`` -> ["svm", "cnn"]; ConfigError naming the choices for anything else."""
    names = [t.strip().lower() for t in text.split(",") if t.strip()]
    bad = [n for n in names if n not in MODEL_NAMES]
    if bad or not names:
        raise ConfigError(f"unknown model(s) {', '.join(bad) or '(none)'}; choose from {', '.join(MODEL_NAMES)}")
    return list(dict.fromkeys(names))


def balanced_train(split: Split, y: np.ndarray, budget: Budget) -> np.ndarray:
    """The training indices every model uses: balanced with the budget's mode and seed."""
    return balance(split.train, y, budget.balance, np.random.default_rng([budget.seed, 0xBA]))


def balanced_accuracy(y: np.ndarray, pred: np.ndarray) -> float:
    """Mean of the per-class recalls (0.5 = chance for two classes, whatever the class ratio)."""
    recalls = [float((pred[y == k] == k).mean()) for k in np.unique(y)]
    return float(np.mean(recalls)) if recalls else float("nan")


def run_svm(features: np.ndarray, y: np.ndarray, split: Split, budget: Budget) -> ModelRun:
    """RBF SVM on standardized features; C picked on the validation part."""
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    t0 = time.monotonic()
    train = balanced_train(split, y, budget)
    best, best_c, val_curve = None, None, {}
    for c in SVM_C_GRID:
        model = make_pipeline(StandardScaler(), SVC(kernel="rbf", C=c, gamma="scale", class_weight="balanced"))
        model.fit(features[train], y[train])
        val_curve[c] = balanced_accuracy(y[split.val], model.predict(features[split.val]))
        if best is None or val_curve[c] > val_curve[best_c]:
            best, best_c = model, c
    scores = best.decision_function(features[split.test])
    info = {"C": best_c, "val_balanced_accuracy": val_curve, "train_images": int(train.size),
            "seconds": round(time.monotonic() - t0, 2)}
    return ModelRun("svm", split.kind, split.test, scores, (scores > 0).astype(np.int64), None, info)


def run_model(name: str, images: np.ndarray, features: np.ndarray | None, y: np.ndarray, split: Split,
              budget: Budget) -> ModelRun:
    """Train ``name`` on ``split`` with ``budget`` and score its test part."""
    if name == "svm":
        if features is None:
            raise ConfigError("the svm model needs the handcrafted features")
        return run_svm(features, y, split, budget)
    if name in ("cnn", "resnet"):
        from training.softbio.cnn import run_cnn

        return run_cnn(name, images, y, split, budget, balanced_train(split, y, budget))
    raise ConfigError(f"unknown model {name!r}; choose from {', '.join(MODEL_NAMES)}")
