"""biolock's own fingerprint extractor and matcher (no NBIS needed).

Stages, one module each: ``segment`` (foreground), ``orientation``, ``frequency``, ``enhance`` (oriented Gabor),
``skeleton`` (binarize + thin), ``minutiae`` (detect + clean, with ``trace`` following ridges), ``quality``;
``extract`` runs them in order and raises ``errors.FingerprintError``; ``iso`` exports ISO/IEC 19794-2.
Comparison: ``template`` (versioned bytes), ``mcc`` (local cylinders), ``consolidate`` (global consistency),
``matcher`` (the ``device.minutiae`` backend). Tuning constants live in ``params``.
The shared data type between extractor and matcher is ``minutia.Minutiae``.
"""
