"""biolock's own fingerprint extractor and matcher (no NBIS needed).

Stages, one module each: ``segment`` (foreground), ``orientation``, ``frequency``, ``enhance`` (oriented Gabor),
``skeleton`` (binarize + thin), ``minutiae`` (detect + clean), ``quality``; ``extract`` runs them in order.
Comparison: ``template`` (versioned bytes), ``mcc`` (local cylinders), ``consolidate`` (global consistency),
``matcher`` (the ``device.minutiae`` backend). Tuning constants live in ``params``.
The shared data type between extractor and matcher is ``minutia.Minutiae``.
"""
