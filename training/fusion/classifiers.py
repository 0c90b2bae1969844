"""Identification over enrolled identities with SVM (RBF), k-NN, a decision tree and cosine matching, plus
verification scores from each classifier (score of the claimed identity) so they can be given an EER.

Protocol (closed set): for every identity the first ``enrol`` impressions train the classifier, the rest are
probes. Features are standardized on the enrolment rows only. Verification scores: for each probe, its score for
its own identity is genuine and its scores for every other identity are impostor (SVM: one-vs-rest decision
function; k-NN: minus the distance to the identity's nearest enrolled sample; tree: class probability;
cosine: best cosine against the identity's enrolled samples).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

CLASSIFIERS = ("svm-rbf", "knn", "tree", "cosine")


@dataclass(frozen=True)
class IdentificationResult:
    classifier: str
    rank1: float
    probes: int
    identities: int
    genuine: np.ndarray  # verification scores of each probe for its own identity
    impostor: np.ndarray  # ... for every other identity
    fit_ms: float
    predict_ms_per_probe: float


def split_enrolment(labels: list[str], impressions: list[str], enrol: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices (enrolment, probes): per identity, the ``enrol`` lowest impressions enrol, the rest probe."""
    def key(r: int) -> tuple:
        v = impressions[r]
        return (0, int(v), "") if v.isdigit() else (1, 0, v)

    by_id: dict[str, list[int]] = {}
    for i, lab in enumerate(labels):
        by_id.setdefault(lab, []).append(i)
    train, test = [], []
    for rows in by_id.values():
        rows = sorted(rows, key=key)
        train += rows[:enrol]
        test += rows[enrol:]
    return np.array(sorted(train)), np.array(sorted(test))


def _cosine_matrix(probes: np.ndarray, gallery: np.ndarray) -> np.ndarray:
    p = probes / np.maximum(np.linalg.norm(probes, axis=1, keepdims=True), 1e-12)
    g = gallery / np.maximum(np.linalg.norm(gallery, axis=1, keepdims=True), 1e-12)
    return p @ g.T


def _per_class_best(sim: np.ndarray, gallery_y: np.ndarray, n_classes: int) -> np.ndarray:
    out = np.full((sim.shape[0], n_classes), -np.inf)
    for c in range(n_classes):
        out[:, c] = sim[:, gallery_y == c].max(axis=1)
    return out


def identify(classifier: str, x_train: np.ndarray, y_train: list[str], x_test: np.ndarray, y_test: list[str],
             seed: int = 0) -> IdentificationResult:
    """Fit ``classifier`` on enrolment rows, score probes; rank-1 accuracy and verification score sets."""
    from sklearn.neighbors import NearestNeighbors
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC
    from sklearn.tree import DecisionTreeClassifier

    classes, ytr = np.unique(np.asarray(y_train), return_inverse=True)
    index = {c: i for i, c in enumerate(classes)}
    yte = np.array([index[c] for c in y_test])
    t0 = time.perf_counter()
    if classifier == "cosine":
        gallery = np.asarray(x_train, dtype=np.float64)
        fit_ms = (time.perf_counter() - t0) * 1000
        t1 = time.perf_counter()
        scores = _per_class_best(_cosine_matrix(np.asarray(x_test, dtype=np.float64), gallery), ytr, len(classes))
    else:
        scaler = StandardScaler().fit(x_train)
        xtr, xte = scaler.transform(x_train), scaler.transform(x_test)
        if classifier == "svm-rbf":
            model = SVC(kernel="rbf", C=10.0, gamma="scale", decision_function_shape="ovr", random_state=seed)
            model.fit(xtr, ytr)
            fit_ms = (time.perf_counter() - t0) * 1000
            t1 = time.perf_counter()
            scores = model.decision_function(xte)
            if scores.ndim == 1:  # two classes: sklearn returns one column
                scores = np.stack([-scores, scores], axis=1)
        elif classifier == "knn":
            nn = NearestNeighbors().fit(xtr)
            fit_ms = (time.perf_counter() - t0) * 1000
            t1 = time.perf_counter()
            dist, idx = nn.kneighbors(xte, n_neighbors=len(xtr))
            scores = np.full((len(xte), len(classes)), -np.inf)
            for c in range(len(classes)):
                member = ytr[idx] == c
                first = np.argmax(member, axis=1)  # nearest enrolled sample of class c (rows sorted by distance)
                scores[:, c] = -dist[np.arange(len(xte)), first]
        elif classifier == "tree":
            model = DecisionTreeClassifier(random_state=seed).fit(xtr, ytr)
            fit_ms = (time.perf_counter() - t0) * 1000
            t1 = time.perf_counter()
            scores = model.predict_proba(xte)
        else:
            raise ValueError(f"unknown classifier {classifier!r} (known: {', '.join(CLASSIFIERS)})")
    predict_ms = (time.perf_counter() - t1) * 1000 / max(len(yte), 1)
    rank1 = float(np.mean(np.argmax(scores, axis=1) == yte)) if len(yte) else 0.0  # ties: lowest class index
    own = np.zeros_like(scores, dtype=bool)
    own[np.arange(len(yte)), yte] = True
    return IdentificationResult(classifier, rank1, len(yte), len(classes), scores[own], scores[~own], fit_ms,
                                predict_ms)
