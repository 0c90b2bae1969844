"""Soft-biometric study: can sex be told from a fingerprint, and how much does a leaky split inflate the answer?

An ANALYSIS tool (``biolock train softbio``), never part of an unlock decision: nothing in ``device/`` imports it.

Pipeline (one small module per stage):
``dataset`` (SOCOFing folders or a manifest with a ``sex`` column -> 128x128 grey images + labels, subjects,
hand, finger, alteration) -> ``splits`` (stratified train/validation/test by subject, and by image for comparison)
-> ``features`` (ridge density per 25 mm^2, ridge/valley thickness ratio, frequency-band energy) -> ``models``
(SVM RBF on the features) and ``cnn`` (a small CNN and a residual CNN, same budget) -> ``report`` (tables, per
finger / hand / alteration accuracy, confusion matrix, ROC, curves, limitations). ``planted`` draws cheap prints
with a known sex signal (the generator's ridge-density model) for tests and smoke runs.
"""
