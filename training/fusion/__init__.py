"""Fusion in training: feature-level (normalized concatenation + entropy selection + classifiers) and score-level
(normalization + rules) fusion across matchers and across modalities, measured by ``biolock train fusion-report``.

Modules: ``selection`` (z-score per dimension, entropy/mutual-information selection), ``classifiers`` (SVM RBF,
k-NN, decision tree, cosine), ``scores`` (pair scores, cross-validated score fusion), ``sets`` (which images,
multimodal pairing), ``extract`` (features and per-stage timings). Nothing here imports TensorFlow.
"""
